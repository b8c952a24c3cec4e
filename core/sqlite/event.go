package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/campaignd/campaignd/core"
)

// ApplyEvent records a provider event in one transaction; see core.Store.
func (db *DB) ApplyEvent(ctx context.Context, ev core.DeliveryEvent, effect core.EventEffect) (core.EventOutcome, error) {
	out := core.EventApplied
	err := db.writeTx(ctx, "apply event", func(tx *sql.Tx) error {
		var id, campaignID int64
		var email, status string
		err := tx.QueryRowContext(ctx, `SELECT id, campaign_id, email, status FROM recipients WHERE id = ? AND campaign_id = ?`,
			ev.RecipientID, ev.CampaignID).Scan(&id, &campaignID, &email, &status)
		if errors.Is(err, sql.ErrNoRows) && ev.Email != "" && ev.CampaignID > 0 {
			err = tx.QueryRowContext(ctx, `SELECT id, campaign_id, email, status FROM recipients WHERE campaign_id = ? AND email = ?`,
				ev.CampaignID, ev.Email).Scan(&id, &campaignID, &email, &status)
		}
		if errors.Is(err, sql.ErrNoRows) {
			out = core.EventUnknown
			return nil
		}
		if err != nil {
			return fmt.Errorf("find recipient: %w", err)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO events (provider, event_id, type, campaign_id, recipient_id, email, reason, at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (provider, event_id) DO NOTHING`,
			ev.Provider, ev.EventID, string(ev.Type), campaignID, id, email, ev.Reason, ms(orNow(ev.At)))
		if err != nil {
			return fmt.Errorf("insert event: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			out = core.EventDuplicate
			return nil
		}
		if effect.Bounce && status == string(core.RecipientSent) {
			if _, err := tx.ExecContext(ctx, `UPDATE recipients SET status = 'BOUNCED', updated_at = ?,
					last_error_class = 'bounced', last_error_code = NULL, last_enhanced_code = NULL, last_error = ?
				WHERE id = ? AND status = 'SENT'`, ms(orNow(ev.At)), string(ev.Type)+": "+ev.Reason, id); err != nil {
				return fmt.Errorf("bounce recipient: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE campaigns SET sent = sent - 1, bounced = bounced + 1 WHERE id = ?`, campaignID); err != nil {
				return fmt.Errorf("update counters: %w", err)
			}
		}
		if effect.Suppress {
			reason := string(ev.Type)
			if ev.Reason != "" {
				reason += ": " + ev.Reason
			}
			return upsertSuppression(ctx, tx, core.Suppression{Email: email, Reason: reason,
				Source: ev.Type.SuppressionSource(), CreatedAt: orNow(ev.At)})
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return out, nil
}

// Events lists a recipient's recorded events, oldest first.
func (db *DB) Events(ctx context.Context, recipientID int64) ([]*core.DeliveryEvent, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT provider, event_id, type, campaign_id, recipient_id, email, reason, at
		FROM events WHERE recipient_id = ? ORDER BY id`, recipientID)
	if err != nil {
		return nil, internal("list events", err)
	}
	defer rows.Close()
	var out []*core.DeliveryEvent
	for rows.Next() {
		var e core.DeliveryEvent
		var typ string
		var at int64
		if err := rows.Scan(&e.Provider, &e.EventID, &typ, &e.CampaignID, &e.RecipientID, &e.Email, &e.Reason, &at); err != nil {
			return nil, internal("list events", err)
		}
		e.Type, e.At = core.EventType(typ), fromMS(at)
		out = append(out, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, internal("list events", err)
	}
	return out, nil
}
