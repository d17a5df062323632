// Package testutil holds small helpers shared by the test suites.
package testutil

import (
	"strings"
	"sync"
)

// SyncBuffer is a strings.Builder safe for concurrent writes: tests point
// a server's log or a child process's output at it and read it while the
// writer is still running.
type SyncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
