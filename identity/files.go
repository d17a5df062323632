package identity

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// maxLine bounds one line of an htpasswd or users_groups file; a longer
// line is certainly not a user entry.
const maxLine = 64 * 1024

// readHTPasswd parses an htpasswd file. Only bcrypt hashes are accepted:
// the other formats htpasswd can write (MD5-crypt "$apr1$", SHA-1 "{SHA}",
// crypt, plain text) are too weak to keep a learner's password safe if the
// file leaks. Every problem is reported as file:line; a file with any
// problem is rejected as a whole, so a reload never half-applies.
func readHTPasswd(path string) (map[string][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("htpasswd: %w", err)
	}
	users := map[string][]byte{}
	firstLine := map[string]int{}
	var errs []error
	err = eachLine(b, func(n int, line string) {
		user, hash, ok := strings.Cut(line, ":")
		user = strings.TrimSpace(user)
		hash = strings.TrimSpace(hash)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s:%d: want user:bcrypt-hash", path, n))
			return
		case user == "":
			errs = append(errs, fmt.Errorf("%s:%d: empty user name", path, n))
			return
		case strings.ContainsAny(user, " \t"):
			errs = append(errs, fmt.Errorf("%s:%d: user name %q contains spaces", path, n, user))
			return
		}
		if prev, dup := firstLine[user]; dup {
			errs = append(errs, fmt.Errorf("%s:%d: user %q already defined on line %d", path, n, user, prev))
			return
		}
		if kind := hashKind(hash); kind != "bcrypt" {
			// The hash itself is never echoed: it is secret-adjacent.
			errs = append(errs, fmt.Errorf("%s:%d: user %q: %s hashes are not accepted, only bcrypt ($2y$, $2b$, $2a$; create with htpasswd -B)", path, n, user, kind))
			return
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: user %q: malformed bcrypt hash: %v", path, n, user, err))
			return
		}
		firstLine[user] = n
		users[user] = []byte(hash)
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", path, err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return users, nil
}

// hashKind names the scheme of an htpasswd hash for error messages.
func hashKind(h string) string {
	switch {
	case strings.HasPrefix(h, "$2a$"), strings.HasPrefix(h, "$2b$"), strings.HasPrefix(h, "$2y$"):
		return "bcrypt"
	case strings.HasPrefix(h, "$apr1$"):
		return "MD5 ($apr1$)"
	case strings.HasPrefix(h, "{SHA}"):
		return "SHA-1 ({SHA})"
	case strings.HasPrefix(h, "$1$"):
		return "MD5-crypt ($1$)"
	case strings.HasPrefix(h, "$5$"), strings.HasPrefix(h, "$6$"):
		return "SHA-crypt"
	case h == "":
		return "empty"
	default:
		return "crypt or plain-text"
	}
}

// readUsersGroups parses "user: group1,group2" lines.
func readUsersGroups(path string) (map[string][]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("users_groups: %w", err)
	}
	out := map[string][]string{}
	firstLine := map[string]int{}
	var errs []error
	err = eachLine(b, func(n int, line string) {
		user, list, ok := strings.Cut(line, ":")
		user = strings.TrimSpace(user)
		if !ok || user == "" {
			errs = append(errs, fmt.Errorf("%s:%d: want user: group1,group2", path, n))
			return
		}
		if prev, dup := firstLine[user]; dup {
			errs = append(errs, fmt.Errorf("%s:%d: user %q already listed on line %d", path, n, user, prev))
			return
		}
		var groups []string
		for _, g := range strings.Split(list, ",") {
			g = strings.TrimSpace(g)
			if err := checkGroupName(g); err != nil {
				errs = append(errs, fmt.Errorf("%s:%d: user %q: %v", path, n, user, err))
				return
			}
			if !slices.Contains(groups, g) {
				groups = append(groups, g)
			}
		}
		firstLine[user] = n
		out[user] = slices.Clip(groups)
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", path, err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// eachLine calls fn for every line that is not blank or a # comment, with
// its 1-based number and surrounding space trimmed.
func eachLine(b []byte, fn func(n int, line string)) error {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fn(n, line)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", n+1, err)
	}
	return nil
}
