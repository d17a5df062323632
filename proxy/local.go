package proxy

import (
	"context"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/verdict"
)

// serveLocal answers requests addressed to the proxy itself: the review
// form's target (posted to http://<review_host>/review through the proxy,
// or to the listener directly) and a one-line identification at "/".
func (s *Server) serveLocal(w http.ResponseWriter, r *http.Request, t *txn) {
	switch {
	case r.URL.Path == "/review" && s.cfg.BlockPage.ReviewEnabled:
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			plain(w, http.StatusMethodNotAllowed, "aupguard: send the review request form with POST.\n")
			return
		}
		s.serveReview(w, r, t)
	case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		plain(w, http.StatusOK, "aupguard web filter for "+s.cfg.BlockPage.Organisation+".\n")
	default:
		plain(w, http.StatusNotFound, "aupguard: nothing here.\n")
	}
}

// durableEmitter is an Emitter that can wait until an event is on disk
// (events.Pipeline).
type durableEmitter interface {
	EmitDurable(ctx context.Context, ev events.Event) error
}

// maxRef bounds a reference; event IDs are far shorter.
const maxRef = 64

func validRef(ref string) bool {
	if ref == "" || len(ref) > maxRef {
		return false
	}
	for _, c := range ref {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// serveReview records a learner's request to review a block as a
// review_request event whose ref is the block's event ID.
func (s *Server) serveReview(w http.ResponseWriter, r *http.Request, t *txn) {
	r.Body = http.MaxBytesReader(w, r.Body, maxReviewBody)
	if err := r.ParseForm(); err != nil {
		plain(w, http.StatusBadRequest, "aupguard: the review request form could not be read.\n")
		return
	}
	ref := strings.TrimSpace(r.PostForm.Get("ref"))
	if !validRef(ref) {
		plain(w, http.StatusBadRequest, "aupguard: the review request needs the reference shown on the block page.\n")
		return
	}
	now := time.Now()
	// A request staff already declined is not asked again: the learner
	// reads the reply instead.
	if reply := s.declinedReply(r.Context(), ref, t); reply != "" {
		data := s.pages.data("Review declined", now)
		data.Reference = ref
		data.Declined = reply
		writeResponse(w, s.pages.render(r, http.StatusOK, "review", data))
		return
	}
	s.reviewMu.Lock()
	rec, known := s.recent.Get(ref)
	already := known && rec.reviewed
	if known {
		rec.reviewed = true
	} else {
		// A block from before a restart, or from another instance: record
		// the request all the same, and remember it to drop repeats.
		s.recent.Add(ref, &blockRecord{reviewed: true})
	}
	s.reviewMu.Unlock()

	data := s.pages.data("Review requested", now)
	data.Reference = ref
	data.Already = already
	if known {
		data.Host = rec.ev.Host
	}
	if !already {
		var disputed *events.Event
		if known {
			disputed = &rec.ev
		}
		ev := events.ReviewRequest(ref, verdict.SourceProxy, t.client(), disputed, s.buildOptions())
		ev.Message = reviewMessage(r.PostForm.Get("message"))
		s.stats.reviews.Add(1)
		// The page tells the learner the request is recorded, so it waits
		// for the disk when the Emitter can say; a hang-up must not cancel
		// it, and the pipeline bounds the wait by its emit_timeout.
		ctx := context.WithoutCancel(r.Context())
		var err error
		if de, ok := s.opts.Emitter.(durableEmitter); ok {
			err = de.EmitDurable(ctx, ev)
		} else {
			err = s.opts.Emitter.Emit(ctx, ev)
		}
		if err != nil {
			s.stats.emitErr.Add(1)
			s.log.Error("proxy: emitting review request", "event_id", ev.ID, "ref", ref, "err", err)
			s.reviewMu.Lock()
			if rec, ok := s.recent.Get(ref); ok {
				rec.reviewed = false // let the learner try again
			}
			s.reviewMu.Unlock()
			plain(w, http.StatusServiceUnavailable, "aupguard: the review request could not be recorded just now. Please try again in a minute, or tell a member of staff the reference "+ref+".\n")
			return
		}
		s.log.Info("review requested", "client_ip", t.ipStr, "user", t.user, "ref", ref, "event_id", ev.ID, "known", known)
	}
	writeResponse(w, s.pages.render(r, http.StatusOK, "review", data))
}

// writeResponse copies a response the proxy made to the client.
func writeResponse(w http.ResponseWriter, resp *http.Response) {
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
	_ = resp.Body.Close()
}
