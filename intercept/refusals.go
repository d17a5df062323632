package intercept

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
)

// Refusals remembers, per client and host, that the client refused our
// certificate (a device without the CA, or an app that pins its server's
// certificate), so that the next connection is spliced instead of broken.
// Entries expire so that a device that later gets the CA is intercepted
// again.
type Refusals struct {
	lru   *expirable.LRU[string, struct{}]
	count atomic.Uint64
}

// NewRefusals keeps up to size entries for ttl each.
func NewRefusals(size int, ttl time.Duration) *Refusals {
	if size <= 0 {
		size = 10_000
	}
	return &Refusals{lru: expirable.NewLRU[string, struct{}](size, nil, ttl)}
}

// Remember records that client refused our certificate for host.
func (r *Refusals) Remember(client, host string) {
	r.count.Add(1)
	r.lru.Add(client+"\x00"+strings.ToLower(host), struct{}{})
}

// Refused reports whether client refused our certificate for host lately.
func (r *Refusals) Refused(client, host string) bool {
	_, ok := r.lru.Get(client + "\x00" + strings.ToLower(host))
	return ok
}

// Count is how many refusals were remembered since start.
func (r *Refusals) Count() uint64 { return r.count.Load() }

// IsClientRefusal reports whether a server-side handshake error means the
// client did not accept our certificate: it sent an alert about the
// certificate (unknown_ca, bad_certificate, certificate_unknown…), or it
// hung up during the handshake, as pinned apps do without a word.
func IsClientRefusal(err error) bool {
	if err == nil {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" {
		msg := op.Err.Error()
		for _, a := range []string{"unknown certificate authority", "bad certificate", "certificate unknown",
			"unsupported certificate", "certificate expired", "certificate revoked", "access denied"} {
			if strings.Contains(msg, a) {
				return true
			}
		}
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}
