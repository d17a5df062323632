package dnsfilter

import (
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/aupguard/aupguard/verdict"
)

// blocker makes the answer for a blocked query.
//
// Every block carries Extended DNS Error 15 (Blocked): RFC 8914 defines it
// for a block imposed by the operator's policy, which is what aupguard
// enforces. 17 (Filtered) is for filtering the client asked for and 16
// (Censored) for an external requirement, so neither applies. Alert-only
// decisions are not blocks: they are answered normally, with no EDE, so the
// learner's browsing is unchanged while the alert goes to the safeguarding
// team.
type blocker struct {
	mode   BlockAnswer
	ttl    uint32
	v4, v6 []netip.Addr
}

func newBlocker(cfg BlockConfig) *blocker {
	b := &blocker{mode: cfg.Answer, ttl: ttlSeconds(cfg.TTL)}
	if cfg.Answer == BlockAddress {
		b.v4, b.v6 = cfg.blockAddrs()
	}
	return b
}

// zeroAddrs are the unspecified addresses: clients fail to connect at once
// instead of trying another resolver.
var zeroAddrs = []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()}

func (b *blocker) answer(q *query, d *verdict.Decision, blockedName string) *answer {
	var m *dns.Msg
	switch b.mode {
	case BlockNXDomain:
		m = negative(q, dns.RcodeNameError, b.ttl)
	case BlockRefused:
		m = reply(q, dns.RcodeRefused)
	case BlockAddress:
		m = addressAnswer(q, append(append([]netip.Addr(nil), b.v4...), b.v6...), b.ttl)
	default:
		m = addressAnswer(q, zeroAddrs, b.ttl)
	}
	return &answer{msg: m, ede: ede(dns.ExtendedErrorCodeBlocked, blockText(d, blockedName, q.name)), from: "policy"}
}

// blockText is the EDE extra text: enough for a technician with dig to see
// which rule blocked what, nothing about the learner.
func blockText(d *verdict.Decision, blockedName, qname string) string {
	var b strings.Builder
	b.WriteString("aupguard: ")
	if d.Error != "" {
		b.WriteString("policy unavailable, failing closed")
	} else {
		b.WriteString("blocked by policy")
		if d.Category != "" {
			b.WriteString(", category " + d.Category)
		}
		if d.Rule != "" {
			b.WriteString(", rule " + d.Rule)
		}
	}
	if blockedName != qname {
		b.WriteString(" (via CNAME " + blockedName + ")")
	}
	return b.String()
}
