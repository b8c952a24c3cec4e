package sqlite_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/sqlite"
)

// benchRows fills buf with chunk i of a shuffled-looking address list:
// realistic CSV order, so the (campaign_id, email) index takes random
// inserts.
func benchRows(buf []core.RecipientInput, start int) {
	for i := range buf {
		k := start + i
		h := fnv.New32a()
		fmt.Fprint(h, k)
		buf[i] = core.RecipientInput{
			Email: fmt.Sprintf("%08x.%d@mail%d.example.com", h.Sum32(), k, k%97),
			Name:  fmt.Sprintf("Recipient %d", k),
			Attrs: map[string]string{"city": "Lyon", "plan": "pro"},
		}
	}
}

// peakHeap samples the heap until stop is closed and returns the growth
// over the starting heap.
func peakHeap(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	go func() {
		var peak uint64
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > base && ms.HeapAlloc-base > peak {
				peak = ms.HeapAlloc - base
			}
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// BenchmarkImport inserts 1,000,000 recipients in 10,000-row chunks (as
// the CSV importer sends them) into one campaign per iteration, on a fresh
// database, and reports rows/s and the peak Go heap growth.
func BenchmarkImport(b *testing.B) {
	const total, chunk = 1_000_000, 10_000
	ctx := context.Background()
	var rows, dur float64
	var peak uint64
	for b.Loop() {
		b.StopTimer()
		db := MustOpen(b)
		c := MustCampaign(b, db, "import")
		buf := make([]core.RecipientInput, chunk)
		var gen time.Duration
		stop := make(chan struct{})
		heap := peakHeap(stop)
		b.StartTimer()
		start := time.Now()
		for i := 0; i < total; i += chunk {
			g := time.Now()
			benchRows(buf, i)
			gen += time.Since(g)
			res, err := db.InsertRecipients(ctx, c.ID, buf, t0)
			if err != nil {
				b.Fatal(err)
			}
			if res.Added != chunk {
				b.Fatalf("added %d of %d", res.Added, chunk)
			}
		}
		d := time.Since(start) - gen
		b.StopTimer()
		close(stop)
		peak = max(peak, <-heap)
		rows += total
		dur += d.Seconds()
		b.StartTimer()
	}
	b.ReportMetric(rows/dur, "rows/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}

var _ = sync.Mutex{}
var _ atomic.Int64
var _ = sqlite.SchemaVersion
