// Package sdk holds the plain types a campaignd sender plugin and the
// campaignd core share: the Sender interface, the Message it delivers, the
// Receipt and classified Error it answers with, the plugin-side Logger and
// the MIME rendering of a Message (WriteTo, ValidateHeader). It has no
// transport: it imports neither gRPC nor go-plugin, so the core can use
// these types without linking them.
//
// The transport is in package sdk/plugin: plugin.Serve runs a Sender as a
// plugin process, and plugin.Launch and plugin.Pool start and talk to one
// from the host. A plugin's main is one line:
//
//	func main() { plugin.Serve(&mySender{}) }
//
// Neither package imports anything else from campaignd, so a third party
// needs nothing else.
package sdk

import (
	"context"
	"time"
)

// Sender delivers messages for one configured sender. Implementations must be
// safe for concurrent use: the host calls Send from up to a campaign's
// concurrency goroutines at once.
type Sender interface {
	// Configure is called once after the plugin starts, with the options of
	// its [senders.NAME.options] table (values rendered as strings, ${ENV}
	// already expanded). An error here is a configuration error: the host
	// reports it and sends nothing through the plugin.
	Configure(ctx context.Context, options map[string]string) error
	// Info describes the sender and the limits it knows.
	Info(ctx context.Context) (Info, error)
	// Send delivers one message. It returns a Receipt on acceptance by the
	// provider, or an error; an error that is not an *Error is treated as
	// Transient. Send must honour ctx cancellation.
	Send(ctx context.Context, msg *Message) (*Receipt, error)
}

// Info describes a sender plugin.
type Info struct {
	Name    string
	Version string
	// MaxPerSecond is the provider's known send rate limit; 0 means unknown.
	MaxPerSecond float64
	// MaxConcurrency caps concurrent sends; 0 means no cap beyond the host's.
	MaxConcurrency int
	// Options lists every option key the plugin knows (what it passes to
	// UnknownOption). The host prints an option's value (in `campaignd
	// config check`) only when it is listed here and not in
	// SecretOptions: a plugin that lists none, like one built before these
	// fields existed, has every value hidden.
	Options []string
	// SecretOptions lists the option keys whose values are secrets
	// (passwords, API keys, tokens): the host never prints them.
	SecretOptions []string
	// DNSRecords are the records the operator should publish for the
	// configuration the plugin was given (the TXT record of a DKIM key,
	// ...). The host asks for Info after Configure and `campaignd config
	// check` prints them; a plugin that has none, or was built before this
	// field existed, leaves it empty.
	DNSRecords []DNSRecord
}

// DNSRecord is one DNS record a plugin asks the operator to publish.
type DNSRecord struct {
	// Name is the fully qualified owner name without the trailing dot,
	// e.g. "mail._domainkey.example.com".
	Name string `json:"name"`
	// Type is the record type, e.g. "TXT".
	Type string `json:"type"`
	// Value is the record data as one string. For TXT it is the text
	// itself, unquoted and unsplit: the host splits it into strings of at
	// most 255 octets when it prints a zone-file line.
	Value string `json:"value"`
}

// Header is one extra header line. Names and values never contain CR, LF or
// NUL: the host validates them before a Message is built.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Message is one fully rendered email for one recipient.
type Message struct {
	CampaignID  int64
	RecipientID int64
	// MessageID is the RFC 5322 Message-ID including angle brackets. It is
	// deterministic per (campaign, recipient) and identical on every retry,
	// so a duplicate delivery after a crash is recognisable.
	MessageID string
	From      string // RFC 5322 address, possibly with display name
	To        string // RFC 5322 address, possibly with display name
	ReplyTo   string // optional
	Subject   string
	Text      string // optional text/plain body
	HTML      string // optional text/html body
	Date      time.Time
	Headers   []Header // extra headers in order (List-Unsubscribe, Precedence, ...)
	// ReturnPath is the envelope sender (SMTP MAIL FROM) as a bare
	// addr-spec, e.g. a per-recipient VERP address that routes the
	// message's bounces back to campaignd; empty means the plugin's
	// default (usually the From address). It is never a header: the
	// receiving server writes the Return-Path header from it. A plugin
	// whose provider cannot set the envelope sender (SendGrid) ignores it.
	ReturnPath string
}

// Receipt is the provider's acceptance of a message.
type Receipt struct {
	// ProviderID is the provider's message id (SMTP queue id, SendGrid
	// X-Message-Id, file name for the outbox); may be empty when the
	// provider gives none.
	ProviderID string
	// Response is the provider's final reply text, kept for the operator.
	Response string
}

// Checker is an optional interface a Sender may implement so that
// `campaignd config check --connect` can prove its configuration works
// before a campaign depends on it. Check opens one real session with the
// provider using the options given to Configure (for example: connect,
// EHLO, STARTTLS, AUTH, QUIT for SMTP; one read-only authenticated request
// for an HTTP API) and delivers nothing. It returns nil when the session
// was opened, or an error saying what failed (an *Error, ClassConfig for
// rejected credentials, ClassTransient for an unreachable server). Check
// must honour ctx cancellation and may be called concurrently with Send.
//
// A Sender that does not implement Checker still works everywhere; the
// host reports its check as not supported (ErrCheckUnsupported).
type Checker interface {
	Check(ctx context.Context) error
}
