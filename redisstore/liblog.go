package redisstore

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// LibraryLogger sends go-redis's own log lines (failed dials, Pub/Sub
// reconnects) to slog instead of the standard logger's stderr. go-redis
// keeps one logger for the whole process, so this package never sets it;
// main does, once:
//
//	redis.SetLogger(redisstore.LibraryLogger{Logger: log})
type LibraryLogger struct {
	Logger *slog.Logger
}

// Printf implements go-redis's logging interface. Its lines report
// connection trouble, which is worth a warning.
func (l LibraryLogger) Printf(ctx context.Context, format string, v ...any) {
	lg := l.Logger
	if lg == nil {
		lg = slog.Default()
	}
	lg.WarnContext(ctx, strings.TrimSpace(fmt.Sprintf(format, v...)), "component", "go-redis")
}
