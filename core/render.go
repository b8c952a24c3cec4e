package core

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"mime"
	"net/mail"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/campaignd/campaignd/sdk"
)

// RenderData is what a campaign's templates see for one recipient:
// {{.Email}}, {{.Name}}, {{.Attr.city}}, {{.Campaign.Name}}, {{.UnsubscribeURL}}.
type RenderData struct {
	Email          string
	Name           string
	Attr           map[string]string
	Campaign       RenderCampaign
	UnsubscribeURL string
}

// RenderCampaign is the campaign as templates see it.
type RenderCampaign struct {
	ID   int64
	Name string
}

// Renderer turns a campaign and a recipient into a Message. Build one per
// campaign with NewRenderer; it is safe for concurrent use.
type Renderer struct {
	c           *Campaign
	subject     *template.Template
	text        *template.Template
	html        *htmltemplate.Template
	domain      string
	unsubscribe func(c *Campaign, r *Recipient) string
}

// NewRenderer parses the campaign's templates. messageIDDomain names the
// right-hand side of Message-IDs ("" uses the From address's domain);
// unsubscribe, when not nil, returns the recipient's unsubscribe URL. It
// returns an EINVALID error when a template does not parse.
func NewRenderer(c *Campaign, messageIDDomain string, unsubscribe func(*Campaign, *Recipient) string) (*Renderer, error) {
	r := &Renderer{c: c, domain: messageIDDomain, unsubscribe: unsubscribe}
	var err error
	if r.subject, err = template.New("subject").Option("missingkey=error").Parse(c.Subject); err != nil {
		return nil, Errorf(EINVALID, "subject: template: %v", err)
	}
	if r.text, err = template.New("text").Option("missingkey=error").Parse(c.Text); err != nil {
		return nil, Errorf(EINVALID, "text: template: %v", err)
	}
	if r.html, err = htmltemplate.New("html").Option("missingkey=error").Parse(c.HTML); err != nil {
		return nil, Errorf(EINVALID, "html: template: %v", err)
	}
	if r.domain == "" {
		if a, perr := mail.ParseAddress(c.From); perr == nil {
			r.domain = a.Address[strings.LastIndexByte(a.Address, '@')+1:]
		}
	}
	if r.domain == "" {
		r.domain = "campaignd.invalid"
	}
	return r, nil
}

// MessageID returns the deterministic Message-ID of a recipient of the
// campaign: the same on every retry and resend, so a duplicate delivery is
// recognisable.
func (r *Renderer) MessageID(recipientID int64) string {
	return fmt.Sprintf("<c%d.r%d@%s>", r.c.ID, recipientID, r.domain)
}

// Render builds the message for one recipient. A template that fails on the
// recipient's data, or a rendered subject containing CR or LF, returns an
// EINVALID error: the recipient fails permanently with class template.
func (r *Renderer) Render(rc *Recipient, now time.Time) (*sdk.Message, error) {
	data := RenderData{
		Email:    rc.Email,
		Name:     rc.Name,
		Attr:     rc.Attrs,
		Campaign: RenderCampaign{ID: r.c.ID, Name: r.c.Name},
	}
	if data.Attr == nil {
		data.Attr = map[string]string{}
	}
	if r.unsubscribe != nil {
		data.UnsubscribeURL = r.unsubscribe(r.c, rc)
	}
	var buf bytes.Buffer
	if err := r.subject.Execute(&buf, data); err != nil {
		return nil, Errorf(EINVALID, "subject: %v", err)
	}
	subject := buf.String()
	if strings.ContainsAny(subject, "\r\n\x00") {
		return nil, Errorf(EINVALID, "subject: rendered subject contains CR, LF or NUL")
	}
	buf.Reset()
	if err := r.text.Execute(&buf, data); err != nil {
		return nil, Errorf(EINVALID, "text: %v", err)
	}
	text := buf.String()
	buf.Reset()
	if err := r.html.Execute(&buf, data); err != nil {
		return nil, Errorf(EINVALID, "html: %v", err)
	}
	// Stored addresses are addr-specs, quoted where needed ("a b"@x.org);
	// mail.Address wants the unquoted form and quotes it again itself.
	toAddr := rc.Email
	if a, perr := mail.ParseAddress(rc.Email); perr == nil {
		toAddr = a.Address
	}
	to := (&mail.Address{Name: rc.Name, Address: toAddr}).String()
	if _, perr := mail.ParseAddress(to); perr != nil && rc.Name != "" {
		// net/mail Q-encodes a name with a backslash into a word it cannot
		// read back; B-encoding always reads back.
		to = mime.BEncoding.Encode("utf-8", rc.Name) + " " + (&mail.Address{Address: toAddr}).String()
	}
	if _, perr := mail.ParseAddress(to); perr != nil {
		return nil, Errorf(EINVALID, "to: %q cannot be rendered as an address: %v", rc.Email, perr)
	}
	headers := make([]sdk.Header, 0, len(r.c.Headers)+3)
	headers = append(headers, r.c.Headers...)
	// A campaign's own Precedence (say "list") replaces the default rather
	// than joining it: two Precedence headers leave receivers to guess.
	if !slices.ContainsFunc(r.c.Headers, func(h sdk.Header) bool { return strings.EqualFold(h.Name, "Precedence") }) {
		headers = append(headers, sdk.Header{Name: "Precedence", Value: "bulk"})
	}
	if data.UnsubscribeURL != "" {
		if strings.ContainsAny(data.UnsubscribeURL, "\r\n\x00<>") {
			return nil, Errorf(EINVALID, "unsubscribe URL contains forbidden characters")
		}
		headers = append(headers,
			sdk.Header{Name: "List-Unsubscribe", Value: "<" + data.UnsubscribeURL + ">"},
			sdk.Header{Name: "List-Unsubscribe-Post", Value: "List-Unsubscribe=One-Click"})
	}
	return &sdk.Message{
		CampaignID:  r.c.ID,
		RecipientID: rc.ID,
		MessageID:   r.MessageID(rc.ID),
		From:        r.c.From,
		To:          to,
		ReplyTo:     r.c.ReplyTo,
		Subject:     subject,
		Text:        text,
		HTML:        buf.String(),
		Date:        now,
		Headers:     headers,
	}, nil
}
