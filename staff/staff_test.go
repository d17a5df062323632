package staff

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{Cost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAccounts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "staff", "users.json")
	s := open(t, path)
	if err := s.Add("dsl", RoleSafeguarding, "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	if err := s.Add("it.admin", RoleAdmin, "another long passphrase"); err != nil {
		t.Fatal(err)
	}
	if err := s.Add("dsl", RoleViewer, "correct horse battery"); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate: %v", err)
	}
	for _, c := range []struct {
		name string
		role Role
		pw   string
		want string
	}{
		{"short", RoleViewer, "tooshort", "12 to 72"},
		{"Bad Name", RoleViewer, "long enough password", "user name"},
		{"x", "owner", "long enough password", "role"},
		{"huge", RoleViewer, strings.Repeat("p", 73), "12 to 72"},
	} {
		if err := s.Add(c.name, c.role, c.pw); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Add(%q, %q): %v, want %q", c.name, c.role, err, c.want)
		}
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, %v", st.Mode(), err)
	}
	raw, _ := os.ReadFile(path)
	if strings.Contains(string(raw), "correct horse") {
		t.Fatal("a password is stored in clear")
	}

	// A reopened store has the same accounts; logins work and fail alike.
	s = open(t, path)
	u, err := s.Authenticate("dsl", "correct horse battery")
	if err != nil || u.Role != RoleSafeguarding || u.Hash != "" {
		t.Fatalf("login: %+v %v", u, err)
	}
	for _, bad := range [][2]string{{"dsl", "wrong password!!"}, {"nobody", "correct horse battery"}, {"", ""}} {
		if _, err := s.Authenticate(bad[0], bad[1]); !errors.Is(err, ErrBadLogin) {
			t.Errorf("login %q: %v", bad[0], err)
		}
	}
	if err := s.SetPassword("dsl", "a brand new passphrase"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate("dsl", "correct horse battery"); err == nil {
		t.Error("the old password still works")
	}
	if _, err := s.Authenticate("dsl", "a brand new passphrase"); err != nil {
		t.Error(err)
	}
	if err := s.Remove("it.admin"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("it.admin"); !errors.Is(err, ErrNoUser) {
		t.Errorf("second remove: %v", err)
	}
	if l := open(t, path).List(); len(l) != 1 || l[0].Name != "dsl" || l[0].Hash != "" {
		t.Errorf("list = %+v", l)
	}
}

func TestOpenRejectsACorruptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.json")
	os.WriteFile(path, []byte(`[{"name":"dsl","role":"owner","hash":"x"}]`), 0o600)
	if _, err := Open(path, Options{Cost: bcrypt.MinCost}); err == nil || !strings.Contains(err.Error(), "entry 0") {
		t.Errorf("bad role: %v", err)
	}
	os.WriteFile(path, []byte(`{not json`), 0o600)
	if _, err := Open(path, Options{Cost: bcrypt.MinCost}); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("bad JSON: %v", err)
	}
}

// An account another process (the CLI) adds or removes while the console
// runs counts after Refresh.
func TestRefreshSeesOtherWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.json")
	console, err := Open(path, Options{Cost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := Open(path, Options{Cost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.Add("dsl", RoleSafeguarding, "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	if _, ok := console.Lookup("dsl"); ok {
		t.Fatal("seen before Refresh: the test proves nothing")
	}
	if err := console.Refresh(); err != nil {
		t.Fatal(err)
	}
	if u, ok := console.Lookup("dsl"); !ok || u.Role != RoleSafeguarding || u.Hash != "" {
		t.Fatalf("after Refresh: %+v %v", u, ok)
	}
	if _, err := console.Authenticate("dsl", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	if err := cli.Remove("dsl"); err != nil {
		t.Fatal(err)
	}
	if err := console.Refresh(); err != nil {
		t.Fatal(err)
	}
	if _, ok := console.Lookup("dsl"); ok {
		t.Fatal("removed account still there after Refresh")
	}
}
