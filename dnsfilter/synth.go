package dnsfilter

import (
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// Helpers for answers aupguard makes up itself (blocks, hosts, special
// names, safe search).

// synthMNAME and synthRNAME name aupguard in synthesized SOA records; .invalid
// (RFC 6761) can never collide with a real zone.
const (
	synthMNAME = "filter.aupguard.invalid."
	synthRNAME = "hostmaster.aupguard.invalid."
)

// reply starts an answer message for q with the given rcode.
func reply(q *query, rcode int) *dns.Msg {
	m := new(dns.Msg)
	m.Rcode = rcode
	m.Question = []dns.Question{{Name: q.fqdn, Qtype: q.qtype, Qclass: q.qclass}}
	return m
}

// negative builds NXDOMAIN or NODATA (rcode NOERROR, no answer) with an SOA
// in the authority section, so that stubs cache it for ttl (RFC 2308).
func negative(q *query, rcode int, ttl uint32) *dns.Msg {
	m := reply(q, rcode)
	m.Ns = []dns.RR{soa(q.fqdn, ttl)}
	return m
}

// soa is a synthetic SOA whose MINIMUM equals its TTL, the negative-cache
// time RFC 2308 derives from both.
func soa(owner string, ttl uint32) *dns.SOA {
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: owner, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
		Ns:      synthMNAME,
		Mbox:    synthRNAME,
		Serial:  1,
		Refresh: 1800,
		Retry:   900,
		Expire:  604800,
		Minttl:  ttl,
	}
}

// addrRRs returns the A or AAAA records for owner among addrs, matching
// qtype (ANY gets both); other types get none.
func addrRRs(owner string, qtype uint16, addrs []netip.Addr, ttl uint32) []dns.RR {
	var out []dns.RR
	for _, a := range addrs {
		a = a.Unmap()
		switch {
		case a.Is4() && (qtype == dns.TypeA || qtype == dns.TypeANY):
			out = append(out, &dns.A{
				Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl},
				A:   a.AsSlice(),
			})
		case a.Is6() && (qtype == dns.TypeAAAA || qtype == dns.TypeANY):
			out = append(out, &dns.AAAA{
				Hdr:  dns.RR_Header{Name: owner, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: ttl},
				AAAA: a.AsSlice(),
			})
		}
	}
	return out
}

// addressAnswer answers q with the addresses that fit its type, or NODATA
// when none do (the name exists, just not with that type).
func addressAnswer(q *query, addrs []netip.Addr, ttl uint32) *dns.Msg {
	rrs := addrRRs(q.fqdn, q.qtype, addrs, ttl)
	if len(rrs) == 0 {
		return negative(q, dns.RcodeSuccess, ttl)
	}
	m := reply(q, dns.RcodeSuccess)
	m.Answer = rrs
	return m
}

func ede(code uint16, text string) *dns.EDNS0_EDE {
	return &dns.EDNS0_EDE{InfoCode: code, ExtraText: text}
}

// ttlSeconds converts a validated duration to a DNS TTL.
func ttlSeconds(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	return uint32(d / time.Second)
}
