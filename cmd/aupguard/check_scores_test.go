package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// check --page FILE URL decides the URL's response as if it served the
// page: a casino page is blocked by its content and the output lists the
// matched phrases; a sexual-health page is allowed. The host is on a list
// that no rule blocks (dating), so the name model is not involved.
func TestCheckPage(t *testing.T) {
	pages := filepath.Join("..", "..", "pagescore", "testdata", "pages")
	const url = "http://100-best-dating-sites.com/welcome"
	r := runCmd(t, "", "check", "--page", filepath.Join(pages, "positive-casino-en.html"), url)
	var out struct {
		Action, Rule, Reason string
		Page                 *pageExplain
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("%v\n%s\n%s", err, r.stdout, r.stderr)
	}
	if r.code != exitBlock || out.Rule != "gambling_page" || out.Page == nil || out.Page.Scores["gambling"] < 100 || len(out.Page.Matches) == 0 {
		t.Fatalf("exit %d: %s", r.code, r.stdout)
	}
	for _, m := range out.Page.Matches {
		// One-word phrases ("gambling") may be words of the reason itself.
		if strings.Contains(m.Phrase, " ") && strings.Contains(strings.ToLower(out.Reason), m.Phrase) {
			t.Errorf("the reason (the learner's block page) names the phrase %q", m.Phrase)
		}
	}
	r = runCmd(t, "", "check", "--page", filepath.Join(pages, "benign-nhs-sexual-health.html"), url)
	if r.code != exitOK || !strings.Contains(r.stdout, `"default_allow"`) {
		t.Errorf("sexual-health page: exit %d: %s", r.code, r.stdout)
	}
}

// check explains a name-model verdict: the score and the features that
// weighed most. (It trains the model first: slow on a busy machine.)
func TestCheckExplainsModel(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the name model")
	}
	r := runCmd(t, "", "check", "https://bengalwincasino.com/")
	var out struct {
		Rule  string
		Model []modelExplain
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("%v\n%s\n%s", err, r.stdout, r.stderr)
	}
	if r.code != exitBlock || out.Rule != "gambling_name_model" || len(out.Model) == 0 || out.Model[0].Category != "gambling" ||
		out.Model[0].Score < 0.99 || len(out.Model[0].Features) == 0 {
		t.Fatalf("exit %d: %s", r.code, r.stdout)
	}
	found := false
	for _, f := range out.Model[0].Features {
		found = found || strings.Contains(f.Name, "casin") || strings.Contains(f.Name, "win")
	}
	if !found {
		t.Errorf("no casino or win feature among the top ones: %+v", out.Model[0].Features)
	}
}
