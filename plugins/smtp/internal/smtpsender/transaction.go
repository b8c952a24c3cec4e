package smtpsender

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/campaignd/campaignd/sdk"
	"github.com/emersion/go-smtp"
)

// writeBufferSize is the write buffer of a session: a transaction's
// commands, and a message body up to this size with its final dot, each
// leave in one write.
const writeBufferSize = 32 << 10

// wire carries the mail transactions of one session. When the server
// offers PIPELINING (RFC 2920), MAIL, RCPT and DATA leave in one write and
// their three replies are read after it; otherwise each command waits for
// its reply. Either way every reply is classified at its own stage, as
// go-smtp's client would have reported it.
type wire struct {
	guard *guardedConn
	bw    *bufio.Writer
	w     *textproto.Writer
	r     *textproto.Reader

	pipelining bool // PIPELINING offered
	eightBit   bool // 8BITMIME offered: MAIL FROM says BODY=8BITMIME
	size       bool // SIZE offered: MAIL FROM says SIZE=
	timeout    time.Duration
}

// newWire is the transaction side of a session that client has set up.
func newWire(guard *guardedConn, client *smtp.Client) *wire {
	bw := bufio.NewWriterSize(guard, writeBufferSize)
	w := &wire{guard: guard, bw: bw, w: textproto.NewWriter(bw), r: textproto.NewReader(bufio.NewReader(guard)), timeout: guard.timeout}
	w.pipelining, _ = client.Extension("PIPELINING")
	w.eightBit, _ = client.Extension("8BITMIME")
	w.size, _ = client.Extension("SIZE")
	return w
}

// step arms the deadline of one exchange (capped by the Send's context by
// the guard).
func (w *wire) step() { _ = w.guard.SetDeadline(time.Now().Add(w.timeout)) }

// idle leaves the session without a deadline of its own between
// transactions, as go-smtp's client does after each command.
func (w *wire) idle() { _ = w.guard.SetDeadline(time.Time{}) }

// reply reads one reply; a code other than expect (as textproto matches
// it: 25 takes 250 and 251) comes back as the *smtp.SMTPError go-smtp's
// client would have returned, so Classify treats it the same.
func (w *wire) reply(expect int) (string, error) {
	_, msg, err := w.r.ReadResponse(expect)
	var te *textproto.Error
	if errors.As(err, &te) {
		return msg, replyError(te)
	}
	return msg, err
}

// replyError is a refused reply as go-smtp's client reports it: the
// enhanced status code split off the text.
func replyError(te *textproto.Error) *smtp.SMTPError {
	r := replyFromText(te.Code, te.Msg)
	e := &smtp.SMTPError{Code: r.Code, Message: r.Text}
	if parts := strings.Split(r.Enhanced, "."); len(parts) == 3 {
		for i, p := range parts {
			e.EnhancedCode[i], _ = strconv.Atoi(p)
		}
	}
	return e
}

// command is one line of the transaction and the reply it expects.
type command struct {
	stage  Stage
	line   string
	expect int
}

// transact sends MAIL, RCPT and DATA, then the message. open reports
// whether a transaction was left open by a rejection (so RSET is needed
// before reuse).
func (p *pool) transact(ctx context.Context, c *conn, env envelope) (_ *sdk.Receipt, _ *failure, open bool) {
	utf8 := false
	if !isASCII(env.from) || !isASCII(env.to) {
		switch {
		case c.utf8:
			utf8 = true
		case env.ascii != nil:
			// Internationalised domains go as A-labels (punycode),
			// which every server takes.
			env = *env.ascii
		case !isASCII(localPart(env.from)):
			// Every message of the campaign would fail the same way: a
			// configuration error, which pauses the campaign, rather than
			// a permanent failure of each recipient.
			return nil, &failure{stage: StageMail, err: sdk.ConfigError(
				"%s: From address %q is not ASCII and the server %s does not offer SMTPUTF8: use an ASCII From address or a server with SMTPUTF8",
				StageMail, env.from, p.cfg.Addr())}, false
		default:
			return nil, &failure{stage: StageMail, err: sdk.Permanent(
				"%s: address %q / %q has a non-ASCII local part and the server does not offer SMTPUTF8", StageMail, env.from, env.to)}, false
		}
	}
	w := c.wire
	defer w.idle()
	cmds := [3]command{
		{StageMail, w.mailLine(env.from, len(env.signature)+len(env.data), utf8), 250},
		{StageRcpt, "RCPT TO:<" + env.to + ">", 25},
		{StageData, "DATA", 354},
	}
	for _, cmd := range cmds[:2] {
		if strings.ContainsAny(cmd.line, "\r\n") {
			// Nothing was written: the session is still clean.
			f := Classify(ctx, cmd.stage, errors.New("smtp: a line must not contain CR or LF"))
			f.broken = false
			return nil, &f, false
		}
	}

	var f *failure
	if w.pipelining {
		f, open = w.pipelined(ctx, cmds)
	} else {
		f, open = w.stepwise(ctx, cmds)
	}
	if f != nil {
		return nil, f, open
	}

	// The body is written with no deadline of its own: the guard renews
	// one on every write, so timeout bounds a stall, not the transfer.
	w.idle()
	dw := w.w.DotWriter()
	_, err := dw.Write(env.signature)
	if err == nil {
		_, err = dw.Write(env.data)
	}
	if err != nil {
		f := Classify(ctx, StageData, err)
		f.broken = true // mid-DATA: the dot was never sent
		return nil, &f, false
	}
	if err := dw.Close(); err != nil {
		f := Classify(ctx, StageEndOfData, err)
		return nil, &f, false
	}
	w.step()
	resp, err := w.reply(250)
	if err != nil {
		f := Classify(ctx, StageEndOfData, err)
		return nil, &f, false
	}
	text := strings.TrimSpace(strings.ReplaceAll(resp, "\n", " "))
	return &sdk.Receipt{ProviderID: providerID(text, env.messageID), Response: "250 " + text}, nil, false
}

// mailLine is the MAIL FROM command with the parameters go-smtp's client
// would add: BODY=8BITMIME and SIZE= when offered, SMTPUTF8 when asked.
func (w *wire) mailLine(from string, size int, utf8 bool) string {
	var b strings.Builder
	b.Grow(len(from) + 64)
	b.WriteString("MAIL FROM:<")
	b.WriteString(from)
	b.WriteByte('>')
	if w.eightBit {
		b.WriteString(" BODY=8BITMIME")
	}
	if w.size && size > 0 {
		b.WriteString(" SIZE=")
		b.WriteString(strconv.Itoa(size))
	}
	if utf8 {
		b.WriteString(" SMTPUTF8")
	}
	return b.String()
}

// stepwise sends each command and reads its reply before the next, for a
// server without PIPELINING; it stops at the first refusal.
func (w *wire) stepwise(ctx context.Context, cmds [3]command) (_ *failure, open bool) {
	for i, cmd := range cmds {
		w.step()
		err := w.w.PrintfLine("%s", cmd.line)
		if err == nil {
			_, err = w.reply(cmd.expect)
		}
		if err != nil {
			f := Classify(ctx, cmd.stage, err)
			return &f, i > 0
		}
	}
	return nil, false
}

// pipelined writes MAIL, RCPT and DATA at once and then reads the three
// replies, all of them even after a refusal so the session stays in step.
// The first refusal is the outcome, classified at its stage exactly as
// when the commands go one by one; what follows it only decides whether
// the session can be kept: a later reply that cannot be read breaks it,
// and a 354 to DATA after a refused MAIL or RCPT (a server that should
// have refused DATA, RFC 2920 3.1) is ended with a lone dot and the
// session closed, since what the server made of it is unknown.
func (w *wire) pipelined(ctx context.Context, cmds [3]command) (_ *failure, open bool) {
	w.step()
	for _, cmd := range cmds {
		_, _ = w.bw.WriteString(cmd.line)
		_, _ = w.bw.WriteString("\r\n")
	}
	if err := w.bw.Flush(); err != nil {
		// Nothing can be known to have arrived: as if MAIL had failed.
		f := Classify(ctx, StageMail, err)
		return &f, false
	}
	var first *failure
	for i, cmd := range cmds {
		_, err := w.reply(cmd.expect)
		if err == nil {
			if first != nil && cmd.stage == StageData {
				w.step()
				if err := w.w.PrintfLine("."); err == nil {
					_, _ = w.reply(250)
				}
				first.broken = true
			}
			continue
		}
		f := Classify(ctx, cmd.stage, err)
		if first == nil {
			first, open = &f, i > 0
			if f.broken {
				// The server hung up or the dialogue is lost: the
				// replies still owed will not come.
				return first, open
			}
			continue
		}
		if f.broken {
			first.broken = true
			return first, open
		}
	}
	return first, open
}

// reset sends RSET so the session can carry the next message. Unlike
// go-smtp's client, which forgets the EHLO on RSET, it needs no new EHLO:
// RSET clears the transaction, not the session (RFC 5321 4.1.1.5).
func (p *pool) reset(ctx context.Context, c *conn) error {
	release := c.guard.bind(ctx)
	defer release()
	w := c.wire
	defer w.idle()
	w.step()
	if err := w.w.PrintfLine("RSET"); err != nil {
		return fmt.Errorf("rset: %w", err)
	}
	if _, err := w.reply(250); err != nil {
		return fmt.Errorf("rset: %w", err)
	}
	return nil
}
