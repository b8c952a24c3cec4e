package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/campaignd/campaignd/core"
)

// UpdateCampaign replaces campaign c.ID's content and settings with c's
// (validated by the caller) and sets c.UpdatedAt, in one transaction that
// first asks core.Refused whether the campaign's current status allows an
// edit. ENOTFOUND for an unknown campaign, the ECONFLICT of core.Refused
// when its status does not allow it.
func (db *DB) UpdateCampaign(ctx context.Context, c *core.Campaign, now time.Time) error {
	if c == nil {
		return core.Errorf(core.EINVALID, "campaign: required")
	}
	headers, err := encodeHeaders(c.Headers)
	if err != nil {
		return fmt.Errorf("update campaign: %w", err)
	}
	now = orNow(now)
	return db.writeTx(ctx, "update campaign", func(tx *sql.Tx) error {
		cur, err := campaignState(ctx, tx, c.ID)
		if err != nil {
			return err
		}
		if err := core.Refused(cur, core.ActionEdit); err != nil {
			return err
		}
		window, notBefore, expires := scheduleArgs(c.Schedule)
		_, err = tx.ExecContext(ctx, `UPDATE campaigns SET name = ?, sender = ?, from_addr = ?, reply_to = ?,
			subject = ?, text_body = ?, html_body = ?, headers = ?, concurrency = ?, batch_size = ?,
			template_attrs = ?, updated_at = ?, send_window = ?, not_before = ?, expires_at = ?
			WHERE id = ?`,
			c.Name, c.Sender, c.From, c.ReplyTo, c.Subject, c.Text, c.HTML, headers,
			c.Concurrency, c.BatchSize, encodeTemplateAttrs(c.TemplateAttrs), ms(now), window, notBefore, expires, c.ID)
		if err == nil {
			c.UpdatedAt = fromMS(ms(now))
		}
		return err
	})
}

// UpdateSchedule replaces campaign id's send window, not-before and expiry
// with s's (validated by the caller), in one transaction that first asks
// core.Refused whether the campaign's current status allows
// core.ActionSchedule (every status but CANCELLED). Its content, status
// and recipients are untouched. ENOTFOUND for an unknown campaign, the
// ECONFLICT of core.Refused when its status does not allow it.
func (db *DB) UpdateSchedule(ctx context.Context, id int64, s core.Schedule, now time.Time) error {
	now = orNow(now)
	window, notBefore, expires := scheduleArgs(s)
	return db.writeTx(ctx, "update schedule", func(tx *sql.Tx) error {
		cur, err := campaignState(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := core.Refused(cur, core.ActionSchedule); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE campaigns SET send_window = ?, not_before = ?, expires_at = ?, updated_at = ?
			WHERE id = ?`, window, notBefore, expires, ms(now), id)
		return err
	})
}

// campaignState reads the id, status and paused_from of a campaign inside
// tx, what core.Refused needs; ENOTFOUND if it is missing.
func campaignState(ctx context.Context, tx *sql.Tx, id int64) (*core.Campaign, error) {
	var st string
	var pausedFrom sql.NullString
	err := tx.QueryRowContext(ctx, `SELECT status, paused_from FROM campaigns WHERE id = ?`, id).Scan(&st, &pausedFrom)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoCampaign(id)
	}
	if err != nil {
		return nil, err
	}
	return &core.Campaign{ID: id, Status: core.CampaignStatus(st), PausedFrom: core.CampaignStatus(pausedFrom.String)}, nil
}

// cloneRecipientsSQL copies a campaign's recipients into another as new
// rows. Parameters: ?1 the new campaign, ?2 the status, ?3 now, ?4 and ?5
// the source's id range, ?6 the source. It walks the source's rowid range
// in order (+campaign_id keeps the planner off the (campaign_id, email)
// index, which would need a sort) and looks each address up in the
// suppression list's primary key (NOCASE, as the list compares).
const cloneRecipientsSQL = `INSERT INTO recipients
	(campaign_id, email, name, attrs, status, created_at, updated_at)
	SELECT ?1, r.email, r.name, r.attrs, ?2, ?3, ?3 FROM recipients r
	WHERE r.id BETWEEN ?4 AND ?5 AND +r.campaign_id = ?6
	AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.email = r.email)
	ORDER BY r.id`

// CloneCampaign stores c (validated by the caller) as a new DRAFT campaign
// and sets its ID, Status, CreatedAt, UpdatedAt and Stats. With
// withRecipients, in the same transaction, one INSERT ... SELECT copies
// campaign srcID's recipients (address, name, attributes; in id order) as
// PENDING, leaving out addresses on the suppression list, and the new
// campaign's counters and id range are set from what it inserted.
// ENOTFOUND when srcID does not exist.
func (db *DB) CloneCampaign(ctx context.Context, c *core.Campaign, srcID int64, withRecipients bool, now time.Time) (core.CloneResult, error) {
	var res core.CloneResult
	if c == nil {
		return res, core.Errorf(core.EINVALID, "campaign: required")
	}
	headers, err := encodeHeaders(c.Headers)
	if err != nil {
		return res, fmt.Errorf("clone campaign: %w", err)
	}
	now = fromMS(ms(orNow(now)))
	var id int64
	err = db.writeTx(ctx, "clone campaign", func(tx *sql.Tx) error {
		res = core.CloneResult{}
		var srcTotal int64
		var first, last sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT total, first_recipient_id, last_recipient_id FROM campaigns WHERE id = ?`,
			srcID).Scan(&srcTotal, &first, &last)
		if errors.Is(err, sql.ErrNoRows) {
			return errNoCampaign(srcID)
		}
		if err != nil {
			return err
		}
		if id, err = insertCampaign(ctx, tx, c, headers, now); err != nil {
			return err
		}
		if !withRecipients || !first.Valid {
			return nil
		}
		var firstID int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) + 1 FROM recipients`).Scan(&firstID); err != nil {
			return err
		}
		// The source's rows are walked in its id range, like the listings;
		// new rows take max(id)+1 one after the other, so the clone's rows
		// are one contiguous range too.
		out, err := tx.ExecContext(ctx, cloneRecipientsSQL,
			id, string(core.RecipientPending), ms(now), first.Int64, last.Int64, srcID)
		if err != nil {
			return err
		}
		if res.Copied, err = out.RowsAffected(); err != nil {
			return err
		}
		res.Suppressed = srcTotal - res.Copied
		if res.Copied == 0 {
			return nil
		}
		lastID, err := out.LastInsertId()
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE campaigns SET total = ?1, pending = ?1,
			first_recipient_id = ?2, last_recipient_id = ?3 WHERE id = ?4`, res.Copied, firstID, lastID, id)
		return err
	})
	if err != nil {
		return core.CloneResult{}, err
	}
	c.ID, c.Status, c.PausedFrom = id, core.CampaignDraft, ""
	c.CreatedAt, c.UpdatedAt = now, now
	c.Stats = core.Stats{Total: res.Copied, Pending: res.Copied}
	return res, nil
}

// DeleteCampaign removes campaign id with its events, recipients and
// executions, and writes its deleted_campaigns record, in one transaction
// that first asks core.Refused whether its status allows a delete. With
// dryRun it counts what it would remove in one read transaction and
// changes nothing. ENOTFOUND for an unknown campaign, the ECONFLICT of
// core.Refused when its status does not allow it, ECONFLICT while any of
// its recipients is SENDING (a cancelled campaign's sends in flight).
func (db *DB) DeleteCampaign(ctx context.Context, id int64, by string, dryRun bool, now time.Time) (*core.DeleteResult, error) {
	var res *core.DeleteResult
	count := func(tx *sql.Tx) error {
		cur, err := campaignState(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := core.Refused(cur, core.ActionDelete); err != nil {
			return err
		}
		res = &core.DeleteResult{CampaignID: id, Status: cur.Status, DryRun: dryRun}
		var inFlight int64
		if err := tx.QueryRowContext(ctx, `SELECT name, total, sending,
			(SELECT count(*) FROM executions WHERE campaign_id = ?1),
			(SELECT count(*) FROM events WHERE campaign_id = ?1)
			FROM campaigns WHERE id = ?1`, id).Scan(&res.Name, &res.Recipients, &inFlight, &res.Executions, &res.Events); err != nil {
			return err
		}
		if inFlight > 0 {
			// A CANCELLED campaign's sends already in flight finish; their
			// outcomes must find their rows.
			return core.Errorf(core.ECONFLICT, "campaign %d has %d sends in flight: delete it once the tick sending them has ended", id, inFlight)
		}
		return nil
	}
	if dryRun {
		tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return nil, internal("count campaign", err)
		}
		defer func() { _ = tx.Rollback() }()
		if err := count(tx); err != nil {
			return nil, internal("count campaign", err)
		}
		return res, nil
	}
	err := db.writeTx(ctx, "delete campaign", func(tx *sql.Tx) error {
		if err := count(tx); err != nil {
			return err
		}
		// The deleted_campaigns row first: it reads the counters the
		// campaign row still has. Then children before parents, since the
		// events and executions foreign keys are checked per statement.
		if _, err := tx.ExecContext(ctx, `INSERT INTO deleted_campaigns
			(id, name, sender, status, created_at, total, sent, failed, bounced, executions, events, deleted_by, deleted_at)
			SELECT id, name, sender, status, created_at, total, sent, failed, bounced, ?2, ?3, ?4, ?5
			FROM campaigns WHERE id = ?1`, id, res.Executions, res.Events, by, ms(orNow(now))); err != nil {
			return err
		}
		for _, q := range []string{
			`DELETE FROM events WHERE campaign_id = ?`,
			`DELETE FROM recipients WHERE campaign_id = ?`,
			`DELETE FROM executions WHERE campaign_id = ?`,
			`DELETE FROM campaign_minutes WHERE campaign_id = ?`,
			`DELETE FROM campaigns WHERE id = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// DeletedCampaigns lists the records of deleted campaigns, newest first,
// at most limit (see core.ListLimit).
func (db *DB) DeletedCampaigns(ctx context.Context, limit int) ([]*core.DeletedCampaign, error) {
	limit, err := core.ListLimit("limit", limit)
	if err != nil {
		return nil, err
	}
	rows, err := db.r.QueryContext(ctx, `SELECT id, name, status, total, sent, failed, bounced, deleted_by, deleted_at
		FROM deleted_campaigns ORDER BY deleted_at DESC, id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, internal("list deleted campaigns", err)
	}
	defer rows.Close()
	var out []*core.DeletedCampaign
	for rows.Next() {
		var d core.DeletedCampaign
		var at int64
		if err := rows.Scan(&d.ID, &d.Name, &d.Status, &d.Stats.Total, &d.Stats.Sent, &d.Stats.Failed,
			&d.Stats.Bounced, &d.DeletedBy, &at); err != nil {
			return nil, internal("list deleted campaigns", err)
		}
		d.DeletedAt = fromMS(at)
		out = append(out, &d)
	}
	if err := rows.Err(); err != nil {
		return nil, internal("list deleted campaigns", err)
	}
	return out, nil
}
