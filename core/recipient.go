package core

import (
	"context"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// RecipientStatus is a recipient's delivery state.
type RecipientStatus string

// Recipient states. SENT, FAILED and BOUNCED are final until an operator
// retries FAILED ones.
const (
	RecipientPending RecipientStatus = "PENDING"
	RecipientQueued  RecipientStatus = "QUEUED"
	RecipientSending RecipientStatus = "SENDING"
	RecipientSent    RecipientStatus = "SENT"
	RecipientFailed  RecipientStatus = "FAILED"
	RecipientBounced RecipientStatus = "BOUNCED"
)

// ParseRecipientStatus returns the status named by s (case-insensitive), or
// an EINVALID error listing the valid names.
func ParseRecipientStatus(s string) (RecipientStatus, error) {
	st := RecipientStatus(strings.ToUpper(strings.TrimSpace(s)))
	switch st {
	case RecipientPending, RecipientQueued, RecipientSending, RecipientSent, RecipientFailed, RecipientBounced:
		return st, nil
	}
	return "", Errorf(EINVALID, "status %q: must be one of PENDING, QUEUED, SENDING, SENT, FAILED, BOUNCED", s)
}

// Recipient is one addressee of one campaign: exactly one row per
// (campaign, normalised address).
type Recipient struct {
	ID               int64             `json:"id"`
	CampaignID       int64             `json:"campaign_id"`
	Email            string            `json:"email"`
	Name             string            `json:"name,omitempty"`
	Attrs            map[string]string `json:"attrs,omitempty"`
	Status           RecipientStatus   `json:"status"`
	Attempts         int               `json:"attempts"`
	LastErrorClass   ErrorClass        `json:"last_error_class,omitempty"`
	LastErrorCode    int               `json:"last_error_code,omitempty"` // SMTP reply code or HTTP status
	LastEnhancedCode string            `json:"last_enhanced_code,omitempty"`
	LastError        string            `json:"last_error,omitempty"`
	ProviderID       string            `json:"provider_id,omitempty"`
	CreatedAt        time.Time         `json:"created_at"`
	QueuedAt         *time.Time        `json:"queued_at,omitempty"`
	NextAttemptAt    *time.Time        `json:"next_attempt_at,omitempty"`
	SentAt           *time.Time        `json:"sent_at,omitempty"`
	UpdatedAt        time.Time         `json:"updated_at"`
	LeaseUntil       *time.Time        `json:"lease_until,omitempty"`
	ClaimToken       string            `json:"-"`
}

// RecipientInput is one recipient as imported or added, before storage.
type RecipientInput struct {
	Email string            `json:"email"`
	Name  string            `json:"name,omitempty"`
	Attrs map[string]string `json:"attrs,omitempty"`
}

// RecipientFilter selects recipients for listing. Zero values match all;
// Limit is a page size (see ListLimit). AfterID pages by id.
type RecipientFilter struct {
	Status  RecipientStatus `json:"status,omitempty"`
	Limit   int             `json:"limit,omitempty"`
	AfterID int64           `json:"after_id,omitempty"`
}

// maxAddressLen is the longest address RFC 5321 lets through (a path is at
// most 256 octets, angle brackets included).
const maxAddressLen = 254

// NormalizeAddress validates a bare email address (RFC 5322 addr-spec, as
// net/mail parses it) and returns it with the domain lower-cased; the local
// part keeps its case, since RFC 5321 lets servers treat it as significant.
// An internationalised domain (non-ASCII, or with an xn-- label) is
// normalised by UTS #46 (golang.org/x/net/idna, lookup processing) to its
// lower-case A-label ("punycode") form, so user@bücher.example and
// user@XN--BCHER-KVA.example are one recipient and one suppression. The
// ASCII form is the one stored: it compares byte for byte, every SMTP
// server and provider API takes it without SMTPUTF8, and it is what DNS
// resolves; the cost is that lists show xn-- domains. A display-name form
// ("Ann <ann@x.org>") returns the name too. It returns an EINVALID error
// saying why the address is unusable, an invalid IDN domain included.
func NormalizeAddress(s string) (addr, name string, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", "", Errorf(EINVALID, "empty email address")
	}
	if !utf8.ValidString(s) {
		return "", "", Errorf(EINVALID, "email address is not valid UTF-8")
	}
	if strings.ContainsAny(s, "\r\n\x00") {
		return "", "", Errorf(EINVALID, "email address contains CR, LF or NUL")
	}
	a, perr := mail.ParseAddress(s)
	if perr != nil {
		return "", "", Errorf(EINVALID, "invalid email address %q: %v", s, perr)
	}
	at := strings.LastIndexByte(a.Address, '@')
	if at <= 0 || at == len(a.Address)-1 {
		return "", "", Errorf(EINVALID, "invalid email address %q: missing domain", s)
	}
	domain, err := normalizeDomain(a.Address[at+1:])
	if err != nil {
		return "", "", Errorf(EINVALID, "invalid email address %q: %s", s, ErrorMessage(err))
	}
	if !strings.Contains(domain, ".") && domain != "localhost" {
		return "", "", Errorf(EINVALID, "invalid email address %q: domain %q is not fully qualified", s, domain)
	}
	// net/mail returns a quoted local part unquoted ("a b"@x.org comes
	// back as a b@x.org, which it would then refuse); re-render it so the
	// stored form is quoted where needed and normalising is idempotent.
	canon := (&mail.Address{Address: a.Address[:at+1] + domain}).String()
	canon = canon[1 : len(canon)-1]
	if len(canon) > maxAddressLen {
		return "", "", Errorf(EINVALID, "invalid email address: %d octets, longer than the %d an SMTP path allows", len(canon), maxAddressLen)
	}
	return canon, a.Name, nil
}

// idnaProfile is UTS #46 lookup processing (non-transitional: ß and ς
// stay themselves, as browsers resolve them) that also refuses empty or
// over-long labels, which the plain lookup profile lets through.
var idnaProfile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.VerifyDNSLength(true))

// normalizeDomain lower-cases an ASCII domain, and turns an
// internationalised one (any non-ASCII character or an xn-- label) into
// its canonical A-label form: decoded to Unicode, mapped by UTS #46
// (lower case, NFC, full-width dots) and encoded again, so every spelling
// of one domain gives the same string. EINVALID for a domain IDNA refuses.
func normalizeDomain(domain string) (string, error) {
	lower := strings.ToLower(domain)
	if isASCII(lower) && !strings.HasPrefix(lower, "xn--") && !strings.Contains(lower, ".xn--") {
		return lower, nil
	}
	u, err := idnaProfile.ToUnicode(domain)
	if err == nil {
		lower, err = idnaProfile.ToASCII(u)
	}
	if err != nil {
		return "", Errorf(EINVALID, "domain %q is not a valid internationalised domain name: %v", domain, err)
	}
	if strings.HasSuffix(lower, ".") {
		// A full-width or ideographic full stop at the end maps to a
		// root dot, which an address may not end with.
		return "", Errorf(EINVALID, "domain %q ends with a dot", domain)
	}
	return lower, nil
}

// isASCII reports whether s is all ASCII.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// Validate normalises the input's address and checks its header-bound name
// and attributes. It returns an EINVALID error naming the field.
func (in *RecipientInput) Validate() error {
	addr, name, err := NormalizeAddress(in.Email)
	if err != nil {
		return err
	}
	in.Email = addr
	if in.Name == "" {
		in.Name = name
	}
	in.Name = strings.TrimSpace(in.Name)
	if !utf8.ValidString(in.Name) {
		return Errorf(EINVALID, "name: not valid UTF-8")
	}
	if strings.ContainsAny(in.Name, "\r\n\x00") {
		return Errorf(EINVALID, "name: contains CR, LF or NUL")
	}
	for k, v := range in.Attrs {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return Errorf(EINVALID, "attribute %q: not valid UTF-8", k)
		}
		if strings.ContainsRune(v, 0) || strings.ContainsRune(k, 0) {
			return Errorf(EINVALID, "attribute %q: contains a NUL byte", k)
		}
	}
	return nil
}

// RecipientByEmail looks a campaign's recipient up by address, normalised
// as imports normalise it (NormalizeAddress): one probe of the
// (campaign, email) unique index. ENOTFOUND for an unknown campaign or an
// address the campaign does not have, EINVALID for an unusable address.
func (e *Engine) RecipientByEmail(ctx context.Context, id int64, email string) (*Recipient, error) {
	addr, _, err := NormalizeAddress(email)
	if err != nil {
		return nil, err
	}
	if _, err := e.store.Campaign(ctx, id); err != nil {
		return nil, err
	}
	return e.store.RecipientByEmail(ctx, id, addr)
}
