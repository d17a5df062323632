package app

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/aupguard/aupguard/config"
)

// startServer parses yaml as the file name says, starts a Server on it
// and shuts it down at cleanup.
func startServer(t *testing.T, name, yaml string) *Server {
	t.Helper()
	cfg, err := config.Parse(name, []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := NewServer(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s
}
