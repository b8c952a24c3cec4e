package core

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// EventType is what a provider reports about a message after the send.
type EventType string

// Delivery event types (SendGrid's names; other providers map onto them).
const (
	EventBounce           EventType = "bounce" // hard bounce or block
	EventDropped          EventType = "dropped"
	EventSpamReport       EventType = "spamreport"
	EventUnsubscribe      EventType = "unsubscribe"
	EventGroupUnsubscribe EventType = "group_unsubscribe"
	EventDelivered        EventType = "delivered"
	EventDeferred         EventType = "deferred"
	EventOpen             EventType = "open"
	EventClick            EventType = "click"
)

// DeliveryEvent is one provider event about one recipient's message.
type DeliveryEvent struct {
	Provider    string    `json:"provider"`
	EventID     string    `json:"event_id"` // the provider's unique id: replays are ignored
	Type        EventType `json:"type"`
	CampaignID  int64     `json:"campaign_id"`
	RecipientID int64     `json:"recipient_id"`
	Email       string    `json:"email"`
	Reason      string    `json:"reason,omitempty"`
	At          time.Time `json:"at"`
}

// EventEffect is what an event does to campaignd's state.
type EventEffect struct {
	Bounce   bool // a SENT recipient becomes BOUNCED
	Suppress bool // the address goes on the suppression list
}

// Effect returns what an event of this type does: bounces and drops bounce
// and suppress; complaints and unsubscribes suppress; the rest are only
// recorded.
func (t EventType) Effect() EventEffect {
	switch t {
	case EventBounce, EventDropped:
		return EventEffect{Bounce: true, Suppress: true}
	case EventSpamReport, EventUnsubscribe, EventGroupUnsubscribe:
		return EventEffect{Suppress: true}
	}
	return EventEffect{}
}

// EventOutcome says what ApplyEvent did with one event.
type EventOutcome string

// Event outcomes.
const (
	EventApplied   EventOutcome = "applied"
	EventDuplicate EventOutcome = "duplicate" // same provider event id seen before
	EventUnknown   EventOutcome = "unknown"   // no such recipient: ignored
)

// EventsResult counts what ApplyEvents did.
type EventsResult struct {
	Applied    int `json:"applied"`
	Duplicates int `json:"duplicates"`
	Unknown    int `json:"unknown"`
}

// ApplyEvents records provider events, each in its own transaction:
// bounces turn SENT recipients BOUNCED, and bounces, drops, complaints and
// unsubscribes put the address on the suppression list. Events are
// deduplicated on (provider, event id); events for unknown recipients are
// ignored with a log line. EINVALID for an event without id or type.
func (e *Engine) ApplyEvents(ctx context.Context, events []DeliveryEvent) (*EventsResult, error) {
	res := &EventsResult{}
	for i := range events {
		ev := events[i]
		if ev.EventID == "" || ev.Type == "" || ev.Provider == "" {
			return res, Errorf(EINVALID, "event %d: provider, event id and type are required", i)
		}
		if ev.Email != "" {
			if addr, _, err := NormalizeAddress(ev.Email); err == nil {
				ev.Email = addr
			}
		}
		if ev.At.IsZero() {
			ev.At = e.now()
		}
		out, err := e.store.ApplyEvent(ctx, ev, ev.Type.Effect())
		if err != nil {
			return res, fmt.Errorf("apply event %s: %w", ev.EventID, err)
		}
		switch out {
		case EventApplied:
			res.Applied++
		case EventDuplicate:
			res.Duplicates++
		default:
			res.Unknown++
			e.log.Warn("event for an unknown recipient ignored", "provider", ev.Provider, "event", ev.Type,
				"event_id", ev.EventID, "campaign", ev.CampaignID, "recipient", ev.RecipientID)
		}
	}
	return res, nil
}

// Unsubscribe handles a one-click unsubscribe (RFC 8058): it verifies the
// token, and puts the recipient's address on the suppression list with an
// event record. EINVALID for a forged or malformed token, ENOTFOUND when the
// recipient no longer exists.
func (e *Engine) Unsubscribe(ctx context.Context, u *Unsubscriber, token string) (*Recipient, error) {
	cid, rid, err := u.Parse(token)
	if err != nil {
		return nil, err
	}
	r, err := e.store.Recipient(ctx, rid)
	if err != nil {
		return nil, err
	}
	if r.CampaignID != cid {
		return nil, Errorf(EINVALID, "unsubscribe token does not match its recipient")
	}
	ev := DeliveryEvent{
		Provider: "campaignd", EventID: fmt.Sprintf("unsubscribe:%d:%d", cid, rid), Type: EventUnsubscribe,
		CampaignID: cid, RecipientID: rid, Email: r.Email, Reason: "one-click unsubscribe", At: e.now(),
	}
	out, err := e.store.ApplyEvent(ctx, ev, ev.Type.Effect())
	if err != nil {
		return nil, fmt.Errorf("unsubscribe: %w", err)
	}
	// The event id is one per recipient, so a second click is a duplicate
	// event; but the address may have been unsuppressed since, and the
	// click must still take effect.
	if out == EventDuplicate {
		if err := e.store.Suppress(ctx, Suppression{Email: r.Email, Reason: string(ev.Type) + ": " + ev.Reason,
			Source: ev.Type.SuppressionSource(), CreatedAt: ev.At}); err != nil {
			return nil, fmt.Errorf("unsubscribe: %w", err)
		}
	}
	return r, nil
}

// SuppressionSource names the suppression-list source for an event type:
// SourceComplaint, SourceUnsubscribe, or the type itself (SourceBounce,
// SourceDropped).
func (t EventType) SuppressionSource() SuppressionSource {
	switch t {
	case EventSpamReport:
		return SourceComplaint
	case EventUnsubscribe, EventGroupUnsubscribe:
		return SourceUnsubscribe
	}
	return SuppressionSource(strings.ToLower(string(t)))
}

// RecipientDetail is one recipient of a campaign with every delivery event
// recorded about it, oldest first: what the operator looks at to learn why
// a message deferred, bounced or drew a complaint.
type RecipientDetail struct {
	Recipient *Recipient       `json:"recipient"`
	Events    []*DeliveryEvent `json:"events"`
}

// RecipientDetail returns campaign id's recipient of address email
// (normalised as RecipientByEmail normalises it) with its recorded events,
// oldest first; Events is empty, never nil, when none was recorded.
// ENOTFOUND for an unknown campaign or an address the campaign does not
// have, EINVALID for an unusable address.
func (e *Engine) RecipientDetail(ctx context.Context, id int64, email string) (*RecipientDetail, error) {
	r, err := e.RecipientByEmail(ctx, id, email)
	if err != nil {
		return nil, err
	}
	evs, err := e.store.Events(ctx, r.ID)
	if err != nil {
		return nil, fmt.Errorf("recipient detail: %w", err)
	}
	if evs == nil {
		evs = []*DeliveryEvent{}
	}
	return &RecipientDetail{Recipient: r, Events: evs}, nil
}
