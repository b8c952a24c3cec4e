package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/campaignd/campaignd/core"
)

// DueCampaigns returns, from the read pool, the SENDING campaigns that have
// QUEUED recipients due at now, by id; one index probe per SENDING campaign.
func (db *DB) DueCampaigns(ctx context.Context, now time.Time) ([]*core.Campaign, error) {
	return db.queryCampaigns(ctx, "due campaigns", `SELECT `+campaignCols+` FROM campaigns AS c
		WHERE c.status = 'SENDING' AND c.queued > 0 AND EXISTS (
			SELECT 1 FROM recipients AS r INDEXED BY recipients_claim
			WHERE r.campaign_id = c.id AND r.status = 'QUEUED' AND r.next_attempt_at <= ?)
		ORDER BY c.id`, ms(orNow(now)))
}

// Queue summarises, per SENDING or PAUSED campaign (by id), what is due at
// now, waiting for a later attempt, and in flight, and the earliest
// next_attempt_at; for a SENDING campaign whose schedule is closed at now,
// why and when it opens (Closed, OpensAt). A PAUSED campaign's queued rows are Held, never due or
// waiting, and it has no next attempt. It reads counters plus the claim index's entries that
// are not yet due (retries waiting), never the whole queue.
func (db *DB) Queue(ctx context.Context, now time.Time) ([]*core.QueueSummary, error) {
	const op = "queue summary"
	rows, err := db.r.QueryContext(ctx, `SELECT c.id, c.name, c.sender, c.status, c.queued, c.sending,
			(SELECT count(*) FROM recipients AS r INDEXED BY recipients_claim
				WHERE r.campaign_id = c.id AND r.status = 'QUEUED' AND r.next_attempt_at > ?1),
			(SELECT min(r.next_attempt_at) FROM recipients AS r INDEXED BY recipients_claim
				WHERE r.campaign_id = c.id AND r.status = 'QUEUED'),
			c.send_window, c.not_before, c.expires_at
		FROM campaigns AS c WHERE c.status IN ('SENDING', 'PAUSED') ORDER BY c.id`, ms(orNow(now)))
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var out []*core.QueueSummary
	for rows.Next() {
		var q core.QueueSummary
		var queued, waiting int64
		var next, notBefore, expires sql.NullInt64
		var window sql.NullString
		if err := rows.Scan(&q.CampaignID, &q.CampaignName, &q.Sender, &q.Status, &queued, &q.InFlight, &waiting, &next,
			&window, &notBefore, &expires); err != nil {
			return nil, internal(op, err)
		}
		sched := core.Schedule{NotBefore: fromNullMS(notBefore), Expires: fromNullMS(expires)}
		if window.Valid {
			if sched.SendWindow, err = core.ParseSendWindow(window.String); err != nil {
				return nil, internal(op, fmt.Errorf("campaign %d: decode send window: %w", q.CampaignID, err))
			}
		}
		if q.Status == core.CampaignPaused {
			// Nothing of a paused campaign is due, however old its
			// next_attempt_at: the tick does not look at it.
			q.Held = queued
		} else {
			q.Waiting = waiting
			q.DueNow = max(queued-waiting, 0)
			q.NextAttempt = fromNullMS(next)
			if q.Closed = sched.ClosedBy(orNow(now)); q.Closed != "" {
				if t := sched.NextSend(orNow(now)); !t.IsZero() {
					q.OpensAt = &t
				}
			}
		}
		out = append(out, &q)
	}
	if err := rows.Err(); err != nil {
		return nil, internal(op, err)
	}
	return out, nil
}
