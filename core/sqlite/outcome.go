package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/campaignd/campaignd/core"
)

// RecordOutcome applies one outcome in its own transaction: RecordOutcomes
// of one, its result as the error (ECONFLICT, EINVALID, or the
// transaction's failure).
func (db *DB) RecordOutcome(ctx context.Context, o core.Outcome) error {
	res, err := db.RecordOutcomes(ctx, []core.Outcome{o})
	if err != nil {
		return err
	}
	return res[0]
}

// RecordOutcomes applies a group of outcomes in one transaction (one
// commit, one fsync: the tick's group commit). Each outcome applies only if
// its row is still SENDING under o.ClaimToken (and, when o.CampaignID is
// set, in that campaign); otherwise it changes nothing and its result is
// ECONFLICT (the lease was taken over), and the others still apply. The
// lease and token are cleared; the campaign's counters move from sending to
// the new status, and the minute counters count it.
//
//   - SENT sets sent_at (o.At) and provider_id.
//   - FAILED and BOUNCED record the error class, code, enhanced code and text.
//   - QUEUED sets next_attempt_at (o.NextAttemptAt, or o.At when zero) and
//     records the error when one is given.
//
// RefundAttempt takes back the attempt the claim counted, whatever the
// status; o.Release is not read (a hand-back carries no error, so its last
// error stays). o.Suppress, when set, puts the address (o.Suppress.Email, or the
// recipient's) on the suppression list in the same transaction. An
// outcome of any other status or with an empty token has the result
// EINVALID and is skipped.
//
// The results are one per outcome, in order (nil: recorded). The error is
// the transaction's: when it is not nil, nothing of the group was recorded
// (every row stays as it was, SENDING under its lease) and there are no
// results.
func (db *DB) RecordOutcomes(ctx context.Context, os []core.Outcome) ([]error, error) {
	res := make([]error, len(os))
	args := make([]outcomeArgs, len(os))
	todo := 0
	for i := range os {
		args[i], res[i] = newOutcomeArgs(&os[i])
		if res[i] == nil {
			todo++
		}
	}
	if todo == 0 {
		return res, nil
	}
	err := db.writeTx(ctx, "record outcomes", func(tx *sql.Tx) error {
		// The counters move once per campaign and minute in the group, not
		// once per outcome: the same sums, fewer writes.
		var counters []campaignCounts
		var minutes []minuteDelta
		for i := range os {
			if res[i] != nil {
				continue
			}
			o, a := &os[i], &args[i]
			campaignID, email, err := applyOutcome(ctx, tx, o, a)
			if errors.Is(err, sql.ErrNoRows) {
				res[i] = core.Errorf(core.ECONFLICT,
					"recipient %d is no longer SENDING under this claim (its lease was taken over): outcome %s not recorded", o.RecipientID, o.Status)
				continue
			}
			if err != nil {
				return err
			}
			counters = countOutcome(counters, campaignID, o.Status)
			minutes = countMinute(minutes, campaignID, a.at, email, o, a.setError)
			if o.Suppress != nil {
				s := *o.Suppress
				if s.Email == "" {
					s.Email = email
				}
				if s.Source == "" {
					s.Source = core.SourceBounce
				}
				if s.CreatedAt.IsZero() {
					s.CreatedAt = fromMS(a.at)
				}
				if err := upsertSuppression(ctx, tx, s); err != nil {
					return err
				}
			}
		}
		for _, c := range counters {
			if err := c.apply(ctx, tx); err != nil {
				return fmt.Errorf("update counters: %w", err)
			}
		}
		for _, m := range minutes {
			if err := bumpMinute(ctx, tx, m.campaignID, m.minute*60000, m.n); err != nil {
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

// outcomeArgs are an outcome's statement arguments, checked before the
// transaction.
type outcomeArgs struct {
	at                 int64
	sentAt, providerID any
	nextAt, code       any
	setError, refund   int
}

func newOutcomeArgs(o *core.Outcome) (outcomeArgs, error) {
	var a outcomeArgs
	switch o.Status {
	case core.RecipientSent, core.RecipientFailed, core.RecipientBounced, core.RecipientQueued:
	default:
		return a, core.Errorf(core.EINVALID, "record outcome: status %q is not SENT, FAILED, BOUNCED or QUEUED", o.Status)
	}
	if o.ClaimToken == "" {
		return a, core.Errorf(core.EINVALID, "record outcome: empty claim token")
	}
	a.at = ms(orNow(o.At))
	switch o.Status {
	case core.RecipientSent:
		a.sentAt, a.providerID = a.at, nullString(o.ProviderID)
	case core.RecipientQueued:
		a.nextAt = a.at
		if !o.NextAttemptAt.IsZero() {
			a.nextAt = ms(o.NextAttemptAt)
		}
	}
	if o.ErrorClass != "" || o.Error != "" || o.ErrorCode != 0 || o.EnhancedCode != "" {
		a.setError = 1
	}
	if o.ErrorCode != 0 {
		a.code = o.ErrorCode
	}
	if o.RefundAttempt {
		a.refund = 1
	}
	return a, nil
}

// applyOutcome moves one row under its claim and returns its campaign and
// address; sql.ErrNoRows when the row is no longer SENDING under the token.
// The address is read back only when the outcome needs it (a failure's
// minute line, a suppression), and the campaign only when the outcome does
// not name it: the common outcome, a SENT of a tick, is one plain write.
func applyOutcome(ctx context.Context, tx *sql.Tx, o *core.Outcome, a *outcomeArgs) (campaignID int64, email string, err error) {
	needEmail := o.Suppress != nil || o.Status == core.RecipientFailed || o.Status == core.RecipientBounced
	if o.CampaignID != 0 && !needEmail {
		res, err := tx.ExecContext(ctx, recordOutcomeSQL, outcomeSQLArgs(o, a)...)
		if err != nil {
			return 0, "", err
		}
		if n, err := res.RowsAffected(); err != nil {
			return 0, "", err
		} else if n == 0 {
			return 0, "", sql.ErrNoRows
		}
		return o.CampaignID, "", nil
	}
	err = tx.QueryRowContext(ctx, recordOutcomeSQL+` RETURNING campaign_id, email`, outcomeSQLArgs(o, a)...).Scan(&campaignID, &email)
	return campaignID, email, err
}

// recordOutcomeSQL moves one row under its claim (see RecordOutcomes);
// its arguments are outcomeSQLArgs.
const recordOutcomeSQL = `UPDATE recipients SET
			status = ?1, updated_at = ?2, lease_until = NULL, claim_token = NULL,
			attempts = max(attempts - ?3, 0),
			sent_at = coalesce(?4, sent_at),
			provider_id = coalesce(?5, provider_id),
			next_attempt_at = coalesce(?6, next_attempt_at),
			last_error_class   = CASE WHEN ?7 THEN ?8  ELSE last_error_class END,
			last_error_code    = CASE WHEN ?7 THEN ?9  ELSE last_error_code END,
			last_enhanced_code = CASE WHEN ?7 THEN ?10 ELSE last_enhanced_code END,
			last_error         = CASE WHEN ?7 THEN ?11 ELSE last_error END
		WHERE id = ?12 AND claim_token = ?13 AND status = 'SENDING' AND (?14 = 0 OR campaign_id = ?14)`

func outcomeSQLArgs(o *core.Outcome, a *outcomeArgs) []any {
	return []any{string(o.Status), a.at, a.refund, a.sentAt, a.providerID, a.nextAt,
		a.setError, nullString(string(o.ErrorClass)), a.code, nullString(o.EnhancedCode), nullString(o.Error),
		o.RecipientID, o.ClaimToken, o.CampaignID}
}

// outcomeStatuses are the statuses an outcome moves a row to.
var outcomeStatuses = [...]core.RecipientStatus{core.RecipientSent, core.RecipientFailed, core.RecipientBounced, core.RecipientQueued}

// campaignCounts is what a group moves out of one campaign's sending
// counter, by the status it moves to (indexed like outcomeStatuses).
type campaignCounts struct {
	id    int64
	moved [len(outcomeStatuses)]int64
}

func countOutcome(cs []campaignCounts, id int64, s core.RecipientStatus) []campaignCounts {
	i := 0
	for i < len(cs) && cs[i].id != id {
		i++
	}
	if i == len(cs) {
		cs = append(cs, campaignCounts{id: id})
	}
	for k, st := range outcomeStatuses {
		if st == s {
			cs[i].moved[k]++
		}
	}
	return cs
}

// apply moves the counts in one statement that names only the counters
// that move.
func (c *campaignCounts) apply(ctx context.Context, tx *sql.Tx) error {
	var q strings.Builder
	q.WriteString("UPDATE campaigns SET sending = sending - ?")
	args := make([]any, 1, len(c.moved)+2)
	var total int64
	for k, n := range c.moved {
		if n == 0 {
			continue
		}
		col := statsColumn(outcomeStatuses[k])
		q.WriteString(", " + col + " = " + col + " + ?")
		args = append(args, n)
		total += n
	}
	args[0] = total
	q.WriteString(" WHERE id = ?")
	args = append(args, c.id)
	_, err := tx.ExecContext(ctx, q.String(), args...)
	return err
}

// minuteDelta is what a group adds to one (campaign, minute) row.
type minuteDelta struct {
	campaignID, minute int64
	n                  minuteCounts
}

// countMinute adds outcome o, recorded at atMS, to its minute row; a
// failure later in the group is that minute's last failure.
func countMinute(ds []minuteDelta, campaignID, atMS int64, email string, o *core.Outcome, setError int) []minuteDelta {
	minute := atMS / 60000
	i := 0
	for i < len(ds) && (ds[i].campaignID != campaignID || ds[i].minute != minute) {
		i++
	}
	if i == len(ds) {
		ds = append(ds, minuteDelta{campaignID: campaignID, minute: minute})
	}
	n := &ds[i].n
	switch o.Status {
	case core.RecipientSent:
		n.sent++
	case core.RecipientFailed:
		n.failed++
		n.lastFailure = failureLine(email, *o)
	case core.RecipientBounced:
		n.bounced++
		n.lastFailure = failureLine(email, *o)
	case core.RecipientQueued:
		if setError == 1 && o.ErrorClass != core.ClassThrottled {
			n.retried++
		}
	}
	return ds
}
