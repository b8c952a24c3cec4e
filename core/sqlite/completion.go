package sqlite

import (
	"context"
	"database/sql"
	"sort"
	"time"
)

// CompleteCampaigns marks COMPLETED every SENDING campaign whose counters
// show no PENDING, QUEUED or SENDING recipient, and returns their ids. When
// there is none it only reads.
func (db *DB) CompleteCampaigns(ctx context.Context, now time.Time) ([]int64, error) {
	const done = `status = 'SENDING' AND pending = 0 AND queued = 0 AND sending = 0`
	var finished bool
	if err := db.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM campaigns WHERE `+done+`)`).Scan(&finished); err != nil {
		return nil, internal("complete campaigns", err)
	}
	if !finished {
		return nil, nil
	}
	var ids []int64
	err := db.writeTx(ctx, "complete campaigns", func(tx *sql.Tx) error {
		var err error
		ids, err = queryIDs(ctx, tx, `UPDATE campaigns SET status = 'COMPLETED', paused_from = NULL, updated_at = ?1,
			finished_at = ?1 WHERE `+done+` RETURNING id`, ms(orNow(now)))
		return err
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}
