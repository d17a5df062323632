package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// Position is a place in the spool: the next unread byte of a spool file
// and the number of lines before it (for file:line messages).
type Position struct {
	Seq    uint64 `json:"seq"`
	Offset int64  `json:"offset"`
	Line   int    `json:"line"`
}

// File is the spool file name the position is in.
func (p Position) File() string { return spoolName(p.Seq) }

// String names the position as file@offset and the 1-based line.
func (p Position) String() string {
	return fmt.Sprintf("%s@%d (line %d)", p.File(), p.Offset, p.Line+1)
}

// cursorFile is the on-disk form of a sink cursor; File is redundant with
// Seq but lets an operator read the cursor without decoding names.
type cursorFile struct {
	Sink    string    `json:"sink"`
	File    string    `json:"file"`
	Seq     uint64    `json:"seq"`
	Offset  int64     `json:"offset"`
	Line    int       `json:"line"`
	Updated time.Time `json:"updated"`
}

// validSinkName keeps sink names usable as file names and metric labels.
var validSinkName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

func cursorPath(dir, sink string) string {
	return filepath.Join(dir, sink+".json")
}

// loadCursor reads a sink's cursor; ok is false when it has none.
func loadCursor(dir, sink string) (pos Position, ok bool, err error) {
	path := cursorPath(dir, sink)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Position{}, false, nil
	}
	if err != nil {
		return Position{}, false, fmt.Errorf("reading cursor: %w", err)
	}
	var c cursorFile
	if err := json.Unmarshal(b, &c); err != nil {
		return Position{}, false, fmt.Errorf("cursor %s: %w", path, err)
	}
	if c.Seq == 0 || c.Offset < 0 || c.Line < 0 {
		return Position{}, false, fmt.Errorf("cursor %s: invalid position seq=%d offset=%d line=%d", path, c.Seq, c.Offset, c.Line)
	}
	return Position{Seq: c.Seq, Offset: c.Offset, Line: c.Line}, true, nil
}

// saveCursor replaces a sink's cursor atomically and durably: write a
// temporary file, fsync it, rename it over the cursor, fsync the directory.
// After a crash the cursor is either the old or the new one, never torn.
func saveCursor(dir, sink string, pos Position) error {
	b, err := json.Marshal(cursorFile{
		Sink: sink, File: pos.File(), Seq: pos.Seq, Offset: pos.Offset, Line: pos.Line,
		Updated: time.Now().UTC(),
	})
	if err != nil {
		return err
	}
	path := cursorPath(dir, sink)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("saving cursor: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("saving cursor %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("saving cursor: fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("saving cursor %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("saving cursor: %w", err)
	}
	return syncDir(dir)
}
