// Package field carries configuration errors that name the key they are
// about, so that the config loader can point at the exact YAML line.
// Each package validates its own config section and returns these errors
// with paths relative to that section; the loader prefixes the section.
package field

import (
	"errors"
	"fmt"
)

// Error is a problem with one configuration key.
type Error struct {
	// Path is the dotted key path, with [i] for list items, relative to the
	// section that produced it (for example "upstreams[1]").
	Path string
	Msg  string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Errorf returns an *Error for path with a formatted message.
func Errorf(path, format string, args ...any) error {
	return &Error{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Prefix rewrites every *Error inside err (including joined errors) so its
// path starts with prefix; other errors are wrapped as errors for prefix.
func Prefix(prefix string, err error) error {
	if err == nil {
		return nil
	}
	var out []error
	for _, e := range Flatten(err) {
		var fe *Error
		if errors.As(e, &fe) {
			p := prefix
			if fe.Path != "" {
				if fe.Path[0] == '[' {
					p += fe.Path
				} else {
					p += "." + fe.Path
				}
			}
			out = append(out, &Error{Path: p, Msg: fe.Msg})
			continue
		}
		out = append(out, &Error{Path: prefix, Msg: e.Error()})
	}
	return errors.Join(out...)
}

// Flatten returns the leaves of an error built with errors.Join.
func Flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Flatten(e)...)
		}
		return out
	}
	return []error{err}
}
