package sdk

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Class says what the host should do with a failed send.
type Class string

const (
	// ClassTransient: retry later with backoff, counting the attempt
	// (SMTP 4xx, HTTP 5xx, connection refused, timeouts, plugin crash).
	ClassTransient Class = "transient"
	// ClassThrottled: the provider asks to slow down (SMTP 421/454 or
	// rate wording, HTTP 429). Requeued at RetryAfter, the attempt not
	// counted, and the sender gets no more work this tick.
	ClassThrottled Class = "throttled"
	// ClassPermanent: the message will never be accepted (SMTP 5xx, HTTP 4xx).
	ClassPermanent Class = "permanent"
	// ClassBounced: the mailbox does not exist or refuses mail (SMTP 5.1.x);
	// the recipient becomes BOUNCED and the address is suppressed.
	ClassBounced Class = "bounced"
	// ClassConfig: the sender itself is misconfigured (bad credentials,
	// HTTP 401). The host pauses the campaign instead of failing every
	// recipient; the message is requeued without counting the attempt.
	ClassConfig Class = "config"
)

// Error is a classified send failure. It crosses the plugin boundary intact:
// the host sees the same Class, codes and text the plugin returned.
type Error struct {
	Class        Class
	SMTPCode     int    // e.g. 550; 0 when not SMTP
	EnhancedCode string // e.g. "5.1.1"; empty when unknown
	HTTPStatus   int    // e.g. 429; 0 when not HTTP
	Message      string // the provider's text, or a description
	// RetryAfter is the provider's requested delay for ClassThrottled;
	// 0 lets the host choose.
	RetryAfter time.Duration
}

// Error renders the failure with its codes, e.g.
// "permanent: 550 5.1.1 no such user".
func (e *Error) Error() string {
	s := string(e.Class) + ":"
	if e.SMTPCode != 0 {
		s += fmt.Sprintf(" %d", e.SMTPCode)
	}
	if e.EnhancedCode != "" {
		s += " " + e.EnhancedCode
	}
	if e.HTTPStatus != 0 {
		s += fmt.Sprintf(" HTTP %d", e.HTTPStatus)
	}
	return s + " " + e.Message
}

// Transient returns a ClassTransient error with a formatted message.
func Transient(format string, args ...any) *Error {
	return &Error{Class: ClassTransient, Message: fmt.Sprintf(format, args...)}
}

// Permanent returns a ClassPermanent error with a formatted message.
func Permanent(format string, args ...any) *Error {
	return &Error{Class: ClassPermanent, Message: fmt.Sprintf(format, args...)}
}

// Bounced returns a ClassBounced error with a formatted message.
func Bounced(format string, args ...any) *Error {
	return &Error{Class: ClassBounced, Message: fmt.Sprintf(format, args...)}
}

// Throttled returns a ClassThrottled error asking the host to wait retryAfter.
func Throttled(retryAfter time.Duration, format string, args ...any) *Error {
	return &Error{Class: ClassThrottled, RetryAfter: retryAfter, Message: fmt.Sprintf(format, args...)}
}

// ConfigError returns a ClassConfig error with a formatted message.
func ConfigError(format string, args ...any) *Error {
	return &Error{Class: ClassConfig, Message: fmt.Sprintf(format, args...)}
}

// WithSMTP sets the SMTP reply code and enhanced status code and returns e.
func (e *Error) WithSMTP(code int, enhanced string) *Error {
	e.SMTPCode, e.EnhancedCode = code, enhanced
	return e
}

// WithHTTP sets the HTTP status and returns e.
func (e *Error) WithHTTP(status int) *Error {
	e.HTTPStatus = status
	return e
}

// ErrNotAttempted is in the chain of an error from a host-side Send (the
// Plugin or Pool of sdk/plugin) whose message never reached a plugin: the
// context had ended before the call, or no plugin process could be started
// and configured in time. Unlike a send cut off mid-flight, such a send
// certainly delivered nothing. The error is still an *Error for AsError.
var ErrNotAttempted = errors.New("send not attempted")

// AsError classifies any error returned by Send. A nil err returns nil; an
// *Error (possibly wrapped) is returned as is; a context deadline or any
// other error becomes ClassTransient with the error's text.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return Transient("timed out: %v", err)
	}
	return Transient("%v", err)
}

// ErrCheckUnsupported is in the chain of the error a host-side Check (the
// Plugin of sdk/plugin) returns when the plugin does not implement Checker,
// including a plugin built against an SDK that predates it. It means "not
// supported", not "failed".
var ErrCheckUnsupported = errors.New("check not supported by this plugin")
