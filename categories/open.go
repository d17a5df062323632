package categories

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// origin is where a source's files are read from: a directory tree on disk
// behind an fs.FS, so tests and odd layouts load the same way.
type origin struct {
	fsys    fs.FS
	name    string // path within fsys
	display string // for messages: the real path, or the URL and its cache file
}

func osOrigin(p string) (origin, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return origin{}, fmt.Errorf("resolve %s: %w", p, err)
	}
	name := strings.TrimPrefix(filepath.ToSlash(abs), "/")
	if name == "" {
		name = "."
	}
	return origin{fsys: os.DirFS("/"), name: name, display: abs}, nil
}

func (o origin) sub(rel string) (string, string) {
	return path.Join(o.name, rel), o.display + "/" + rel
}

// capReader fails once more than n bytes have been read, so that a
// decompression bomb fails its source instead of exhausting memory.
type capReader struct {
	r     io.Reader
	left  int64
	limit int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, fmt.Errorf("larger than max_list_bytes (%d bytes)", c.limit)
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// decompress returns a buffered reader of r's content, gunzipped when it
// starts with the gzip magic bytes (whatever the file is called).
func decompress(r io.Reader, file string, limit int64) (*bufio.Reader, error) {
	br := bufio.NewReaderSize(r, maxLineLen)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		br = bufio.NewReaderSize(zr, maxLineLen)
	}
	return bufio.NewReaderSize(&capReader{r: br, left: limit, limit: limit}, maxLineLen), nil
}

func isTar(br *bufio.Reader) bool {
	head, _ := br.Peek(512)
	return len(head) >= 262 && bytes.HasPrefix(head[257:], []byte("ustar"))
}

func (l *loader) limit() int64 {
	if l.cfg.MaxListBytes > 0 {
		return l.cfg.MaxListBytes
	}
	return DefaultConfig().MaxListBytes
}

// openLists reads one source into list results: a UT1 tree from its one
// origin, any other list from one or more files (a publisher's parts) read
// as one. remote marks downloads, which must not be empty (an empty 200 is
// not a list).
func (l *loader) openLists(ctx context.Context, src Source, orgs []origin, seed maphash.Seed, remote bool) ([]*listResult, error) {
	format := orDefault(src.Format, FormatAuto)
	tree := format == FormatUT1 || (format == FormatAuto && len(src.Map) > 0)
	var lists []*listResult
	if len(orgs) == 1 || tree {
		org := orgs[0]
		st, err := fs.Stat(org.fsys, org.name)
		if err != nil {
			return nil, unwrapPathErr(err, org.display)
		}
		if st.IsDir() {
			if !tree {
				return nil, fmt.Errorf("%s is a directory; a UT1 tree needs format ut1 and a map", org.display)
			}
			lists, err = l.loadUT1Dir(ctx, src, org, seed)
		} else {
			lists, err = l.loadFile(ctx, src, org, seed, format, tree)
		}
		if err != nil {
			return nil, err
		}
	} else {
		r := newListResult(src.Name, src.Category, format, seed)
		r.sample = newNameSample(l.cfg.SampleNames)
		for i, org := range orgs {
			if err := l.readPlain(ctx, r, org, format, "part"+strconv.Itoa(i)); err != nil {
				return nil, err
			}
		}
		lists = []*listResult{r}
	}
	loaded := 0
	for _, r := range lists {
		r.finishRevision()
		if r.missing {
			continue
		}
		r.verr = verifyList(r, remote)
		if r.verr == nil {
			loaded++
		}
	}
	if loaded == 0 {
		var errs []error
		for _, r := range lists {
			if r.verr != nil {
				errs = append(errs, r.verr)
			}
		}
		if len(errs) == 0 {
			errs = append(errs, fmt.Errorf("none of the mapped UT1 categories is in %s (is it a UT1 tree?)", orgs[0].display))
		}
		return nil, errors.Join(errs...)
	}
	return lists, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func unwrapPathErr(err error, display string) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", display, pe.Err)
	}
	return err
}

// verifyList rejects lists that are mostly not lists, such as an HTML
// error page served with status 200, so the last good copy stays in use.
func verifyList(r *listResult, remote bool) error {
	used := r.lines - r.errCount
	if r.errCount > used {
		first := ""
		if len(r.lineErrs) > 0 {
			first = " (first: " + r.lineErrs[0].Error() + ")"
		}
		return fmt.Errorf("%s: %d of %d lines failed to parse%s: not a %s list?", r.label, r.errCount, r.lines, first, r.format)
	}
	if remote && r.lines == 0 {
		return fmt.Errorf("%s: downloaded list is empty", r.label)
	}
	return nil
}

func (l *loader) loadFile(ctx context.Context, src Source, org origin, seed maphash.Seed, format string, tree bool) ([]*listResult, error) {
	open := func() (io.ReadCloser, *bufio.Reader, error) {
		f, err := org.fsys.Open(org.name)
		if err != nil {
			return nil, nil, unwrapPathErr(err, org.display)
		}
		br, err := decompress(f, org.display, l.limit())
		if err != nil {
			f.Close()
			return nil, nil, err
		}
		return f, br, nil
	}
	f, br, err := open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if isTar(br) {
		if !tree {
			return nil, fmt.Errorf("%s is a tar archive; a UT1 tree needs format ut1 and a map", org.display)
		}
		return l.loadUT1Tar(ctx, src, org, seed, br, open)
	}
	if tree {
		return nil, fmt.Errorf("%s is neither a directory nor a tar archive, as a UT1 tree must be", org.display)
	}
	r := newListResult(src.Name, src.Category, format, seed)
	r.sample = newNameSample(l.cfg.SampleNames)
	if err := r.readFile(ctx, br, format, org.display, "list"); err != nil {
		return nil, err
	}
	return []*listResult{r}, nil
}

// readPlain reads one file of a multi-file source into r.
func (l *loader) readPlain(ctx context.Context, r *listResult, org origin, format, rel string) error {
	f, err := org.fsys.Open(org.name)
	if err != nil {
		return unwrapPathErr(err, org.display)
	}
	defer f.Close()
	br, err := decompress(f, org.display, l.limit())
	if err != nil {
		return err
	}
	if isTar(br) {
		return fmt.Errorf("%s is a tar archive, not a list", org.display)
	}
	return r.readFile(ctx, br, format, org.display, rel)
}

// ut1Files are the files of a UT1 category directory that are loaded, with
// their formats; expressions only when the source asks for them.
func ut1Files(expressions bool) [][2]string {
	files := [][2]string{{"domains", FormatDomains}, {"urls", FormatURLs}}
	if expressions {
		files = append(files, [2]string{"expressions", formatExpressions})
	}
	return files
}

func ut1Lists(src Source, seed maphash.Seed, sample int) ([]string, map[string]*listResult) {
	keys := make([]string, 0, len(src.Map))
	for k := range src.Map {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	lists := make(map[string]*listResult, len(keys))
	for _, k := range keys {
		lists[k] = newListResult(src.Name+":"+k, src.Map[k], FormatUT1, seed)
		lists[k].missing = true
		lists[k].sample = newNameSample(sample)
	}
	return keys, lists
}

func (l *loader) loadUT1Dir(ctx context.Context, src Source, org origin, seed maphash.Seed) ([]*listResult, error) {
	if st, err := fs.Stat(org.fsys, path.Join(org.name, "blacklists")); err == nil && st.IsDir() {
		org.name, org.display = org.sub("blacklists")
	}
	keys, lists := ut1Lists(src, seed, l.cfg.SampleNames)
	out := make([]*listResult, 0, len(keys))
	for _, k := range keys {
		r := lists[k]
		for _, f := range ut1Files(src.Expressions) {
			name, display := org.sub(k + "/" + f[0])
			if err := l.readTreeFile(ctx, r, org.fsys, name, display, k+"/"+f[0], f[1]); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return nil, err
			}
		}
		out = append(out, r)
	}
	return out, nil
}

func (l *loader) readTreeFile(ctx context.Context, r *listResult, fsys fs.FS, name, display, rel, format string) error {
	f, err := fsys.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return fmt.Errorf("%s is a directory: %w", display, fs.ErrNotExist)
	}
	br, err := decompress(f, display, l.limit())
	if err != nil {
		return err
	}
	r.missing = false
	return r.readFile(ctx, br, format, display, rel)
}

// loadUT1Tar streams a UT1 archive (the official blacklists.tar.gz)
// without unpacking it. Category directories that are symlinks in the
// archive (the official one has a few aliases) are followed: if a mapped
// name turns out to be a link whose target was not read, the archive is
// read a second time for just those targets.
func (l *loader) loadUT1Tar(ctx context.Context, src Source, org origin, seed maphash.Seed, br *bufio.Reader, reopen func() (io.ReadCloser, *bufio.Reader, error)) ([]*listResult, error) {
	keys, lists := ut1Lists(src, seed, l.cfg.SampleNames)
	want := map[string][]string{}
	for _, k := range keys {
		want[k] = []string{k}
	}
	aliases, err := l.readTar(ctx, src, br, org.display, want, lists)
	if err != nil {
		return nil, err
	}
	again := map[string][]string{}
	for _, k := range keys {
		if t, ok := aliases[k]; ok && lists[k].missing {
			again[t] = append(again[t], k)
		}
	}
	if len(again) > 0 {
		f, br2, err := reopen()
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if _, err := l.readTar(ctx, src, br2, org.display, again, lists); err != nil {
			return nil, err
		}
	}
	out := make([]*listResult, 0, len(keys))
	for _, k := range keys {
		out = append(out, lists[k])
	}
	return out, nil
}

// readTar reads the files of the wanted category directories (dir -> map
// keys fed by it) and returns the category symlinks it saw (name -> target).
func (l *loader) readTar(ctx context.Context, src Source, br *bufio.Reader, display string, want map[string][]string, lists map[string]*listResult) (map[string]string, error) {
	formats := map[string]string{}
	for _, f := range ut1Files(src.Expressions) {
		formats[f[0]] = f[1]
	}
	aliases := map[string]string{}
	tr := tar.NewReader(br)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: read tar: %w", display, err)
		}
		name := path.Clean(strings.TrimSuffix(hdr.Name, "/"))
		dir, file := path.Split(name)
		dir = path.Base(dir)
		switch hdr.Typeflag {
		case tar.TypeSymlink:
			// blacklists/porn -> adult (or ./adult, ../blacklists/adult)
			aliases[file] = path.Base(hdr.Linkname)
			continue
		case tar.TypeReg:
		default:
			continue
		}
		format, ok := formats[file]
		if !ok || len(want[dir]) == 0 {
			continue
		}
		var rd io.Reader = &capReader{r: tr, left: l.limit(), limit: l.limit()}
		var content []byte
		if len(want[dir]) > 1 {
			content, err = io.ReadAll(rd)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", display, name, err)
			}
		}
		for _, k := range want[dir] {
			r := lists[k]
			if content != nil {
				rd = bytes.NewReader(content)
			}
			r.missing = false
			if err := r.readFile(ctx, rd, format, display+":"+name, k+"/"+file); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", display, name, err)
			}
		}
	}
	// Read to the end so gzip checks its CRC and length: a truncated or
	// corrupted download fails here instead of loading partially.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return nil, fmt.Errorf("%s: %w", display, err)
	}
	return aliases, nil
}
