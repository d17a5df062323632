package events

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
)

// errStopped ends a reader or deliverer that was asked to stop.
var errStopped = errors.New("events: stopped")

// spoolReader tails the spool for one stage from its cursor. It reads files
// before the writer's current one to their end, and the current one only up
// to what the writer published, so it never sees a half-written line of a
// live file. A line that is not a valid event (corruption, or a line cut
// short by a crash) is reported with file:line and skipped; the position
// moves past it so delivery continues.
type spoolReader struct {
	dir       string
	stage     string
	state     *spoolState
	log       *slog.Logger
	onCorrupt func()

	pos Position
	f   *os.File
}

func (r *spoolReader) close() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}

// next returns up to max events after the reader's position and the
// position after them, waiting for new events until stop is closed or ctx
// is done. The position can advance with no events (past corrupt lines or
// to the next file); the caller saves it all the same.
func (r *spoolReader) next(ctx context.Context, stop <-chan struct{}, max int) ([]Event, Position, error) {
	start := r.pos
	for {
		seq, committed, changed := r.state.get()
		if r.pos.Seq > seq {
			r.log.Error("events: cursor is ahead of the spool (spool directory replaced?); starting at the current file",
				"stage", r.stage, "cursor", r.pos.String(), "current", spoolName(seq))
			r.close()
			r.pos = Position{Seq: seq}
		}
		if r.pos.Seq == seq && r.pos.Offset >= committed {
			if r.pos != start {
				return nil, r.pos, nil
			}
			select {
			case <-changed:
				continue
			case <-stop:
				return nil, r.pos, errStopped
			case <-ctx.Done():
				return nil, r.pos, ctx.Err()
			}
		}
		if r.f == nil {
			if err := r.open(seq); err != nil {
				return nil, r.pos, err
			}
			continue
		}
		limit := int64(-1)
		if r.pos.Seq == seq {
			limit = committed
		}
		evs, eof, err := r.read(limit, max)
		if err != nil {
			return evs, r.pos, err
		}
		if eof && r.pos.Seq < seq {
			// A complete file is done: move on, even with events in hand,
			// so the saved cursor names the next file and this one can be
			// pruned.
			r.close()
			r.pos = Position{Seq: r.pos.Seq + 1}
		}
		if len(evs) > 0 || r.pos != start {
			return evs, r.pos, nil
		}
	}
}

// open opens the file at the reader's position. A missing file (removed by
// hand) is reported and skipped: its events cannot be delivered, but the
// ones after it still are.
func (r *spoolReader) open(current uint64) error {
	for {
		path := filepath.Join(r.dir, r.pos.File())
		f, err := os.Open(path)
		if err == nil {
			st, err := f.Stat()
			if err != nil {
				f.Close()
				return fmt.Errorf("stat %s: %w", path, err)
			}
			if r.pos.Offset > st.Size() {
				// Only possible with fsync: never and a machine crash: the
				// sink already has what the spool lost.
				r.log.Warn("events: cursor is past the end of its spool file; continuing from the end",
					"stage", r.stage, "cursor", r.pos.String(), "size", st.Size())
				r.pos.Offset = st.Size()
			}
			r.f = f
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("opening spool file: %w", err)
		}
		next := current
		seqs, lerr := listSpool(r.dir)
		if lerr != nil {
			return lerr
		}
		for _, s := range seqs {
			if s > r.pos.Seq {
				next = s
				break
			}
		}
		if next <= r.pos.Seq {
			return fmt.Errorf("spool file %s is missing and there is no later file", path)
		}
		r.log.Error("events: spool file is missing; the events in it cannot be delivered by this stage",
			"stage", r.stage, "file", path, "continuing_at", spoolName(next))
		r.pos = Position{Seq: next}
	}
}

// read parses up to max lines from the open file, stopping at limit (or
// the end of the file when limit < 0). eof reports that the file has no
// more lines within limit.
func (r *spoolReader) read(limit int64, max int) (evs []Event, eof bool, err error) {
	n := int64(math.MaxInt64 - r.pos.Offset)
	if limit >= 0 {
		n = limit - r.pos.Offset
	}
	br := bufio.NewReaderSize(io.NewSectionReader(r.f, r.pos.Offset, n), 64<<10)
	for len(evs) < max {
		line, size, complete, err := readLine(br)
		if size == 0 && err == io.EOF {
			return evs, true, nil
		}
		if err != nil && err != io.EOF {
			return evs, false, fmt.Errorf("reading %s: %w", r.f.Name(), err)
		}
		if !complete {
			if limit >= 0 {
				// The live file is only read to a published line boundary,
				// so this is the tail of a line still being written.
				return evs, true, nil
			}
			r.pos.Offset += size
			r.pos.Line++
			r.corrupt("truncated line (no newline; the writer stopped mid-append)")
			return evs, true, nil
		}
		r.pos.Offset += size
		r.pos.Line++
		if line == nil {
			r.corrupt(fmt.Sprintf("line longer than %d bytes", maxLineSize))
			continue
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			r.corrupt("empty line")
			continue
		}
		var ev Event
		if err := json.Unmarshal(line, &ev); err != nil {
			r.corrupt("not a JSON event: " + err.Error())
			continue
		}
		if ev.ID == "" {
			r.corrupt("event has no id")
			continue
		}
		evs = append(evs, ev)
	}
	return evs, false, nil
}

// corrupt reports the line just consumed (r.pos.Line is its number).
func (r *spoolReader) corrupt(why string) {
	r.log.Error("events: skipping bad spool line",
		"stage", r.stage, "at", fmt.Sprintf("%s:%d", filepath.Join(r.dir, r.pos.File()), r.pos.Line), "problem", why)
	if r.onCorrupt != nil {
		r.onCorrupt()
	}
}

// readLine reads one line. size counts every byte consumed; complete says
// the line ended in '\n'; line is nil when it was longer than maxLineSize.
func readLine(br *bufio.Reader) (line []byte, size int64, complete bool, err error) {
	tooLong := false
	for {
		chunk, err := br.ReadSlice('\n')
		size += int64(len(chunk))
		if !tooLong {
			if len(line)+len(chunk) > maxLineSize {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		switch {
		case err == nil:
			if tooLong {
				return nil, size, true, nil
			}
			return line, size, true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return line, size, false, err
		}
	}
}
