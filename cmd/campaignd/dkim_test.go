package main_test

// End-to-end tests of DKIM signing (issue 15): the smtp plugin signs a
// campaign's messages, `campaignd config check` prints the TXT record to
// publish, and what mailpit received verifies against that record.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
)

// Raw is one message's source exactly as mailpit received it.
func (m *Mailpit) Raw(id string) []byte {
	m.t.Helper()
	resp, err := http.Get(m.base + "/api/v1/message/" + url.PathEscape(id) + "/raw")
	if err != nil {
		m.t.Fatalf("mailpit raw %s: %v", id, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		m.t.Fatalf("mailpit raw %s: %s %v\n%s", id, resp.Status, err, body)
	}
	return body
}

// writeKeyPEM writes key as PKCS#8 PEM to dir/name, mode 0600.
func writeKeyPEM(t *testing.T, dir, name string, key any) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// publishLine is config check's "publish in DNS:" line for a TXT record.
var publishLine = regexp.MustCompile(`(?m)^  publish in DNS: (\S+)\. IN TXT ((?:"[^"\\]*" ?)+)$`)

// publishedTXT reads the record config check prints: its name and its
// strings joined, as a resolver returns a TXT record. It fails the test
// unless each string fits DNS's 255 octets.
func publishedTXT(t *testing.T, out string) (name, value string) {
	t.Helper()
	m := publishLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("config check prints no TXT record to publish:\n%s", out)
	}
	for _, s := range regexp.MustCompile(`"([^"]*)"`).FindAllStringSubmatch(m[2], -1) {
		if len(s[1]) > 255 {
			t.Errorf("a TXT string of %d octets (DNS allows 255): %q", len(s[1]), s[1])
		}
		value += s[1]
	}
	return m[1], value
}

func TestDKIMSignedCampaignVerifies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		key  func(t *testing.T) any
		k    string
	}{
		{"rsa2048", func(t *testing.T) any {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			return k
		}, "rsa"},
		{"ed25519", func(t *testing.T) any {
			_, k, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			return k
		}, "ed25519"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mp := StartMailpit(t)
			// The key file is given relative to the config file's
			// directory, and config check runs from elsewhere.
			e := NewEnv(t, "[http]\npublic_url = \"https://mail.example.com/\"\nunsubscribe_secret = \"0123456789abcdef-unsubscribe\"\n"+
				mp.SenderTOML("mp", `dkim_domain = "example.com"`, `dkim_selector = "cd2026"`, `dkim_private_key_file = "keys/dkim.pem"`))
			if err := os.Mkdir(filepath.Join(e.Dir, "keys"), 0o700); err != nil {
				t.Fatal(err)
			}
			writeKeyPEM(t, filepath.Join(e.Dir, "keys"), "dkim.pem", tc.key(t))

			r := e.RunWith(RunOpts{Dir: t.TempDir()}, "config", "check")
			if r.Code != 0 {
				t.Fatalf("config check: %s", r)
			}
			name, value := publishedTXT(t, r.Stdout)
			if name != "cd2026._domainkey.example.com" || !strings.HasPrefix(value, "v=DKIM1; k="+tc.k+"; p=") {
				t.Fatalf("published %s TXT %q", name, value)
			}
			var c struct {
				Senders map[string]struct {
					DNSRecords []struct{ Name, Type, Value string } `json:"dns_records"`
				} `json:"senders"`
			}
			e.MustJSON(&c, "config", "check")
			if recs := c.Senders["mp"].DNSRecords; len(recs) != 1 || recs[0].Name != name || recs[0].Type != "TXT" || recs[0].Value != value {
				t.Errorf("--json dns_records %+v, want %s TXT %q", recs, name, value)
			}

			rows := makeMailRows(3, "example.org")
			id := startSendingCampaign(t, e, mailRowsCSV(rows), "--sender", "mp", "--from", "News <news@example.com>",
				"--subject", subjectTpl, "--text", textTpl, "--html", htmlTpl)
			tickUntilCompleted(t, e, id, 3, 0)
			checkCompleted(t, e, id, 3, 3, 0, 0)
			if got := mp.WaitCount(3, 10*time.Second); got != 3 {
				t.Fatalf("mailpit holds %d messages, want 3", got)
			}

			lookup := func(domain string) ([]string, error) {
				if strings.TrimSuffix(domain, ".") != name {
					return nil, fmt.Errorf("no TXT record for %s", domain)
				}
				return []string{value}, nil
			}
			for _, s := range mp.Messages() {
				raw := mp.Raw(s.ID)
				vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{LookupTXT: lookup})
				if err != nil || len(vs) != 1 {
					t.Fatalf("%s: %d signatures, %v\n%s", s.To, len(vs), err, raw)
				}
				if v := vs[0]; v.Err != nil || v.Domain != "example.com" {
					t.Errorf("%s: signature d=%s does not verify: %v\n%s", s.To, v.Domain, v.Err, raw)
				}
				// The signature covers what a forger would change.
				forged := append([]byte("List-Unsubscribe: <https://evil.example/u>\r\n"), raw...)
				if vs, err := dkim.VerifyWithOptions(bytes.NewReader(forged), &dkim.VerifyOptions{LookupTXT: lookup}); err != nil || len(vs) != 1 || vs[0].Err == nil {
					t.Errorf("%s: a second List-Unsubscribe added on top still verifies", s.To)
				}
			}
		})
	}
}

func TestConfigCheckDKIMErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	writeKeyPEM(t, dir, "weak.pem", weak)
	for _, tc := range []struct {
		name string
		opts []string
		want string
	}{
		{"weak key", []string{`dkim_domain = "example.com"`, `dkim_selector = "s1"`, `dkim_private_key_file = "` + filepath.Join(dir, "weak.pem") + `"`},
			`campaignd: senders.mail: configure smtp: option "dkim_private_key_file": ` + filepath.Join(dir, "weak.pem") + `: an RSA key of 1024 bits cannot be used`},
		{"missing key file", []string{`dkim_domain = "example.com"`, `dkim_selector = "s1"`, `dkim_private_key_file = "no-such.pem"`},
			`campaignd: senders.mail: configure smtp: option "dkim_private_key_file": `},
		{"selector without the rest", []string{`dkim_selector = "s1"`},
			`campaignd: senders.mail: configure smtp: option "dkim_selector" is set but "dkim_domain" is not`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := NewEnv(t, smtpSenderTOML("mail", "127.0.0.1", 25, tc.opts...))
			r := e.Run("config", "check")
			wantCheckFail(t, r, tc.want)
			if tc.name == "missing key file" && !strings.Contains(r.Stderr, filepath.Join(e.Dir, "no-such.pem")+": read key: no such file") {
				t.Errorf("a relative key file is not read from the config file's directory:\n%s", r.Stderr)
			}
			if publishLine.MatchString(r.Stdout) {
				t.Errorf("a failed DKIM configuration prints a record to publish:\n%s", r.Stdout)
			}
		})
	}
}
