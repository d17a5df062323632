package categories

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"hash/maphash"
	"strings"
)

// SeedName is the source name of aupguard's own seed list.
const SeedName = "aupguard-seed"

// seedFile is a small list written by this project (not taken from any
// published list): the best-known names of each AUP category, so that a
// filter that could fetch nothing still blocks what learners try first.
//
//go:embed seed/aupguard-seed.txt
var seedFile []byte

// seedOrigin names the seed in messages and stats.
const seedOrigin = "builtin:seed/aupguard-seed.txt"

// loadSeed reads the seed: "[category]" lines start a section, the names
// below it are a domain list of that category. Each section becomes one
// list labelled SeedName; line numbers in errors are the file's own.
func (l *loader) loadSeed(ctx context.Context, seed maphash.Seed) ([]*listResult, error) {
	return parseSeed(ctx, seedFile, seedOrigin, seed)
}

func parseSeed(ctx context.Context, content []byte, display string, seed maphash.Seed) ([]*listResult, error) {
	// Each category's list is the file with every other section's lines
	// blanked, so a bad line is reported at its real line number.
	var order []string
	sections := map[string]*bytes.Buffer{}
	cur := ""
	sc := bufio.NewScanner(bytes.NewReader(content))
	n := 0
	var blank []byte // newlines for the lines before a section starts
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			cur = strings.TrimSpace(line[1 : len(line)-1])
			if !categoryRE.MatchString(cur) {
				return nil, fmt.Errorf("%s:%d: %q is not a category name", display, n, cur)
			}
			if sections[cur] == nil {
				sections[cur] = bytes.NewBuffer(bytes.Clone(blank))
				order = append(order, cur)
			}
		} else if cur == "" && line != "" && !strings.HasPrefix(line, "#") {
			return nil, fmt.Errorf("%s:%d: a name before the first [category] line", display, n)
		}
		for c, b := range sections {
			if c == cur && !strings.HasPrefix(line, "[") {
				b.WriteString(line)
			}
			b.WriteByte('\n')
		}
		blank = append(blank, '\n')
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", display, err)
	}
	if len(order) == 0 {
		return nil, fmt.Errorf("%s: no [category] section", display)
	}
	out := make([]*listResult, 0, len(order))
	for _, c := range order {
		r := newListResult(SeedName, c, FormatDomains, seed)
		if err := r.readFile(ctx, sections[c], FormatDomains, display, "aupguard-seed.txt["+c+"]"); err != nil {
			return nil, err
		}
		r.finishRevision()
		out = append(out, r)
	}
	return out, nil
}
