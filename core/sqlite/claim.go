package sqlite

import (
	"context"
	"database/sql"
	"sort"
	"time"

	"github.com/campaignd/campaignd/core"
)

// claimSQL claims with one statement. The subquery walks the partial
// recipients_claim index from the oldest due entry (campaign_id =, then
// next_attempt_at <=, rowid last), so it reads n index entries however long
// the queue, with no sort.
const claimSQL = `UPDATE recipients
	SET status = 'SENDING', lease_until = ?1, claim_token = ?2, attempts = attempts + 1, updated_at = ?3
	WHERE id IN (SELECT id FROM recipients INDEXED BY recipients_claim
		WHERE campaign_id = ?4 AND status = 'QUEUED' AND next_attempt_at <= ?5
		ORDER BY next_attempt_at, id LIMIT ?6)
	RETURNING ` + recipientCols

// Claim moves at most n due QUEUED recipients of a SENDING campaign
// (oldest due first: next_attempt_at, then id) to SENDING with leaseUntil
// and token, attempts+1, in one UPDATE ... RETURNING plus the counter
// update, in one immediate transaction, and returns them in that order.
// Two claimers, in one process or several, never get the same row. The
// campaign's status is read in the same transaction, so a pause or cancel
// committed before the claim is never overtaken by it: a campaign that is
// not SENDING yields nothing. EINVALID for n < 1, an empty token or a lease
// that does not end after now; ENOTFOUND for an unknown campaign.
func (db *DB) Claim(ctx context.Context, campaignID int64, n int, token string, leaseUntil, now time.Time) ([]*core.Recipient, error) {
	return db.claim(ctx, nil, campaignID, n, token, leaseUntil, now)
}

// claim is Claim, under quota q when it is not nil (see ClaimQuota).
func (db *DB) claim(ctx context.Context, q *core.Quota, campaignID int64, n int, token string, leaseUntil, now time.Time) ([]*core.Recipient, error) {
	now = orNow(now)
	switch {
	case n < 1:
		return nil, core.Errorf(core.EINVALID, "claim: batch size %d is below 1", n)
	case token == "":
		return nil, core.Errorf(core.EINVALID, "claim: empty claim token")
	case !leaseUntil.After(now):
		return nil, core.Errorf(core.EINVALID, "claim: lease end %s is not after now %s", leaseUntil, now)
	}
	var rs []*core.Recipient
	err := db.writeTx(ctx, "claim batch", func(tx *sql.Tx) error {
		if st, err := campaignStatus(ctx, tx, campaignID); err != nil || st != core.CampaignSending {
			return err
		}
		var sq *core.SenderQuota
		if q != nil {
			var err error
			if sq, n, err = quotaBudget(ctx, tx, q, n, now); err != nil || n == 0 {
				return err
			}
		}
		rows, err := tx.QueryContext(ctx, claimSQL, ms(leaseUntil), token, ms(now), campaignID, ms(now), n)
		if err != nil {
			return err
		}
		if rs, err = scanRecipients(rows); err != nil || len(rs) == 0 {
			return err
		}
		if _, err = tx.ExecContext(ctx, `UPDATE campaigns SET queued = queued - ?1, sending = sending + ?1, last_tick_at = ?3
			WHERE id = ?2`, len(rs), campaignID, ms(now)); err != nil || q == nil {
			return err
		}
		return spendQuota(ctx, tx, sq, q.Rates, len(rs), now)
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(rs, func(i, j int) bool {
		a, b := rs[i].NextAttemptAt, rs[j].NextAttemptAt
		if a != nil && b != nil && !a.Equal(*b) {
			return a.Before(*b)
		}
		return rs[i].ID < rs[j].ID
	})
	return rs, nil
}
