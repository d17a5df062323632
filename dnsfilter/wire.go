package dnsfilter

import (
	"encoding/binary"

	"github.com/miekg/dns"
)

// Reading and patching DNS messages in wire form, for the fast path: a
// query the fast path can answer is read without unpacking it into a
// dns.Msg, and a cached reply is sent by patching a copy of its bytes.

const (
	headerLen = 12
	// maxNameWire is the longest name in wire form (RFC 1035 3.1).
	maxNameWire = 255
)

// Header flag bits (RFC 1035 4.1.1, RFC 4035 3.2).
const (
	flagQR = 1 << 15
	flagTC = 1 << 9
	flagRD = 1 << 8
	flagAD = 1 << 5
	flagCD = 1 << 4
	// opcodeMask, zMask and rcodeMask are the parts of the second 16 bits
	// a plain query has at zero.
	opcodeMask = 0xF << 11
	zMask      = 1 << 6
	rcodeMask  = 0xF
)

// wireQuery is what the fast path needs of a request.
type wireQuery struct {
	id    uint16
	flags uint16
	// qnameLen is the length of the question name in wire form; it starts
	// at headerLen.
	qnameLen int
	qtype    uint16
	// edns says the request had an OPT record (version 0); udpSize and do
	// are its payload size and DNSSEC OK bit.
	edns    bool
	do      bool
	udpSize uint16
}

func (w *wireQuery) rd() bool { return w.flags&flagRD != 0 }
func (w *wireQuery) cd() bool { return w.flags&flagCD != 0 }
func (w *wireQuery) ad() bool { return w.flags&flagAD != 0 }

// maxReply is the largest UDP reply the client accepts (RFC 6891 6.2.5:
// 512 without EDNS, never below 512 with it), capped by ours.
func (w *wireQuery) maxReply(ednsMax int) int {
	if !w.edns {
		return dns.MinMsgSize
	}
	return min(max(int(w.udpSize), dns.MinMsgSize), ednsMax)
}

// parseWireQuery reads b as the plainest kind of query — opcode QUERY, one
// question of class IN with a name made only of letters, digits, '-' and
// '_', no answer or authority records, at most one OPT of version 0 and
// nothing after it — and writes the question name in presentation form,
// lowercased and without the trailing dot, into name. ok is false for
// anything else, valid or not; such requests take the full path, which
// answers every form the protocol allows and rejects the rest.
func parseWireQuery(b []byte, name []byte) (q wireQuery, lname []byte, ok bool) {
	if len(b) < headerLen+5 {
		return q, nil, false
	}
	q.id = binary.BigEndian.Uint16(b)
	q.flags = binary.BigEndian.Uint16(b[2:])
	if q.flags&(flagQR|flagTC|opcodeMask|zMask|rcodeMask) != 0 {
		return q, nil, false
	}
	qd, an, ns, ar := binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:]), binary.BigEndian.Uint16(b[8:]), binary.BigEndian.Uint16(b[10:])
	if qd != 1 || an != 0 || ns != 0 || ar > 1 {
		return q, nil, false
	}
	off := headerLen
	lname = name[:0]
	for {
		if off >= len(b) {
			return q, nil, false
		}
		l := int(b[off])
		off++
		if l == 0 {
			break
		}
		// Compression pointers (0xC0) and the reserved label types have
		// the top bits set; neither belongs in a plain question.
		if l > 63 || off+l > len(b) || off-headerLen+l >= maxNameWire {
			return q, nil, false
		}
		if len(lname) > 0 {
			lname = append(lname, '.')
		}
		for _, c := range b[off : off+l] {
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			case c >= 'A' && c <= 'Z':
				c += 'a' - 'A'
			default:
				// Dots, spaces, backslashes and non-ASCII bytes need the
				// escaping the full path does.
				return q, nil, false
			}
			lname = append(lname, c)
		}
		off += l
	}
	if len(lname) == 0 {
		return q, nil, false // the root: priming queries take the full path
	}
	q.qnameLen = off - headerLen
	if off+4 > len(b) {
		return q, nil, false
	}
	q.qtype = binary.BigEndian.Uint16(b[off:])
	if binary.BigEndian.Uint16(b[off+2:]) != dns.ClassINET {
		return q, nil, false
	}
	switch q.qtype {
	case 0, dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY, dns.TypeAXFR, dns.TypeIXFR,
		dns.TypeMAILA, dns.TypeMAILB, dns.TypeANY:
		return q, nil, false
	}
	off += 4
	if ar == 0 {
		return q, lname, off == len(b)
	}
	// The OPT record: root owner, type 41, class = payload size, TTL =
	// extended rcode, version and flags, then options (RFC 6891 6.1.2).
	if off+11 > len(b) || b[off] != 0 || binary.BigEndian.Uint16(b[off+1:]) != dns.TypeOPT {
		return q, nil, false
	}
	q.edns = true
	q.udpSize = binary.BigEndian.Uint16(b[off+3:])
	if b[off+5] != 0 || b[off+6] != 0 {
		return q, nil, false // an extended rcode in a query, or a version other than 0
	}
	q.do = b[off+7]&0x80 != 0
	rdlen := int(binary.BigEndian.Uint16(b[off+9:]))
	off += 11
	if off+rdlen != len(b) {
		return q, nil, false
	}
	// Options are not echoed (the upstream gets none of the client's
	// either), but a malformed list is the full path's to reject.
	for end := off + rdlen; off < end; {
		if off+4 > end {
			return q, nil, false
		}
		off += 4 + int(binary.BigEndian.Uint16(b[off+2:]))
		if off > end {
			return q, nil, false
		}
	}
	return q, lname, true
}

// rrTTLs returns the offsets of the TTL fields of every record in the
// answer, authority and additional sections of the packed message m,
// except the OPT record's (its TTL field holds flags). ok is false if m
// does not parse.
func rrTTLs(m []byte, offs []uint16) ([]uint16, bool) {
	if len(m) < headerLen {
		return nil, false
	}
	qd := int(binary.BigEndian.Uint16(m[4:]))
	rrs := int(binary.BigEndian.Uint16(m[6:])) + int(binary.BigEndian.Uint16(m[8:])) + int(binary.BigEndian.Uint16(m[10:]))
	off := headerLen
	var ok bool
	for range qd {
		if off, ok = skipName(m, off); !ok || off+4 > len(m) {
			return nil, false
		}
		off += 4
	}
	for range rrs {
		if off, ok = skipName(m, off); !ok || off+10 > len(m) {
			return nil, false
		}
		if binary.BigEndian.Uint16(m[off:]) != dns.TypeOPT {
			offs = append(offs, uint16(off+4))
		}
		off += 10 + int(binary.BigEndian.Uint16(m[off+8:]))
		if off > len(m) {
			return nil, false
		}
	}
	return offs, off == len(m)
}

// skipName returns the offset after the name at off: a pointer ends a name.
func skipName(m []byte, off int) (int, bool) {
	for n := 0; off < len(m) && n < 128; n++ {
		l := int(m[off])
		switch {
		case l == 0:
			return off + 1, true
		case l&0xC0 == 0xC0:
			return off + 2, off+2 <= len(m)
		case l > 63:
			return 0, false
		}
		off += 1 + l
	}
	return 0, false
}
