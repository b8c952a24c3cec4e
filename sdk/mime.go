package sdk

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// maxLineLen is the length RFC 5322 asks header lines to be folded at.
const maxLineLen = 78

// reservedHeaders are the fields WriteTo renders itself. An extra header
// with one of these names would produce a message with two From or two
// Content-Type fields, which receivers resolve inconsistently (a spoofing
// and MIME-confusion vector), so WriteTo refuses them.
var reservedHeaders = map[string]bool{
	"Date":                      true,
	"From":                      true,
	"To":                        true,
	"Reply-To":                  true,
	"Subject":                   true,
	"Message-Id":                true,
	"Mime-Version":              true,
	"Content-Type":              true,
	"Content-Transfer-Encoding": true,
}

// ValidateHeader reports whether name and value can be written as one header
// field without changing the structure of the message: the name must be
// non-empty printable US-ASCII without ':' or spaces (RFC 5322 field-name),
// and the value must not contain CR, LF or NUL. It makes header injection
// impossible; it does not judge whether the value is meaningful.
func ValidateHeader(name, value string) error {
	if name == "" {
		return errors.New("validate header: empty header name")
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 33 || c > 126 || c == ':' {
			return fmt.Errorf("validate header %q: invalid character %q in name", name, c)
		}
	}
	if i := strings.IndexAny(value, "\r\n\x00"); i >= 0 {
		return fmt.Errorf("validate header %q: value contains %q (CR, LF and NUL are not allowed)", name, value[i])
	}
	return nil
}

// WriteTo renders m as an RFC 5322 message with CRLF line endings: Date,
// From, To, Reply-To (when set), Subject (RFC 2047 Q-encoded when not
// ASCII), Message-ID (when set), MIME-Version, the extra Headers in order,
// then the body. A message with only Text is text/plain, with only HTML is
// text/html, with both is multipart/alternative (text first); every body is
// UTF-8 and quoted-printable, so no line exceeds 76 characters.
//
// Header values are checked with ValidateHeader and addresses are parsed
// and re-rendered with net/mail, so a CR, LF or NUL anywhere in a header is
// an error, never an injected header. Extra headers may not repeat a field
// WriteTo renders itself (From, Content-Type, ...). No line exceeds 998
// octets: a subject with a longer word is encoded so it folds, and any other
// header with a word too long to fold is an error. The message is rendered
// into memory first: on error nothing is written to w.
func (m *Message) WriteTo(w io.Writer) (int64, error) {
	var buf bytes.Buffer
	if err := m.render(&buf); err != nil {
		return 0, err
	}
	if err := checkLineLengths(buf.Bytes()); err != nil {
		return 0, err
	}
	n, err := w.Write(buf.Bytes())
	if err != nil {
		return int64(n), fmt.Errorf("write message: %w", err)
	}
	return int64(n), nil
}

func (m *Message) render(b *bytes.Buffer) error {
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	writeHeader(b, "Date", date.Format(time.RFC1123Z))

	from, err := renderFrom(m.From)
	if err != nil {
		return err
	}
	writeHeader(b, "From", from)

	to, err := renderAddress("To", m.To)
	if err != nil {
		return err
	}
	writeHeader(b, "To", to)

	if strings.TrimSpace(m.ReplyTo) != "" {
		if err := ValidateHeader("Reply-To", m.ReplyTo); err != nil {
			return fmt.Errorf("render message: %w", err)
		}
		list, err := mail.ParseAddressList(m.ReplyTo)
		if err != nil {
			return fmt.Errorf("render message: parse Reply-To %q: %w", m.ReplyTo, err)
		}
		parts := make([]string, len(list))
		for i, a := range list {
			parts[i] = formatAddress(a)
		}
		writeHeader(b, "Reply-To", strings.Join(parts, ", "))
	}

	if err := ValidateHeader("Subject", m.Subject); err != nil {
		return fmt.Errorf("render message: %w", err)
	}
	writeHeader(b, "Subject", encodeSubject(m.Subject))

	if m.MessageID != "" {
		id, err := renderMessageID(m.MessageID)
		if err != nil {
			return err
		}
		writeHeader(b, "Message-ID", id)
	}
	writeHeader(b, "MIME-Version", "1.0")

	for _, h := range m.Headers {
		if err := ValidateHeader(h.Name, h.Value); err != nil {
			return fmt.Errorf("render message: %w", err)
		}
		if reservedHeaders[textproto.CanonicalMIMEHeaderKey(h.Name)] {
			return fmt.Errorf("render message: header %q is rendered from the message fields and cannot be set as an extra header", h.Name)
		}
		// RFC 2047 for a non-ASCII value (the server may not offer
		// SMTPUTF8); an ASCII value is written as it is.
		writeHeader(b, h.Name, mime.QEncoding.Encode("utf-8", h.Value))
	}

	switch {
	case m.Text != "" && m.HTML != "":
		return renderAlternative(b, m.Text, m.HTML)
	case m.HTML != "":
		return renderSinglePart(b, "text/html; charset=utf-8", m.HTML)
	default:
		return renderSinglePart(b, "text/plain; charset=utf-8", m.Text)
	}
}

// maxLine is RFC 5322's limit on a line, CRLF excluded. A longer line is
// refused by some servers and broken in two by others, and the second half
// of a broken header line becomes a header of its own.
const maxLine = 998

// checkLineLengths refuses a rendered message with a header line over
// maxLine: a value with a word too long to fold (a body line never is:
// quoted-printable keeps them under 77).
func checkLineLengths(msg []byte) error {
	head, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	var name []byte
	for line := range bytes.SplitSeq(head, []byte("\r\n")) {
		if len(line) > 0 && line[0] != ' ' && line[0] != '\t' {
			name, _, _ = bytes.Cut(line, []byte(":")) // not a continuation line
		}
		if len(line) > maxLine {
			return fmt.Errorf("render message: header %s: a line of %d octets (over %d) with a word too long to fold", name, len(line), maxLine)
		}
	}
	return nil
}

// encodeSubject RFC 2047-encodes a subject that is not ASCII, one with a
// word too long to fold into a line (so that it folds between encoded
// words), and one with "=?" in it, which a reader would otherwise decode as
// an encoded word of its own.
func encodeSubject(s string) string {
	enc := mime.QEncoding.Encode("utf-8", s)
	if enc != s {
		return enc // already split into encoded words of at most 75 octets
	}
	if hasLongWord(s) || strings.Contains(s, "=?") {
		return qEncodeAll(s)
	}
	return s
}

// qEncodeAll encodes s as Q encoded words of at most 75 octets each,
// whatever s holds, never splitting a UTF-8 sequence between words.
func qEncodeAll(s string) string {
	const prefix, suffix = "=?utf-8?q?", "?="
	var words []string
	var cur strings.Builder
	for i := 0; i < len(s); {
		_, size := utf8.DecodeRuneInString(s[i:])
		var enc strings.Builder
		for _, c := range []byte(s[i : i+size]) {
			switch {
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte("!*+-/", c) >= 0:
				enc.WriteByte(c)
			case c == ' ':
				enc.WriteByte('_')
			default:
				fmt.Fprintf(&enc, "=%02X", c)
			}
		}
		if cur.Len() > 0 && len(prefix)+cur.Len()+enc.Len()+len(suffix) > 75 {
			words = append(words, prefix+cur.String()+suffix)
			cur.Reset()
		}
		cur.WriteString(enc.String())
		i += size
	}
	if cur.Len() > 0 {
		words = append(words, prefix+cur.String()+suffix)
	}
	return strings.Join(words, " ")
}

// renderAddress parses one address and renders it with net/mail, which
// quotes and RFC 2047-encodes the display name as needed.
func renderAddress(field, value string) (string, error) {
	if strings.TrimSpace(value) == "" {
		return "", fmt.Errorf("render message: %s is empty", field)
	}
	if err := ValidateHeader(field, value); err != nil {
		return "", fmt.Errorf("render message: %w", err)
	}
	a, err := mail.ParseAddress(value)
	if err != nil {
		return "", fmt.Errorf("render message: parse %s %q: %w", field, value, err)
	}
	return formatAddress(a), nil
}

// lastFrom is the From value last rendered, with its rendering: a
// campaign's messages share one From, and parsing it again for each costs
// more than the rest of its header.
var lastFrom atomic.Pointer[[2]string]

// renderFrom is renderAddress("From", value), the last success kept for
// the next message of the same From.
func renderFrom(value string) (string, error) {
	if last := lastFrom.Load(); last != nil && last[0] == value {
		return last[1], nil
	}
	from, err := renderAddress("From", value)
	if err != nil {
		return "", err
	}
	lastFrom.Store(&[2]string{value, from})
	return from, nil
}

// formatAddress is a.String(), except that a display name String would
// render as something net/mail cannot read back (a Q-encoded word with a
// backslash, which String does not treat as special) or as a word too long
// to fold is encoded as short Q encoded words instead.
func formatAddress(a *mail.Address) string {
	s := a.String()
	if a.Name == "" {
		return s
	}
	addr := (&mail.Address{Address: a.Address}).String()
	if _, err := mail.ParseAddress(s); err == nil && !hasLongWord(strings.TrimSuffix(s, addr)) {
		return s
	}
	return qEncodeAll(a.Name) + " " + addr
}

// hasLongWord reports whether s has a space-separated word too long for
// writeHeader to keep a header line within maxLine octets.
func hasLongWord(s string) bool {
	for w := range strings.SplitSeq(s, " ") {
		if len(w) > maxLine-len("Reply-To: ") {
			return true
		}
	}
	return false
}

// renderMessageID checks a Message-ID and adds the angle brackets when the
// caller left them out.
func renderMessageID(id string) (string, error) {
	if err := ValidateHeader("Message-ID", id); err != nil {
		return "", fmt.Errorf("render message: %w", err)
	}
	inner := strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">")
	if inner == "" || strings.ContainsAny(inner, "<> \t\"") || !strings.Contains(inner, "@") {
		return "", fmt.Errorf("render message: invalid Message-ID %q (want <left@right>)", id)
	}
	return "<" + inner + ">", nil
}

// writeHeader writes "Name: value" and folds it at spaces so that lines stay
// near 78 characters. Folding inserts CRLF before an existing space, which
// unfolding removes again, so the value is unchanged for any reader. A run
// of text without spaces is never split.
func writeHeader(b *bytes.Buffer, name, value string) {
	b.WriteString(name)
	b.WriteString(":")
	lineLen := len(name) + 1
	words := strings.Split(value, " ")
	for i, w := range words {
		// Each word is written with the space that precedes it; the first
		// word's space is the one after the colon.
		if i > 0 && w != "" && lineLen > 1 && lineLen+1+len(w) > maxLineLen {
			b.WriteString("\r\n")
			lineLen = 0
		}
		b.WriteString(" ")
		b.WriteString(w)
		lineLen += 1 + len(w)
	}
	b.WriteString("\r\n")
}

// renderSinglePart writes the content headers, the blank line and the
// quoted-printable body.
func renderSinglePart(b *bytes.Buffer, contentType, body string) error {
	writeHeader(b, "Content-Type", contentType)
	writeHeader(b, "Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	return writeQP(b, body)
}

// renderAlternative writes a multipart/alternative body with the text part
// first (the least preferred alternative comes first, RFC 2046 5.1.4). The
// boundary is random (see randomBoundary) and cannot occur in a
// quoted-printable body of random length in practice. The parts are laid
// out byte for byte as mime/multipart's Writer lays them out (part headers
// sorted by name); it is not used because its boundary costs a getrandom
// system call per message.
func renderAlternative(b *bytes.Buffer, text, html string) error {
	boundary := randomBoundary()
	writeHeader(b, "Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": boundary}))
	b.WriteString("\r\n")
	for i, p := range []struct{ ctype, content string }{
		{"text/plain; charset=utf-8", text},
		{"text/html; charset=utf-8", html},
	} {
		if i > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("--")
		b.WriteString(boundary)
		b.WriteString("\r\nContent-Transfer-Encoding: quoted-printable\r\nContent-Type: ")
		b.WriteString(p.ctype)
		b.WriteString("\r\n\r\n")
		qw := quotedprintable.NewWriter(b)
		if _, err := io.WriteString(qw, lfOnly(p.content)); err != nil {
			return fmt.Errorf("render message: encode part: %w", err)
		}
		if err := qw.Close(); err != nil {
			return fmt.Errorf("render message: encode part: %w", err)
		}
	}
	b.WriteString("\r\n--")
	b.WriteString(boundary)
	b.WriteString("--\r\n")
	return nil
}

// randomBoundary returns a multipart boundary of the form mime/multipart
// makes: 30 random bytes in lower-case hex. They come from math/rand/v2's
// generator (ChaCha8, seeded by the runtime from the operating system),
// which needs no system call, unlike crypto/rand's reader.
func randomBoundary() string {
	var buf [32]byte
	for i := 0; i < len(buf); i += 8 {
		binary.LittleEndian.PutUint64(buf[i:], rand.Uint64())
	}
	return hex.EncodeToString(buf[:30])
}

// lfOnly turns CRLF and lone CR line breaks into LF before quoted-printable
// encoding (which writes every LF as CRLF): mime/quotedprintable loses the
// LF of "\r<byte it escapes>\n", so no CR may reach it.
func lfOnly(s string) string {
	if !strings.Contains(s, "\r") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

// writeQP encodes body as quoted-printable; line breaks of any style become
// CRLF.
func writeQP(b *bytes.Buffer, body string) error {
	qw := quotedprintable.NewWriter(b)
	if _, err := io.WriteString(qw, lfOnly(body)); err != nil {
		return fmt.Errorf("render message: encode body: %w", err)
	}
	if err := qw.Close(); err != nil {
		return fmt.Errorf("render message: encode body: %w", err)
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		// End the last line with a soft line break: the message still ends
		// in CRLF (as SMTP wants) and the decoded body stays byte-exact.
		b.WriteString("=\r\n")
	}
	return nil
}
