package console

import (
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"time"

	"github.com/aupguard/aupguard/events"
	"strings"
	"testing"
	"unicode/utf8"
)

// The learner's review message is stored with the request and shown on
// the review list and the review page as text: markup in it is escaped,
// never parsed. Only review requests keep one.
func TestReviewMessageShownEscaped(t *testing.T) {
	h := newHarness(t)
	now := h.clock.Now()
	blk := block("01GGGGGGGGGGGGGGGGGGGGGGG1", "jsmith", "casino.example", "gambling", now)
	blk.Message = "a block carries no message"
	rv := review("01GGGGGGGGGGGGGGGGGGGGGGG2", blk.ID, blk, now.Add(time.Minute))
	rv.Message = "For my PSHE essay <script>alert(1)</script>\n</td><img src=x onerror=alert(2)>"
	long := review("01GGGGGGGGGGGGGGGGGGGGGGG3", "01GGGGGGGGGGGGGGGGGGGGGGG0", blk, now.Add(2*time.Minute))
	long.Message = strings.Repeat("ü", 1500) // 3000 bytes, past the proxy's own bound
	h.insert(blk, rv, long)

	if got, _ := h.c.store.Event(context.Background(), rv.ID); got.Message != rv.Message {
		t.Errorf("stored message %q, want %q", got.Message, rv.Message)
	}
	if got, _ := h.c.store.Event(context.Background(), blk.ID); got.Message != "" {
		t.Errorf("a block's message was kept: %q", got.Message)
	}
	if got, _ := h.c.store.Event(context.Background(), long.ID); len(got.Message) > maxMessage || !utf8.ValidString(got.Message) || got.Message == "" {
		t.Errorf("a 3000-byte message kept as %d bytes (valid %v)", len(got.Message), utf8.ValidString(got.Message))
	}

	b := h.browser()
	b.login("dsl")
	escaped := "For my PSHE essay &lt;script&gt;alert(1)&lt;/script&gt;"
	for _, path := range []string{"/reviews", "/events/" + rv.ID} {
		p := b.get(path)
		if p.status != 200 {
			t.Fatalf("GET %s: %d", path, p.status)
		}
		if !strings.Contains(p.body, escaped) {
			t.Errorf("GET %s: the message is not shown escaped:\n%s", path, p.body)
		}
		for _, raw := range []string{"<script>", "<img", "</td><"} {
			if strings.Contains(p.body, raw) {
				t.Errorf("GET %s: raw %q in the page", path, raw)
			}
		}
	}
	if p := b.get("/events/" + rv.ID); !strings.Contains(p.body, `<blockquote class="message" id="review-message">`+escaped+"\n&lt;/td&gt;&lt;img src=x onerror=alert(2)&gt;</blockquote>") {
		t.Errorf("the review page does not quote the whole message:\n%s", p.body)
	}
	if p := b.get("/events/" + blk.ID); strings.Contains(p.body, "a block carries no message") {
		t.Error("a block's message is shown")
	}
}

// A console.db made before review messages existed gets the column when
// it is opened, keeps its rows, and stores messages from then on; opening
// it again changes nothing.
func TestStoreAddsMessageColumnToOldDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console.db")
	oldSchema := strings.Replace(schema, "\tmessage TEXT NOT NULL DEFAULT '',\n", "", 1)
	if oldSchema == schema {
		t.Fatal("the schema has no message column to leave out")
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(oldSchema); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO events (id, time_ms, kind, ref, last_ms) VALUES ('01OLDREVIEW', 1, 'review_request', '01OLDBLOCK', 1)`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	for i := range 2 {
		s, err := OpenStore(path)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		if old, err := s.Event(context.Background(), "01OLDREVIEW"); err != nil || old.Ref != "01OLDBLOCK" || old.Message != "" {
			t.Fatalf("open %d: the old row: %+v %v", i, old, err)
		}
		rv := review("01NEWREVIEW", "01OLDBLOCK", block("01OLDBLOCK", "jsmith", "casino.example", "gambling", time.Now()), time.Now())
		rv.Message = "please"
		if err := s.Insert(context.Background(), []events.Event{rv}); err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		if got, err := s.Event(context.Background(), rv.ID); err != nil || got.Message != "please" {
			t.Fatalf("open %d: the new row: %q %v", i, got.Message, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// DeclinedReply finds the reply of a decline made through the console's
// form, for the learner who asked and the block they named only.
func TestDeclinedReply(t *testing.T) {
	h := newHarness(t)
	now := h.clock.Now()
	blk := block("01HHHHHHHHHHHHHHHHHHHHHHH1", "jsmith", "casino.example", "gambling", now)
	rv := review("01HHHHHHHHHHHHHHHHHHHHHHH2", blk.ID, blk, now)
	h.insert(blk, rv)
	ctx := context.Background()
	if got, err := h.c.store.DeclinedReply(ctx, blk.ID, "jsmith"); got != "" || err != nil {
		t.Fatalf("before a decision: %q %v", got, err)
	}
	b := h.browser()
	b.login("dsl")
	b.get("/events/" + rv.ID)
	reply := "Gambling sites stay blocked."
	if p := b.postForm("/reviews/"+rv.ID+"/decline", url.Values{"reply": {reply}}); p.status != 303 {
		t.Fatalf("decline: %d", p.status)
	}
	for _, c := range []struct{ ref, learner, want string }{
		{blk.ID, "jsmith", reply},
		{blk.ID, "kjones", ""},
		{"01HHHHHHHHHHHHHHHHHHHHHHH9", "jsmith", ""},
	} {
		if got, err := h.c.store.DeclinedReply(ctx, c.ref, c.learner); got != c.want || err != nil {
			t.Errorf("DeclinedReply(%s, %s) = %q, %v; want %q", c.ref, c.learner, got, err, c.want)
		}
	}
}
