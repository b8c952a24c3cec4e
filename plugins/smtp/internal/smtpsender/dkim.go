package smtpsender

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/campaignd/campaignd/sdk"
	"github.com/emersion/go-msgauth/dkim"
	"golang.org/x/net/idna"
)

// RSA key sizes a DKIM key may have. Below 2048 bits mailbox providers
// treat the signature as absent (RFC 8301 forbids 512 and wants 2048);
// above 4096 bits verifiers are not required to cope (RFC 8301 section
// 3.2), and signing gets slower for no gain.
const (
	MinDKIMRSABits = 2048
	MaxDKIMRSABits = 4096
)

// dkimOptions are the options that configure DKIM signing; they are all
// set or all left empty.
var dkimOptions = []string{"dkim_domain", "dkim_selector", "dkim_private_key_file"}

// DKIM signs messages for one domain and selector with one key.
type DKIM struct {
	Domain   string // SDID (d=), lower-case A-label form without a trailing dot
	Selector string // s=
	KeyFile  string // the PEM file the key came from
	// Algorithm is "rsa-sha256" or "ed25519-sha256".
	Algorithm string

	signer crypto.Signer
	record sdk.DNSRecord

	// warned holds the From domains already logged as not aligned with
	// Domain, so that the warning comes once per domain, not per message.
	warned sync.Map
}

// Record is the DNS TXT record that publishes the public key:
// <selector>._domainkey.<domain> with "v=DKIM1; k=rsa|ed25519; p=<key>".
// For RSA, p is the base64 DER SubjectPublicKeyInfo (what `openssl pkey
// -pubout` writes), for Ed25519 the base64 of the raw 32-octet key (RFC
// 8463).
func (d *DKIM) Record() sdk.DNSRecord { return d.record }

// parseDKIM reads the dkim_* options: nil when none is set, an error
// naming the option when only some are set, a value is malformed, or the
// key file cannot be read or holds a key DKIM cannot use.
func parseDKIM(opts map[string]string) (*DKIM, error) {
	get := func(k string) string { return strings.TrimSpace(opts[k]) }
	var set, unset []string
	for _, k := range dkimOptions {
		if get(k) == "" {
			unset = append(unset, k)
		} else {
			set = append(set, k)
		}
	}
	if len(set) == 0 {
		return nil, nil
	}
	if len(unset) > 0 {
		return nil, fmt.Errorf("configure smtp: option %q is set but %q is not: DKIM signing needs dkim_domain, dkim_selector and dkim_private_key_file together (or none of them)",
			set[0], unset[0])
	}

	domain, err := idna.Lookup.ToASCII(strings.TrimSuffix(get("dkim_domain"), "."))
	if err != nil || !isDNSName(domain) || !strings.Contains(domain, ".") {
		return nil, fmt.Errorf("configure smtp: option \"dkim_domain\": invalid domain %q (want the domain that publishes the key, e.g. \"example.com\")", opts["dkim_domain"])
	}
	selector := strings.ToLower(get("dkim_selector"))
	if !isDNSName(selector) {
		return nil, fmt.Errorf("configure smtp: option \"dkim_selector\": invalid selector %q (want DNS labels of letters, digits and hyphens, e.g. \"mail2026\")", opts["dkim_selector"])
	}
	file := get("dkim_private_key_file")
	signer, err := loadDKIMKey(file)
	if err != nil {
		return nil, fmt.Errorf("configure smtp: option \"dkim_private_key_file\": %s: %w", file, err)
	}

	d := &DKIM{Domain: domain, Selector: selector, KeyFile: file, signer: signer}
	var k, p string
	switch pub := signer.Public().(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return nil, fmt.Errorf("configure smtp: option \"dkim_private_key_file\": %s: encode public key: %w", file, err)
		}
		k, p, d.Algorithm = "rsa", base64.StdEncoding.EncodeToString(der), "rsa-sha256"
	case ed25519.PublicKey:
		k, p, d.Algorithm = "ed25519", base64.StdEncoding.EncodeToString(pub), "ed25519-sha256"
	}
	d.record = sdk.DNSRecord{
		Name:  selector + "._domainkey." + domain,
		Type:  "TXT",
		Value: "v=DKIM1; k=" + k + "; p=" + p,
	}
	return d, nil
}

// loadDKIMKey reads a PEM private key: PKCS#1 or PKCS#8 RSA of
// MinDKIMRSABits to MaxDKIMRSABits bits, or PKCS#8 Ed25519. Its errors say
// what to do, for the operator to read after the option's name.
func loadDKIMKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is in the caller's message already
		}
		return nil, fmt.Errorf("read key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM private key in the file (generate one with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`)")
	}
	//lint:ignore SA1019 only detected, to refuse legacy encrypted PEM with a clear message
	if x509.IsEncryptedPEMBlock(block) || block.Type == "ENCRYPTED PRIVATE KEY" {
		return nil, errors.New("the key is encrypted: store it unencrypted, readable only by campaignd (mode 0600)")
	}
	var key any
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		return nil, errors.New("an EC key cannot sign DKIM: use RSA (2048 bits or more) or Ed25519")
	default:
		return nil, fmt.Errorf("a PEM block of type %q is not a private key (want \"PRIVATE KEY\" or \"RSA PRIVATE KEY\")", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", block.Type, err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if bits := k.N.BitLen(); bits < MinDKIMRSABits || bits > MaxDKIMRSABits {
			return nil, fmt.Errorf("an RSA key of %d bits cannot be used: DKIM wants %d to %d bits (generate a new key with rsa_keygen_bits:2048)", bits, MinDKIMRSABits, MaxDKIMRSABits)
		}
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	default:
		return nil, fmt.Errorf("a %T cannot sign DKIM: use RSA (2048 bits or more) or Ed25519", key)
	}
}

// isDNSName reports whether s is dot-separated labels of ASCII letters,
// digits and inner hyphens (underscores allowed, as in selectors some
// providers hand out), each 1 to 63 octets.
func isDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// signedFields are the header fields signed when the message has them:
// RFC 6376 section 5.4.1's recommended set, the MIME fields (so the body
// cannot be reinterpreted under another type or encoding), Message-ID and
// the one-click unsubscribe fields of RFC 8058, which mailbox providers
// honour only when signed. once marks the fields a message has at most
// one of (RFC 5322 3.6, RFC 2045, RFC 2369, RFC 8058): they are also
// oversigned (listed in h= once more than the message has them), so a copy
// of the message with a second one added (a replaced From, a rewritten
// unsubscribe link) fails verification instead of showing the added one.
// signedHeaderKeys keeps one bit per entry in a uint64: at most 64 entries.
var signedFields = []struct {
	name string
	once bool
}{
	{"From", true}, {"Sender", true}, {"Reply-To", true}, {"Subject", true}, {"Date", true},
	{"To", true}, {"Cc", true}, {"Message-ID", true}, {"In-Reply-To", true}, {"References", true},
	{"MIME-Version", true}, {"Content-Type", true}, {"Content-Transfer-Encoding", true},
	{"Resent-Date", false}, {"Resent-From", false}, {"Resent-To", false}, {"Resent-Cc", false},
	{"List-Id", true}, {"List-Help", true}, {"List-Unsubscribe", true}, {"List-Unsubscribe-Post", true},
	{"List-Subscribe", true}, {"List-Post", true}, {"List-Owner", true}, {"List-Archive", true},
	{"Precedence", true}, {"Feedback-ID", true},
}

// alwaysOversigned are listed in h= even when the message has none, so
// that one cannot be added: a Reply-To added to a signed message would
// take the replies.
var alwaysOversigned = []string{"Reply-To"}

// signedHeaderKeys is the h= list for msg (header and body, CRLF line
// ends): each field of signedFields in the order the message has them,
// then the oversigned ones.
func signedHeaderKeys(msg []byte) []string {
	head, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	keys := make([]string, 0, 24)
	var present uint64 // bit i: the message has signedFields[i]
	for len(head) > 0 {
		line := head
		if i := bytes.Index(head, []byte("\r\n")); i >= 0 {
			line, head = head[:i], head[i+2:]
		} else {
			head = nil
		}
		if len(line) == 0 || line[0] == ' ' || line[0] == '\t' {
			continue // a continuation line
		}
		name, _, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		for i, f := range signedFields {
			if len(name) == len(f.name) && bytes.EqualFold(name, []byte(f.name)) {
				keys = append(keys, f.name)
				present |= 1 << i
				break
			}
		}
	}
	for i, f := range signedFields {
		if f.once && present&(1<<i) != 0 && !slices.Contains(alwaysOversigned, f.name) {
			keys = append(keys, f.name)
		}
	}
	return append(keys, alwaysOversigned...)
}

// Sign returns the DKIM-Signature header field (name, folded value and
// final CRLF) for msg, a whole rendered message with CRLF line ends:
// relaxed/relaxed canonicalization, SHA-256, the fields signedHeaderKeys
// picks. The caller writes it in front of msg; msg itself is neither
// copied nor changed. An error means the message could not be parsed or
// the key refused to sign.
func (d *DKIM) Sign(msg []byte) ([]byte, error) {
	s, err := dkim.NewSigner(&dkim.SignOptions{
		Domain:                 d.Domain,
		Selector:               d.Selector,
		Signer:                 d.signer,
		Hash:                   crypto.SHA256,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             signedHeaderKeys(msg),
	})
	if err != nil {
		return nil, fmt.Errorf("dkim sign: %w", err)
	}
	if _, err := s.Write(msg); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("dkim sign: %w", err)
	}
	if err := s.Close(); err != nil {
		return nil, fmt.Errorf("dkim sign: %w", err)
	}
	return []byte(s.Signature()), nil
}

// Aligned reports whether a message From fromDomain signed by d passes
// DMARC's DKIM alignment without the public suffix list: d.Domain is the
// From domain or a parent of it. (Relaxed alignment also accepts a
// sibling under the same organizational domain, which this cannot tell.)
func (d *DKIM) Aligned(fromDomain string) bool {
	from, err := idna.Lookup.ToASCII(strings.TrimSuffix(fromDomain, "."))
	if err != nil {
		from = strings.ToLower(fromDomain)
	}
	return from == d.Domain || strings.HasSuffix(from, "."+d.Domain)
}

// firstUnaligned reports whether fromDomain is not aligned with d.Domain
// and has not been reported before, so the caller logs it once.
func (d *DKIM) firstUnaligned(fromDomain string) bool {
	if d.Aligned(fromDomain) {
		return false
	}
	_, seen := d.warned.LoadOrStore(strings.ToLower(fromDomain), true)
	return !seen
}
