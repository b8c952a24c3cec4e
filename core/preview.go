package core

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/textproto"
	"strings"

	"github.com/campaignd/campaignd/sdk"
)

// Preview is the message one recipient of a campaign would get, as the
// tick renders it and as a plugin writes it (sdk.Message.WriteTo).
type Preview struct {
	CampaignID int64 `json:"campaign_id"`
	// RecipientID is 0 for the sample recipient.
	RecipientID int64  `json:"recipient_id"`
	Email       string `json:"email"`
	// Sample is true when the campaign has no recipient yet and the
	// message was rendered for SampleRecipient.
	Sample    bool   `json:"sample"`
	MessageID string `json:"message_id"`
	Subject   string `json:"subject"`
	Text      string `json:"text"`
	HTML      string `json:"html"`
	// Headers are every header of the message, in order, unfolded, values
	// as written (encoded words left encoded).
	Headers []sdk.Header `json:"headers"`
	// Message is the whole RFC 5322 message, CRLF line ends.
	Message string `json:"message"`
}

// TestSendRequest is a test send: To receives the message rendered for
// Recipient (an address in the campaign; "" for the first recipient, or
// the sample when there is none).
type TestSendRequest struct {
	To        string `json:"to"`
	Recipient string `json:"recipient,omitempty"`
}

// SendError is a failed send as the sender classified it (see sdk.Error).
type SendError struct {
	Class        sdk.Class `json:"class"`
	SMTPCode     int       `json:"smtp_code,omitempty"`
	EnhancedCode string    `json:"enhanced_code,omitempty"`
	HTTPStatus   int       `json:"http_status,omitempty"`
	Message      string    `json:"message"`
}

// String renders the failure as the sdk renders its errors, e.g.
// "permanent: 550 5.1.1 no such user".
func (e *SendError) String() string {
	return (&sdk.Error{Class: e.Class, SMTPCode: e.SMTPCode, EnhancedCode: e.EnhancedCode,
		HTTPStatus: e.HTTPStatus, Message: e.Message}).Error()
}

// TestSendResult is what the campaign's sender answered to a test send:
// Sent with the provider's id and reply, or Error.
type TestSendResult struct {
	CampaignID int64      `json:"campaign_id"`
	Sender     string     `json:"sender"`
	To         string     `json:"to"`
	MessageID  string     `json:"message_id"`
	Sent       bool       `json:"sent"`
	ProviderID string     `json:"provider_id,omitempty"`
	Response   string     `json:"response,omitempty"`
	Error      *SendError `json:"error,omitempty"`
}

// newRenderer is the one way a campaign's messages are rendered: the
// tick, preview and test send all build their Renderer here, on the
// templates the engine keeps parsed (campaignTemplates): a tick does not
// parse, clone and escape them again for every batch.
func (e *Engine) newRenderer(c *Campaign, lim Limits) (*Renderer, error) {
	tmpl, err := e.campaignTemplates(c)
	if err != nil {
		return nil, err
	}
	return newRendererOf(c, tmpl, lim.MessageIDDomain, e.unsubscribe, WithRenderBudget(lim.RenderBudget()), WithReturnPath(lim.ReturnPath)), nil
}

// previewRecipient returns the campaign's recipient of address email, or
// with "" its first recipient by id, or the sample when it has none;
// sample reports the last. EINVALID for a bad address, ENOTFOUND when the
// campaign has no such recipient.
func (e *Engine) previewRecipient(ctx context.Context, c *Campaign, email string) (r *Recipient, sample bool, err error) {
	if email != "" {
		addr, _, err := NormalizeAddress(email)
		if err != nil {
			return nil, false, err
		}
		r, err := e.store.RecipientByEmail(ctx, c.ID, addr)
		if ErrorCode(err) == ENOTFOUND {
			return nil, false, Errorf(ENOTFOUND, "campaign %d has no recipient %s", c.ID, addr)
		}
		return r, false, err
	}
	rs, err := e.store.Recipients(ctx, c.ID, RecipientFilter{Limit: 1})
	if err != nil {
		return nil, false, err
	}
	if len(rs) == 0 {
		return SampleRecipient(TemplateRefs{Attrs: c.TemplateAttrs}), true, nil
	}
	return rs[0], false, nil
}

// Preview renders the message the campaign's recipient of address email
// (by default its first recipient, or SampleRecipient when it has none)
// would get if a tick sent it now, through the tick's own renderer and the
// plugins' sdk.Message.WriteTo. Nothing is written. EINVALID, with the
// template's error, when the message cannot be rendered (the recipient
// would fail with class template); ENOTFOUND for an unknown campaign or
// recipient.
func (e *Engine) Preview(ctx context.Context, id int64, email string) (*Preview, error) {
	c, err := e.store.Campaign(ctx, id)
	if err != nil {
		return nil, err
	}
	rc, sample, err := e.previewRecipient(ctx, c, email)
	if err != nil {
		return nil, err
	}
	msg, raw, err := e.renderMessage(c, rc)
	if err != nil {
		return nil, err
	}
	headers, err := messageHeaders(raw)
	if err != nil {
		return nil, Errorf(EINTERNAL, "preview campaign %d: read back the message: %v", id, err)
	}
	return &Preview{
		CampaignID: id, RecipientID: rc.ID, Email: rc.Email, Sample: sample, MessageID: msg.MessageID,
		Subject: msg.Subject, Text: msg.Text, HTML: msg.HTML, Headers: headers, Message: string(raw),
	}, nil
}

// renderMessage renders rc's message and writes it as a plugin would.
// EINVALID when either fails.
func (e *Engine) renderMessage(c *Campaign, rc *Recipient) (*sdk.Message, []byte, error) {
	renderer, err := e.newRenderer(c, e.Limits())
	if err != nil {
		return nil, nil, err
	}
	msg, err := renderer.Render(rc, e.now())
	if err != nil {
		return nil, nil, Errorf(EINVALID, "campaign %d, recipient %s: %v", c.ID, rc.Email, ErrorMessage(err))
	}
	var buf bytes.Buffer
	if _, err := msg.WriteTo(&buf); err != nil {
		return nil, nil, Errorf(EINVALID, "campaign %d, recipient %s: message: %v", c.ID, rc.Email, err)
	}
	return msg, buf.Bytes(), nil
}

// messageHeaders reads the header section of a message, in order.
func messageHeaders(raw []byte) ([]sdk.Header, error) {
	tr := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw)))
	var hs []sdk.Header
	for {
		line, err := tr.ReadContinuedLine()
		if err != nil {
			if err == io.EOF {
				return hs, nil
			}
			return nil, err
		}
		if line == "" {
			return hs, nil
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("header line %q has no colon", line)
		}
		hs = append(hs, sdk.Header{Name: name, Value: strings.TrimSpace(value)})
	}
}

// TestSend sends one message of the campaign to req.To through the
// campaign's sender, outside its queue: no recipient row, no counter and
// no history change. The message is rendered for req.Recipient (see
// Preview for the default) with req.To as its address and a Message-ID of
// its own ("<test-c3.<nanoseconds>@domain>", never a recipient's), and
// without a working unsubscribe link (its token names no recipient). The
// sender's answer is the result: a failed send is Sent false with the
// classified error, not an error. EINVALID for a bad address or a
// template that fails; ENOTFOUND for an unknown campaign or recipient;
// EUNAVAILABLE in a process without senders.
func (e *Engine) TestSend(ctx context.Context, id int64, req TestSendRequest) (*TestSendResult, error) {
	to, _, err := NormalizeAddress(req.To)
	if err != nil {
		return nil, Errorf(EINVALID, "to: %v", ErrorMessage(err))
	}
	c, err := e.store.Campaign(ctx, id)
	if err != nil {
		return nil, err
	}
	if e.senders == nil {
		return nil, Errorf(EUNAVAILABLE, "test send: this process has no senders")
	}
	rc, _, err := e.previewRecipient(ctx, c, req.Recipient)
	if err != nil {
		return nil, err
	}
	test := &Recipient{Email: to, Name: rc.Name, Attrs: rc.Attrs, CampaignID: c.ID}
	msg, _, err := e.renderMessage(c, test)
	if err != nil {
		return nil, err
	}
	domain := strings.TrimSuffix(msg.MessageID[strings.LastIndexByte(msg.MessageID, '@')+1:], ">")
	msg.MessageID = fmt.Sprintf("<test-c%d.%d@%s>", c.ID, e.now().UnixNano(), domain)
	res := &TestSendResult{CampaignID: id, Sender: c.Sender, To: to, MessageID: msg.MessageID}

	ctx, cancel := context.WithTimeout(ctx, e.Limits().TickTimeout)
	defer cancel()
	sender, err := e.senders.Sender(ctx, c.Sender)
	var receipt *sdk.Receipt
	if err == nil {
		receipt, err = sender.Send(ctx, msg)
	}
	if err != nil {
		se := sdk.AsError(err)
		res.Error = &SendError{Class: se.Class, SMTPCode: se.SMTPCode, EnhancedCode: se.EnhancedCode,
			HTTPStatus: se.HTTPStatus, Message: se.Message}
		return res, nil
	}
	res.Sent = true
	if receipt != nil {
		res.ProviderID, res.Response = receipt.ProviderID, receipt.Response
	}
	return res, nil
}
