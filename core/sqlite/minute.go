package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/campaignd/campaignd/core"
)

// minuteCounts is what one transaction adds to a campaign's minute row.
type minuteCounts struct {
	sent, failed, bounced, retried int64
	lastFailure                    string
}

// bumpMinuteSQL adds to the (campaign, minute) row, creating it: one
// primary-key probe and write in a small WITHOUT ROWID table.
const bumpMinuteSQL = `INSERT INTO campaign_minutes (campaign_id, minute, sent, failed, bounced, retried, last_failure)
	VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
	ON CONFLICT (campaign_id, minute) DO UPDATE SET
		sent = sent + excluded.sent, failed = failed + excluded.failed,
		bounced = bounced + excluded.bounced, retried = retried + excluded.retried,
		last_failure = coalesce(excluded.last_failure, last_failure)`

// bumpMinute adds n to campaign id's counts for the minute of atMS inside
// tx, the transaction that records the outcomes it counts, so the minute
// table moves with the rows (see migration 0004 and Audit). Nothing to add
// writes nothing.
func bumpMinute(ctx context.Context, tx *sql.Tx, id, atMS int64, n minuteCounts) error {
	if n.sent == 0 && n.failed == 0 && n.bounced == 0 && n.retried == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, bumpMinuteSQL, id, atMS/60000, n.sent, n.failed, n.bounced, n.retried,
		nullString(n.lastFailure)); err != nil {
		return fmt.Errorf("count outcome minute: %w", err)
	}
	return nil
}

// failureLine is a minute's "last failure": address, class, codes, text,
// bounded so a long provider reply cannot bloat the row.
func failureLine(email string, o core.Outcome) string {
	var b strings.Builder
	b.WriteString(email)
	b.WriteString(": ")
	b.WriteString(string(o.ErrorClass))
	if o.ErrorCode != 0 {
		b.WriteString(" " + strconv.Itoa(o.ErrorCode))
	}
	if o.EnhancedCode != "" {
		b.WriteString(" " + o.EnhancedCode)
	}
	if o.Error != "" {
		b.WriteString(" " + o.Error)
	}
	s := b.String()
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:300], "") + "…"
	}
	return s
}

// minutesSQL reads a range of a campaign's minutes by primary key.
const minutesSQL = `SELECT minute, sent, failed, bounced, retried, last_failure FROM campaign_minutes
	WHERE campaign_id = ? AND minute BETWEEN ? AND ? ORDER BY minute`

// Minutes returns campaign id's minute counts from the minute of from to
// the minute of to (both included), oldest first: a range read of the
// primary key bounded at both ends, at most as many rows as minutes asked
// for (plan pinned by TestQueryPlans). An unknown campaign has none.
func (db *DB) Minutes(ctx context.Context, campaignID int64, from, to time.Time) ([]core.MinuteCount, error) {
	const op = "read outcome minutes"
	rows, err := db.r.QueryContext(ctx, minutesSQL, campaignID, ms(orNow(from))/60000, ms(orNow(to))/60000)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	out := []core.MinuteCount{}
	for rows.Next() {
		var m core.MinuteCount
		var minute int64
		var last sql.NullString
		if err := rows.Scan(&minute, &m.Sent, &m.Failed, &m.Bounced, &m.Retried, &last); err != nil {
			return nil, internal(op, err)
		}
		m.Minute = time.Unix(minute*60, 0).UTC()
		m.LastFailure = last.String
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, internal(op, err)
	}
	return out, nil
}

// eachFailureSQL walks the FAILED rows through their partial index;
// eachBouncedSQL the BOUNCED ones along the campaign's id range, as
// execute walks it (no index holds them; it runs only when the counters
// say there are some).
const (
	eachFailedSQL = `SELECT id, email, status, last_error_class, last_error_code, last_enhanced_code, last_error
		FROM recipients INDEXED BY recipients_failed WHERE campaign_id = ? AND status = 'FAILED'`
	eachBouncedSQL = `SELECT id, email, status, last_error_class, last_error_code, last_enhanced_code, last_error
		FROM recipients WHERE id BETWEEN ? AND ? AND +campaign_id = ? AND status = 'BOUNCED'`
)

// EachFailure calls fn with each FAILED and then each BOUNCED recipient of
// a campaign, from one read transaction: see core.Store.EachFailure. The
// FAILED rows come through the partial index recipients_failed (one index
// entry and one row read each: on 1,000,000 failures about a second); the
// BOUNCED ones by a walk of the campaign's id range, taken only when its
// bounced counter is not 0. ENOTFOUND for an unknown campaign.
func (db *DB) EachFailure(ctx context.Context, campaignID int64, fn func(*core.Recipient) error) error {
	const op = "list failures"
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return internal(op, err)
	}
	defer tx.Rollback() // read-only: nothing to undo
	var first, last sql.NullInt64
	var failed, bounced int64
	err = tx.QueryRowContext(ctx, `SELECT first_recipient_id, last_recipient_id, failed, bounced FROM campaigns WHERE id = ?`,
		campaignID).Scan(&first, &last, &failed, &bounced)
	if errors.Is(err, sql.ErrNoRows) {
		return errNoCampaign(campaignID)
	}
	if err != nil {
		return internal(op, err)
	}
	each := func(query string, args ...any) error {
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return internal(op, err)
		}
		defer rows.Close()
		for rows.Next() {
			var r core.Recipient
			var class, enhanced, text sql.NullString
			var code sql.NullInt64
			if err := rows.Scan(&r.ID, &r.Email, &r.Status, &class, &code, &enhanced, &text); err != nil {
				return internal(op, err)
			}
			r.CampaignID = campaignID
			r.LastErrorClass, r.LastErrorCode = core.ErrorClass(class.String), int(code.Int64)
			r.LastEnhancedCode, r.LastError = enhanced.String, text.String
			if err := fn(&r); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return internal(op, err)
		}
		return nil
	}
	if failed > 0 {
		if err := each(eachFailedSQL, campaignID); err != nil {
			return err
		}
	}
	if bounced > 0 && first.Valid {
		return each(eachBouncedSQL, first.Int64, last.Int64, campaignID)
	}
	return nil
}
