package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/campaignd/campaignd/core"
)

// InsertTick writes a tick record and sets its ID. EINVALID for a nil record.
func (db *DB) InsertTick(ctx context.Context, t *core.TickRecord) error {
	if t == nil {
		return core.Errorf(core.EINVALID, "tick record: required")
	}
	started := orNow(t.Started)
	return db.writeTx(ctx, "record tick", func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO ticks
			(triggered_by, started, duration_ns, processed, sent, failed, retried, throttled, recovered, skipped, error, expired)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			string(t.Trigger), ms(started), int64(t.Duration), t.Processed, t.Sent, t.Failed,
			t.Retried, t.Throttled, t.Recovered, t.Skipped, t.Error, t.Expired).Scan(&t.ID)
	})
}

// Ticks returns the most recent tick records, newest first, at most limit
// of them (see core.ListLimit).
func (db *DB) Ticks(ctx context.Context, limit int) ([]*core.TickRecord, error) {
	limit, err := core.ListLimit("limit", limit)
	if err != nil {
		return nil, err
	}
	const op = "list ticks"
	rows, err := db.r.QueryContext(ctx, `SELECT id, triggered_by, started, duration_ns, processed, sent, failed,
		retried, throttled, recovered, skipped, error, expired FROM ticks ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var out []*core.TickRecord
	for rows.Next() {
		var t core.TickRecord
		var started, dur int64
		if err := rows.Scan(&t.ID, &t.Trigger, &started, &dur, &t.Processed, &t.Sent, &t.Failed,
			&t.Retried, &t.Throttled, &t.Recovered, &t.Skipped, &t.Error, &t.Expired); err != nil {
			return nil, internal(op, err)
		}
		t.Started, t.Duration = fromMS(started), time.Duration(dur)
		out = append(out, &t)
	}
	if err := rows.Err(); err != nil {
		return nil, internal(op, err)
	}
	return out, nil
}
