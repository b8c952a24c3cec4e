package sqlite_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/sqlite"
)

func TestClaim(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	c := MustSending(t, db, 10)
	lease := t0.Add(time.Minute)

	// Two rows pushed into the future are not due; the rest come oldest first.
	first, err := db.Claim(ctx, c.ID, 2, "tok-a", lease, t0)
	if err != nil || len(first) != 2 {
		t.Fatalf("claim: %v, %v", first, err)
	}
	for _, r := range first {
		if err := db.RecordOutcome(ctx, core.Outcome{RecipientID: r.ID, CampaignID: c.ID, ClaimToken: "tok-a",
			Status: core.RecipientQueued, At: t0, NextAttemptAt: t0.Add(time.Hour), ErrorClass: "transient", Error: "421 later", ErrorCode: 421}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.Claim(ctx, c.ID, 50, "tok-b", lease, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 8 {
		t.Fatalf("claimed %d, want the 8 due", len(got))
	}
	for i, r := range got {
		if r.Status != core.RecipientSending || r.ClaimToken != "tok-b" || !r.LeaseUntil.Equal(lease) || r.Attempts != 1 || !r.UpdatedAt.Equal(t0) {
			t.Fatalf("claimed row %+v", r)
		}
		if i > 0 && r.ID <= got[i-1].ID {
			t.Fatalf("claim order: %d after %d", r.ID, got[i-1].ID)
		}
	}
	if again, err := db.Claim(ctx, c.ID, 50, "tok-c", lease, t0); err != nil || len(again) != 0 {
		t.Fatalf("second claim: %d rows, %v", len(again), err)
	}
	st, _ := db.Campaign(ctx, c.ID)
	if want := (core.Stats{Total: 10, Queued: 2, Sending: 8}); st.Stats != want {
		t.Fatalf("stats %+v, want %+v", st.Stats, want)
	}
	// Once due, the retried rows come back, attempts counted.
	later, err := db.Claim(ctx, c.ID, 50, "tok-d", t0.Add(2*time.Hour), t0.Add(time.Hour))
	if err != nil || len(later) != 2 || later[0].Attempts != 2 || later[0].LastErrorCode != 421 || later[0].LastErrorClass != "transient" {
		t.Fatalf("claim of retried rows: %+v, %v", later, err)
	}
	CheckCounters(t, db)

	for _, bad := range []struct {
		n     int
		token string
		lease time.Time
	}{{0, "t", lease}, {5, "", lease}, {5, "t", t0}} {
		if _, err := db.Claim(ctx, c.ID, bad.n, bad.token, bad.lease, t0); Code(err) != core.EINVALID {
			t.Fatalf("claim(%d, %q, %v): %v, want EINVALID", bad.n, bad.token, bad.lease, err)
		}
	}
}

func TestClaimOrderByNextAttempt(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	c := MustSending(t, db, 3)
	rs, _ := db.Claim(ctx, c.ID, 3, "t1", t0.Add(time.Minute), t0)
	// Requeue the first row earlier than the others: it comes first.
	due := []time.Time{t0.Add(-time.Minute), t0.Add(-time.Hour), t0.Add(-time.Second)}
	for i, r := range rs {
		if err := db.RecordOutcome(ctx, core.Outcome{RecipientID: r.ID, ClaimToken: "t1", Status: core.RecipientQueued, At: t0, NextAttemptAt: due[i]}); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := db.Claim(ctx, c.ID, 3, "t2", t0.Add(time.Minute), t0)
	order := []int64{got[0].ID, got[1].ID, got[2].ID}
	want := []int64{rs[1].ID, rs[0].ID, rs[2].ID}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("claim order %v, want %v (by next_attempt_at)", order, want)
	}
}

// TestConcurrentClaimers hammers one queue from two handles on the same file
// (as two processes would) and checks no row is handed out twice.
func TestConcurrentClaimers(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/c.db"
	db1 := MustOpenPath(t, path)
	db2 := MustOpenPath(t, path)
	const n = 3000
	c := MustSending(t, db1, n)

	var mu sync.Mutex
	seen := map[int64]string{}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		db := db1
		if w%2 == 1 {
			db = db2
		}
		wg.Add(1)
		go func(w int, db *sqlite.DB) {
			defer wg.Done()
			for i := 0; ; i++ {
				token := fmt.Sprintf("w%d-%d", w, i)
				rs, err := db.Claim(ctx, c.ID, 7, token, t0.Add(time.Hour), t0)
				if err != nil {
					errs <- err
					return
				}
				if len(rs) == 0 {
					return
				}
				mu.Lock()
				for _, r := range rs {
					if prev, dup := seen[r.ID]; dup {
						mu.Unlock()
						errs <- fmt.Errorf("recipient %d claimed by %s and %s", r.ID, prev, token)
						return
					}
					seen[r.ID] = token
				}
				mu.Unlock()
				for _, r := range rs {
					if err := db.RecordOutcome(ctx, core.Outcome{RecipientID: r.ID, ClaimToken: token, Status: core.RecipientSent, At: t0}); err != nil {
						errs <- err
						return
					}
				}
			}
		}(w, db)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Fatalf("claimed %d distinct rows, want %d", len(seen), n)
	}
	st, _ := db2.Campaign(ctx, c.ID)
	if st.Stats != (core.Stats{Total: n, Sent: n}) {
		t.Fatalf("stats %+v", st.Stats)
	}
	CheckCounters(t, db1)
}
