package sgsender

import (
	"errors"
	"fmt"
	"mime"
	netmail "net/mail"
	"strconv"
	"strings"

	"github.com/sendgrid/sendgrid-go/helpers/mail"

	"github.com/campaignd/campaignd/sdk"
)

// reservedHeaders are the headers SendGrid documents as reserved: a
// request setting one is refused with 400 ("Header can not be one of the
// reserved keys"). They are dropped from the message's extra headers;
// To, From, Subject and Reply-To travel in their own fields.
var reservedHeaders = map[string]bool{
	"x-sg-id": true, "x-sg-eid": true, "received": true, "dkim-signature": true,
	"content-type": true, "content-transfer-encoding": true, "to": true, "from": true,
	"subject": true, "reply-to": true, "cc": true, "bcc": true,
}

// generatedHeaders are set by SendGrid (Date, MIME-Version) or from the
// message's own fields (Message-ID); an extra header with one of these
// names would duplicate the field, so it is dropped too.
var generatedHeaders = map[string]bool{"message-id": true, "date": true, "mime-version": true}

// Custom argument names carried with every message (strings, as SendGrid
// requires). SendGrid returns custom_args in every Event Webhook event,
// which is how events map back to the campaign's recipient.
const (
	ArgCampaignID  = "campaign_id"
	ArgRecipientID = "recipient_id"
	ArgMessageID   = "message_id"
)

// nameCleaner removes the characters SendGrid forbids in recipient names
// (the Mail Send overview: to.name may not contain ";" or ","); a name
// like "Doe, Jane" would otherwise fail the whole message with 400.
var nameCleaner = strings.NewReplacer(",", " ", ";", " ")

// buildBody renders msg as a v3 Mail Send JSON body.
func buildBody(cfg *Config, msg *sdk.Message, log Logger) ([]byte, error) {
	m, err := buildMail(cfg, msg, log)
	if err != nil {
		return nil, err
	}
	body, err := encodeJSON(m)
	if err != nil {
		return nil, sdk.Permanent("send: %v", err)
	}
	return body, nil
}

// buildMail maps msg onto sendgrid-go's request model:
//
//	from            msg.From (address and display name)
//	personalizations one, to msg.To (name without "," or ";")
//	reply_to        msg.ReplyTo; reply_to_list when it holds several addresses
//	subject         msg.Subject
//	content         text/plain (msg.Text) then text/html (msg.HTML), each only
//	                when non-empty; SendGrid requires this order (RFC 1341 7.2)
//	headers         Message-ID (msg.MessageID), then msg.Headers minus the
//	                reserved and generated ones; non-ASCII values RFC 2047-encoded
//	custom_args     campaign_id, recipient_id, message_id
//	categories      the categories option
//	asm             {group_id: asm_group_id} when set
//	mail_settings   {sandbox_mode: {enable: true}} when sandbox is on
//
// An unusable From or Reply-To is ClassConfig (it is the campaign's, so
// every message would fail alike); an unusable To, Message-ID or header is
// ClassPermanent.
func buildMail(cfg *Config, msg *sdk.Message, log Logger) (*mail.SGMailV3, error) {
	from, err := parseAddress(msg.From)
	if err != nil {
		return nil, sdk.ConfigError("send: invalid From address %q: %v", msg.From, err)
	}
	to, err := parseAddress(msg.To)
	if err != nil {
		return nil, sdk.Permanent("send: invalid To address %q: %v", msg.To, err)
	}

	m := mail.NewV3Mail()
	m.SetFrom(from)
	m.Subject = msg.Subject
	p := mail.NewPersonalization()
	p.AddTos(mail.NewEmail(strings.Join(strings.Fields(nameCleaner.Replace(to.Name)), " "), to.Address))
	m.AddPersonalizations(p)

	if rt := strings.TrimSpace(msg.ReplyTo); rt != "" {
		list, err := netmail.ParseAddressList(rt)
		if err != nil {
			return nil, sdk.ConfigError("send: invalid Reply-To %q: %v", msg.ReplyTo, err)
		}
		if len(list) == 1 {
			m.SetReplyTo(mail.NewEmail(list[0].Name, list[0].Address))
		} else {
			emails := make([]*mail.Email, len(list))
			for i, a := range list {
				emails[i] = mail.NewEmail(a.Name, a.Address)
			}
			m.SetReplyToList(emails)
		}
	}

	// Order matters: SendGrid refuses text/html before text/plain.
	if msg.Text != "" {
		m.AddContent(mail.NewContent("text/plain", msg.Text))
	}
	if msg.HTML != "" {
		m.AddContent(mail.NewContent("text/html", msg.HTML))
	}

	messageID := ""
	if msg.MessageID != "" {
		if messageID, err = normalizeMessageID(msg.MessageID); err != nil {
			return nil, sdk.Permanent("send: %v", err)
		}
		// SendGrid keeps a Message-ID given in headers (it is not on the
		// reserved list), so a resend after a crash carries the same id and
		// the duplicate is recognisable, as with SMTP.
		m.SetHeader("Message-ID", messageID)
	}
	seen := map[string]bool{"message-id": messageID != ""}
	for _, h := range msg.Headers {
		if err := sdk.ValidateHeader(h.Name, h.Value); err != nil {
			return nil, sdk.Permanent("send: %v", err)
		}
		lk := strings.ToLower(h.Name)
		switch {
		case reservedHeaders[lk]:
			log.Debug("sendgrid: dropped a header SendGrid reserves", "header", h.Name)
			continue
		case generatedHeaders[lk]:
			log.Debug("sendgrid: dropped a header SendGrid or the message fields set", "header", h.Name)
			continue
		case seen[lk]:
			// A JSON object cannot hold one header twice, and SendGrid
			// refuses case variants as duplicates: the first one wins.
			log.Debug("sendgrid: dropped a repeated header", "header", h.Name)
			continue
		}
		seen[lk] = true
		m.SetHeader(h.Name, encodeHeaderValue(h.Value))
	}

	m.SetCustomArg(ArgCampaignID, strconv.FormatInt(msg.CampaignID, 10))
	m.SetCustomArg(ArgRecipientID, strconv.FormatInt(msg.RecipientID, 10))
	if messageID != "" {
		m.SetCustomArg(ArgMessageID, messageID)
	}
	if len(cfg.Categories) > 0 {
		m.AddCategories(cfg.Categories...)
	}
	if cfg.ASMGroupID > 0 {
		m.SetASM(mail.NewASM().SetGroupID(cfg.ASMGroupID))
	}
	if cfg.Sandbox {
		m.SetMailSettings(mail.NewMailSettings().SetSandboxMode(mail.NewSetting(true)))
	}
	return m, nil
}

// parseAddress parses one RFC 5322 address (with or without a display
// name) with sendgrid-go's helper, which adds SendGrid's length limits
// (64-character local part, 255-character domain, 320 in all).
func parseAddress(s string) (*mail.Email, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty address")
	}
	e, err := mail.ParseEmail(s)
	if err != nil {
		return nil, fmt.Errorf("parse address: %w", err)
	}
	return e, nil
}

// normalizeMessageID checks a Message-ID and returns it in angle brackets.
func normalizeMessageID(id string) (string, error) {
	if err := sdk.ValidateHeader("Message-ID", id); err != nil {
		return "", fmt.Errorf("check Message-ID: %w", err)
	}
	inner := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(id), "<"), ">")
	if inner == "" || strings.ContainsAny(inner, "<> \t\"") || !strings.Contains(inner, "@") {
		return "", fmt.Errorf("check Message-ID: invalid Message-ID %q (want <left@right>)", id)
	}
	return "<" + inner + ">", nil
}

// encodeHeaderValue RFC 2047-encodes a value that is not plain ASCII, as
// SendGrid asks ("you must ensure these are properly encoded if they
// contain unicode characters"); ASCII values pass unchanged.
func encodeHeaderValue(v string) string {
	return mime.QEncoding.Encode("utf-8", v)
}
