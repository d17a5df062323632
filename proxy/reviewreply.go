package proxy

import (
	"context"
	"time"
)

// ReviewReplies says how staff answered a learner's earlier review
// request: the reply to the latest one they declined for the block ref
// ("" for none). learner is the user name, or the device address when the
// learner is not signed in. The console's store is one.
type ReviewReplies interface {
	DeclinedReply(ctx context.Context, ref, learner string) (string, error)
}

type reviewRepliesBox struct{ r ReviewReplies }

// SetReviewReplies lets the review form tell a learner that their request
// for the same block was declined, and why. It may be called while the
// proxy serves (the console is built after it); nil turns it off.
func (s *Server) SetReviewReplies(r ReviewReplies) {
	if r == nil {
		s.replies.Store(nil)
		return
	}
	s.replies.Store(&reviewRepliesBox{r})
}

// replyTimeout bounds the look-up; without an answer the request is
// recorded as usual.
const replyTimeout = 2 * time.Second

func (s *Server) declinedReply(ctx context.Context, ref string, t *txn) string {
	box := s.replies.Load()
	if box == nil {
		return ""
	}
	learner := t.user
	if learner == "" {
		learner = t.ipStr
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), replyTimeout)
	defer cancel()
	reply, err := box.r.DeclinedReply(ctx, ref, learner)
	if err != nil {
		s.log.Warn("proxy: reading review replies", "ref", ref, "err", err)
		return ""
	}
	return reply
}
