package redisstore

import (
	"flag"
	"log/slog"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestMain routes go-redis's process-wide log (a line per failed dial
// while the tests keep Redis down) through LibraryLogger: shown with -v,
// dropped otherwise.
func TestMain(m *testing.M) {
	flag.Parse()
	h := slog.Handler(slog.DiscardHandler)
	if testing.Verbose() {
		h = slog.NewTextHandler(os.Stderr, nil)
	}
	redis.SetLogger(LibraryLogger{Logger: slog.New(h)})
	os.Exit(m.Run())
}
