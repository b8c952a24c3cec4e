// Package bounce reads campaignd's bounce mailbox. Parser turns one raw
// message into delivery events: a delivery status notification (RFC 3464)
// into hard bounces (Action failed, Status 5.x.x) and deferrals (Action
// delayed, a 4.x.x status, or a 5.7.x security or policy status), a
// feedback report (RFC 5965) into a
// complaint. Each event is mapped to its recipient by the original
// message's deterministic Message-ID (<c{campaign}.r{recipient}@domain>,
// see core.Renderer.MessageID), found in the report's message/rfc822 or
// text/rfc822-headers part, or by the VERP envelope sender the message was
// sent with (core.RenderReturnPath) when the report is addressed to it.
// The parser is pure: it reads bytes and returns events, which the caller
// applies with core.Engine.ApplyEvents (deduplicated on their EventID).
//
// Client is a small POP3 client (RFC 1939, STLS from RFC 2595), and
// Mailbox runs one pass over a mailbox: fetch, parse, apply, delete what
// was applied or is not campaignd's, and leave (and count) what could not
// be read.
package bounce
