package sqlite_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
)

// BenchmarkQuotaClaim claims 10 recipients per op from a 100,000-row queue
// without a quota (Claim) and with one of two windows (ClaimQuota: one
// more primary-key read and one more row write in the same transaction).
// The windows are large enough never to run out.
func BenchmarkQuotaClaim(b *testing.B) {
	q := core.Quota{Sender: "outbox", Rates: []core.Rate{{Limit: 1 << 30, Per: time.Minute}, {Limit: 1 << 30, Per: 24 * time.Hour}}}
	for _, mode := range []string{"no-quota", "quota"} {
		b.Run(mode, func(b *testing.B) {
			db := MustOpen(b)
			c := MustSending(b, db, 100_000)
			ctx := context.Background()
			i := 0
			for b.Loop() {
				i++
				now := t0.Add(time.Duration(i) * 100 * time.Millisecond)
				var rs []*core.Recipient
				var err error
				if mode == "quota" {
					rs, err = db.ClaimQuota(ctx, q, c.ID, 10, "b"+strconv.Itoa(i), now.Add(time.Hour), now)
				} else {
					rs, err = db.Claim(ctx, c.ID, 10, "b"+strconv.Itoa(i), now.Add(time.Hour), now)
				}
				if err != nil || len(rs) != 10 {
					b.Fatalf("claim: %d rows, %v", len(rs), err)
				}
			}
		})
	}
}
