package bounce

import (
	"context"
	"errors"
	"fmt"

	"github.com/campaignd/campaignd/core"
)

// Applier records delivery events; *core.Engine implements it.
type Applier interface {
	ApplyEvents(ctx context.Context, events []core.DeliveryEvent) (*core.EventsResult, error)
}

// PassResult counts what one mailbox pass did.
type PassResult struct {
	// Messages is how many messages the mailbox held.
	Messages int `json:"messages"`
	// Applied, Duplicates and Unknown count events as ApplyEvents did:
	// applied, seen before (a report read twice), for a recipient that no
	// longer exists.
	Applied    int `json:"applied"`
	Duplicates int `json:"duplicates"`
	Unknown    int `json:"unknown"`
	// Deferred counts the applied events that are soft bounces (a delay,
	// a server that gave up retrying, a security or policy block): part
	// of Applied, recorded only, so a pass that finds many says what
	// would otherwise go unseen (a listed sending IP, a broken DKIM key).
	Deferred int `json:"deferred"`
	// NotOurs counts reports about messages campaignd did not send, and
	// NoAction reports of ours that need nothing (relayed, not-spam).
	NotOurs  int `json:"not_ours"`
	NoAction int `json:"no_action"`
	// Deleted is how many messages were deleted: every one of the above.
	Deleted int `json:"deleted"`
	// Left counts messages left in the mailbox because they could not be
	// read as a report of campaignd's (see Problems), TooLarge those over
	// the size limit, also left.
	Left     int `json:"left"`
	TooLarge int `json:"too_large"`
	// Problems says why each left message was left (at most maxProblems).
	Problems []string `json:"problems,omitempty"`
}

// maxProblems bounds PassResult.Problems.
const maxProblems = 20

func (r *PassResult) problem(e Entry, err error) {
	if len(r.Problems) < maxProblems {
		id := fmt.Sprintf("message %d", e.Num)
		if e.UID != "" {
			id += " (uidl " + clip(e.UID) + ")"
		}
		r.Problems = append(r.Problems, id+": "+err.Error())
	}
}

// Pass reads the mailbox once: it fetches each message, parses it with p,
// applies its events with apply, and deletes the messages whose events
// were applied (or were duplicates, or for recipients gone) and the
// reports that are not campaignd's or need nothing. Messages it cannot
// read as a report (ErrNotReport, ErrNoOriginal, malformed ones) and
// messages over the size limit are left in the mailbox and counted.
// Deletions take effect at the session's QUIT: a pass cut short by the
// mailbox (or ctx) deletes nothing; one stopped by the store says QUIT,
// deleting only messages whose events were recorded. Reading a report
// again is harmless (events are deduplicated).
//
// It returns the counts so far and an error: EUNAVAILABLE when the
// mailbox cannot be reached or read (connection, login, protocol), the
// store's error when events cannot be recorded (the message stays).
func Pass(ctx context.Context, cfg Config, p *Parser, apply Applier) (*PassResult, error) {
	res := &PassResult{}
	c, err := Dial(ctx, cfg)
	if err != nil {
		return res, unavailable(err)
	}
	defer c.Close()
	if res.Messages, _, err = c.Stat(); err != nil {
		return res, unavailable(err)
	}
	if res.Messages == 0 {
		return res, unavailable(c.Quit())
	}
	entries, err := c.List()
	if err != nil {
		return res, unavailable(err)
	}
	var applyErr error
	for _, e := range entries {
		if e.Size > cfg.maxBytes() {
			res.TooLarge++
			res.problem(e, fmt.Errorf("%w (%d bytes, limit %d)", ErrTooLarge, e.Size, cfg.maxBytes()))
			continue
		}
		raw, err := c.Retr(e.Num, cfg.maxBytes())
		if errors.Is(err, ErrTooLarge) {
			res.TooLarge++
			res.problem(e, err)
			continue
		}
		if err != nil {
			return res, unavailable(err)
		}
		rep, err := p.Parse(raw)
		if err != nil {
			res.Left++
			res.problem(e, err)
			continue
		}
		switch {
		case rep.NotOurs:
			res.NotOurs++
		case len(rep.Events) == 0:
			res.NoAction++
		default:
			er, err := apply.ApplyEvents(ctx, rep.Events)
			if er != nil {
				if rep.Events[0].Type == core.EventDeferred {
					res.Deferred += er.Applied
				}
				res.Applied += er.Applied
				res.Duplicates += er.Duplicates
				res.Unknown += er.Unknown
			}
			if err != nil {
				// The message stays; what was deleted so far is committed.
				applyErr = fmt.Errorf("bounce mailbox: record events of message %d: %w", e.Num, err)
			}
		}
		if applyErr != nil {
			break
		}
		if err := c.Dele(e.Num); err != nil {
			return res, unavailable(err)
		}
		res.Deleted++
	}
	if err := c.Quit(); err != nil {
		return res, errors.Join(applyErr, unavailable(err))
	}
	return res, applyErr
}

// unavailable codes a mailbox failure EUNAVAILABLE: the mailbox, not
// campaignd, is at fault, and the next pass tries again. nil stays nil.
func unavailable(err error) error {
	if err == nil {
		return nil
	}
	return &core.Error{Code: core.EUNAVAILABLE, Message: err.Error(), Err: err}
}
