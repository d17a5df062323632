package events

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aupguard/aupguard/internal/testsmtp"
)

// startDigest starts a pipeline whose digest runs on clock.
func startDigest(t *testing.T, cfg Config, clock *fakeClock) *Pipeline {
	t.Helper()
	p, err := New(cfg, "test-1", quiet())
	if err != nil {
		t.Fatal(err)
	}
	if p.digest == nil {
		t.Fatal("digest not set up")
	}
	p.digest.now = clock.Now
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeP(t, p) })
	return p
}

func digests(msgs []testsmtp.Message) []testsmtp.Message {
	var out []testsmtp.Message
	for _, m := range msgs {
		if strings.Contains(m.Subject(), "daily digest") {
			out = append(out, m)
		}
	}
	return out
}

// Lower-severity events wait for the daily digest; it is sent once at
// digest.at, and restarts neither lose the waiting events nor send a
// day's digest twice.
func TestEmailDigest(t *testing.T) {
	relay := testsmtp.Start(t, testsmtp.Options{})
	cfg := emailConfig(t, relay.Addr())
	cfg.Alerts.Email.Digest = DigestConfig{At: "07:30", MinSeverity: "low", To: []string{"dsl-digest@school.test"}}
	clock := newFakeClock() // 2026-09-01 09:00 UTC
	clock.now = time.Date(2026, 9, 1, 6, 0, 0, 0, time.UTC)

	// Before 07:30: the events wait.
	p := startDigest(t, cfg, clock)
	low := emit(t, p, testEvent("ann", "gambling", "low"))
	medium := emit(t, p, testEvent("bob", "social", "medium"))
	info := emit(t, p, testEvent("cat", "games", "info")) // below digest.min_severity
	high := emit(t, p, testEvent("dan", "gambling", "high"))
	eventually(t, "the digest to collect", func() bool {
		return p.Stats().Sinks["alerts-digest"].Processed == 4 && len(p.digest.pendingIDs()) == 2
	})
	waitEmailed(t, p, 4)
	closeP(t, p)
	if got := byEventID(relay.Messages()); len(got) != 1 || got[high] != 1 {
		t.Fatalf("before the digest, relay got %v; want only the high alert %s", got, high)
	}

	// A restart after 07:30 sends the day's digest (it was due while the
	// process was down), with both waiting events.
	clock.now = time.Date(2026, 9, 1, 8, 15, 0, 0, time.UTC)
	p = startDigest(t, cfg, clock)
	eventually(t, "the digest to be sent", func() bool { return len(digests(relay.Messages())) == 1 })
	eventually(t, "the digest to be recorded", func() bool { return len(p.digest.pendingIDs()) == 0 })
	closeP(t, p)
	d := digests(relay.Messages())[0]
	if !slices.Equal(d.To, []string{"dsl-digest@school.test"}) {
		t.Errorf("digest went to %v", d.To)
	}
	if got, want := d.Header().Get("Message-Id"), "<aupguard.digest.2026-09-01@school.test>"; got != want {
		t.Errorf("digest Message-ID %q, want %q", got, want)
	}
	text := d.Part("text/plain")
	for _, want := range []string{low, medium, "gambling", "social", "ann", "bob", "2 event(s)"} {
		if !strings.Contains(text, want) {
			t.Errorf("digest lacks %q:\n%s", want, text)
		}
	}
	for _, bad := range []string{info, high} {
		if strings.Contains(text, bad) {
			t.Errorf("digest lists %s (below min_severity, or e-mailed on its own):\n%s", bad, text)
		}
	}

	// Another restart the same day sends nothing more; an event now waits
	// for tomorrow's digest.
	clock.now = time.Date(2026, 9, 1, 10, 0, 0, 0, time.UTC)
	p = startDigest(t, cfg, clock)
	late := emit(t, p, testEvent("eve", "gambling", "medium"))
	eventually(t, "the late event to wait", func() bool { return slices.Equal(p.digest.pendingIDs(), []string{late}) })
	closeP(t, p)
	if n := len(digests(relay.Messages())); n != 1 {
		t.Fatalf("%d digests after a same-day restart, want 1", n)
	}

	// The next day, after 07:30: the late event's digest, once.
	clock.now = time.Date(2026, 9, 2, 7, 31, 0, 0, time.UTC)
	p = startDigest(t, cfg, clock)
	eventually(t, "the second digest", func() bool { return len(digests(relay.Messages())) == 2 })
	eventually(t, "the second digest to be recorded", func() bool { return len(p.digest.pendingIDs()) == 0 })
	closeP(t, p)
	d2 := digests(relay.Messages())[1]
	if text := d2.Part("text/plain"); !strings.Contains(text, late) || strings.Contains(text, low) {
		t.Errorf("second digest should list only %s:\n%s", late, text)
	}
	if got := d2.Header().Get("Message-Id"); got != "<aupguard.digest.2026-09-02@school.test>" {
		t.Errorf("second digest Message-ID %q", got)
	}
}

// A digest the relay refuses for a while is retried, not lost.
func TestEmailDigestRetried(t *testing.T) {
	relay := testsmtp.Start(t, testsmtp.Options{})
	cfg := emailConfig(t, relay.Addr())
	cfg.Alerts.Email.Digest = DigestConfig{At: "07:30", MinSeverity: "low"}
	clock := newFakeClock()
	clock.now = time.Date(2026, 9, 1, 6, 0, 0, 0, time.UTC)
	p := startDigest(t, cfg, clock)
	id := emit(t, p, testEvent("ann", "gambling", "low"))
	eventually(t, "the digest to collect", func() bool { return len(p.digest.pendingIDs()) == 1 })
	closeP(t, p)

	relay.FailNext(2)
	clock.now = time.Date(2026, 9, 1, 7, 45, 0, 0, time.UTC)
	p = startDigest(t, cfg, clock)
	eventually(t, "the digest to be sent", func() bool { return len(digests(relay.Messages())) == 1 })
	if text := digests(relay.Messages())[0].Part("text/plain"); !strings.Contains(text, id) {
		t.Errorf("digest lacks %s", id)
	}
}
