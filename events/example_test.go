package events_test

import (
	"fmt"
	"github.com/aupguard/aupguard/internal/testutil"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/aupguard/aupguard/events"
)

// A receiver verifies each request before trusting it: the signature is
// over the exact body bytes, so read the body first, verify, then decode.
func ExampleVerifySignature() {
	secret := []byte("shared-secret-from-the-config")
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
		if err != nil || !events.VerifySignature(secret, body, r.Header.Get("X-Aupguard-Signature")) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		// ... decode the JSON array, skip event IDs already stored ...
		w.WriteHeader(http.StatusNoContent)
	})

	body := `[{"id":"01J8Z3K4QX7Y2B5N6M8P9R0S1T","kind":"block"}]`
	for _, sig := range []string{events.Sign(secret, []byte(body)), "sha256=00"} {
		req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(body))
		req.Header.Set("X-Aupguard-Signature", sig)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		fmt.Println(rec.Code)
	}
	// Output:
	// 204
	// 401
}

// The README's shell recipe (openssl) computes the same signature.
func TestSignatureMatchesOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	testutil.Require(t, err == nil, "openssl not installed")
	body := `[{"id":"01J8Z3K4QX7Y2B5N6M8P9R0S1T","url":"https://a.test/?q=<&>"}]`
	cmd := exec.Command(openssl, "dgst", "-sha256", "-hmac", "shared-secret", "-r")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	hex, _, _ := strings.Cut(string(out), " ")
	if got, want := "sha256="+hex, events.Sign([]byte("shared-secret"), []byte(body)); got != want {
		t.Errorf("openssl %s, Sign %s", got, want)
	}
}
