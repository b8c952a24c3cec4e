package core

import (
	crand "crypto/rand"
	"encoding/hex"
	"math"
	"time"
)

// A tick claims recipients under a lease: a random claim token that every
// outcome write must present, and a deadline after which the claim counts
// as abandoned (the process died mid-send) and the in-doubt policy decides
// what becomes of the row.

// InDoubtPolicy says what becomes of a recipient whose send was cut off
// (its lease expired, or the tick timed out mid-send), when nobody knows
// whether the provider accepted it.
type InDoubtPolicy string

// In-doubt policies.
const (
	// InDoubtResend requeues the recipient with the same Message-ID, until
	// it has had max_attempts attempts: a duplicate is possible,
	// recognisable, and bounded by what was in flight.
	InDoubtResend InDoubtPolicy = "resend"
	// InDoubtHold marks it FAILED with class in_doubt for the operator.
	InDoubtHold InDoubtPolicy = "hold"
)

// requeueBelow is the in-doubt policy's one decision, in a form a store
// can apply to many rows at once: a recipient in doubt with fewer attempts
// than this goes back to QUEUED, any other is held FAILED. Resend ("" too)
// requeues below maxAttempts (no limit when maxAttempts <= 0); hold, or a
// policy it does not know, requeues none.
func (p InDoubtPolicy) requeueBelow(maxAttempts int) int {
	switch {
	case p != InDoubtResend && p != "":
		return 0
	case maxAttempts <= 0:
		return math.MaxInt
	}
	return maxAttempts
}

// Status returns what the policy makes of one recipient in doubt after
// attempts attempts: RecipientQueued to resend, RecipientFailed to hold.
func (p InDoubtPolicy) Status(attempts, maxAttempts int) RecipientStatus {
	if attempts < p.requeueBelow(maxAttempts) {
		return RecipientQueued
	}
	return RecipientFailed
}

// ExpiredLeases is the in-doubt policy as values a store applies to every
// recipient whose lease expired (Store.RecoverLeases): a row with fewer
// than RequeueBelow attempts goes back to QUEUED due now with
// RequeuedError, any other becomes FAILED with HeldError; both record
// Class and clear the codes.
type ExpiredLeases struct {
	RequeueBelow  int
	Class         ErrorClass
	RequeuedError string
	HeldError     string
}

// ExpiredLeases returns the policy's rule for expired leases under
// maxAttempts: the same decision as Status, for every expired row at once.
func (p InDoubtPolicy) ExpiredLeases(maxAttempts int) ExpiredLeases {
	return ExpiredLeases{
		RequeueBelow:  p.requeueBelow(maxAttempts),
		Class:         ClassInDoubt,
		RequeuedError: "lease expired during the send: delivery unknown, requeued with the same Message-ID",
		HeldError:     "lease expired during the send: delivery unknown, held for the operator",
	}
}

// LeaseRecovery counts what RecoverLeases did.
type LeaseRecovery struct {
	Requeued int64 // resend: back to QUEUED
	Failed   int64 // hold, or attempts exhausted: FAILED in_doubt
}

// lease is one tick's claim on the recipients it sends.
type lease struct {
	token string    // presented with every outcome
	until time.Time // when the claim counts as abandoned
}

// newLease returns the lease for a tick started at start: a fresh random
// token, ending lim.LeaseMargin after the tick's own deadline, so a live
// tick always records its outcomes before its lease can expire.
func newLease(start time.Time, lim Limits) lease {
	var b [12]byte
	_, _ = crand.Read(b[:])
	return lease{token: hex.EncodeToString(b[:]), until: start.Add(lim.TickTimeout + lim.LeaseMargin)}
}
