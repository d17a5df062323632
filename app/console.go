package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/aupguard/aupguard/config"
	"github.com/aupguard/aupguard/console"
	"github.com/aupguard/aupguard/exceptions"
	"github.com/aupguard/aupguard/rego"
	"github.com/aupguard/aupguard/staff"
)

// ExceptionsFile is where the console writes the exceptions staff approve:
// data_dir/console/exceptions.yaml.
func ExceptionsFile(cfg *config.Config) string {
	return filepath.Join(cfg.DataDir, console.DirName, exceptions.FileName)
}

// policyOverlays are the data files laid over the policy set: the
// console's exceptions, whether or not the console runs in this process
// (`aupguard check` must see the exceptions that `serve` enforces).
func policyOverlays(cfg *config.Config) []string {
	return []string{ExceptionsFile(cfg)}
}

// consoleRetentionEvery is how often events past console.retention are
// purged.
const consoleRetentionEvery = time.Hour

// consoleParts is the console's share of a Server.
type consoleParts struct {
	console *console.Console
	srv     *http.Server
	ln      net.Listener
}

// newConsole builds the console when console.listen is set: its store is
// fed by its own sink on the event pipeline, and every policy activation
// is written to its audit log.
func (s *Server) newConsole() error {
	if s.cfg.Console.Listen == "" {
		return nil
	}
	loc, err := s.cfg.Location()
	if err != nil {
		return err
	}
	accounts, err := staff.Open(staff.File(s.cfg.DataDir), staff.Options{})
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	c, err := console.New(s.cfg.Console, filepath.Join(s.cfg.DataDir, console.DirName), console.Options{
		Accounts:   accounts,
		Exceptions: exceptions.Open(ExceptionsFile(s.cfg)),
		Policy:     s.Core.Engine,
		Location:   loc,
		Logger:     s.log,
	})
	if err != nil {
		return err
	}
	if err := s.Events.AddSink(c.Sink()); err != nil {
		_ = c.Close()
		return fmt.Errorf("console: %w", err)
	}
	prev := s.Core.Engine.Current().Revision()
	s.Core.Engine.OnActivate(func(p *rego.Policy) {
		// Runs under the engine's reload lock: no call back into it.
		c.RecordPolicyChange(context.Background(), p.Revision(), prev, "reload")
		prev = p.Revision()
	})
	s.con.console = c
	// The review form tells a learner whose request staff declined why.
	s.Proxy.SetReviewReplies(c.Store())
	return nil
}

// startConsole binds the console's listener, tells the proxy to refuse it
// to clients before it serves, and starts the retention purge.
func (s *Server) startConsole(bgctx context.Context) error {
	c := s.con.console
	if c == nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Console.Listen)
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	if err := s.protectBound(ln.Addr()); err != nil {
		_ = ln.Close()
		return fmt.Errorf("console: %w", err)
	}
	s.con.ln = ln
	s.con.srv = &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	s.goBackground(func() {
		if err := c.Serve(s.con.srv, ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("console listener stopped", "error", err)
		}
	})
	s.goBackground(func() { c.RunRetention(bgctx, consoleRetentionEvery) })
	return nil
}

// ConsoleAddr is the console's bound address (nil when disabled).
func (s *Server) ConsoleAddr() net.Addr {
	if s.con.ln == nil {
		return nil
	}
	return s.con.ln.Addr()
}

// Console is the running console (nil when disabled).
func (s *Server) Console() *console.Console { return s.con.console }

// shutdownConsole stops serving pages (with the other listeners).
func (s *Server) shutdownConsole(ctx context.Context) error {
	if s.con.srv == nil {
		return nil
	}
	if err := s.con.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("console: %w", err)
	}
	return nil
}

// closeConsole closes the store, after the event pipeline has stopped
// delivering to it.
func (s *Server) closeConsole() error {
	if s.con.console == nil {
		return nil
	}
	if err := s.con.console.Close(); err != nil {
		return fmt.Errorf("console: %w", err)
	}
	return nil
}
