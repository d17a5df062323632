package events

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Spool files are named spool-<seq>.jsonl with a zero-padded sequence so a
// plain directory listing is in order; code parses the number anyway.
const (
	spoolPrefix = "spool-"
	spoolSuffix = ".jsonl"
)

func spoolName(seq uint64) string {
	return fmt.Sprintf("%s%010d%s", spoolPrefix, seq, spoolSuffix)
}

// parseSpoolName returns the sequence number of a spool file name.
func parseSpoolName(name string) (uint64, bool) {
	if !strings.HasPrefix(name, spoolPrefix) || !strings.HasSuffix(name, spoolSuffix) {
		return 0, false
	}
	n, err := strconv.ParseUint(name[len(spoolPrefix):len(name)-len(spoolSuffix)], 10, 64)
	if err != nil || n == 0 {
		return 0, false
	}
	return n, true
}

// listSpool returns the sequence numbers of the spool files in dir, in
// order.
func listSpool(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing spool %s: %w", dir, err)
	}
	var seqs []uint64
	for _, e := range ents {
		if seq, ok := parseSpoolName(e.Name()); ok && e.Type().IsRegular() {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	return seqs, nil
}

// syncDir makes a directory's entries (a created or renamed file) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// spoolState is what readers know of the writer: the file being written and
// how much of it they may read. Readers never read past committed, so they
// only see whole lines that have been written and, under fsync always or
// interval, fsynced: a sink cursor can then never point past what a crash
// leaves on disk. Files before seq are complete.
type spoolState struct {
	mu        sync.Mutex
	seq       uint64
	committed int64
	notify    chan struct{}
}

func newSpoolState(seq uint64) *spoolState {
	return &spoolState{seq: seq, notify: make(chan struct{})}
}

// get returns the current file, its readable length, and a channel closed
// at the next change.
func (s *spoolState) get() (seq uint64, committed int64, changed <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq, s.committed, s.notify
}

func (s *spoolState) publish(seq uint64, committed int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq == s.seq && committed == s.committed {
		return
	}
	s.seq, s.committed = seq, committed
	close(s.notify)
	s.notify = make(chan struct{})
}

// spoolWriter appends lines to the current spool file and rotates it. It is
// owned by the writer goroutine; only state is shared.
type spoolWriter struct {
	dir     string
	mode    FsyncMode
	maxSize int64
	log     *slog.Logger
	state   *spoolState

	f    *os.File
	seq  uint64
	size int64 // bytes in f that are known good
	// synced is how much of f is on stable storage (or, under fsync never,
	// handed to the OS); it is what readers may see.
	synced   int64
	lastSync time.Time
	// buf gathers one write; it is kept between batches (the writer
	// goroutine alone uses it) so a busy spool does not regrow it each time.
	buf bytes.Buffer
	// writes counts write calls, read by Stats.
	writes atomic.Uint64
}

// maxKeptBuf is the largest write buffer kept between batches; a burst
// that needed more gives it back.
const maxKeptBuf = 1 << 20

// openSpool prepares the spool directory: it reports a truncated last line
// left by a crash, and starts a new file after the newest, so that a file
// written by an earlier run is never appended to.
func openSpool(dir string, mode FsyncMode, maxSize int64, log *slog.Logger) (*spoolWriter, error) {
	seqs, err := listSpool(dir)
	if err != nil {
		return nil, err
	}
	var next uint64 = 1
	if len(seqs) > 0 {
		last := seqs[len(seqs)-1]
		checkTail(filepath.Join(dir, spoolName(last)), log)
		next = last + 1
	}
	w := &spoolWriter{dir: dir, mode: mode, maxSize: maxSize, log: log}
	if err := w.create(next); err != nil {
		return nil, err
	}
	w.state = newSpoolState(next)
	return w, nil
}

// checkTail logs a spool file whose last line has no newline: the writer
// died mid-append. Readers skip that line; this makes it visible even with
// no sink configured.
func checkTail(path string, log *slog.Logger) {
	f, err := os.Open(path)
	if err != nil {
		log.Error("events: cannot check spool file", "file", path, "err", err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return
	}
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, st.Size()-1); err != nil || last[0] == '\n' {
		return
	}
	lines, _ := countLines(f)
	log.Error("events: spool file ends in a truncated line (crash during append?); readers skip it",
		"at", fmt.Sprintf("%s:%d", path, lines+1))
}

func countLines(r io.ReaderAt) (int, error) {
	buf := make([]byte, 64<<10)
	var off int64
	n := 0
	for {
		m, err := r.ReadAt(buf, off)
		n += bytes.Count(buf[:m], []byte{'\n'})
		off += int64(m)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// create opens spool file seq, which must not exist.
func (w *spoolWriter) create(seq uint64) error {
	path := filepath.Join(w.dir, spoolName(seq))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("creating spool file: %w", err)
	}
	if err := syncDir(w.dir); err != nil {
		w.log.Warn("events: spool directory fsync failed", "dir", w.dir, "err", err)
	}
	w.f, w.seq, w.size, w.synced = f, seq, 0, 0
	return nil
}

// rotate completes the current file (fsynced whatever the mode, because
// readers treat files before the current one as complete) and starts the
// next.
func (w *spoolWriter) rotate() error {
	if w.f != nil {
		if err := w.f.Sync(); err != nil {
			return fmt.Errorf("fsync %s before rotation: %w", w.f.Name(), err)
		}
		w.synced = w.size
		if err := w.f.Close(); err != nil {
			return fmt.Errorf("closing %s: %w", w.f.Name(), err)
		}
		w.f = nil
		w.publish()
	}
	if err := w.create(w.seq + 1); err != nil {
		return err
	}
	w.publish()
	return nil
}

// append writes lines (each ending in '\n'), rotating as needed. It returns
// how many lines are in the spool; on error the file is cut back to its last
// whole line, and the caller retries the rest.
func (w *spoolWriter) append(lines [][]byte) (int, error) {
	done := 0
	buf := &w.buf
	defer func() {
		if buf.Cap() > maxKeptBuf {
			*buf = bytes.Buffer{}
		}
	}()
	for done < len(lines) {
		if w.f == nil {
			// A failed rotation left no open file.
			if err := w.create(w.seq + 1); err != nil {
				return done, err
			}
			w.publish()
		}
		// Fill one write with the lines that fit in the current file; a
		// line larger than max_file_size gets a file of its own.
		buf.Reset()
		n := 0
		for done+n < len(lines) {
			l := lines[done+n]
			if w.size+int64(buf.Len())+int64(len(l)) > w.maxSize && (w.size > 0 || buf.Len() > 0) {
				break
			}
			buf.Write(l)
			n++
		}
		if n == 0 {
			if err := w.rotate(); err != nil {
				return done, err
			}
			continue
		}
		if _, err := w.f.Write(buf.Bytes()); err != nil {
			// Cut a partial line off so the file holds whole lines only.
			if terr := w.f.Truncate(w.size); terr != nil {
				w.log.Error("events: cannot truncate spool file after failed write; readers will skip the partial line",
					"file", w.f.Name(), "err", terr)
				w.f.Close()
				w.f = nil
			}
			return done, fmt.Errorf("writing %s: %w", filepath.Join(w.dir, spoolName(w.seq)), err)
		}
		w.size += int64(buf.Len())
		w.writes.Add(1)
		done += n
	}
	return done, nil
}

// sync makes what was written durable (per mode) and visible to readers.
func (w *spoolWriter) sync(force bool) error {
	if w.f == nil || w.synced == w.size {
		return nil
	}
	if w.mode != FsyncNever || force {
		if err := w.f.Sync(); err != nil {
			return fmt.Errorf("fsync %s: %w", w.f.Name(), err)
		}
	}
	w.synced = w.size
	w.lastSync = time.Now()
	w.publish()
	return nil
}

func (w *spoolWriter) publish() {
	w.state.publish(w.seq, w.synced)
}

// close fsyncs and closes the current file.
func (w *spoolWriter) close() error {
	if w.f == nil {
		return nil
	}
	err := w.sync(true)
	if cerr := w.f.Close(); cerr != nil && err == nil {
		err = cerr
	}
	w.f = nil
	return err
}

// errSpoolClosed is returned to waiters when Close gives up on a write.
var errSpoolClosed = errors.New("events: spool closed before the event was written")
