package bounce_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/bounce"
)

// fakePOP3 is a minimal RFC 1939 server over a fixed mailbox: deletions
// take effect at QUIT only.
type fakePOP3 struct {
	mu   sync.Mutex
	msgs []string // with LF line ends; served with CRLF and dot-stuffed
	pass string
	ln   net.Listener
	cmds []string
	stls *tls.Config // offers STLS with this configuration when set
}

func startPOP3(t *testing.T, pass string, msgs ...string) (*fakePOP3, bounce.Config) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakePOP3{msgs: msgs, pass: pass, ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	return s, bounce.Config{Host: "127.0.0.1", Port: port, TLS: bounce.TLSNone, Username: "u", Password: pass, Timeout: 5 * time.Second}
}

func (s *fakePOP3) mailbox() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs...)
}

func (s *fakePOP3) serve(c net.Conn) {
	defer func() { c.Close() }()
	r := bufio.NewReader(c)
	w := func(format string, args ...any) { fmt.Fprintf(c, format+"\r\n", args...) }
	wire := func(m string) string {
		var b strings.Builder
		for _, l := range strings.Split(strings.TrimSuffix(m, "\n"), "\n") {
			if strings.HasPrefix(l, ".") {
				l = "." + l
			}
			b.WriteString(l + "\r\n")
		}
		return b.String()
	}
	s.mu.Lock()
	msgs := append([]string(nil), s.msgs...)
	s.mu.Unlock()
	deleted := map[int]bool{}
	w("+OK fake ready")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		s.mu.Lock()
		s.cmds = append(s.cmds, f[0])
		s.mu.Unlock()
		n := 0
		if len(f) > 1 {
			n, _ = strconv.Atoi(f[1])
		}
		switch strings.ToUpper(f[0]) {
		case "STLS":
			if s.stls == nil {
				w("-ERR STLS not supported")
				continue
			}
			w("+OK begin TLS")
			c = tls.Server(c, s.stls)
			r = bufio.NewReader(c)
		case "USER":
			w("+OK")
		case "PASS":
			if len(f) < 2 || f[1] != s.pass {
				w("-ERR [AUTH] invalid login")
				continue
			}
			w("+OK logged in")
		case "STAT":
			w("+OK %d %d", len(msgs), 0)
		case "LIST":
			w("+OK")
			for i, m := range msgs {
				w("%d %d", i+1, len(wire(m)))
			}
			w(".")
		case "UIDL":
			w("+OK")
			for i := range msgs {
				w("%d uid-%d", i+1, i+1)
			}
			w(".")
		case "RETR":
			if n < 1 || n > len(msgs) {
				w("-ERR no such message")
				continue
			}
			w("+OK")
			fmt.Fprint(c, wire(msgs[n-1]))
			w(".")
		case "DELE":
			deleted[n] = true
			w("+OK")
		case "QUIT":
			var keep []string
			for i, m := range msgs {
				if !deleted[i+1] {
					keep = append(keep, m)
				}
			}
			s.mu.Lock()
			s.msgs = keep
			s.mu.Unlock()
			w("+OK bye")
			return
		default:
			w("-ERR unknown command")
		}
	}
}

// recorder is an Applier that remembers events and says each is new once.
type recorder struct {
	seen   map[string]bool
	events []core.DeliveryEvent
	fail   error
}

func (r *recorder) ApplyEvents(_ context.Context, evs []core.DeliveryEvent) (*core.EventsResult, error) {
	if r.fail != nil {
		return &core.EventsResult{}, r.fail
	}
	res := &core.EventsResult{}
	for _, ev := range evs {
		if r.seen[ev.EventID] {
			res.Duplicates++
			continue
		}
		r.seen[ev.EventID] = true
		r.events = append(r.events, ev)
		res.Applied++
	}
	return res, nil
}

// TestPass: one pass applies the bounce and the complaint, deletes them
// and the report that is not ours, and leaves the reply, the broken
// report and the oversized message, counting each.
func TestPass(t *testing.T) {
	big := "Subject: big\n\n" + strings.Repeat("x", 20000) + "\n"
	srv, cfg := startPOP3(t, "s3cret",
		string(fixture(t, "postfix.eml")), string(fixture(t, "nonbounce.eml")), string(fixture(t, "yahoo-arf.eml")),
		string(fixture(t, "notours.eml")), string(fixture(t, "unparseable.eml")), big)
	cfg.MaxMessageBytes = 16 << 10
	rec := &recorder{seen: map[string]bool{}}
	res, err := bounce.Pass(context.Background(), cfg, &parser, rec)
	if err != nil {
		t.Fatal(err)
	}
	if res.Messages != 6 || res.Applied != 2 || res.NotOurs != 1 || res.Deleted != 3 || res.Left != 2 || res.TooLarge != 1 {
		t.Errorf("pass = %+v", res)
	}
	if len(res.Problems) != 3 || !strings.Contains(res.Problems[0], "uidl uid-2") {
		t.Errorf("problems = %q", res.Problems)
	}
	if len(rec.events) != 2 || rec.events[0].Type != core.EventBounce || rec.events[1].Type != core.EventSpamReport {
		t.Errorf("events = %+v", rec.events)
	}
	left := srv.mailbox()
	if len(left) != 3 || !strings.Contains(left[0], "Automatic reply") || !strings.Contains(left[1], "lost-boundary") || left[2] != big {
		t.Errorf("mailbox after the pass holds %d messages", len(left))
	}
	// The second pass finds only what was left, and changes nothing.
	res, err = bounce.Pass(context.Background(), cfg, &parser, rec)
	if err != nil || res.Messages != 3 || res.Deleted != 0 || res.Applied != 0 || len(srv.mailbox()) != 3 {
		t.Errorf("second pass = %+v, %v", res, err)
	}
}

// TestPassStoreFailureKeepsMessage: when events cannot be recorded, the
// message stays for the next pass, and the error says so.
func TestPassStoreFailureKeepsMessage(t *testing.T) {
	srv, cfg := startPOP3(t, "pw", string(fixture(t, "exim.eml")))
	_, err := bounce.Pass(context.Background(), cfg, &parser, &recorder{fail: errors.New("disk full")})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("err = %v", err)
	}
	if len(srv.mailbox()) != 1 {
		t.Error("the message was deleted although its events were not recorded")
	}
}

// TestDialErrors: a wrong password is the server's -ERR, without the
// password in the message; nothing listening is a connect error.
func TestDialErrors(t *testing.T) {
	_, cfg := startPOP3(t, "right")
	cfg.Password = "wrong-password"
	_, err := bounce.Dial(context.Background(), cfg)
	if !errors.Is(err, bounce.ErrServer) || !strings.Contains(err.Error(), "PASS") || strings.Contains(err.Error(), "wrong-password") {
		t.Errorf("wrong password: %v", err)
	}
	if _, err := bounce.Pass(context.Background(), cfg, &parser, &recorder{}); core.ErrorCode(err) != core.EUNAVAILABLE {
		t.Errorf("pass with a wrong password: %v (code %s), want EUNAVAILABLE", err, core.ErrorCode(err))
	}
	cfg.TLS = bounce.TLSStartTLS
	cfg.Password = "right"
	if _, err := bounce.Dial(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "STLS") {
		t.Errorf("starttls against a server without STLS: %v", err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	cfg.Port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if _, err := bounce.Dial(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "connect") {
		t.Errorf("nothing listening: %v", err)
	}
}

// selfSigned returns a server certificate for 127.0.0.1 and a client
// configuration that trusts it.
func selfSigned(t *testing.T) (*tls.Config, *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pop3 test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

// TestTLSModes: implicit TLS and STLS both carry the session, and the
// server's certificate is verified.
func TestTLSModes(t *testing.T) {
	server, client := selfSigned(t)
	srv, cfg := startPOP3(t, "pw", string(fixture(t, "exim.eml")))
	srv.stls = server
	cfg.TLS, cfg.TLSConfig = bounce.TLSStartTLS, client
	if res, err := bounce.Pass(context.Background(), cfg, &parser, &recorder{seen: map[string]bool{}}); err != nil || res.Applied != 1 {
		t.Errorf("starttls: %+v, %v", res, err)
	}
	srv.mu.Lock()
	cmds := slices.Clone(srv.cmds)
	srv.mu.Unlock()
	if !slices.Contains(cmds, "STLS") {
		t.Errorf("commands %v: no STLS", cmds)
	}

	tlsSrv, tcfg := startPOP3(t, "pw", string(fixture(t, "exim.eml")))
	tlsSrv.ln.Close()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go tlsSrv.serve(c)
		}
	}()
	tcfg.Port, tcfg.TLS, tcfg.TLSConfig = ln.Addr().(*net.TCPAddr).Port, bounce.TLSImplicit, client
	if res, err := bounce.Pass(context.Background(), tcfg, &parser, &recorder{seen: map[string]bool{}}); err != nil || res.Applied != 1 {
		t.Errorf("implicit tls: %+v, %v", res, err)
	}
	// Without the test CA the certificate is refused.
	tcfg.TLSConfig = nil
	if _, err := bounce.Dial(context.Background(), tcfg); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted certificate: %v", err)
	}
}

// TestPassCountsDeferrals: soft bounces (a delay, a policy block) are
// applied like the rest and counted apart, so an operator sees a
// blocklisted IP in the pass's counts although no address is suppressed.
func TestPassCountsDeferrals(t *testing.T) {
	block := strings.Replace(string(fixture(t, "postfix.eml")), "Status: 5.1.1\n", "Status: 5.7.1\n", 1)
	block = strings.Replace(block, "Message-Id: <20261202100005.4Q1abc2XyzZ9@", "Message-Id: <block@", 1)
	_, cfg := startPOP3(t, "pw", string(fixture(t, "postfix.eml")), string(fixture(t, "delayed.eml")), block)
	res, err := bounce.Pass(context.Background(), cfg, &parser, &recorder{seen: map[string]bool{}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied != 3 || res.Deferred != 2 || res.Deleted != 3 {
		t.Errorf("pass = %+v, want 3 applied of which 2 deferrals", res)
	}
}
