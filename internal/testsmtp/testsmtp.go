// Package testsmtp runs a real SMTP server (github.com/emersion/go-smtp) on
// loopback for tests: STARTTLS or implicit TLS with a throw-away CA, AUTH
// PLAIN, temporary failures on demand, and a stop and restart on the same
// port to play a relay that is down and comes back.
package testsmtp

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options shape the server.
type Options struct {
	// TLS offers STARTTLS with this config (see NewCA); nil offers none.
	TLS *tls.Config
	// Implicit serves TLS from the first byte (needs TLS).
	Implicit bool
	// Username and Password, when set, require AUTH PLAIN (offered over
	// TLS only, as go-smtp does by default).
	Username, Password string
}

// Message is one message the server accepted.
type Message struct {
	From string
	To   []string
	Data []byte
	// TLS says the session was encrypted; User is who authenticated.
	TLS  bool
	User string
}

// Header parses the message's header.
func (m Message) Header() mail.Header {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return mail.Header{}
	}
	return msg.Header
}

// Subject is the decoded Subject header.
func (m Message) Subject() string {
	s := m.Header().Get("Subject")
	if d, err := new(mime.WordDecoder).DecodeHeader(s); err == nil {
		return d
	}
	return s
}

// Part returns the decoded body part of the given media type
// ("text/plain", "text/html"), looking into multipart bodies.
func (m Message) Part(mediaType string) string {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return ""
	}
	return findPart(msg.Header, msg.Body, mediaType)
}

type header interface{ Get(string) string }

func findPart(h header, body io.Reader, want string) string {
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		mt = "text/plain"
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err != nil {
				return ""
			}
			if s := findPart(p.Header, p, want); s != "" {
				return s
			}
		}
	}
	if mt != want {
		return ""
	}
	var r io.Reader = body
	switch strings.ToLower(h.Get("Content-Transfer-Encoding")) {
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "base64":
		b, _ := io.ReadAll(body)
		dec, _ := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(b)), ""))
		return string(dec)
	}
	b, _ := io.ReadAll(r)
	return string(b)
}

// Server is a running test relay.
type Server struct {
	t    testing.TB
	opts Options
	addr string

	mu       sync.Mutex
	msgs     []Message
	failNext []error
	drops    int
	srv      *smtp.Server
	ln       net.Listener
	done     chan struct{}
}

// Start runs a server on a free loopback port, stopped at cleanup.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{t: t, opts: opts}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	t.Cleanup(s.Stop)
	return s
}

// StartAt runs a server on addr (a port a relay was configured with
// while nothing listened there), stopped at cleanup.
func StartAt(t testing.TB, addr string, opts Options) *Server {
	t.Helper()
	s := &Server{t: t, opts: opts, addr: addr}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// FreeAddr returns a loopback address nothing listens on (yet).
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func (s *Server) serve(ln net.Listener) {
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, encrypted := c.TLSConnectionState()
		return &session{s: s, c: c, tls: encrypted}, nil
	}))
	srv.Domain = "relay.test"
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.MaxMessageBytes = 1 << 20
	if s.opts.TLS != nil && !s.opts.Implicit {
		srv.TLSConfig = s.opts.TLS
	}
	if s.opts.Implicit {
		ln = tls.NewListener(ln, s.opts.TLS)
	}
	done := make(chan struct{})
	s.mu.Lock()
	s.srv, s.ln, s.done = srv, ln, done
	s.mu.Unlock()
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
}

// Addr is host:port.
func (s *Server) Addr() string { return s.addr }

// Stop closes the listener and every session; the port is then closed
// (connections are refused) until Restart.
func (s *Server) Stop() {
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	_ = srv.Close()
	<-done
}

// Restart listens on the same address again.
func (s *Server) Restart() {
	s.t.Helper()
	var ln net.Listener
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for {
		ln, err = net.Listen("tcp", s.addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("testsmtp: listening again on %s: %v", s.addr, err)
	}
	s.serve(ln)
}

// FailNext makes the next n messages fail at the end of DATA with a
// temporary "451 4.3.0" reply.
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failNext = append(s.failNext, &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"})
	}
}

// Messages returns the accepted messages in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

type session struct {
	s *Server
	c *smtp.Conn
	// accepted is set when this session's last DATA was accepted.
	accepted bool
	tls      bool
	user     string
	from     string
	to       []string
}

func (x *session) AuthMechanisms() []string {
	if x.s.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (x *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != x.s.opts.Username || password != x.s.opts.Password {
			return errors.New("invalid username or password")
		}
		x.user = username
		return nil
	}), nil
}

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	if x.s.opts.Username != "" && x.user == "" {
		return smtp.ErrAuthRequired
	}
	x.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	if len(x.s.failNext) > 0 {
		err := x.s.failNext[0]
		x.s.failNext = x.s.failNext[1:]
		return err
	}
	x.s.msgs = append(x.s.msgs, Message{From: x.from, To: append([]string(nil), x.to...), Data: b, TLS: x.tls, User: x.user})
	x.accepted = true
	return nil
}

// Reset runs after the reply to DATA is written, so dropping the
// connection here is a relay that took the message and then went away.
func (x *session) Reset() {
	x.from, x.to = "", nil
	if !x.accepted {
		return
	}
	x.accepted = false
	x.s.mu.Lock()
	drop := x.s.drops > 0
	if drop {
		x.s.drops--
	}
	x.s.mu.Unlock()
	if drop {
		_ = x.c.Conn().Close()
	}
}

// DropAfterAccept makes the server close the connection right after it
// accepted each of the next n messages (after its 250 reply): the client's
// RSET and QUIT then fail although the message was delivered.
func (s *Server) DropAfterAccept(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drops += n
}
func (x *session) Logout() error { return nil }

// CA is a throw-away certificate authority and a server certificate it
// signed for 127.0.0.1, ::1 and localhost.
type CA struct {
	// File is the CA certificate as a PEM file (for a client's ca_file).
	File string
	// Server is a TLS config serving the signed certificate.
	Server *tls.Config
}

// NewCA makes a CA and a server certificate in t.TempDir().
func NewCA(t testing.TB) CA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "aupguard test relay CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "relay.test"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		DNSNames:     []string{"localhost", "relay.test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "relay-ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return CA{
		File: file,
		Server: &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: key}},
			MinVersion:   tls.VersionTLS12,
		},
	}
}
