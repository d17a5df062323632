package dnsfilter

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// udpServer serves one UDP socket. It reads packets on a single goroutine
// and answers the commonest queries there and then (the fast path, see
// fastpath.go); every other packet is unpacked and handled by the full
// chain on a goroutine of its own, as miekg/dns's server would. With one
// socket per CPU (SO_REUSEPORT) the kernel spreads the load and no two
// readers contend for a socket.
type udpServer struct {
	s    *Server
	conn *net.UDPConn
	// pktinfo is set when the socket is bound to an unspecified address:
	// replies then name the address the query came to as their source, or
	// a multihomed host would answer from the wrong one.
	pktinfo bool
	// handlers tracks the full-path goroutines, so Shutdown can wait for
	// them before closing the socket they reply on.
	handlers sync.WaitGroup
	stopping chan struct{}
}

func newUDPServer(s *Server, conn *net.UDPConn) (*udpServer, error) {
	u := &udpServer{s: s, conn: conn, stopping: make(chan struct{})}
	if ap, err := netip.ParseAddrPort(conn.LocalAddr().String()); err == nil && ap.Addr().IsUnspecified() {
		// As miekg/dns does: ask for the destination of each packet on
		// both families and accept that one of them fails.
		err6 := ipv6.NewPacketConn(conn).SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true)
		err4 := ipv4.NewPacketConn(conn).SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true)
		if err4 != nil && err6 != nil {
			return nil, errors.Join(err4, err6)
		}
		u.pktinfo = true
	}
	return u, nil
}

// batchConn reads and writes several datagrams per system call
// (recvmmsg and sendmmsg on Linux; one at a time elsewhere). ipv4 and ipv6
// PacketConns both provide it, over the same message type.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// udpBatch is how many datagrams one system call moves at most: under
// load, one read returns whatever queued since the last, and the replies
// leave together.
const udpBatch = 32

// serve reads until stop; it then waits for the full-path handlers and
// closes the socket.
func (u *udpServer) serve() {
	defer func() {
		u.handlers.Wait()
		_ = u.conn.Close()
	}()
	var bc batchConn = ipv4.NewPacketConn(u.conn)
	if la, ok := u.conn.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() == nil {
		bc = ipv6.NewPacketConn(u.conn)
	}
	in := make([]ipv4.Message, udpBatch)
	out := make([]ipv4.Message, udpBatch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, udpReadSize)}
		if u.pktinfo {
			in[i].OOB = make([]byte, 128)
		}
		out[i].Buffers = [][]byte{make([]byte, 0, max(u.s.cfg.EDNSMaxSize, dns.MinMsgSize))}
	}
	fs := newFastState()
	for {
		n, err := bc.ReadBatch(in, 0)
		if err != nil {
			if u.readFailed(err) {
				return
			}
			continue
		}
		replies := 0
		u.s.tick(fs)
		for i := range in[:n] {
			m := &in[i]
			ua, ok := m.Addr.(*net.UDPAddr)
			if !ok || m.N < headerLen {
				continue // not even a header: nothing to answer, as miekg/dns does
			}
			from := ua.AddrPort()
			pkt := m.Buffers[0][:m.N]
			var src []byte
			if u.pktinfo {
				src = sourceOOB(m.OOB[:m.NN])
			}
			client := from.Addr().Unmap()
			o := &out[replies]
			reply, handled := u.s.safeFastAnswer(fs, o.Buffers[0][:0], pkt, client)
			if handled {
				if reply != nil {
					o.Buffers[0], o.Addr, o.OOB = reply, m.Addr, src
					replies++
				}
				continue
			}
			w := &udpWriter{u: u, remote: from, src: src, pkt: append([]byte(nil), pkt...), admitted: fs.admitted}
			if fs.eligible {
				w.wq = fs.wq
				w.key = append([]byte(nil), fs.key...)
			}
			u.handlers.Add(1)
			go func() {
				defer u.handlers.Done()
				u.s.serveFull(w)
			}()
		}
		u.writeBatch(bc, out[:replies])
		// Events go out after the replies, so a slow sink never delays an
		// answer.
		if len(fs.pending) > 0 {
			u.s.emit(fs.pending)
			clear(fs.pending)
			fs.pending = fs.pending[:0]
		}
	}
}

// readFailed handles a read error and says whether serving is over.
func (u *udpServer) readFailed(err error) bool {
	select {
	case <-u.stopping:
		return true
	default:
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	if errors.Is(err, net.ErrClosed) {
		return true
	}
	// Transient errors (ICMP-induced ECONNREFUSED and the like) must not
	// stop the server; back off a little so a persistent one does not spin.
	u.s.log.Debug("dns udp read", "err", err)
	time.Sleep(time.Millisecond)
	return false
}

// writeBatch sends the replies; one that cannot be sent is skipped (the
// client retries), as a failed single write would be.
func (u *udpServer) writeBatch(bc batchConn, ms []ipv4.Message) {
	for len(ms) > 0 {
		n, err := bc.WriteBatch(ms, 0)
		if err != nil {
			u.s.log.Debug("dns reply not sent", "client", ms[0].Addr, "err", err)
			n = max(n, 1)
		}
		ms = ms[n:]
	}
}

// stop makes serve return: it unblocks the read at once.
func (u *udpServer) stop() {
	close(u.stopping)
	_ = u.conn.SetReadDeadline(time.Unix(1, 0))
}

// sourceOOB turns the control message of a received packet into the one
// that sends the reply from the address the packet came to.
func sourceOOB(oob []byte) []byte {
	var cm6 ipv6.ControlMessage
	if cm6.Parse(oob) == nil && cm6.Dst != nil {
		return (&ipv6.ControlMessage{Src: cm6.Dst}).Marshal()
	}
	var cm4 ipv4.ControlMessage
	if cm4.Parse(oob) == nil && cm4.Dst != nil {
		return (&ipv4.ControlMessage{Src: cm4.Dst}).Marshal()
	}
	return nil
}

// serveFull handles a packet the fast path passed on, as miekg/dns's own
// server would: a response or unparseable header gets nothing, a request
// its default accept function rejects gets FORMERR or NOTIMP, one that
// does not unpack gets FORMERR, and the rest go to ServeDNS.
func (s *Server) serveFull(w *udpWriter) {
	pkt := w.pkt
	hdr := dns.Header{
		Id:      binary.BigEndian.Uint16(pkt),
		Bits:    binary.BigEndian.Uint16(pkt[2:]),
		Qdcount: binary.BigEndian.Uint16(pkt[4:]),
		Ancount: binary.BigEndian.Uint16(pkt[6:]),
		Nscount: binary.BigEndian.Uint16(pkt[8:]),
		Arcount: binary.BigEndian.Uint16(pkt[10:]),
	}
	req := new(dns.Msg)
	action := dns.DefaultMsgAcceptFunc(hdr)
	if action == dns.MsgAccept {
		err := req.Unpack(pkt)
		if err == nil {
			s.ServeDNS(w, req)
			return
		}
		s.log.Debug("dns request does not unpack", "client", w.remote, "err", err)
	}
	if action == dns.MsgIgnore {
		return
	}
	s.stats.queries.Add(1)
	s.stats.malformed.Add(1)
	m := new(dns.Msg)
	m.Id = hdr.Id
	m.Response = true
	m.Rcode = dns.RcodeFormatError
	if action == dns.MsgRejectNotImplemented {
		m.Opcode = int(hdr.Bits>>11) & 0xF
		m.Rcode = dns.RcodeNotImplemented
	}
	if len(req.Question) > 0 {
		m.Question = req.Question[:1]
	}
	_ = w.WriteMsg(m)
}

// udpWriter is the dns.ResponseWriter of a full-path UDP request. It keeps
// the request's fast-path reading (when it had one) so the reply can be
// stored for the fast path.
type udpWriter struct {
	u      *udpServer
	remote netip.AddrPort
	src    []byte
	pkt    []byte
	// key is set when the fast path could read the request; wq is its
	// reading.
	key []byte
	wq  wireQuery
	// admitted says the fast path took the query's rate-limit token.
	admitted bool
}

func (w *udpWriter) LocalAddr() net.Addr  { return w.u.conn.LocalAddr() }
func (w *udpWriter) RemoteAddr() net.Addr { return net.UDPAddrFromAddrPort(w.remote) }

func (w *udpWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (w *udpWriter) Write(b []byte) (int, error) {
	var err error
	if w.src != nil {
		_, _, err = w.u.conn.WriteMsgUDPAddrPort(b, w.src, w.remote)
	} else {
		_, err = w.u.conn.WriteToUDPAddrPort(b, w.remote)
	}
	if err != nil {
		return 0, err
	}
	return len(b), nil
}

func (w *udpWriter) Close() error        { return nil }
func (w *udpWriter) TsigStatus() error   { return nil }
func (w *udpWriter) TsigTimersOnly(bool) {}
func (w *udpWriter) Hijack()             {}
func (w *udpWriter) Network() string     { return "udp" }
