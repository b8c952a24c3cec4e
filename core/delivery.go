package core

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/campaignd/campaignd/sdk"
)

// This file is the delivery lifecycle of one recipient: the classes a
// failure is recorded under, the Outcome a store applies, and the one pure
// function that turns what a send came back with into that Outcome. The
// tick (tick.go) only sends and records; lease recovery (lease.go) applies
// the same in-doubt policy.

// ErrorClass is why a recipient was not (or not yet) sent, as recorded in
// its last_error_class and matched by `campaign retry --class`.
type ErrorClass string

// Error classes: the sdk's send classes, then those campaignd itself gives.
const (
	ClassTransient             = ErrorClass(sdk.ClassTransient) // retried with backoff until max_attempts
	ClassThrottled             = ErrorClass(sdk.ClassThrottled) // requeued at the provider's retry-after, attempt refunded
	ClassPermanent             = ErrorClass(sdk.ClassPermanent) // FAILED
	ClassBounced               = ErrorClass(sdk.ClassBounced)   // BOUNCED, and the address suppressed
	ClassConfig                = ErrorClass(sdk.ClassConfig)    // the sender is misconfigured: campaign paused, attempt refunded
	ClassInDoubt    ErrorClass = "in_doubt"                     // cut off mid-send (lease expired, tick timed out): outcome unknown
	ClassTemplate   ErrorClass = "template"                     // the recipient's data broke a template
	ClassSuppressed ErrorClass = "suppressed"                   // the address is on the suppression list
	ClassCancelled  ErrorClass = "cancelled"                    // never sent: its campaign was cancelled
	ClassExpired    ErrorClass = "expired"                      // not sent before its campaign's --expires; retryable once extended
)

// retryableClasses are the classes an operator can retry by name, in the
// order the error message lists them. Bounced rows are BOUNCED, not FAILED;
// suppressed and cancelled ones would only fail again.
var retryableClasses = []ErrorClass{ClassTransient, ClassPermanent, ClassThrottled, ClassConfig, ClassInDoubt, ClassTemplate, ClassExpired}

// ParseRetryClass returns the class `campaign retry --class` names; "" (all
// FAILED recipients) is returned as is. Any class that is not retryable by
// name is EINVALID, naming the ones that are.
func ParseRetryClass(s string) (ErrorClass, error) {
	if s == "" {
		return "", nil
	}
	for _, c := range retryableClasses {
		if ErrorClass(s) == c {
			return c, nil
		}
	}
	return "", Errorf(EINVALID, "class %q: must be one of transient, permanent, throttled, config, in_doubt, template, expired", s)
}

// Outcome is one recipient's change as a store applies it with
// Store.RecordOutcomes: in one transaction with its group, only while the row is still
// SENDING under ClaimToken (and in CampaignID when it is not 0); the lease
// and token are cleared and the campaign's counters move from sending to
// Status.
type Outcome struct {
	RecipientID int64
	CampaignID  int64 // 0: not checked
	ClaimToken  string
	// Status is SENT, FAILED, BOUNCED, or QUEUED to be sent again; any
	// other is EINVALID.
	Status RecipientStatus
	// ErrorClass, ErrorCode, EnhancedCode and Error replace the
	// recipient's last error when any of them is set; when all are empty
	// the last error stays as it was (a hand-back).
	ErrorClass   ErrorClass
	ErrorCode    int // SMTP reply code, else HTTP status; 0: none
	EnhancedCode string
	Error        string
	// ProviderID is stored with a SENT outcome (the provider's id, or the
	// Message-ID when it names none).
	ProviderID string
	// At is when the outcome happened: updated_at, and sent_at of a SENT
	// one. Zero means the store's now.
	At time.Time
	// NextAttemptAt is when a QUEUED outcome is due again (zero: At). The
	// store ignores it for any other status.
	NextAttemptAt time.Time
	// RefundAttempt takes back the attempt the claim counted (throttling,
	// a config error, a suppressed address, or a message handed back
	// unsent), whatever the status.
	RefundAttempt bool
	// Release marks a claimed message handed back unsent (throttled
	// sender, drain, deadline, failed suppression check). The store does
	// not read it: such an outcome is QUEUED with RefundAttempt and no
	// error, so nothing else changes. The tick counts it as skipped.
	Release bool
	// Unsent marks an outcome of a claimed message whose send never
	// started (handed back, suppressed at claim, sender unavailable,
	// template error). The store does not read it: the tick gives its
	// slot back to the sender's quota.
	Unsent bool
	// Suppress, when set, puts the address on the suppression list in the
	// same transaction (a BOUNCED outcome). An empty Email means the
	// recipient's, an empty Source SourceBounce, a zero CreatedAt At.
	Suppress *Suppression
}

// SendResult is what one send came back with, as the tick saw it.
type SendResult struct {
	// Receipt is the provider's answer to an accepted message; it may be nil.
	Receipt *sdk.Receipt
	// Err is nil when the message was accepted. Any other error is
	// classified by sdk.AsError.
	Err error
	// MessageID is the message's Message-ID, recorded as the provider id
	// when the receipt names none.
	MessageID string
	// Left is how much of the tick's time remained when the answer came:
	// 0 (or less) once the tick's context had ended. See CutOff.
	Left time.Duration
}

// DeadlineSlack is how close to the tick's deadline a failed send counts
// as cut off by it. The deadline travels to the plugin with the call, and
// the plugin gives up at it, so its answer can arrive a moment before the
// tick's own context expires: without the slack, a send cut off after the
// server took the message would look like an ordinary transient failure
// rather than one in doubt (found by the chaos suite).
const DeadlineSlack = 250 * time.Millisecond

// CutOff reports whether a send whose answer came with left of the tick's
// time remaining was cut off by the tick's deadline: it had ended, or was
// within DeadlineSlack.
func CutOff(left time.Duration) bool { return left < DeadlineSlack }

// Jitter returns a random duration in [0, n]. RandomJitter is the tick's;
// tests give a fixed one.
type Jitter func(n time.Duration) time.Duration

// RandomJitter is uniformly random in [0, n].
func RandomJitter(n time.Duration) time.Duration { return rand.N(n + 1) }

// Backoff is the wait after a recipient's attempt-th transient failure:
// exponential in the attempt with equal jitter (half of
// base*2^(attempt-1) fixed, half random), capped at maxWait. 0 when base
// is 0 or less.
func Backoff(attempt int, base, maxWait time.Duration, jitter Jitter) time.Duration {
	if base <= 0 {
		return 0
	}
	d := maxWait
	if attempt >= 1 && attempt < 31 {
		if step := base << (attempt - 1); step > 0 && step < maxWait {
			d = step
		}
	}
	half := d / 2
	return half + jitter(half)
}

// DecideOutcome turns what one send of claimed recipient r came back with
// into the Outcome to record at now, under lim. It is the whole delivery
// policy for a message that reached the send:
//
//   - accepted: SENT with the provider's id (else the Message-ID);
//   - cut off by the tick's deadline (see CutOff) before it reached a
//     plugin: handed back unsent (ReleaseOutcome), nothing was sent;
//   - cut off mid-send (transient): in doubt, by lim.InDoubt like an
//     expired lease, backing off when it is resent;
//   - throttled: QUEUED at the provider's retry-after (else
//     lim.ThrottleDelay), attempt refunded;
//   - config: QUEUED after lim.RetryBase, attempt refunded (the tick also
//     pauses the campaign);
//   - bounced (5.1.x): BOUNCED, and the address suppressed (SourceBounce);
//   - permanent: FAILED;
//   - transient (and any class it does not know): QUEUED after Backoff,
//     or FAILED once r has had lim.MaxAttempts attempts.
//
// Failures record their class, SMTP code (else HTTP status), enhanced
// code and text. jitter randomises the backoff.
func DecideOutcome(res SendResult, r *Recipient, lim Limits, now time.Time, jitter Jitter) Outcome {
	o := Outcome{RecipientID: r.ID, CampaignID: r.CampaignID, ClaimToken: r.ClaimToken, At: now}
	if res.Err == nil {
		o.Status = RecipientSent
		if res.Receipt != nil {
			o.ProviderID = res.Receipt.ProviderID
		}
		if o.ProviderID == "" {
			o.ProviderID = res.MessageID
		}
		return o
	}
	se := sdk.AsError(res.Err)
	cutOff := CutOff(res.Left) && se.Class == sdk.ClassTransient
	if cutOff && errors.Is(res.Err, sdk.ErrNotAttempted) {
		// The deadline came before the message reached a plugin (say, a
		// crashed one was still restarting): nothing was sent, so it is
		// not in doubt.
		return ReleaseOutcome(r, now, now)
	}
	o.ErrorClass, o.Error, o.EnhancedCode = ErrorClass(se.Class), se.Message, se.EnhancedCode
	o.ErrorCode = se.SMTPCode
	if o.ErrorCode == 0 {
		o.ErrorCode = se.HTTPStatus
	}
	retry := func() time.Time { return now.Add(Backoff(r.Attempts, lim.RetryBase, lim.RetryMax, jitter)) }
	switch {
	case cutOff:
		// The provider may or may not have taken the message. Like lease
		// recovery, resend gives up after max_attempts; and the resend
		// backs off, so a server that never answers is not retried first
		// thing every tick.
		o.ErrorClass = ClassInDoubt
		o.Error = "tick timed out mid-send, outcome unknown: " + se.Message
		if o.Status = lim.InDoubt.Status(r.Attempts, lim.MaxAttempts); o.Status == RecipientQueued {
			o.NextAttemptAt = retry()
		}
	case se.Class == sdk.ClassThrottled:
		wait := se.RetryAfter
		if wait <= 0 {
			wait = lim.ThrottleDelay
		}
		o.Status, o.NextAttemptAt, o.RefundAttempt = RecipientQueued, now.Add(wait), true
	case se.Class == sdk.ClassConfig:
		o.Status, o.NextAttemptAt, o.RefundAttempt = RecipientQueued, now.Add(lim.RetryBase), true
	case se.Class == sdk.ClassBounced:
		o.Status = RecipientBounced
		o.Suppress = &Suppression{Email: r.Email, Reason: se.Error(), Source: SourceBounce, CreatedAt: now}
	case se.Class == sdk.ClassPermanent:
		o.Status = RecipientFailed
	default: // transient
		if r.Attempts >= lim.MaxAttempts {
			o.Status = RecipientFailed
			o.Error = fmt.Sprintf("%s (gave up after %d attempts)", se.Message, r.Attempts)
		} else {
			o.Status, o.NextAttemptAt = RecipientQueued, retry()
		}
	}
	return o
}

// ReleaseOutcome hands claimed recipient r back unsent, due again at due:
// QUEUED, its attempt refunded, its last error kept.
func ReleaseOutcome(r *Recipient, due, now time.Time) Outcome {
	return Outcome{RecipientID: r.ID, CampaignID: r.CampaignID, ClaimToken: r.ClaimToken, Status: RecipientQueued,
		At: now, NextAttemptAt: due, RefundAttempt: true, Release: true, Unsent: true}
}

// UnavailableOutcome hands claimed recipient r back unattempted because
// its campaign's sender could not be had (err, classified by
// sdk.AsError): QUEUED again after lim.RetryBase, its attempt refunded,
// the reason recorded.
func UnavailableOutcome(r *Recipient, err error, lim Limits, now time.Time) Outcome {
	se := sdk.AsError(err)
	return Outcome{RecipientID: r.ID, CampaignID: r.CampaignID, ClaimToken: r.ClaimToken, Status: RecipientQueued,
		At: now, NextAttemptAt: now.Add(lim.RetryBase), RefundAttempt: true, Unsent: true,
		ErrorClass: ErrorClass(se.Class), Error: "not attempted: sender unavailable: " + se.Message}
}

// SuppressedOutcome fails claimed recipient r unsent because its address
// is on the suppression list: FAILED with ClassSuppressed, its attempt
// refunded.
func SuppressedOutcome(r *Recipient, now time.Time) Outcome {
	return Outcome{RecipientID: r.ID, CampaignID: r.CampaignID, ClaimToken: r.ClaimToken, Status: RecipientFailed,
		ErrorClass: ClassSuppressed, Error: "not sent: the address is on the suppression list", At: now, RefundAttempt: true, Unsent: true}
}

// TemplateOutcome fails claimed recipient r whose message could not be
// rendered (err): FAILED with ClassTemplate, the attempt counted.
func TemplateOutcome(r *Recipient, err error, now time.Time) Outcome {
	return Outcome{RecipientID: r.ID, CampaignID: r.CampaignID, ClaimToken: r.ClaimToken, Status: RecipientFailed,
		ErrorClass: ClassTemplate, Error: ErrorMessage(err), At: now, Unsent: true}
}
