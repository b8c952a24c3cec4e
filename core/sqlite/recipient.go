package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/campaignd/campaignd/core"
)

const recipientCols = `id, campaign_id, email, name, attrs, status, attempts,
	last_error_class, last_error_code, last_enhanced_code, last_error, provider_id,
	created_at, queued_at, next_attempt_at, sent_at, updated_at, lease_until, claim_token`

func scanRecipient(s scanner) (*core.Recipient, error) {
	var (
		r                                         core.Recipient
		attrs, class, enhanced, lastErr, provider sql.NullString
		token                                     sql.NullString
		code                                      sql.NullInt64
		createdAt, updatedAt                      int64
		queuedAt, nextAt, sentAt, leaseUntil      sql.NullInt64
	)
	err := s.Scan(&r.ID, &r.CampaignID, &r.Email, &r.Name, &attrs, &r.Status, &r.Attempts,
		&class, &code, &enhanced, &lastErr, &provider,
		&createdAt, &queuedAt, &nextAt, &sentAt, &updatedAt, &leaseUntil, &token)
	if err != nil {
		return nil, err
	}
	if attrs.Valid && attrs.String != "" {
		if r.Attrs, err = decodeAttrs(attrs.String); err != nil {
			return nil, fmt.Errorf("recipient %d: decode attrs: %w", r.ID, err)
		}
	}
	r.LastErrorClass, r.LastErrorCode, r.LastEnhancedCode = core.ErrorClass(class.String), int(code.Int64), enhanced.String
	r.LastError, r.ProviderID, r.ClaimToken = lastErr.String, provider.String, token.String
	r.CreatedAt, r.UpdatedAt = fromMS(createdAt), fromMS(updatedAt)
	r.QueuedAt, r.NextAttemptAt = fromNullMS(queuedAt), fromNullMS(nextAt)
	r.SentAt, r.LeaseUntil = fromNullMS(sentAt), fromNullMS(leaseUntil)
	return &r, nil
}

func scanRecipients(rows *sql.Rows) ([]*core.Recipient, error) {
	defer rows.Close()
	var rs []*core.Recipient
	for rows.Next() {
		r, err := scanRecipient(rows)
		if err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	return rs, rows.Err()
}

// insertRows are the multi-row INSERT sizes InsertRecipients uses: as many
// 500-row statements as fit, then the rest in 100s, 10s and 1s, so only four
// statements are ever prepared (and cached per connection). 500 rows bind
// 1,504 parameters, far below SQLite's limit of 32,766.
var insertRows = []int{500, 100, 10, 1}

// insertSQL holds the statement text for each size in insertRows.
// Parameters: ?1 campaign, ?2 status, ?3 now, ?4 queued_at/next_attempt_at
// (NULL for PENDING), then email, name, attrs for each row.
var insertSQL = func() map[int]string {
	m := make(map[int]string, len(insertRows))
	for _, k := range insertRows {
		var b strings.Builder
		b.WriteString(`INSERT OR IGNORE INTO recipients
			(campaign_id, email, name, attrs, status, created_at, updated_at, queued_at, next_attempt_at) VALUES `)
		for i := range k {
			if i > 0 {
				b.WriteByte(',')
			}
			p := 5 + 3*i
			fmt.Fprintf(&b, "(?1,?%d,?%d,?%d,?2,?3,?3,?4,?4)", p, p+1, p+2)
		}
		m[k] = b.String()
	}
	return m
}()

// InsertRecipients adds validated recipients (addresses already normalised
// by RecipientInput.Validate) to a campaign in one transaction, with
// multi-row INSERT statements. Rows are PENDING, or QUEUED due now when the
// campaign is SENDING or PAUSED from SENDING, so a late addition is sent.
// An address already in the campaign, or repeated in rs, counts as a
// Duplicate; one on the suppression list (compared without regard to ASCII
// case, checked with one query for all of rs) counts as Suppressed; neither
// is added. The campaign's counters are updated once, in the same
// transaction. ENOTFOUND for an unknown campaign, ECONFLICT when it is
// COMPLETED or CANCELLED (its queue is closed), EINVALID for an empty
// address.
func (db *DB) InsertRecipients(ctx context.Context, campaignID int64, rs []core.RecipientInput, now time.Time) (core.InsertResult, error) {
	var res core.InsertResult
	for i := range rs {
		if rs[i].Email == "" {
			return res, core.Errorf(core.EINVALID, "recipient %d: empty email address", i+1)
		}
	}
	now = orNow(now)
	err := db.writeTx(ctx, "insert recipients", func(tx *sql.Tx) error {
		res = core.InsertResult{}
		var status string
		var pausedFrom sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT status, paused_from FROM campaigns WHERE id = ?`, campaignID).Scan(&status, &pausedFrom)
		if errors.Is(err, sql.ErrNoRows) {
			return errNoCampaign(campaignID)
		}
		if err != nil {
			return err
		}
		st := core.CampaignStatus(status)
		if st == core.CampaignCompleted || st == core.CampaignCancelled {
			return core.Errorf(core.ECONFLICT, "campaign %d is %s: recipients can no longer be added", campaignID, st)
		}
		if len(rs) == 0 {
			return nil
		}
		queued := st == core.CampaignSending || (st == core.CampaignPaused && pausedFrom.String == string(core.CampaignSending))

		rows := rs
		suppressed, err := suppressedAmong(ctx, tx, len(rs), func(i int) string { return rs[i].Email })
		if err != nil {
			return err
		}
		if len(suppressed) > 0 {
			rows = make([]core.RecipientInput, 0, len(rs))
			for _, r := range rs {
				if suppressed[r.Email] {
					res.Suppressed++
				} else {
					rows = append(rows, r)
				}
			}
		}

		var firstID int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) + 1 FROM recipients`).Scan(&firstID); err != nil {
			return err
		}
		nowMS := ms(now)
		args := make([]any, 4, 4+3*insertRows[0])
		args[0], args[1], args[2], args[3] = campaignID, string(core.RecipientPending), nowMS, nil
		if queued {
			args[1], args[3] = string(core.RecipientQueued), nowMS
		}
		var lastID int64
		var buf []byte
		for len(rows) > 0 {
			k := insertRows[len(insertRows)-1]
			for _, size := range insertRows {
				if size <= len(rows) {
					k = size
					break
				}
			}
			args = args[:4]
			for _, r := range rows[:k] {
				var attrs any
				if len(r.Attrs) > 0 {
					buf = appendAttrs(buf[:0], r.Attrs)
					attrs = string(buf)
				}
				args = append(args, r.Email, r.Name, attrs)
			}
			rows = rows[k:]
			out, err := tx.ExecContext(ctx, insertSQL[k], args...)
			if err != nil {
				return err
			}
			n, err := out.RowsAffected()
			if err != nil {
				return err
			}
			if n > 0 {
				res.Added += n
				if lastID, err = out.LastInsertId(); err != nil {
					return err
				}
			}
		}
		res.Duplicates = int64(len(rs)) - res.Added - res.Suppressed
		if res.Added == 0 {
			return nil
		}
		var pending, queuedN int64 = res.Added, 0
		if queued {
			pending, queuedN = 0, res.Added
		}
		_, err = tx.ExecContext(ctx, `UPDATE campaigns SET total = total + ?, pending = pending + ?, queued = queued + ?,
			first_recipient_id = coalesce(first_recipient_id, ?), last_recipient_id = ? WHERE id = ?`,
			res.Added, pending, queuedN, firstID, lastID, campaignID)
		return err
	})
	if err != nil {
		return core.InsertResult{}, err
	}
	return res, nil
}

// appendAttrs appends m as a JSON object with sorted keys (deterministic,
// and much cheaper than encoding/json for a map of strings).
func appendAttrs(b []byte, m map[string]string) []byte {
	var arr [16]string
	keys := arr[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, m[k])
	}
	return append(b, '}')
}

// decodeAttrs decodes an attrs column. Every claim decodes 50 of them, and
// encoding/json was the largest Go cost of a claim, so the object
// appendAttrs writes (no whitespace, no escapes in the common case) is
// read by hand, as substrings of s; anything else (an escape, a byte the
// fast path does not expect) goes to encoding/json, so the result is always
// what json.Unmarshal would give.
func decodeAttrs(s string) (map[string]string, error) {
	if m, ok := decodeFlatAttrs(s); ok {
		return m, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, err
	}
	return m, nil
}

// decodeFlatAttrs is decodeAttrs' fast path: ok is false when s is not a
// plain {"k":"v",...} object of escape-free, valid UTF-8 strings with
// distinct keys.
func decodeFlatAttrs(s string) (m map[string]string, ok bool) {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return nil, false
	}
	// plainString reads the string that starts at s[i] == '"' and returns
	// it and the index after its closing quote.
	plainString := func(i int) (string, int, bool) {
		if i >= len(s) || s[i] != '"' {
			return "", 0, false
		}
		for j := i + 1; j < len(s); j++ {
			switch c := s[j]; {
			case c == '"':
				v := s[i+1 : j]
				return v, j + 1, utf8.ValidString(v)
			case c == '\\' || c < 0x20:
				return "", 0, false
			}
		}
		return "", 0, false
	}
	m = map[string]string{}
	i := 1
	if s == "{}" {
		return m, true
	}
	for {
		k, next, ok := plainString(i)
		if !ok || next >= len(s) || s[next] != ':' {
			return nil, false
		}
		v, next, ok := plainString(next + 1)
		if !ok {
			return nil, false
		}
		if _, dup := m[k]; dup {
			return nil, false
		}
		m[k] = v
		switch {
		case next == len(s)-1:
			return m, true
		case s[next] == ',':
			i = next + 1
		default:
			return nil, false
		}
	}
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD, as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Recipient returns one recipient; ENOTFOUND when there is none.
func (db *DB) Recipient(ctx context.Context, id int64) (*core.Recipient, error) {
	r, err := scanRecipient(db.r.QueryRowContext(ctx, `SELECT `+recipientCols+` FROM recipients WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, core.Errorf(core.ENOTFOUND, "recipient %d not found", id)
	}
	if err != nil {
		return nil, internal("read recipient", err)
	}
	return r, nil
}

// RecipientByEmail returns campaign campaignID's recipient of the
// normalised address email (the UNIQUE (campaign_id, email) index makes it
// one lookup); ENOTFOUND when the campaign has none.
func (db *DB) RecipientByEmail(ctx context.Context, campaignID int64, email string) (*core.Recipient, error) {
	r, err := scanRecipient(db.r.QueryRowContext(ctx, `SELECT `+recipientCols+` FROM recipients
		WHERE campaign_id = ? AND email = ?`, campaignID, email))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, core.Errorf(core.ENOTFOUND, "campaign %d has no recipient %s", campaignID, email)
	}
	if err != nil {
		return nil, internal("read recipient", err)
	}
	return r, nil
}

// listSQL returns the query for one page of a campaign's recipients in
// status st ("" for all). Parameters: ?1 lowest id, ?2 highest id, ?3
// campaign, ?4 limit. FAILED rows come from their partial index; the rest
// from the campaign's id range, with +campaign_id so the planner does not
// prefer the (campaign_id, email) index (which would need a sort). The
// status is inlined as a literal (it is one of six constants) so the plan
// is fixed.
func listSQL(st core.RecipientStatus) string {
	if st == core.RecipientFailed {
		return `SELECT ` + recipientCols + ` FROM recipients INDEXED BY recipients_failed
			WHERE campaign_id = ?3 AND status = 'FAILED' AND id BETWEEN ?1 AND ?2 ORDER BY id LIMIT ?4`
	}
	statusTerm := ""
	if st != "" {
		statusTerm = " AND status = '" + string(st) + "'"
	}
	return `SELECT ` + recipientCols + ` FROM recipients
		WHERE id BETWEEN ?1 AND ?2 AND +campaign_id = ?3` + statusTerm + ` ORDER BY id LIMIT ?4`
}

// Recipients lists a campaign's recipients in id order, f.Limit at a time
// (see core.ListLimit) after f.AfterID, optionally only
// those in f.Status. It walks the campaign's id range (or, for FAILED, a
// partial index) from f.AfterID until the page is full: a page of all
// recipients, of FAILED ones, or of a status most recipients are in costs
// about its own size however large the campaign; a page of a rare status
// walks on until it finds enough, at worst to the end of the campaign
// (about 0.2 s per million recipients). More indexes would make that
// page-sized too, at a cost to every import, execute and claim, for a
// listing an operator runs by hand. ENOTFOUND for an unknown campaign,
// EINVALID for a bad status or a limit out of range.
func (db *DB) Recipients(ctx context.Context, campaignID int64, f core.RecipientFilter) ([]*core.Recipient, error) {
	limit, err := core.ListLimit("limit", f.Limit)
	if err != nil {
		return nil, err
	}
	if f.Status != "" {
		st, err := core.ParseRecipientStatus(string(f.Status))
		if err != nil {
			return nil, err
		}
		f.Status = st
	}
	var first, last sql.NullInt64
	err = db.r.QueryRowContext(ctx, `SELECT first_recipient_id, last_recipient_id FROM campaigns WHERE id = ?`, campaignID).Scan(&first, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoCampaign(campaignID)
	}
	if err != nil {
		return nil, internal("list recipients", err)
	}
	// Past the last id the page is empty; checked first because
	// AfterID+1 would overflow at the int64 maximum and list page one.
	if !first.Valid || f.AfterID >= last.Int64 {
		return nil, nil
	}
	rows, err := db.r.QueryContext(ctx, listSQL(f.Status), max(first.Int64, f.AfterID+1), last.Int64, campaignID, limit)
	if err != nil {
		return nil, internal("list recipients", err)
	}
	rs, err := scanRecipients(rows)
	if err != nil {
		return nil, internal("list recipients", err)
	}
	return rs, nil
}

// statsColumn is the campaigns counter column for a recipient status.
func statsColumn(s core.RecipientStatus) string {
	switch s {
	case core.RecipientPending:
		return "pending"
	case core.RecipientQueued:
		return "queued"
	case core.RecipientSending:
		return "sending"
	case core.RecipientSent:
		return "sent"
	case core.RecipientFailed:
		return "failed"
	case core.RecipientBounced:
		return "bounced"
	}
	panic("sqlite: no counter for recipient status " + strconv.Quote(string(s)))
}
