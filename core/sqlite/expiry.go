package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/campaignd/campaignd/core"
)

// expiredSQL selects the SENDING campaigns whose expiry has come and that
// still have recipients to send. The campaigns table is small: no index.
const expiredSQL = `status = 'SENDING' AND expires_at <= ?1 AND (pending > 0 OR queued > 0)`

// expiredText is the last error of an expired recipient. It names no
// number, so `campaign failures` groups every campaign's expired ones alike.
const expiredText = "not sent: the campaign expired (extend it with `campaignd campaign edit ID --expires TIME`, then `campaignd campaign retry ID --class expired`)"

// expiredInDoubtText is the last error of an expired recipient whose last
// send's outcome was unknown (requeued in doubt): it may have been
// delivered, and a retry resends it with the same Message-ID.
const expiredInDoubtText = "not resent: the campaign expired; the last attempt's outcome is unknown (it may have been delivered; extend it with `campaignd campaign edit ID --expires TIME`, then `campaignd campaign retry ID --class expired` resends it with the same Message-ID)"

// ExpireCampaigns fails, with class expired, the PENDING and QUEUED
// recipients (waiting for a retry included) of every SENDING campaign whose
// expires_at is at or before now, and returns how many it failed per
// campaign. Recipients in flight (SENDING, under a lease) are left to
// finish. When no campaign has expired it only reads. See
// core.Store.ExpireCampaigns.
func (db *DB) ExpireCampaigns(ctx context.Context, now time.Time) (map[int64]int64, error) {
	at := ms(orNow(now))
	var found bool
	if err := db.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM campaigns WHERE `+expiredSQL+`)`, at).Scan(&found); err != nil {
		return nil, internal("expire campaigns", err)
	}
	if !found {
		return nil, nil
	}
	var out map[int64]int64
	err := db.writeTx(ctx, "expire campaigns", func(tx *sql.Tx) error {
		out = map[int64]int64{}
		ids, err := queryIDs(ctx, tx, `SELECT id FROM campaigns WHERE `+expiredSQL, at)
		if err != nil {
			return err
		}
		for _, id := range ids {
			n, err := failUnsentAs(ctx, tx, id, orNow(now), core.ClassExpired, expiredText, expiredInDoubtText)
			if err != nil {
				return err
			}
			if n > 0 {
				out[id] = n
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
