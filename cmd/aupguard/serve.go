package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aupguard/aupguard/app"
	"github.com/aupguard/aupguard/config"
	"github.com/aupguard/aupguard/redisstore"
)

// drainTimeout bounds how long SIGTERM waits for requests and tunnels in
// flight before closing them; the events are flushed either way.
const drainTimeout = 30 * time.Second

// cmdServe runs the proxy and the DNS filter until SIGINT or SIGTERM
// (ctx), reloading policy, lists and credentials on SIGHUP.
func cmdServe(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file (built-in defaults when empty)")
	drain := fs.Duration("drain", drainTimeout, "how long SIGTERM waits for requests in flight")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "serve: %v\n", err)
		return exitUsage
	}
	log := newLogger(cfg, stderr)
	// go-redis logs failed dials itself; route them through slog.
	redis.SetLogger(redisstore.LibraryLogger{Logger: log})
	srv, err := app.NewServer(ctx, cfg, log)
	if err != nil {
		log.Error("cannot start", "error", err)
		return exitUsage
	}
	if err := srv.Start(ctx); err != nil {
		log.Error("cannot start", "error", err)
		shutdown(srv, log, *drain)
		return exitUsage
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			log.Info("SIGHUP: reloading policy, lists and credentials")
			if err := srv.Reload(ctx); err != nil {
				log.Error("reload incomplete; the previous versions keep answering", "error", err)
			}
		case <-ctx.Done():
			log.Info("shutting down: draining requests in flight", "timeout", drain.String())
			if err := shutdown(srv, log, *drain); err != nil {
				return exitBlock
			}
			return exitOK
		}
	}
}

func shutdown(srv *app.Server, log *slog.Logger, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	err := srv.Shutdown(ctx)
	if err != nil {
		log.Error("shutdown", "error", err)
	} else {
		log.Info("stopped")
	}
	return err
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
