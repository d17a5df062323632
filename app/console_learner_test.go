package app

import (
	"context"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	cdpfetch "github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"
)

// newLearnerChromium is a learner's headless Chromium that browses through
// the proxy at proxyAddr and answers its 407 with the learner's
// credentials, as a browser whose user typed them into the proxy's login
// prompt would. The handlers stop with the tab.
func newLearnerChromium(t *testing.T, proxyAddr, user, password string) chromiumTab {
	t.Helper()
	b := newChromium(t, chromedp.ProxyServer("http://"+proxyAddr))
	run(t, b, "proxy credentials", chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
		// Subscribed before Fetch.enable, so no paused request is missed;
		// the tab's context (not ctx, which ends with this action) stops
		// the loops.
		paused := cdp.Events(b.ctx, tgt, cdpfetch.RequestPaused)
		auth := cdp.Events(b.ctx, tgt, cdpfetch.AuthRequired)
		go func() {
			for ev, err := range paused {
				if err != nil {
					return
				}
				_, _ = cdp.Call(b.ctx, tgt, cdpfetch.ContinueRequest, cdpfetch.ContinueRequestParams{RequestID: ev.RequestID})
			}
		}()
		go func() {
			for ev, err := range auth {
				if err != nil {
					return
				}
				_, _ = cdp.Call(b.ctx, tgt, cdpfetch.ContinueWithAuth, cdpfetch.ContinueWithAuthParams{
					RequestID: ev.RequestID,
					AuthChallengeResponse: &cdpfetch.AuthChallengeResponse{
						Response: cdpfetch.AuthChallengeResponseResponseProvideCredentials, Username: user, Password: password,
					},
				})
			}
		}()
		handle := true
		_, err := cdp.Call(ctx, tgt, cdpfetch.Enable, cdpfetch.EnableParams{HandleAuthRequests: &handle})
		return err
	}))
	return b
}
