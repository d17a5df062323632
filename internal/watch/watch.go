// Package watch runs a function when files change, once the changes have
// settled: editors and config management write a file in several steps
// (truncate, write, rename), and a reload in the middle would read half a
// file. The policy engine and the identity files share it.
package watch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Options say what to watch.
type Options struct {
	// Dirs are the directories watched. Watching a file's directory, not
	// the file, sees it replaced by rename too.
	Dirs []string
	// Recursive watches every subdirectory as well, including ones made
	// later (fsnotify is not recursive); directories whose names start
	// with a dot (.git) are skipped.
	Recursive bool
	// Match says which changed paths count; nil counts every change.
	Match func(path string) bool
	// Delay is the quiet time after the last counted change before the
	// function runs.
	Delay time.Duration
	// OnError receives the watcher's errors, which do not stop it.
	OnError func(error)
}

// Run calls fn after each settled burst of changes until ctx is done.
func Run(ctx context.Context, o Options, fn func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	defer w.Close()
	for _, d := range o.Dirs {
		if err := add(w, d, o.Recursive); err != nil {
			return fmt.Errorf("watch %s: %w", d, err)
		}
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("watch: watcher closed")
			}
			if o.Recursive && ev.Has(fsnotify.Create) {
				if st, err := os.Stat(ev.Name); err == nil && st.IsDir() {
					_ = add(w, ev.Name, true)
				}
			}
			if o.Match == nil || o.Match(filepath.Clean(ev.Name)) {
				timer.Reset(o.Delay)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("watch: watcher closed")
			}
			if o.OnError != nil {
				o.OnError(err)
			}
		case <-timer.C:
			fn()
		}
	}
}

func add(w *fsnotify.Watcher, root string, recursive bool) error {
	if !recursive {
		return w.Add(root)
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			return w.Add(p)
		}
		return nil
	})
}
