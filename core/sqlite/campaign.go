package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/sdk"
)

const campaignCols = `id, name, sender, from_addr, reply_to, subject, text_body, html_body, headers,
	concurrency, batch_size, status, paused_from, created_at, updated_at,
	total, pending, queued, sending, sent, failed, bounced, template_attrs, started_at, finished_at, last_tick_at,
	send_window, not_before, expires_at`

func scanCampaign(s scanner) (*core.Campaign, error) {
	var (
		c                    core.Campaign
		headers, pausedFrom  sql.NullString
		templateAttrs        sql.NullString
		createdAt, updatedAt int64
		started, finished    sql.NullInt64
		lastTick             sql.NullInt64
		window               sql.NullString
		notBefore, expires   sql.NullInt64
	)
	err := s.Scan(&c.ID, &c.Name, &c.Sender, &c.From, &c.ReplyTo, &c.Subject, &c.Text, &c.HTML, &headers,
		&c.Concurrency, &c.BatchSize, &c.Status, &pausedFrom, &createdAt, &updatedAt,
		&c.Stats.Total, &c.Stats.Pending, &c.Stats.Queued, &c.Stats.Sending, &c.Stats.Sent, &c.Stats.Failed, &c.Stats.Bounced,
		&templateAttrs, &started, &finished, &lastTick, &window, &notBefore, &expires)
	if err != nil {
		return nil, err
	}
	if window.Valid {
		if c.SendWindow, err = core.ParseSendWindow(window.String); err != nil {
			return nil, fmt.Errorf("campaign %d: decode send window: %w", c.ID, err)
		}
	}
	c.NotBefore, c.Expires = fromNullMS(notBefore), fromNullMS(expires)
	if templateAttrs.Valid {
		if err := json.Unmarshal([]byte(templateAttrs.String), &c.TemplateAttrs); err != nil {
			return nil, fmt.Errorf("campaign %d: decode template attrs: %w", c.ID, err)
		}
	}
	if headers.Valid && headers.String != "" {
		if err := json.Unmarshal([]byte(headers.String), &c.Headers); err != nil {
			return nil, fmt.Errorf("campaign %d: decode headers: %w", c.ID, err)
		}
	}
	c.PausedFrom = core.CampaignStatus(pausedFrom.String)
	c.CreatedAt = fromMS(createdAt)
	c.UpdatedAt = fromMS(updatedAt)
	c.StartedAt, c.FinishedAt, c.LastTickAt = fromNullMS(started), fromNullMS(finished), fromNullMS(lastTick)
	return &c, nil
}

// CreateCampaign stores c (validated by the caller) in DRAFT and sets its
// ID, Status, CreatedAt and UpdatedAt (now, at millisecond precision) and
// zeroes its Stats. It returns EINVALID for a nil campaign.
func (db *DB) CreateCampaign(ctx context.Context, c *core.Campaign) error {
	if c == nil {
		return core.Errorf(core.EINVALID, "campaign: required")
	}
	headers, err := encodeHeaders(c.Headers)
	if err != nil {
		return fmt.Errorf("create campaign: %w", err)
	}
	if c.TemplateAttrs == nil {
		c.TemplateAttrs = []string{} // NULL is for campaigns older than the column
	}
	now := nowMS()
	var id int64
	err = db.writeTx(ctx, "create campaign", func(tx *sql.Tx) error {
		var err error
		id, err = insertCampaign(ctx, tx, c, headers, now)
		return err
	})
	if err != nil {
		return err
	}
	c.ID, c.Status, c.PausedFrom = id, core.CampaignDraft, ""
	c.CreatedAt, c.UpdatedAt = now, now
	c.Stats = core.Stats{}
	return nil
}

// nextCampaignID is a new campaign's id: above every campaign's, deleted
// ones included, so an id (and the Message-IDs made from it) is never given
// twice.
const nextCampaignID = `(SELECT max(coalesce((SELECT max(id) FROM campaigns), 0),
	coalesce((SELECT max(id) FROM deleted_campaigns), 0)) + 1)`

// insertCampaign inserts c in DRAFT inside tx and returns its id; headers
// is c.Headers encoded (nil for none).
func insertCampaign(ctx context.Context, tx *sql.Tx, c *core.Campaign, headers any, now time.Time) (int64, error) {
	var id int64
	window, notBefore, expires := scheduleArgs(c.Schedule)
	err := tx.QueryRowContext(ctx, `INSERT INTO campaigns
		(id, name, sender, from_addr, reply_to, subject, text_body, html_body, headers, concurrency, batch_size, status, created_at, updated_at, template_attrs,
		send_window, not_before, expires_at)
		VALUES (`+nextCampaignID+`, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		c.Name, c.Sender, c.From, c.ReplyTo, c.Subject, c.Text, c.HTML, headers,
		c.Concurrency, c.BatchSize, string(core.CampaignDraft), ms(now), ms(now), encodeTemplateAttrs(c.TemplateAttrs),
		window, notBefore, expires).Scan(&id)
	return id, err
}

// scheduleArgs are the stored forms of a schedule's parts: the window's
// canonical text and unix milliseconds, NULL for a part not set.
func scheduleArgs(s core.Schedule) (window, notBefore, expires any) {
	if s.SendWindow != nil {
		window = s.SendWindow.String()
	}
	if s.NotBefore != nil {
		notBefore = ms(*s.NotBefore)
	}
	if s.Expires != nil {
		expires = ms(*s.Expires)
	}
	return window, notBefore, expires
}

// encodeTemplateAttrs is the stored form of the attributes a campaign's
// templates reference: a JSON array of names, or NULL when unknown (a
// campaign created before the column, or a copy of one).
func encodeTemplateAttrs(attrs []string) any {
	if attrs == nil {
		return nil
	}
	b, _ := json.Marshal(attrs) // strings always marshal
	return string(b)
}

// encodeHeaders is the stored form of a campaign's extra headers: a JSON
// array, or NULL when there are none.
func encodeHeaders(hs []sdk.Header) (any, error) {
	if len(hs) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(hs)
	if err != nil {
		return nil, fmt.Errorf("encode headers: %w", err)
	}
	return string(b), nil
}

// Campaign returns one campaign with its Stats: one row read. ENOTFOUND
// when there is no such campaign.
func (db *DB) Campaign(ctx context.Context, id int64) (*core.Campaign, error) {
	c, err := scanCampaign(db.r.QueryRowContext(ctx, `SELECT `+campaignCols+` FROM campaigns WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoCampaign(id)
	}
	if err != nil {
		return nil, internal("read campaign", err)
	}
	return c, nil
}

// Campaigns returns all campaigns with their Stats, newest first.
func (db *DB) Campaigns(ctx context.Context) ([]*core.Campaign, error) {
	return db.queryCampaigns(ctx, "list campaigns", `SELECT `+campaignCols+` FROM campaigns ORDER BY id DESC`)
}

func (db *DB) queryCampaigns(ctx context.Context, op, query string, args ...any) ([]*core.Campaign, error) {
	return queryCampaigns(ctx, db.r, op, query, args...)
}

// queryCampaigns runs a campaigns query on q: the read pool, or a read
// transaction that must see the campaigns at the same moment as something
// else (Audit).
func queryCampaigns(ctx context.Context, q querier, op, query string, args ...any) ([]*core.Campaign, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var cs []*core.Campaign
	for rows.Next() {
		c, err := scanCampaign(rows)
		if err != nil {
			return nil, internal(op, err)
		}
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, internal(op, err)
	}
	return cs, nil
}

// SetCampaignStatus moves campaign id from `from` to `to` only if it is
// still in `from`; it does not judge whether the move is legal (see
// core.Transition). Moving to PAUSED records `from` as PausedFrom; any
// other move clears it. Moving to CANCELLED fails the campaign's PENDING
// and QUEUED recipients in the same transaction (see FailCancelled). ENOTFOUND for an unknown campaign, ECONFLICT naming
// the actual status when it is not `from`, EINVALID for an unknown status.
func (db *DB) SetCampaignStatus(ctx context.Context, id int64, from, to core.CampaignStatus, now time.Time) error {
	if !validCampaignStatus(from) || !validCampaignStatus(to) {
		return core.Errorf(core.EINVALID, "campaign status change %q -> %q: unknown status", from, to)
	}
	var pausedFrom any
	if to == core.CampaignPaused {
		pausedFrom = string(from)
	}
	return db.writeTx(ctx, "set campaign status", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE campaigns SET status = ?, paused_from = ?, updated_at = ?
			WHERE id = ? AND status = ?`, string(to), pausedFrom, ms(orNow(now)), id, string(from))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			if err == nil && to == core.CampaignCancelled {
				// Cancelling ends every recipient not yet sent, in the
				// same transaction: nothing is left waiting forever.
				_, err = failUnsent(ctx, tx, id, orNow(now))
			}
			return err
		}
		st, err := campaignStatus(ctx, tx, id)
		if err != nil {
			return err
		}
		return core.Errorf(core.ECONFLICT, "campaign %d is %s, not %s: cannot move it to %s", id, st, from, to)
	})
}

// campaignStatus reads a campaign's status inside tx; ENOTFOUND if missing.
func campaignStatus(ctx context.Context, tx *sql.Tx, id int64) (core.CampaignStatus, error) {
	var st string
	err := tx.QueryRowContext(ctx, `SELECT status FROM campaigns WHERE id = ?`, id).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errNoCampaign(id)
	}
	return core.CampaignStatus(st), err
}

func errNoCampaign(id int64) error {
	return core.Errorf(core.ENOTFOUND, "campaign %d not found", id)
}

func validCampaignStatus(s core.CampaignStatus) bool {
	switch s {
	case core.CampaignDraft, core.CampaignActive, core.CampaignSending,
		core.CampaignPaused, core.CampaignCompleted, core.CampaignCancelled:
		return true
	}
	return false
}
