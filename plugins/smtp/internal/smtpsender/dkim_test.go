package smtpsender_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/campaignd/campaignd/plugins/smtp/internal/smtpsender"
	"github.com/campaignd/campaignd/plugins/smtp/smtptest"
	"github.com/campaignd/campaignd/sdk"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/hashicorp/go-hclog"
)

// Keys are generated once per test binary: RSA generation is slow.
var (
	rsa2048    = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA(2048) })
	rsa1024    = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA(1024) })
	ed25519Key = sync.OnceValue(func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
)

func mustRSA(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

// writePEM writes one PEM block to a new file and returns its path.
func writePEM(t testing.TB, blockType string, der []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dkim.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func pkcs8(t testing.TB, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// dkimOptions are options for srv that sign for example.com with the key
// in keyFile.
func dkimOptions(srv *smtptest.Server, keyFile string) map[string]string {
	return options(srv, "none", map[string]string{
		"dkim_domain": "example.com", "dkim_selector": "mail2026", "dkim_private_key_file": keyFile,
	})
}

// lookupFrom serves the DNS records a configured sender reports in Info,
// as a DNS resolver would: TXT records by name.
func lookupFrom(t *testing.T, s *smtpsender.Sender) func(string) ([]string, error) {
	t.Helper()
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return func(name string) ([]string, error) {
		var out []string
		for _, r := range info.DNSRecords {
			if r.Type == "TXT" && strings.EqualFold(r.Name, strings.TrimSuffix(name, ".")) {
				out = append(out, r.Value)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("no TXT record for %s (have %+v)", name, info.DNSRecords)
		}
		return out, nil
	}
}

// verify checks every DKIM signature of msg and returns the one.
func verify(t *testing.T, msg []byte, lookup func(string) ([]string, error)) (*dkim.Verification, error) {
	t.Helper()
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{LookupTXT: lookup})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if len(vs) != 1 {
		t.Fatalf("%d signatures, want 1:\n%s", len(vs), msg)
	}
	return vs[0], vs[0].Err
}

func signedMessage(n int) *sdk.Message {
	m := message(n)
	m.Headers = []sdk.Header{
		{Name: "List-Unsubscribe", Value: "<https://example.com/u/abc>"},
		{Name: "List-Unsubscribe-Post", Value: "List-Unsubscribe=One-Click"},
		{Name: "Precedence", Value: "bulk"},
		{Name: "X-Campaign", Value: "7"},
	}
	return m
}

func TestDKIMSignatureVerifies(t *testing.T) {
	for _, tc := range []struct {
		name, blockType string
		der             func(t testing.TB) []byte
		algo            string
	}{
		{"rsa pkcs1", "RSA PRIVATE KEY", func(testing.TB) []byte { return x509.MarshalPKCS1PrivateKey(rsa2048()) }, "rsa-sha256"},
		{"rsa pkcs8", "PRIVATE KEY", func(t testing.TB) []byte { return pkcs8(t, rsa2048()) }, "rsa-sha256"},
		{"ed25519", "PRIVATE KEY", func(t testing.TB) []byte { return pkcs8(t, ed25519Key()) }, "ed25519-sha256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, smtptest.Options{})
			s := configure(t, dkimOptions(srv, writePEM(t, tc.blockType, tc.der(t))))
			mustSend(t, s, signedMessage(1))
			msgs := srv.Messages()
			if len(msgs) != 1 {
				t.Fatalf("server got %d messages", len(msgs))
			}
			data := msgs[0].Data
			if !bytes.HasPrefix(data, []byte("DKIM-Signature: ")) {
				t.Fatalf("message does not start with its DKIM-Signature:\n%s", data)
			}
			lookup := lookupFrom(t, s)
			v, err := verify(t, data, lookup)
			if err != nil {
				t.Fatalf("signature does not verify: %v\n%s", err, data)
			}
			if v.Domain != "example.com" {
				t.Errorf("d= %q", v.Domain)
			}
			sig := msgs[0].Header.Get("DKIM-Signature")
			for _, want := range []string{"a=" + tc.algo, "c=relaxed/relaxed", "s=mail2026"} {
				if !strings.Contains(strings.Join(strings.Fields(sig), ""), want) {
					t.Errorf("signature %q lacks %s", sig, want)
				}
			}
			// The recommended fields the message has are signed, From,
			// Subject and List-Unsubscribe oversigned, Reply-To listed
			// though absent; X-Campaign is not signed.
			h := v.HeaderKeys
			count := func(k string) int {
				n := 0
				for _, x := range h {
					if strings.EqualFold(x, k) {
						n++
					}
				}
				return n
			}
			for k, want := range map[string]int{"From": 2, "Subject": 2, "To": 2, "Date": 2, "Message-ID": 2,
				"MIME-Version": 2, "Content-Type": 2, "List-Unsubscribe": 2, "List-Unsubscribe-Post": 2,
				"Precedence": 2, "Reply-To": 1, "X-Campaign": 0, "Cc": 0} {
				if got := count(k); got != want {
					t.Errorf("h= has %s %d times, want %d (h=%v)", k, got, want, h)
				}
			}

			// Anything added or changed after signing in a signed field
			// breaks the signature; a field not signed (a Received a
			// relay adds) does not.
			if _, err := verify(t, append([]byte("Received: from relay.example by mx.example\r\n"), data...), lookup); err != nil {
				t.Errorf("a prepended Received broke the signature: %v", err)
			}
			for _, tamper := range []struct{ what, header string }{
				{"a second From", "From: Bank <security@bank.example>\r\n"},
				{"a Reply-To", "Reply-To: attacker@evil.example\r\n"},
				{"a second Subject", "Subject: Urgent: verify your account\r\n"},
				{"a second List-Unsubscribe", "List-Unsubscribe: <https://evil.example/u>\r\n"},
			} {
				for _, where := range []string{"at the top", "below the signature", "at the end of the header"} {
					var forged []byte
					switch where {
					case "at the top":
						forged = append([]byte(tamper.header), data...)
					case "below the signature":
						i := bytes.Index(data, []byte("\r\nDate: ")) + 2
						forged = slices.Concat(data[:i], []byte(tamper.header), data[i:])
					default:
						i := bytes.Index(data, []byte("\r\n\r\n")) + 2
						forged = slices.Concat(data[:i], []byte(tamper.header), data[i:])
					}
					if _, err := verify(t, forged, lookup); err == nil {
						t.Errorf("%s added %s still verifies", tamper.what, where)
					}
				}
			}
			body := bytes.Replace(data, []byte("<p>Hello</p>"), []byte("<p>Hellp</p>"), 1)
			if bytes.Equal(body, data) {
				t.Fatal("test message has no <p>Hello</p>")
			}
			if _, err := verify(t, body, lookup); err == nil {
				t.Error("a changed body still verifies")
			}
		})
	}
}

func TestDKIMNonASCIIFrom(t *testing.T) {
	m := signedMessage(1)
	m.From = "News <news@bücher.example>"
	for _, utf8 := range []bool{false, true} {
		t.Run(fmt.Sprintf("SMTPUTF8=%v", utf8), func(t *testing.T) {
			srv := startServer(t, smtptest.Options{SMTPUTF8: utf8})
			o := dkimOptions(srv, writePEM(t, "PRIVATE KEY", pkcs8(t, ed25519Key())))
			o["dkim_domain"] = "bücher.example" // an IDN, published as its A-label
			s := configure(t, o)
			mustSend(t, s, m)
			msgs := srv.Messages()
			if len(msgs) != 1 {
				t.Fatalf("server got %d messages", len(msgs))
			}
			v, err := verify(t, msgs[0].Data, lookupFrom(t, s))
			if err != nil || v.Domain != "xn--bcher-kva.example" {
				t.Errorf("verify: d=%q %v\n%s", v.Domain, err, msgs[0].Data)
			}
		})
	}
}

func TestDKIMInfoRecord(t *testing.T) {
	srv := startServer(t, smtptest.Options{})
	for _, tc := range []struct {
		name string
		file string
		want string // prefix of the value
	}{
		{"rsa", writePEM(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsa2048())), "v=DKIM1; k=rsa; p=MIIBIjAN"},
		{"ed25519", writePEM(t, "PRIVATE KEY", pkcs8(t, ed25519Key())), "v=DKIM1; k=ed25519; p="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := dkimOptions(srv, tc.file)
			o["dkim_domain"], o["dkim_selector"] = "Example.COM.", "Mail2026"
			info, err := configure(t, o).Info(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(info.DNSRecords) != 1 {
				t.Fatalf("DNSRecords = %+v, want one", info.DNSRecords)
			}
			r := info.DNSRecords[0]
			if r.Name != "mail2026._domainkey.example.com" || r.Type != "TXT" || !strings.HasPrefix(r.Value, tc.want) {
				t.Errorf("record %+v, want mail2026._domainkey.example.com TXT %q...", r, tc.want)
			}
			if tc.name == "ed25519" && len(r.Value) != len("v=DKIM1; k=ed25519; p=")+44 {
				t.Errorf("ed25519 p= is not the 32-octet raw key: %q", r.Value)
			}
		})
	}
	info, err := configure(t, options(srv, "none", nil)).Info(context.Background())
	if err != nil || len(info.DNSRecords) != 0 {
		t.Errorf("without dkim options: DNSRecords %+v, %v", info.DNSRecords, err)
	}
}

func TestDKIMOptionErrors(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&rsa2048().PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	good := writePEM(t, "PRIVATE KEY", pkcs8(t, ed25519Key()))
	notPEM := filepath.Join(t.TempDir(), "key.txt")
	if err := os.WriteFile(notPEM, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	all := map[string]string{"dkim_domain": "example.com", "dkim_selector": "s1", "dkim_private_key_file": good}
	with := func(kv ...string) map[string]string {
		o := map[string]string{"host": "127.0.0.1", "port": "25"}
		for k, v := range all {
			o[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(o, kv[i])
			} else {
				o[kv[i]] = kv[i+1]
			}
		}
		return o
	}
	for _, tc := range []struct {
		name string
		opts map[string]string
		want []string
	}{
		{"domain alone", with("dkim_selector", "", "dkim_private_key_file", ""), []string{`"dkim_domain" is set but "dkim_selector" is not`}},
		{"no key file", with("dkim_private_key_file", ""), []string{`"dkim_private_key_file" is not`, "together"}},
		{"key file alone", with("dkim_domain", "", "dkim_selector", ""), []string{`"dkim_domain" is not`}},
		{"bad domain", with("dkim_domain", "exa mple.com"), []string{`option "dkim_domain"`, "invalid domain"}},
		{"single-label domain", with("dkim_domain", "localhost"), []string{`option "dkim_domain"`}},
		{"bad selector", with("dkim_selector", "s/1"), []string{`option "dkim_selector"`, "invalid selector"}},
		{"missing file", with("dkim_private_key_file", "/nonexistent/dkim.pem"), []string{`option "dkim_private_key_file"`, "/nonexistent/dkim.pem", "no such file"}},
		{"a directory", with("dkim_private_key_file", t.TempDir()), []string{`option "dkim_private_key_file"`, "read key"}},
		{"not PEM", with("dkim_private_key_file", notPEM), []string{`option "dkim_private_key_file"`, "no PEM private key", "openssl genpkey"}},
		{"weak RSA", with("dkim_private_key_file", writePEM(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsa1024()))), []string{`option "dkim_private_key_file"`, "1024 bits", "2048"}},
		{"weak RSA pkcs8", with("dkim_private_key_file", writePEM(t, "PRIVATE KEY", pkcs8(t, rsa1024()))), []string{`option "dkim_private_key_file"`, "1024 bits"}},
		{"EC key", with("dkim_private_key_file", writePEM(t, "EC PRIVATE KEY", ecDER)), []string{`option "dkim_private_key_file"`, "EC key", "Ed25519"}},
		{"EC key pkcs8", with("dkim_private_key_file", writePEM(t, "PRIVATE KEY", pkcs8(t, ec))), []string{`option "dkim_private_key_file"`, "ecdsa", "Ed25519"}},
		{"public key", with("dkim_private_key_file", writePEM(t, "PUBLIC KEY", pubDER)), []string{`option "dkim_private_key_file"`, "not a private key"}},
		{"encrypted", with("dkim_private_key_file", writePEM(t, "ENCRYPTED PRIVATE KEY", []byte{1, 2, 3})), []string{`option "dkim_private_key_file"`, "encrypted"}},
		{"corrupt", with("dkim_private_key_file", writePEM(t, "PRIVATE KEY", []byte{1, 2, 3})), []string{`option "dkim_private_key_file"`, "parse PRIVATE KEY"}},
		{"typo", with("dkim_selectr", "s1"), []string{`unknown option "dkim_selectr" (did you mean "dkim_selector"?)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := smtpsender.ParseOptions(tc.opts, noEnv)
			if err == nil {
				t.Fatalf("ParseOptions(%v) succeeded", tc.opts)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	c, err := smtpsender.ParseOptions(with(), noEnv)
	if err != nil || c.DKIM == nil || c.DKIM.Algorithm != "ed25519-sha256" {
		t.Fatalf("all three set: %+v, %v", c, err)
	}
	if c, err := smtpsender.ParseOptions(with("dkim_domain", "", "dkim_selector", "", "dkim_private_key_file", ""), noEnv); err != nil || c.DKIM != nil {
		t.Errorf("none set: DKIM %+v, %v", c.DKIM, err)
	}
}

func TestDKIMAligned(t *testing.T) {
	srv := startServer(t, smtptest.Options{})
	c, err := smtpsender.ParseOptions(dkimOptions(srv, writePEM(t, "PRIVATE KEY", pkcs8(t, ed25519Key()))), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	for from, want := range map[string]bool{
		"example.com": true, "EXAMPLE.com": true, "news.example.com": true, "example.com.": true,
		"example.org": false, "notexample.com": false, "com": false,
	} {
		if got := c.DKIM.Aligned(from); got != want {
			t.Errorf("Aligned(%q) = %v, want %v", from, got, want)
		}
	}
}

// TestDKIMUnalignedFromWarnsOnce: a From domain dkim_domain is not a parent
// of is still signed, and logged as a warning once per domain.
func TestDKIMUnalignedFromWarnsOnce(t *testing.T) {
	srv := startServer(t, smtptest.Options{})
	var logs bytes.Buffer
	s := smtpsender.New(hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn}))
	s.SetGetenv(noEnv)
	if err := s.Configure(context.Background(), dkimOptions(srv, writePEM(t, "PRIVATE KEY", pkcs8(t, ed25519Key())))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for i, from := range []string{"news@example.org", "news@mail.example.com", "other@EXAMPLE.org", "news@example.com"} {
		m := signedMessage(i)
		m.From = from
		mustSend(t, s, m)
	}
	if n := strings.Count(logs.String(), "does not align"); n != 1 || !strings.Contains(logs.String(), "from_domain=example.org") {
		t.Errorf("want one warning for example.org, got %d:\n%s", n, logs.String())
	}
	lookup := lookupFrom(t, s)
	for _, m := range srv.Messages() {
		if _, err := verify(t, m.Data, lookup); err != nil {
			t.Errorf("message from %s: %v", m.From, err)
		}
	}
}

// BenchmarkDKIMSign is the cost DKIM adds to each message: one Sign of a
// rendered campaign message (text and HTML alternatives, unsubscribe
// headers), for each key type; "render" is the rendering it follows, for
// scale.
func BenchmarkDKIMSign(b *testing.B) {
	var msg bytes.Buffer
	if _, err := benchMessage().WriteTo(&msg); err != nil {
		b.Fatal(err)
	}
	for _, k := range []struct {
		name, blockType string
		der             func(testing.TB) []byte
	}{
		{"rsa2048", "RSA PRIVATE KEY", func(testing.TB) []byte { return x509.MarshalPKCS1PrivateKey(rsa2048()) }},
		{"ed25519", "PRIVATE KEY", func(t testing.TB) []byte { return pkcs8(t, ed25519Key()) }},
	} {
		b.Run(k.name, func(b *testing.B) {
			c, err := smtpsender.ParseOptions(map[string]string{"host": "127.0.0.1",
				"dkim_domain": "example.com", "dkim_selector": "s", "dkim_private_key_file": writePEM(b, k.blockType, k.der(b))}, noEnv)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(msg.Len()))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.DKIM.Sign(msg.Bytes()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("render", func(b *testing.B) {
		m := benchMessage()
		b.ReportAllocs()
		for b.Loop() {
			var buf bytes.Buffer
			if _, err := m.WriteTo(&buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchMessage is a typical campaign message: about 3 kB of HTML and its
// text alternative.
func benchMessage() *sdk.Message {
	m := signedMessage(1)
	m.Text = strings.Repeat("Our spring collection is here, with free shipping this week only.\n", 20)
	m.HTML = "<html><body>" + strings.Repeat("<p>Our spring collection is here, with <b>free shipping</b> this week only.</p>\n", 30) + "</body></html>"
	return m
}

// TestDKIMSurvivesTransport: the signature covers exactly the bytes the
// server keeps, however they travel: pipelined or command by command,
// dot-stuffed lines, trailing blank lines, an empty body, a body without
// a final line break, white space the relaxed body canonicalization
// folds, and the A-label copy signed again for a server without SMTPUTF8.
func TestDKIMSurvivesTransport(t *testing.T) {
	key := writePEM(t, "PRIVATE KEY", pkcs8(t, ed25519Key()))
	for _, pipelining := range []bool{true, false} {
		for _, text := range []string{"a\n\n\n", ".\n..\n.x\n\n", "", "no final break", "tab \t \nend  \n\n"} {
			for _, html := range []string{"", "<p>x</p>\n\n"} {
				t.Run(fmt.Sprintf("pipelining=%v/%q/%q", pipelining, text, html), func(t *testing.T) {
					srv := startServer(t, smtptest.Options{NoPipelining: !pipelining})
					s := configure(t, dkimOptions(srv, key))
					m := signedMessage(1)
					m.Text, m.HTML = text, html
					m.To = "Rcpt <rcpt@bücher.example>"
					mustSend(t, s, m)
					msgs := srv.Messages()
					if len(msgs) != 1 {
						t.Fatalf("server got %d messages", len(msgs))
					}
					if _, err := verify(t, msgs[0].Data, lookupFrom(t, s)); err != nil {
						t.Errorf("signature does not verify: %v\n%s", err, msgs[0].Data)
					}
				})
			}
		}
	}
}
