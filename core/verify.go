package core

import (
	"context"
	"fmt"
	"time"
)

// StatusAudit is what one scan of the recipients table found for one
// (campaign, status) pair: the real count and the rows breaking a rule.
type StatusAudit struct {
	CampaignID          int64
	Status              RecipientStatus
	Count               int64
	SendingWithoutLease int64 // SENDING with no lease or claim token
	ExpiredLeases       int64 // SENDING with an expired lease: recovery's work
	SentWithoutProof    int64 // SENT with no provider id or sent time
	AttemptsOutOfRange  int64 // attempts < 0 or > MaxAttemptsCeiling: impossible under any configuration
	AttemptsAboveLimit  int64 // attempts > the max_attempts asked about: legal if the limit was lowered since
	QueuedWithoutDue    int64 // QUEUED with no next_attempt_at: never claimable
	FailedWithoutReason int64 // FAILED or BOUNCED with no error class
	Delivered           int64 // with a sent time: SENT, or BOUNCED after it was sent
}

// AuditSnapshot is what Store.Audit read in one transaction: the
// campaigns with their counters, and what the scan of their recipients
// found.
type AuditSnapshot struct {
	Campaigns []*Campaign
	Statuses  []StatusAudit
	// MinuteSent sums each campaign's per-minute SENT counts (see
	// Store.Minutes); a campaign without any is absent.
	MinuteSent map[int64]int64
}

// Violation is one broken invariant.
type Violation struct {
	CampaignID int64  `json:"campaign_id"`
	Check      string `json:"check"`
	Message    string `json:"message"`
}

// VerifyReport is the result of an audit: Violations empty means every
// invariant holds. Notes are conditions that are not errors (expired leases
// the next tick will recover).
type VerifyReport struct {
	Campaigns  int           `json:"campaigns"`
	Recipients int64         `json:"recipients"`
	Violations []Violation   `json:"violations"`
	Notes      []string      `json:"notes"`
	Duration   time.Duration `json:"duration_ns"`
}

// OK reports whether no invariant is broken.
func (r *VerifyReport) OK() bool { return len(r.Violations) == 0 }

// Verify audits the database's invariants for one campaign (id > 0) or all:
// each recipient in one known state; counters equal to real counts; no
// SENDING row without a lease (expired leases are noted, recovery handles
// them); no SENT row without provider id or sent time; attempts within
// 0..MaxAttemptsCeiling; no QUEUED row that can never be claimed; no FAILED row
// without its reason; per-minute SENT counts adding up to the rows with a
// sent time; no COMPLETED campaign with anything left to send. It
// reads only, in one read transaction (so it may run beside a daemon that
// is sending): one scan of the recipients (of the campaign), so it costs
// about as much as a COUNT(*). ENOTFOUND for an unknown campaign.
//
// Attempts are judged only for values no configuration allows, not
// against the current max_attempts: the limit is reloadable (SIGHUP) and
// the database does not record which limit was in force when a row was
// tried, so a row with more attempts than today's limit had them legally
// under an earlier, higher one (an operator retry resets attempts to 0,
// so none exceeds the limit of its time). Such rows are a note, since
// their next transient failure fails them.
func (e *Engine) Verify(ctx context.Context, id int64) (*VerifyReport, error) {
	start := e.now()
	lim := e.Limits()
	snap, err := e.store.Audit(ctx, id, start, lim.MaxAttempts)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	campaigns, audits := snap.Campaigns, snap.Statuses
	rep := &VerifyReport{Campaigns: len(campaigns), Violations: []Violation{}, Notes: []string{}}
	real := map[int64]*Stats{}
	delivered := map[int64]int64{}
	byID := map[int64]*Campaign{}
	for _, c := range campaigns {
		real[c.ID] = &Stats{}
		byID[c.ID] = c
	}
	add := func(cid int64, check, format string, args ...any) {
		rep.Violations = append(rep.Violations, Violation{CampaignID: cid, Check: check, Message: fmt.Sprintf(format, args...)})
	}
	for _, a := range audits {
		rep.Recipients += a.Count
		st := real[a.CampaignID]
		if st == nil {
			add(a.CampaignID, "orphan", "%d recipients belong to campaign %d, which does not exist", a.Count, a.CampaignID)
			continue
		}
		st.Total += a.Count
		delivered[a.CampaignID] += a.Delivered
		switch a.Status {
		case RecipientPending:
			st.Pending += a.Count
		case RecipientQueued:
			st.Queued += a.Count
		case RecipientSending:
			st.Sending += a.Count
		case RecipientSent:
			st.Sent += a.Count
		case RecipientFailed:
			st.Failed += a.Count
		case RecipientBounced:
			st.Bounced += a.Count
		default:
			add(a.CampaignID, "state", "%d recipients are in unknown state %q", a.Count, a.Status)
		}
		if a.SendingWithoutLease > 0 {
			add(a.CampaignID, "lease", "%d SENDING recipients have no lease or claim token: no tick owns them and recovery cannot see them", a.SendingWithoutLease)
		}
		if a.ExpiredLeases > 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("campaign %d: %d SENDING recipients have an expired lease; the next tick recovers them (in_doubt = %s)", a.CampaignID, a.ExpiredLeases, lim.InDoubt))
		}
		if a.SentWithoutProof > 0 {
			add(a.CampaignID, "sent", "%d SENT recipients have no provider id or sent time", a.SentWithoutProof)
		}
		if a.AttemptsOutOfRange > 0 {
			add(a.CampaignID, "attempts", "%d %s recipients have attempts outside 0..%d, which no max_attempts allows", a.AttemptsOutOfRange, a.Status, MaxAttemptsCeiling)
		}
		if n := a.AttemptsAboveLimit - a.AttemptsOutOfRange; n > 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("campaign %d: %d %s recipients have more attempts than the current max_attempts (%d): tried under a higher limit", a.CampaignID, n, a.Status, lim.MaxAttempts))
		}
		if a.QueuedWithoutDue > 0 {
			add(a.CampaignID, "queued", "%d QUEUED recipients have no next attempt time and can never be claimed", a.QueuedWithoutDue)
		}
		if a.FailedWithoutReason > 0 {
			add(a.CampaignID, "reason", "%d %s recipients have no recorded reason", a.FailedWithoutReason, a.Status)
		}
	}
	for _, c := range campaigns {
		got := *real[c.ID]
		if got != c.Stats {
			add(c.ID, "counters", "counters %+v differ from the real counts %+v", c.Stats, got)
		}
		// A SENT outcome is counted in its minute in the transaction that
		// records it, and a sent time is never cleared: the minutes' sum
		// is the rows with a sent time. (Failures are counted as events
		// there, and a retry takes them back out of the FAILED rows, so
		// they cannot be checked this way.)
		if m := snap.MinuteSent[c.ID]; m != delivered[c.ID] {
			add(c.ID, "minutes", "the per-minute counts add up to %d sent, but %d recipients have a sent time", m, delivered[c.ID])
		}
		if c.Status == CampaignCompleted && got.Unfinished() > 0 {
			add(c.ID, "completed", "campaign is COMPLETED but %d recipients are still pending, queued or sending", got.Unfinished())
		}
		if c.Status == CampaignCancelled && got.Pending+got.Queued > 0 {
			// A send in flight at the cancel that came back for a retry.
			rep.Notes = append(rep.Notes, fmt.Sprintf("campaign %d: CANCELLED with %d recipients still pending or queued; the next tick fails them (class cancelled)", c.ID, got.Pending+got.Queued))
		}
	}
	rep.Duration = e.now().Sub(start)
	return rep, nil
}
