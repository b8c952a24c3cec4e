package bounce

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"regexp"
	"strconv"
	"strings"

	"github.com/campaignd/campaignd/core"
)

// Provider is the DeliveryEvent.Provider of every event read from the
// bounce mailbox.
const Provider = "mailbox"

// Kind says which kind of report a message is.
type Kind string

// Report kinds.
const (
	KindDSN Kind = "dsn" // delivery status notification, RFC 3464
	KindARF Kind = "arf" // feedback report (a complaint), RFC 5965
)

var (
	// ErrNotReport is returned for a message that is neither a delivery
	// status notification nor a feedback report (a reply, an auto-reply,
	// a bounce in a free-text format): campaignd leaves it for a person.
	ErrNotReport = errors.New("not a delivery status notification or feedback report")
	// ErrNoOriginal is returned for a report that names no original
	// message: neither a Message-ID nor a VERP address in it. campaignd
	// cannot tell whose it is, so it leaves it for a person.
	ErrNoOriginal = errors.New("report names no original Message-ID or VERP address")
)

// Parser turns bounce-mailbox messages into delivery events. The zero
// value accepts campaignd Message-IDs of any domain and knows no VERP
// template.
type Parser struct {
	// MessageIDDomain is the right-hand side of campaignd's Message-IDs
	// ([queue] message_id_domain): a Message-ID of another domain is not
	// campaignd's. "" defers to CampaignDomain.
	MessageIDDomain string
	// CampaignDomain, used when MessageIDDomain is "", returns the
	// Message-ID domain of a campaign (core.MessageIDDomain), or "" when
	// there is no such campaign; an error (the store failing) makes Parse
	// fail, so the message is kept. nil accepts any domain.
	CampaignDomain func(campaignID int64) (string, error)
	// ReturnPath is the VERP template ([bounces] return_path); "" when
	// messages are sent without VERP.
	ReturnPath string
}

// Report is what Parse found in one message.
type Report struct {
	Kind Kind
	// MessageID is the report's own Message-ID, "" when it has none.
	MessageID string
	// Events holds at most one event: campaignd sends one message per
	// recipient, and a report listing several outcomes for it counts as
	// its most severe (a bounce over a deferral over a delivery). Empty
	// when the report needs no action (a relayed DSN, a not-spam
	// feedback) or is not about a message campaignd sent (NotOurs).
	Events []core.DeliveryEvent
	// NotOurs is set when the original message the report names is
	// someone else's: its Message-ID is not campaignd's (or of another
	// domain) and no VERP address matches.
	NotOurs bool
}

// Limits on what a hostile or broken message can make the parser do.
const (
	maxDepth     = 8   // nested multiparts
	maxParts     = 200 // parts in all
	maxReasonLen = 300 // bytes of an event's Reason
	maxKeyLen    = 128 // bytes of a report's Message-ID in an EventID; longer ones are hashed
)

// Parse reads one raw message (RFC 5322, CRLF or LF line ends). It returns
// a Report for a delivery status notification or a feedback report,
// ErrNotReport for any other message, ErrNoOriginal for a report whose
// original message it cannot identify, or an error saying what is
// malformed. A Report's events are ready for core.Engine.ApplyEvents:
// Provider "mailbox", EventID "mailbox:" + the report's Message-ID (or a
// hash of its content when it has none, or one over 128 bytes) + the
// recipient.
func (p *Parser) Parse(raw []byte) (*Report, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parse message: %w", err)
	}
	var f found
	ct := msg.Header.Get("Content-Type")
	if err := f.walk(ct, msg.Header.Get("Content-Transfer-Encoding"), msg.Body, 0); err != nil {
		return nil, err
	}
	rep := &Report{MessageID: strings.TrimSpace(msg.Header.Get("Message-Id"))}
	var ev core.DeliveryEvent
	var candidates []string // addresses that may be a VERP return path
	var perMessage textproto.MIMEHeader
	switch {
	case f.feedback != nil:
		rep.Kind = KindARF
		fields := readFields(f.feedback)
		if len(fields) == 0 {
			return nil, errors.New("feedback report: no fields")
		}
		fb := fields[0]
		ev.Type, ev.Reason = feedbackEvent(fb)
		ev.Email = firstAddress(fb.Get("Original-Rcpt-To"))
		candidates = append(candidates, fb.Values("Original-Mail-From")...)
	case f.status != nil:
		rep.Kind = KindDSN
		fields := readFields(f.status)
		if len(fields) < 2 {
			return nil, errors.New("delivery status: no per-recipient fields")
		}
		perMessage = fields[0]
		ev.Type, ev.Email, ev.Reason = statusEvent(fields[1:])
		candidates = append(candidates, perMessage.Values("X-Postfix-Sender")...)
	default:
		return nil, ErrNotReport
	}
	for _, k := range []string{"To", "Delivered-To", "X-Original-To", "Envelope-To"} {
		candidates = append(candidates, msg.Header[textproto.CanonicalMIMEHeaderKey(k)]...)
	}
	var orig textproto.MIMEHeader
	if f.original != nil {
		orig = readHeader(f.original)
		candidates = append(candidates, orig.Values("Return-Path")...)
		if ev.Email == "" {
			ev.Email = firstAddress(orig.Get("To"))
		}
	}
	origID := strings.TrimSpace(orig.Get("Message-Id"))
	if origID == "" {
		// Gmail names the original in the per-message fields too.
		origID = strings.TrimSpace(perMessage.Get("X-Original-Message-Id"))
	}
	cid, rid, ok, err := p.ownMessageID(origID)
	if err != nil {
		return nil, err
	}
	if !ok {
		cid, rid, ok = p.verp(candidates)
	}
	switch {
	case !ok && origID == "":
		// Without the original's Message-ID, an address that is not a
		// VERP address of ours proves nothing: leave it to a person.
		return nil, ErrNoOriginal
	case !ok:
		rep.NotOurs = true
		return rep, nil
	case ev.Type == "":
		return rep, nil // nothing to record (relayed, not-spam, ...)
	}
	ev.Provider, ev.CampaignID, ev.RecipientID = Provider, cid, rid
	key := strings.Trim(rep.MessageID, "<> \t")
	if key == "" || len(key) > maxKeyLen {
		sum := sha256.Sum256(raw)
		key = "sha256:" + hex.EncodeToString(sum[:16])
	}
	ev.EventID = "mailbox:" + key + ":c" + strconv.FormatInt(cid, 10) + ".r" + strconv.FormatInt(rid, 10)
	if d, err := msg.Header.Date(); err == nil {
		ev.At = d.UTC()
	}
	ev.Reason = clip(ev.Reason)
	rep.Events = []core.DeliveryEvent{ev}
	return rep, nil
}

// found is what walk collected: the machine-readable part of the report
// and the original message (or its headers).
type found struct {
	status   []byte // message/delivery-status
	feedback []byte // message/feedback-report
	original []byte // message/rfc822 or text/rfc822-headers
	parts    int
}

// walk visits a MIME entity, recursing into multiparts (but not into the
// original message), and keeps the first part of each kind it needs.
func (f *found) walk(contentType, cte string, body io.Reader, depth int) error {
	if depth > maxDepth {
		return errors.New("mime: nested too deep")
	}
	if f.parts++; f.parts > maxParts {
		return errors.New("mime: too many parts")
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = "text/plain" // RFC 2045: a broken Content-Type is text/plain
	}
	if strings.HasPrefix(mt, "multipart/") {
		if params["boundary"] == "" {
			return fmt.Errorf("mime: %s without a boundary", mt)
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				if f.status != nil || f.feedback != nil {
					return nil // what a truncated tail hides is not needed
				}
				return fmt.Errorf("mime: %s: %w", mt, err)
			}
			// NextPart decodes quoted-printable itself and drops the header.
			err = f.walk(part.Header.Get("Content-Type"), part.Header.Get("Content-Transfer-Encoding"), part, depth+1)
			if err != nil {
				return err
			}
		}
	}
	var dst *[]byte
	switch mt {
	case "message/delivery-status", "message/global-delivery-status":
		dst = &f.status
	case "message/feedback-report":
		dst = &f.feedback
	case "message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers", "message/rfc822-headers":
		dst = &f.original
	default:
		return nil
	}
	if *dst != nil {
		return nil
	}
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(body)
	if err != nil && len(b) == 0 {
		return fmt.Errorf("mime: read %s: %w", mt, err)
	}
	if b == nil {
		b = []byte{}
	}
	*dst = b
	return nil
}

// readFields splits a delivery-status or feedback-report body into its
// groups of fields (separated by blank lines): a DSN's per-message fields
// and then one group per recipient. Malformed lines end their group.
func readFields(b []byte) []textproto.MIMEHeader {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	var out []textproto.MIMEHeader
	for _, block := range bytes.Split(b, []byte("\n\n")) {
		if len(bytes.TrimSpace(block)) == 0 {
			continue
		}
		if h := readHeader(block); len(h) > 0 {
			out = append(out, h)
		}
	}
	return out
}

// readHeader parses a header block leniently: what parses before a
// malformed line is kept.
func readHeader(b []byte) textproto.MIMEHeader {
	b = bytes.TrimLeft(b, " \t\r\n")
	r := textproto.NewReader(bufio.NewReader(io.MultiReader(bytes.NewReader(b), strings.NewReader("\r\n\r\n"))))
	h, _ := r.ReadMIMEHeader()
	if h == nil {
		h = textproto.MIMEHeader{}
	}
	return h
}

// statusEvent reduces a DSN's per-recipient groups to the most severe
// outcome: a failure with a 5.x.x status (or none) is a bounce; a delay,
// a failure with a 4.x.x status (a server that gave up retrying) or a
// failure for security or policy (policyStatus) is a deferral, a soft
// bounce that is only recorded; a delivery is recorded. Relayed and
// expanded need nothing.
func statusEvent(recipients []textproto.MIMEHeader) (core.EventType, string, string) {
	rank := map[core.EventType]int{core.EventDelivered: 1, core.EventDeferred: 2, core.EventBounce: 3}
	var typ core.EventType
	var email, reason string
	for _, r := range recipients {
		action := strings.ToLower(firstWord(r.Get("Action")))
		status := firstWord(r.Get("Status"))
		var t core.EventType
		switch {
		case action == "failed" && (strings.HasPrefix(status, "4.") || policyStatus(status, r.Get("Diagnostic-Code"))):
			t = core.EventDeferred
		case action == "failed":
			t = core.EventBounce
		case action == "delayed":
			t = core.EventDeferred
		case action == "delivered":
			t = core.EventDelivered
		default:
			continue
		}
		if rank[t] <= rank[typ] {
			continue
		}
		typ = t
		email = firstAddress(r.Get("Final-Recipient"))
		if email == "" {
			email = firstAddress(r.Get("Original-Recipient"))
		}
		reason = strings.TrimSpace(status + " " + r.Get("Diagnostic-Code"))
	}
	return typ, email, reason
}

// enhancedCodeRe finds an enhanced status code (RFC 3463) in a
// Diagnostic-Code: "smtp; 550 5.7.1 ..." or Gmail's "550-5.7.26 ...".
var enhancedCodeRe = regexp.MustCompile(`(?:^|[\s;-])([245]\.\d{1,3}\.\d{1,3})(?:$|[\s;,:.])`)

// policyStatus reports whether a failure's status is a security or policy
// one (x.7.x, RFC 3463: a listed sending IP, a spam or DMARC rejection, an
// unauthenticated sender). It says nothing about the address: suppressing
// it would put good addresses on the list by the thousand the day the
// sending IP is listed or DKIM breaks, and the same reply met during the
// send is a permanent failure, not a bounce. A generic status (x.0.0, what
// Exim always writes) is read from the Diagnostic-Code's enhanced code
// when it has one.
func policyStatus(status, diagnostic string) bool {
	if strings.HasSuffix(status, ".0.0") {
		if m := enhancedCodeRe.FindStringSubmatch(diagnostic); m != nil && m[1][0] == status[0] {
			status = m[1]
		}
	}
	_, rest, _ := strings.Cut(status, ".")
	return strings.HasPrefix(rest, "7.")
}

// feedbackEvent maps a feedback report's Feedback-Type: abuse, fraud,
// virus and other are complaints (the recipient is suppressed); not-spam,
// auth-failure (a DMARC report) and unknown types need nothing.
func feedbackEvent(fb textproto.MIMEHeader) (core.EventType, string) {
	ft := strings.ToLower(firstWord(fb.Get("Feedback-Type")))
	switch ft {
	case "abuse", "fraud", "virus", "other":
		reason := ft + " complaint"
		if ua := fb.Get("User-Agent"); ua != "" {
			reason += " (" + ua + ")"
		}
		return core.EventSpamReport, reason
	}
	return "", ""
}

// ownMessageID parses a campaignd Message-ID, <c{campaign}.r{recipient}@domain>,
// accepting only the configured domain.
func (p *Parser) ownMessageID(id string) (cid, rid int64, ok bool, err error) {
	id = strings.TrimSpace(id)
	if len(id) < 2 || id[0] != '<' || id[len(id)-1] != '>' {
		return 0, 0, false, nil
	}
	local, domain, found := strings.Cut(id[1:len(id)-1], "@")
	if !found || !strings.HasPrefix(local, "c") {
		return 0, 0, false, nil
	}
	cs, rs, found := strings.Cut(local[1:], ".r")
	if cid, ok = parseID(cs); !ok {
		return 0, 0, false, nil
	}
	if rid, ok = parseID(rs); !ok || !found {
		return 0, 0, false, nil
	}
	switch {
	case p.MessageIDDomain != "":
		ok = strings.EqualFold(domain, p.MessageIDDomain)
	case p.CampaignDomain != nil:
		want, err := p.CampaignDomain(cid)
		if err != nil {
			return 0, 0, false, fmt.Errorf("campaign %d of Message-ID %s: %w", cid, clip(id), err)
		}
		ok = want != "" && strings.EqualFold(domain, want)
	}
	return cid, rid, ok, nil
}

// verp returns the campaign and recipient of the first candidate address
// that matches the VERP template.
func (p *Parser) verp(candidates []string) (cid, rid int64, ok bool) {
	if p.ReturnPath == "" {
		return 0, 0, false
	}
	for _, v := range candidates {
		for _, a := range addresses(v) {
			if cid, rid, ok = matchReturnPath(p.ReturnPath, a); ok {
				return cid, rid, true
			}
		}
	}
	return 0, 0, false
}

// matchReturnPath reads campaign and recipient ids back out of an address
// rendered from tmpl (core.RenderReturnPath), case-insensitively.
func matchReturnPath(tmpl, addr string) (cid, rid int64, ok bool) {
	t, a := strings.ToLower(tmpl), strings.ToLower(addr)
	ids := map[string]int64{}
	for len(t) > 0 {
		var ph string
		switch {
		case strings.HasPrefix(t, core.ReturnPathCampaign):
			ph = core.ReturnPathCampaign
		case strings.HasPrefix(t, core.ReturnPathRecipient):
			ph = core.ReturnPathRecipient
		}
		if ph == "" {
			if a == "" || a[0] != t[0] {
				return 0, 0, false
			}
			t, a = t[1:], a[1:]
			continue
		}
		n := 0
		for n < len(a) && a[n] >= '0' && a[n] <= '9' {
			n++
		}
		id, ok := parseID(a[:n])
		if !ok {
			return 0, 0, false
		}
		ids[ph] = id
		t, a = t[len(ph):], a[n:]
	}
	cid, rid = ids[core.ReturnPathCampaign], ids[core.ReturnPathRecipient]
	return cid, rid, a == "" && cid > 0 && rid > 0
}

// parseID parses a positive decimal id.
func parseID(s string) (int64, bool) {
	if s == "" || s[0] < '1' || s[0] > '9' {
		return 0, false
	}
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil && id > 0
}

// addresses returns the addr-specs in a header value: an address list,
// a DSN's "rfc822; addr", or anything with <...> or a bare token with @.
func addresses(v string) []string {
	if _, rest, ok := strings.Cut(v, ";"); ok && !strings.Contains(v[:strings.IndexByte(v, ';')], "@") {
		v = rest // "rfc822; ann@example.com"
	}
	if list, err := mail.ParseAddressList(v); err == nil {
		out := make([]string, len(list))
		for i, a := range list {
			out[i] = a.Address
		}
		return out
	}
	var out []string
	for _, tok := range strings.FieldsFunc(v, func(r rune) bool { return strings.ContainsRune("<>,; \t\r\n\"", r) }) {
		if strings.Contains(tok, "@") {
			out = append(out, tok)
		}
	}
	return out
}

// firstAddress is the first address in v, or "".
func firstAddress(v string) string {
	if a := addresses(v); len(a) > 0 {
		return a[0]
	}
	return ""
}

// firstWord is v up to its first space, semicolon or parenthesis.
func firstWord(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexAny(v, " \t;("); i >= 0 {
		v = v[:i]
	}
	return v
}

// clip collapses white space and bounds a reason's length.
func clip(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxReasonLen {
		s = s[:maxReasonLen]
		for len(s) > 0 && !utf8Start(s[len(s)-1]) {
			s = s[:len(s)-1]
		}
		if len(s) > 0 {
			s = s[:len(s)-1] + "…"
		}
	}
	return s
}

// utf8Start reports whether b begins a UTF-8 sequence (or is ASCII).
func utf8Start(b byte) bool { return b&0xC0 != 0x80 }
