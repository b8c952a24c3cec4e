package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/campaignd/campaignd/core"
)

// executeSQL queues a campaign's PENDING rows. The id range and
// +campaign_id (which the planner cannot match to an index) keep it on a
// sequential rowid walk: no index to read, and only the claim index to
// write, appended in order (same time, growing ids).
const executeSQL = `UPDATE recipients
	SET status = 'QUEUED', queued_at = ?1, next_attempt_at = ?1, updated_at = ?1
	WHERE id BETWEEN ?2 AND ?3 AND +campaign_id = ?4 AND status = 'PENDING'`

// Execute, in one immediate transaction, moves every PENDING recipient of
// an ACTIVE campaign to QUEUED (queued_at = next_attempt_at = now) with one
// UPDATE over the campaign's id range, moves the counters and the campaign
// to SENDING, and writes a COMPLETED execution record, which it returns.
// ENOTFOUND for an unknown campaign, ECONFLICT naming the status when it is
// not ACTIVE.
func (db *DB) Execute(ctx context.Context, campaignID int64, by string, now time.Time) (*core.Execution, error) {
	now = fromMS(ms(orNow(now)))
	at := ms(now)
	ex := &core.Execution{CampaignID: campaignID, Status: core.ExecutionCompleted, By: by, At: now}
	err := db.writeTx(ctx, "execute", func(tx *sql.Tx) error {
		var (
			status      string
			first, last sql.NullInt64
			pending     int64
		)
		err := tx.QueryRowContext(ctx, `SELECT status, first_recipient_id, last_recipient_id, pending
			FROM campaigns WHERE id = ?`, campaignID).Scan(&status, &first, &last, &pending)
		if errors.Is(err, sql.ErrNoRows) {
			return errNoCampaign(campaignID)
		}
		if err != nil {
			return err
		}
		if core.CampaignStatus(status) != core.CampaignActive {
			return core.Errorf(core.ECONFLICT, "campaign %d is %s, not ACTIVE: only an ACTIVE campaign can be executed", campaignID, status)
		}
		ex.Queued = 0
		if pending > 0 && first.Valid {
			res, err := tx.ExecContext(ctx, executeSQL, at, first.Int64, last.Int64, campaignID)
			if err != nil {
				return fmt.Errorf("queue recipients: %w", err)
			}
			if ex.Queued, err = res.RowsAffected(); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE campaigns SET status = 'SENDING', paused_from = NULL, updated_at = ?1,
			started_at = coalesce(started_at, ?1), pending = pending - ?2, queued = queued + ?2 WHERE id = ?3`, at, ex.Queued, campaignID); err != nil {
			return fmt.Errorf("update campaign: %w", err)
		}
		return tx.QueryRowContext(ctx, `INSERT INTO executions (campaign_id, status, queued, by_actor, at)
			VALUES (?, 'COMPLETED', ?, ?, ?) RETURNING id`, campaignID, ex.Queued, by, at).Scan(&ex.ID)
	})
	if err != nil {
		return nil, err
	}
	return ex, nil
}

// RecordFailedExecution writes a FAILED execution record naming the cause
// and returns it. ENOTFOUND for an unknown campaign.
func (db *DB) RecordFailedExecution(ctx context.Context, campaignID int64, by string, cause string, now time.Time) (*core.Execution, error) {
	now = fromMS(ms(orNow(now)))
	ex := &core.Execution{CampaignID: campaignID, Status: core.ExecutionFailed, Error: cause, By: by, At: now}
	err := db.writeTx(ctx, "record failed execution", func(tx *sql.Tx) error {
		if _, err := campaignStatus(ctx, tx, campaignID); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `INSERT INTO executions (campaign_id, status, queued, error, by_actor, at)
			VALUES (?, 'FAILED', 0, ?, ?, ?) RETURNING id`, campaignID, cause, by, ms(now)).Scan(&ex.ID)
	})
	if err != nil {
		return nil, err
	}
	return ex, nil
}

// Executions returns execution records, newest first, at most limit of
// them (see core.ListLimit); campaignID 0 means every campaign's.
// ENOTFOUND for an unknown campaign.
func (db *DB) Executions(ctx context.Context, campaignID int64, limit int) ([]*core.Execution, error) {
	limit, err := core.ListLimit("limit", limit)
	if err != nil {
		return nil, err
	}
	const op = "list executions"
	// The outcomes are the campaign's counters (see core.Execution): one
	// primary-key read per record.
	const cols = `e.id, e.campaign_id, e.queued, e.status, e.error, e.by_actor, e.at, c.sent, c.failed, c.bounced
		FROM executions AS e JOIN campaigns AS c ON c.id = e.campaign_id`
	query := `SELECT ` + cols + ` ORDER BY e.id DESC LIMIT ?`
	args := []any{limit}
	if campaignID != 0 {
		var one int
		err := db.r.QueryRowContext(ctx, `SELECT 1 FROM campaigns WHERE id = ?`, campaignID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, errNoCampaign(campaignID)
		}
		if err != nil {
			return nil, internal(op, err)
		}
		query = `SELECT ` + cols + ` WHERE e.campaign_id = ? ORDER BY e.id DESC LIMIT ?`
		args = []any{campaignID, limit}
	}
	rows, err := db.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var out []*core.Execution
	for rows.Next() {
		var e core.Execution
		var at int64
		var st core.Stats
		if err := rows.Scan(&e.ID, &e.CampaignID, &e.Queued, &e.Status, &e.Error, &e.By, &at, &st.Sent, &st.Failed, &st.Bounced); err != nil {
			return nil, internal(op, err)
		}
		e.At = fromMS(at)
		e.SetOutcomes(st)
		out = append(out, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, internal(op, err)
	}
	return out, nil
}
