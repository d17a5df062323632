package app

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aupguard/aupguard/console"
)

// When staff decline a review request in the console, the learner who
// asks again for the same block reads the reply (escaped) instead of
// filing a new request; another learner quoting that reference does not
// see it.
func TestDeclinedReviewReplyShownToLearner(t *testing.T) {
	d := serveConsole(t)
	store := d.s.Console().Store()
	jsmith := d.learner("jsmith")

	resp, _ := browse(t, jsmith, http.MethodGet, "http://"+d.origin+"/", nil)
	ref := resp.Header.Get("X-Aupguard-Reference")
	if resp.StatusCode != http.StatusForbidden || ref == "" {
		t.Fatalf("gambling through the proxy: %d, reference %q", resp.StatusCode, ref)
	}
	ask := func(c *http.Client) (*http.Response, string) {
		t.Helper()
		return browse(t, c, http.MethodPost, "http://aupguard.block/review", url.Values{"ref": {ref}, "message": {"for my essay"}})
	}
	if resp, body := ask(jsmith); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Request sent") {
		t.Fatalf("review request: %d\n%s", resp.StatusCode, body)
	}
	var reviewID string
	waitUntil(t, "the review request in the console", func() bool {
		rows, _ := store.Reviews(context.Background(), console.StatusNew, 10)
		if len(rows) == 1 {
			reviewID = rows[0].ID
		}
		return reviewID != ""
	})
	// Before a decision the learner is told it was already asked.
	if _, body := ask(jsmith); strings.Contains(body, "declined") || !strings.Contains(body, "already been requested") {
		t.Fatalf("before the decision:\n%s", body)
	}

	// The decline, as the console's decline form records it.
	reply := "Gambling sites stay blocked; the library has <b>essay</b> sources."
	if err := store.Act(context.Background(), reviewID, console.Action{Time: time.Now(), Staff: "dsl", Action: "declined", Note: reply},
		console.StatusDeclined, console.StatusNew); err != nil {
		t.Fatal(err)
	}

	resp, body := ask(jsmith)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Your last review request was declined") ||
		!strings.Contains(body, "the library has &lt;b&gt;essay&lt;/b&gt; sources.") || strings.Contains(body, "<b>essay") {
		t.Fatalf("asking again after the decline: %d\n%s", resp.StatusCode, body)
	}
	// Another learner quoting the same reference does not read jsmith's
	// reply.
	if _, body := ask(d.learner("kjones")); strings.Contains(body, "declined") || strings.Contains(body, "essay") {
		t.Fatalf("kjones sees jsmith's reply:\n%s", body)
	}
	// Asking again recorded nothing new.
	if rows, _ := store.Reviews(context.Background(), "all", 10); len(rows) != 1 || rows[0].ID != reviewID {
		t.Errorf("review requests after the decline: %+v", rows)
	}
}
