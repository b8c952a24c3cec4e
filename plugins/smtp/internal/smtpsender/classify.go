package smtpsender

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/campaignd/campaignd/sdk"
	"github.com/emersion/go-smtp"
)

// Stage names the step of the SMTP dialogue a reply or failure belongs to.
// It decides part of the classification and prefixes the error text.
type Stage string

// The stages of one connection and one transaction.
const (
	StageConnect   Stage = "connect"
	StageTLS       Stage = "TLS handshake"
	StageGreeting  Stage = "greeting"
	StageEHLO      Stage = "EHLO"
	StageSTARTTLS  Stage = "STARTTLS"
	StageAuth      Stage = "AUTH"
	StageMail      Stage = "MAIL FROM"
	StageRcpt      Stage = "RCPT TO"
	StageData      Stage = "DATA"
	StageEndOfData Stage = "end of DATA"
)

// connStage reports whether a stage belongs to setting up the connection
// rather than to one message: a permanent refusal there is about this
// sender (blocked IP, no service, bad credentials), not about a recipient.
func connStage(s Stage) bool {
	switch s {
	case StageConnect, StageTLS, StageGreeting, StageEHLO, StageSTARTTLS, StageAuth:
		return true
	}
	return false
}

var (
	// rateRe matches wording servers use when they throttle: "rate limit",
	// "message rate exceeded", "too many connections", "throttled",
	// "daily sending limit exceeded", "slow down".
	rateRe = regexp.MustCompile(`(?i)\brat(e|es|ed)\b|rate-?limit|throttl|too many|slow down|sending (limit|quota)`)
	// quotaRe is a provider's sending-quota reply, whatever its code or
	// stage: Gmail's 550 5.4.5 "Daily user sending limit exceeded" and
	// "Daily sending quota exceeded", Google Workspace's "Daily SMTP relay
	// limit exceeded", 421 4.7.0 "... daily limit ...", Microsoft 365's
	// 554 5.2.0 "SubmissionQuotaExceededException". Not a recipient's full
	// mailbox ("quota exceeded" alone).
	quotaRe = regexp.MustCompile(`(?i)sending (limit|quota)|daily (user |smtp relay |message |recipient )?(sending )?(limit|quota)|SubmissionQuotaExceeded|RefusedQuotaExceeded`)
	// dailyRe marks a quota reply about a day's sends: the sender waits a
	// day (dailyLimitRetry) unless the reply names a delay.
	dailyRe = regexp.MustCompile(`(?i)\bdaily\b|per day|24 hours|SubmissionQuotaExceeded|RefusedQuotaExceeded`)
	// notRateRe excludes "too many" phrases that are not about pace.
	notRateRe = regexp.MustCompile(`(?i)too many (hops|recipients)`)
	// retryRe finds a delay hint: "retry in 30 seconds", "try again in
	// 5 minutes", "please wait 60s", "retry after 2 min".
	retryRe = regexp.MustCompile(`(?i)\b(?:retry|try again|wait)\b[^0-9.;]{0,20}?(\d{1,6})\s*(seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h)\b`)
	// unknownUserRe is the text of a mailbox-does-not-exist reply from
	// servers that send no enhanced status code.
	unknownUserRe = regexp.MustCompile(`(?i)user unknown|unknown user|no such (user|mailbox|recipient)|mailbox (unavailable|not found|does not exist)|recipient (address )?(rejected: (user unknown|undeliverable))|(address|user|mailbox|recipient) does ?n[o']t exist|invalid (recipient|mailbox)|unknown (recipient|mailbox)`)
	// senderRe marks a refusal of our envelope sender, which Postfix
	// reports at RCPT time (smtpd_delay_reject).
	senderRe = regexp.MustCompile(`(?i)sender address rejected|sender (is )?(rejected|not allowed|denied)|not owned by (auth )?user`)
	// relayRe marks "we will not relay for you": the sender is not
	// authenticated or not allowed on this server.
	relayRe = regexp.MustCompile(`(?i)relay(ing)? (access )?(denied|not permitted|prohibited)|unable to relay|not permitted to relay`)
)

// maxRetryAfter caps a server's retry hint.
const maxRetryAfter = 24 * time.Hour

// dailyLimitRetry is the retry-after of a daily-quota reply that names no
// delay: campaignd blocks the sender until its day window refills, or for
// this long when it has none.
const dailyLimitRetry = 24 * time.Hour

// Reply is one SMTP reply as seen by the classifier.
type Reply struct {
	Code     int    // basic reply code, e.g. 550
	Enhanced string // enhanced status code, e.g. "5.1.1"; "" when absent
	Text     string // reply text without codes; lines joined by "\n"
}

// ClassifyReply maps an SMTP reply at a stage to an *sdk.Error. The table,
// first match wins:
//
//	421 (any stage), 454, 4.4.5/5.4.5 (congestion, daily limit), a
//	sending-quota text at any code and stage ("daily user sending limit",
//	"sending quota", "daily limit", SubmissionQuotaExceeded), or a 4xx
//	(not x.2.x) or session-stage 5xx with rate wording ("rate", "too
//	many", "throttl", "sending limit")                                    throttled
//	4xx at any stage                                                        transient
//	5xx at greeting/EHLO/STARTTLS/AUTH (blocked, bad credentials, no TLS)   config
//	530, 535, 534, 538, x.7.8, relay denied, sender rejected, 5.1.7/5.1.8   config
//	5xx at MAIL FROM (our From is refused) except 552/x.3.4 (size)          config
//	x.1.x at RCPT/DATA, or 550/551/553 without a specific enhanced code
//	and "user unknown"-style text                                           bounced
//	any other 5xx                                                           permanent
//	anything else (unexpected 2xx/3xx)                                      transient
//
// Throttled errors carry RetryAfter from "retry in N seconds"-style hints;
// a daily-quota text without one, 24 hours.
// The server's code, enhanced code and text are always kept.
func ClassifyReply(stage Stage, r Reply) *sdk.Error {
	text := strings.TrimSpace(strings.ReplaceAll(r.Text, "\n", " "))
	msg := string(stage) + ": " + text
	e := func(c sdk.Class) *sdk.Error {
		return (&sdk.Error{Class: c, Message: msg}).WithSMTP(r.Code, r.Enhanced)
	}
	class, subject := r.Code/100, ""
	if len(r.Enhanced) >= 3 {
		// "5.1.1" -> subject "1"
		if parts := strings.SplitN(r.Enhanced, ".", 3); len(parts) == 3 {
			subject = parts[1]
		}
	}
	// A generic x.0.0 says nothing specific; text may.
	genericEnhanced := r.Enhanced == "" || strings.HasSuffix(r.Enhanced, ".0.0")

	if class == 4 || class == 5 {
		// Rate wording throttles the sender only where it is about the
		// sender: a 4xx, or a refusal of the session. A 5xx at RCPT or
		// after DATA that mentions a rate is a block ("an unusual rate of
		// unsolicited mail ... has been blocked"), and an x.2.x reply is
		// about one mailbox ("receiving mail at a rate..."), so neither
		// may hold back the whole sender forever.
		rate := rateRe.MatchString(text) && !notRateRe.MatchString(text) &&
			(class == 4 || connStage(stage)) && subject != "2"
		quota := quotaRe.MatchString(text)
		if r.Code == 421 || r.Code == 454 || rate || quota || strings.HasSuffix(r.Enhanced, ".4.5") {
			t := e(sdk.ClassThrottled)
			t.RetryAfter = parseRetryAfter(text)
			if t.RetryAfter == 0 && (quota || strings.HasSuffix(r.Enhanced, ".4.5")) && dailyRe.MatchString(text) {
				t.RetryAfter = dailyLimitRetry
			}
			return t
		}
	}
	switch class {
	case 4:
		return e(sdk.ClassTransient)
	case 5:
	default:
		return e(sdk.ClassTransient)
	}

	// 5xx from here on.
	switch {
	case connStage(stage):
		return e(sdk.ClassConfig)
	case r.Code == 530 || r.Code == 534 || r.Code == 535 || r.Code == 538 || strings.HasSuffix(r.Enhanced, ".7.8"):
		return e(sdk.ClassConfig)
	case relayRe.MatchString(text) || senderRe.MatchString(text):
		return e(sdk.ClassConfig)
	case r.Enhanced == "5.1.7" || r.Enhanced == "5.1.8":
		return e(sdk.ClassConfig)
	case stage == StageMail:
		if r.Code == 552 || subject == "3" {
			return e(sdk.ClassPermanent)
		}
		return e(sdk.ClassConfig)
	case subject == "1":
		return e(sdk.ClassBounced)
	case genericEnhanced && (r.Code == 550 || r.Code == 551 || r.Code == 553) && unknownUserRe.MatchString(text):
		return e(sdk.ClassBounced)
	}
	return e(sdk.ClassPermanent)
}

// parseRetryAfter reads a delay hint from a reply text; 0 when none.
func parseRetryAfter(text string) time.Duration {
	m := retryRe.FindStringSubmatch(text)
	if m == nil {
		return 0
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return 0
	}
	unit := time.Second
	switch u := strings.ToLower(m[2]); {
	case strings.HasPrefix(u, "m"):
		unit = time.Minute
	case strings.HasPrefix(u, "h"):
		unit = time.Hour
	}
	d := time.Duration(n) * unit
	if d > maxRetryAfter {
		d = maxRetryAfter
	}
	return d
}

// enhancedString renders go-smtp's EnhancedCode; "" when absent.
func enhancedString(c smtp.EnhancedCode) string {
	if c == smtp.NoEnhancedCode || c == smtp.EnhancedCodeNotSet || c[0] < 2 {
		return ""
	}
	return fmt.Sprintf("%d.%d.%d", c[0], c[1], c[2])
}

// replyFromText builds a Reply from a textproto reply (used for the
// dialogue before go-smtp's client takes over), splitting off an enhanced
// status code the way go-smtp does.
func replyFromText(code int, msg string) Reply {
	r := Reply{Code: code, Text: msg}
	first, rest, ok := strings.Cut(msg, " ")
	if !ok {
		return r
	}
	parts := strings.Split(first, ".")
	if len(parts) != 3 {
		return r
	}
	for _, p := range parts {
		if _, err := strconv.Atoi(p); err != nil {
			return r
		}
	}
	r.Enhanced = first
	r.Text = strings.ReplaceAll(rest, "\n"+first+" ", "\n")
	return r
}

// failure is a classified send failure plus what it means for the
// connection it happened on.
type failure struct {
	err *sdk.Error
	// broken: the connection must be closed (I/O error, 421, timeout,
	// cancellation, protocol confusion). Otherwise it is still in a known
	// state and can be reset and reused.
	broken bool
	stage  Stage
}

// Classify maps any error at a stage to a failure: SMTP replies through
// ClassifyReply, everything else by kind. ctx is the Send context, so that
// an abort caused by cancellation or the deadline is reported as such
// rather than as the I/O error it produced.
func Classify(ctx context.Context, stage Stage, err error) failure {
	f := failure{stage: stage}
	var se *smtp.SMTPError
	var te *textproto.Error
	switch {
	case errors.As(err, &se):
		f.err = ClassifyReply(stage, Reply{Code: se.Code, Enhanced: enhancedString(se.EnhancedCode), Text: se.Message})
		// 421 means the server is closing the channel; an unexpected
		// (non 4xx/5xx) reply means we are out of step with it.
		f.broken = se.Code == 421 || se.Code/100 < 4 || se.Code/100 > 5
		return f
	case errors.As(err, &te):
		f.err = ClassifyReply(stage, replyFromText(te.Code, te.Msg))
		f.broken = true // only used during connection setup
		return f
	}

	f.broken = true
	if ctx != nil {
		// The socket deadline is the context's deadline, and the network
		// poller may fire it a moment before the context's own timer.
		dl, hasDL := ctx.Deadline()
		switch {
		case errors.Is(ctx.Err(), context.Canceled):
			f.err = sdk.Transient("%s: canceled: %v", stage, context.Cause(ctx))
			return f
		case ctx.Err() != nil || (hasDL && !time.Now().Before(dl)):
			f.err = sdk.Transient("%s: deadline exceeded before the server answered: %v", stage, err)
			return f
		}
	}

	var certErr *tls.CertificateVerificationError
	var hostErr x509.HostnameError
	var unknownAuth x509.UnknownAuthorityError
	var invalidCert x509.CertificateInvalidError
	var recordErr tls.RecordHeaderError
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.As(err, &certErr), errors.As(err, &hostErr), errors.As(err, &unknownAuth), errors.As(err, &invalidCert):
		f.err = sdk.ConfigError("%s: server certificate not trusted: %v", stage, err)
	case errors.As(err, &recordErr):
		f.err = sdk.ConfigError("%s: server did not answer with TLS (is tls = \"implicit\" right for this port?): %v", stage, err)
	case errors.As(err, &dnsErr):
		f.err = sdk.Transient("%s: DNS lookup failed: %v", stage, err)
	case errors.Is(err, syscall.ECONNREFUSED):
		f.err = sdk.Transient("%s: connection refused: %v", stage, err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		f.err = sdk.Transient("%s: connection closed by server: %v", stage, err)
	case errors.As(err, &netErr) && netErr.Timeout():
		f.err = sdk.Transient("%s: timed out: %v", stage, err)
	default:
		f.err = sdk.Transient("%s: %v", stage, err)
	}
	return f
}
