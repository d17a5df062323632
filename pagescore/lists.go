package pagescore

import (
	"bufio"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// defaultLists are the phrase lists written for this project.
//
//go:embed phrases/*.txt
var defaultLists embed.FS

// DefaultLists returns the embedded phrase lists, one file per category
// named phrases/<category>.txt.
func DefaultLists() fs.FS {
	sub, err := fs.Sub(defaultLists, "phrases")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return sub
}

// phrase is one line of a list.
type phrase struct {
	category int
	weight   float64
	text     string // as written in the list, for the reviewer
	pattern  string // normalised, with the boundary spaces it needs
}

// readLists parses every *.txt file at the top of fsys; the file name
// without .txt is the category.
func readLists(fsys fs.FS) (cats []string, phrases []phrase, err error) {
	names, err := fs.Glob(fsys, "*.txt")
	if err != nil {
		return nil, nil, fmt.Errorf("pagescore: list files: %w", err)
	}
	if len(names) == 0 {
		return nil, nil, fmt.Errorf("pagescore: no *.txt phrase lists")
	}
	sort.Strings(names)
	for _, name := range names {
		cat := strings.TrimSuffix(path.Base(name), ".txt")
		ci := len(cats)
		cats = append(cats, cat)
		ps, err := readList(fsys, name, ci)
		if err != nil {
			return nil, nil, err
		}
		phrases = append(phrases, ps...)
	}
	return cats, phrases, nil
}

func readList(fsys fs.FS, name string, ci int) ([]phrase, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("pagescore: %w", err)
	}
	defer f.Close()
	var out []phrase
	seen := map[string]int{}
	sc := bufio.NewScanner(f)
	for ln := 1; sc.Scan(); ln++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		w, text, ok := strings.Cut(line, "\t")
		if !ok {
			return nil, fmt.Errorf("pagescore: %s:%d: want weight<TAB>phrase", name, ln)
		}
		weight, err := strconv.ParseFloat(strings.TrimSpace(w), 64)
		if err != nil || weight == 0 {
			return nil, fmt.Errorf("pagescore: %s:%d: bad weight %q", name, ln, w)
		}
		text = strings.TrimSpace(text)
		pat, err := patternOf(text)
		if err != nil {
			return nil, fmt.Errorf("pagescore: %s:%d: %w", name, ln, err)
		}
		if prev, dup := seen[pat]; dup {
			return nil, fmt.Errorf("pagescore: %s:%d: %q is the same phrase as line %d", name, ln, text, prev)
		}
		seen[pat] = ln
		out = append(out, phrase{category: ci, weight: weight, text: text, pattern: pat})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("pagescore: %s: %w", name, err)
	}
	return out, nil
}

// patternOf normalises a phrase the way page text is normalised and adds
// the word boundaries: a leading and a trailing space unless the phrase
// starts or ends with '*', which lets it match inside a longer word.
func patternOf(text string) (string, error) {
	body := strings.TrimSuffix(strings.TrimPrefix(text, "*"), "*")
	var b strings.Builder
	if !strings.HasPrefix(text, "*") {
		b.WriteByte(' ')
	}
	sep := true
	words := 0
	for _, r := range body {
		if r == utf8.RuneError {
			return "", fmt.Errorf("phrase %q is not valid UTF-8", text)
		}
		switch k, lr := classify(r); k {
		case kindDrop:
		case kindSep:
			sep = true
		default:
			if sep && words > 0 {
				b.WriteByte(' ')
			}
			if sep {
				words++
			}
			sep = false
			b.WriteRune(lr)
		}
	}
	if words == 0 {
		return "", fmt.Errorf("phrase %q has no letters or digits", text)
	}
	if !strings.HasSuffix(text, "*") {
		b.WriteByte(' ')
	}
	return b.String(), nil
}
