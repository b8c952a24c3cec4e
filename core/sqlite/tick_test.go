package sqlite_test

import (
	"context"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
)

func TestTicks(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	for i := 0; i < 3; i++ {
		rec := &core.TickRecord{Trigger: core.TriggerCLI, Started: t0.Add(time.Duration(i) * time.Minute), Duration: 1234567 * time.Nanosecond,
			Processed: 50, Sent: 48, Failed: 1, Retried: 1, Throttled: 2, Recovered: 3, Skipped: 4, Error: "partial"}
		if err := db.InsertTick(ctx, rec); err != nil || rec.ID == 0 {
			t.Fatalf("insert tick: %v id %d", err, rec.ID)
		}
	}
	ticks, err := db.Ticks(ctx, 2)
	if err != nil || len(ticks) != 2 {
		t.Fatalf("ticks: %v, %v", ticks, err)
	}
	want := core.TickRecord{ID: 3, Trigger: core.TriggerCLI, Started: t0.Add(2 * time.Minute), Duration: 1234567 * time.Nanosecond,
		Processed: 50, Sent: 48, Failed: 1, Retried: 1, Throttled: 2, Recovered: 3, Skipped: 4, Error: "partial"}
	if *ticks[0] != want || ticks[1].ID != 2 {
		t.Fatalf("newest tick %+v, want %+v", *ticks[0], want)
	}
	if err := db.InsertTick(ctx, nil); core.ErrorCode(err) != core.EINVALID {
		t.Fatalf("nil tick: %v", err)
	}
}
