// Package exceptions keeps the time-limited policy exceptions that
// safeguarding staff approve in the web console: one YAML data file, laid
// over the built-in policies' exceptions.yaml and read by
// policies/exceptions.rego as data.aupguard.exceptions. Every change
// rewrites the file atomically, so the policy watcher never reads half a
// file, and entries are validated here because the policy's own unit tests
// run without this file (rego.Options.Overlays).
package exceptions

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/aupguard/aupguard/internal/atomicfile"
)

// FileName is the overlay's name: it replaces the built-in file of the
// same name in the policy set.
const FileName = "exceptions.yaml"

// DateLayout is the form of Expires.
const DateLayout = "2006-01-02"

// Exception lets one user or group reach one host (and its subdomains) or
// one category until the end of Expires. Exactly one of User and Group,
// and one of Host and Category, is set.
type Exception struct {
	ID       string `yaml:"id"`
	User     string `yaml:"user,omitempty"`
	Group    string `yaml:"group,omitempty"`
	Host     string `yaml:"host,omitempty"`
	Category string `yaml:"category,omitempty"`
	// Expires is the last day it is valid on, YYYY-MM-DD in the policy's
	// time zone.
	Expires    string `yaml:"expires"`
	ApprovedBy string `yaml:"approved_by"`
	// Created is when it was approved (RFC 3339, UTC).
	Created string `yaml:"created"`
	// Ref is the review request (event ID) it answers, if any.
	Ref  string `yaml:"ref,omitempty"`
	Note string `yaml:"note,omitempty"`
}

// Who names the user or group, for display.
func (e Exception) Who() string {
	if e.User != "" {
		return "user " + e.User
	}
	return "group " + e.Group
}

// What names the host or category, for display.
func (e Exception) What() string {
	if e.Host != "" {
		return "host " + e.Host
	}
	return "category " + e.Category
}

// Active reports whether e is in force on day (YYYY-MM-DD).
func (e Exception) Active(day string) bool { return day <= e.Expires }

// MaxDuration bounds how far ahead an exception may run: an exception is a
// reviewed, temporary answer to one request, not a policy change (those
// belong in the policy files, under change control).
const MaxDuration = 366 * 24 * time.Hour

var (
	nameRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@\\-]{0,127}$`)
	hostRE  = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	catRE   = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)
	idRE    = regexp.MustCompile(`^EXC-[0-9A-Z]{4,32}$`)
	shortRE = regexp.MustCompile(`^[^\x00-\x1f]{0,500}$`)
)

// Validate checks e as it will be written, relative to today.
func (e Exception) Validate(today time.Time) error {
	var errs []error
	if !idRE.MatchString(e.ID) {
		errs = append(errs, fmt.Errorf("id %q is not EXC- and 4-32 letters or digits", e.ID))
	}
	switch {
	case (e.User == "") == (e.Group == ""):
		errs = append(errs, errors.New("names neither or both of a user and a group"))
	case e.User != "" && !nameRE.MatchString(e.User):
		errs = append(errs, fmt.Errorf("user %q is not a user name", e.User))
	case e.Group != "" && !nameRE.MatchString(e.Group):
		errs = append(errs, fmt.Errorf("group %q is not a group name", e.Group))
	}
	switch {
	case (e.Host == "") == (e.Category == ""):
		errs = append(errs, errors.New("names neither or both of a host and a category"))
	case e.Host != "" && (!hostRE.MatchString(e.Host) || len(e.Host) > 253 || !strings.Contains(e.Host, ".")):
		errs = append(errs, fmt.Errorf("host %q is not a lower-case host name with a dot", e.Host))
	case e.Category != "" && !catRE.MatchString(e.Category):
		errs = append(errs, fmt.Errorf("category %q is not a category name", e.Category))
	}
	exp, err := time.Parse(DateLayout, e.Expires)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("expires %q is not a date YYYY-MM-DD", e.Expires))
	case exp.Format(DateLayout) < today.Format(DateLayout):
		errs = append(errs, fmt.Errorf("expires %s is in the past", e.Expires))
	case exp.Sub(today) > MaxDuration:
		errs = append(errs, fmt.Errorf("expires %s is more than a year ahead: make a lasting change in the policy instead", e.Expires))
	}
	for _, s := range []string{e.ApprovedBy, e.Ref, e.Note} {
		if !shortRE.MatchString(s) {
			errs = append(errs, errors.New("approved_by, ref and note must be one line of at most 500 characters"))
			break
		}
	}
	return errors.Join(errs...)
}

// NewID returns a fresh exception ID (EXC- and 8 hex digits, upper case).
func NewID() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return "EXC-" + strings.ToUpper(hex.EncodeToString(b[:]))
}

// document is the file's shape: data.aupguard.exceptions.
type document struct {
	Aupguard struct {
		Exceptions []Exception `yaml:"exceptions"`
	} `yaml:"aupguard"`
}

// File is the exceptions file. It is safe for concurrent use by one
// process; the console is its only writer.
type File struct {
	path string
	mu   sync.Mutex
}

// Open returns the file at path (which need not exist yet).
func Open(path string) *File { return &File{path: path} }

// Path is where the file is.
func (f *File) Path() string { return f.path }

// List returns every exception in the file, expired ones included (the
// policy ignores those; they stay as a record until removed).
func (f *File) List() ([]Exception, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.read()
}

func (f *File) read() ([]Exception, error) {
	b, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("exceptions: %w", err)
	}
	var doc document
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("exceptions: %s: %w", f.path, err)
	}
	return doc.Aupguard.Exceptions, nil
}

// Add validates e and appends it, returning the list as written.
func (f *File) Add(e Exception, now time.Time) error {
	if err := e.Validate(now); err != nil {
		return fmt.Errorf("exception: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	list, err := f.read()
	if err != nil {
		return err
	}
	if slices.ContainsFunc(list, func(x Exception) bool { return x.ID == e.ID }) {
		return fmt.Errorf("exception %s already exists", e.ID)
	}
	return f.write(append(list, e))
}

// Remove deletes the exception id; it reports whether there was one.
func (f *File) Remove(id string) (Exception, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	list, err := f.read()
	if err != nil {
		return Exception{}, false, err
	}
	i := slices.IndexFunc(list, func(x Exception) bool { return x.ID == id })
	if i < 0 {
		return Exception{}, false, nil
	}
	gone := list[i]
	return gone, true, f.write(slices.Delete(list, i, i+1))
}

// Restore writes list back as it was, undoing an Add whose policy reload
// failed.
func (f *File) Restore(list []Exception) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.write(list)
}

const header = `# Written by aupguard's web console: time-limited exceptions approved by the
# safeguarding team (policies/exceptions.rego reads them). Change them in the
# console, where each change is in the audit log; a hand edit here is
# reloaded like any policy change but leaves no record.
`

// write replaces the file atomically (temporary file, fsync, rename), so
// the policy watcher sees the old file or the new one, never a part.
func (f *File) write(list []Exception) error {
	var doc document
	doc.Aupguard.Exceptions = list
	if doc.Aupguard.Exceptions == nil {
		doc.Aupguard.Exceptions = []Exception{}
	}
	body, err := yaml.Marshal(&doc)
	if err != nil {
		return fmt.Errorf("exceptions: %w", err)
	}
	dir := filepath.Dir(f.path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("exceptions: %w", err)
	}
	if err := atomicfile.Write(f.path, append([]byte(header), body...), 0o640); err != nil {
		return fmt.Errorf("exceptions: %s: %w", f.path, err)
	}
	return nil
}
