package core

import (
	"errors"
	"fmt"
)

// Error codes. Each transport maps them in exactly one place: HTTP status
// in core/internal/httpx (Status, for every HTTP server), exit code in
// cmd/campaignd.
const (
	EINVALID     = "invalid"     // bad input: the message names the field or line
	ENOTFOUND    = "not_found"   // no such campaign, recipient, execution
	ECONFLICT    = "conflict"    // illegal state change, lock held elsewhere
	EFORBIDDEN   = "forbidden"   // caller not allowed (socket peer check)
	ETOOLARGE    = "too_large"   // request body over its limit
	EUNAVAILABLE = "unavailable" // daemon shutting down, dependency down
	EINTERNAL    = "internal"    // a bug or an I/O failure
)

// Error is campaignd's one coded domain error. Message is written for the
// operator and is safe to print; Op and Err are for logs.
type Error struct {
	Code    string
	Message string
	Op      string
	Err     error
}

// Error returns the operator-facing message, prefixed with the operation
// when one is set, and the wrapped cause when there is no message.
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	if e.Op != "" {
		return e.Op + ": " + msg
	}
	return msg
}

// Unwrap returns the wrapped cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the operator-facing text of err: the message of the
// first *Error in its chain (with any wrapping context before it), or
// "internal error" plus the text for anything else.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return err.Error()
	}
	return "internal error: " + err.Error()
}
