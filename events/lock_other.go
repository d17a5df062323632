//go:build !unix

package events

import "os"

// lockDir is a no-op where flock is unavailable: run one pipeline per
// data_dir.
func lockDir(string) (*os.File, error) { return nil, nil }

func unlockDir(f *os.File) error {
	if f == nil {
		return nil
	}
	return f.Close()
}
