package core_test

// End-to-end import benchmark: a CSV file on disk streamed through
// Engine.ImportRecipients (CSV parse, per-row validation and address
// normalisation, 10,000-row chunks) into a real SQLite store, where the
// (campaign, email) unique index deduplicates. Run by scripts/bench.sh:
//
//	go test -run '^$' -bench '^BenchmarkImportCSV$' -benchtime 1x ./core
//
// Two file sizes are measured so BENCHMARKS.md can show that memory is flat
// in file size: the peak Go heap (and RSS) growth of a 1,000,000-row import
// should match a 200,000-row one.

import (
	"bufio"
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/sqlite"
)

// BenchmarkImportCSV imports a generated CSV file (email, name and two
// attribute columns; 1% duplicate addresses differing only in the domain's
// case, 0.1% invalid addresses, shuffled order so the unique index takes
// random inserts) into one DRAFT campaign on a fresh database per
// iteration. Metrics: rows/s (input rows over the whole ImportRecipients
// call), peak-heap-MiB (Go heap in use, sampled every 2 ms, over the heap
// before the import), peak-rss-MiB (process RSS growth: includes SQLite's
// page cache, bounded by its cache_size), alloc-B/row, and, as measures
// that a busy machine does not distort, cpu-us/row (user+system CPU of the
// whole process) and written-B/row (bytes passed to write(2): SQLite's WAL
// and checkpoint traffic).
func BenchmarkImportCSV(b *testing.B) {
	for _, n := range []int{200_000, 1_000_000} {
		b.Run("rows="+strconv.Itoa(n), func(b *testing.B) { benchImportCSV(b, n) })
	}
}

// csvStats is what a generated file holds.
type csvStats struct {
	rows, valid, dups, invalid int64
}

// writeBenchCSV writes n data rows to a file under dir.
func writeBenchCSV(tb testing.TB, dir string, n int) (string, csvStats) {
	tb.Helper()
	path := filepath.Join(dir, fmt.Sprintf("recipients-%d.csv", n))
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var st csvStats
	fmt.Fprintln(w, "email,name,city,plan")
	addr := func(k int, domainCase bool) string {
		h := fnv.New32a()
		fmt.Fprint(h, k)
		d := fmt.Sprintf("mail%d.example.com", k%97)
		if domainCase {
			d = strings.ToUpper(d)
		}
		return fmt.Sprintf("%08x.%d@%s", h.Sum32(), k, d)
	}
	for k := 0; k < n; k++ {
		st.rows++
		switch {
		case k%1000 == 999:
			st.invalid++
			fmt.Fprintf(w, "not-an-address-%d,Broken %d,Paris,free\n", k, k)
		case k%100 == 50:
			// The address of row k-50, its domain upper-cased: the same
			// recipient once normalised.
			st.dups++
			fmt.Fprintf(w, "%s,Again %d,Lyon,pro\n", addr(k-50, true), k)
		default:
			st.valid++
			fmt.Fprintf(w, "%s,Recipient %d,Lyon,pro\n", addr(k, false), k)
		}
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return path, st
}

func benchImportCSV(b *testing.B, n int) {
	ctx := context.Background()
	path, want := writeBenchCSV(b, b.TempDir(), n)
	var rows, secs, allocs float64
	var cpu time.Duration
	var written uint64
	var peakHeap, peakRSS uint64
	for b.Loop() {
		b.StopTimer()
		dir, err := os.MkdirTemp("", "cdimport")
		if err != nil {
			b.Fatal(err)
		}
		db, err := sqlite.Open(ctx, filepath.Join(dir, "campaignd.db"))
		if err != nil {
			b.Fatal(err)
		}
		eng, err := core.NewEngine(db, nil, core.DefaultLimits(), nil)
		if err != nil {
			b.Fatal(err)
		}
		c, err := eng.CreateCampaign(ctx, core.CampaignSpec{Name: "import", Sender: "outbox",
			From: "news@example.org", Subject: "Hello {{.Name}}", Text: "Hi"})
		if err != nil {
			b.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		mem := startMemSampler()
		cpu0, wr0 := procCPU(), procWritten()
		b.StartTimer()

		start := time.Now()
		res, err := eng.ImportRecipients(ctx, c.ID, core.FormatCSV, f)
		d := time.Since(start)

		b.StopTimer()
		cpu += procCPU() - cpu0
		written += procWritten() - wr0
		heap, rss, alloc := mem.stop()
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		if res.Added != want.valid || res.Duplicates != want.dups || res.Invalid != want.invalid {
			b.Fatalf("import: added %d, duplicates %d, invalid %d; want %d, %d, %d",
				res.Added, res.Duplicates, res.Invalid, want.valid, want.dups, want.invalid)
		}
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		os.RemoveAll(dir)
		rows += float64(want.rows)
		secs += d.Seconds()
		allocs += float64(alloc)
		peakHeap, peakRSS = max(peakHeap, heap), max(peakRSS, rss)
		b.StartTimer()
	}
	b.ReportMetric(rows/secs, "rows/s")
	b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(peakRSS)/(1<<20), "peak-rss-MiB")
	b.ReportMetric(allocs/rows, "alloc-B/row")
	b.ReportMetric(float64(cpu.Microseconds())/rows, "cpu-us/row")
	b.ReportMetric(float64(written)/rows, "written-B/row")
}

// procCPU is the CPU time (user and system) of this process so far: with
// the machine shared, it shows the import's cost where wall time cannot.
func procCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procWritten is the bytes this process has passed to write(2) so far
// (wchar in /proc/self/io): SQLite's WAL and checkpoint writes, the
// measure of the index's write amplification.
func procWritten() uint64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "wchar: "); ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			return n
		}
	}
	return 0
}

// memSampler records the peak growth of the Go heap in use and of the
// process RSS over their values at start, without stopping the world
// (runtime/metrics, /proc/self/statm).
type memSampler struct {
	done      chan struct{}
	wg        sync.WaitGroup
	baseHeap  uint64
	baseRSS   uint64
	baseAlloc uint64
	peakHeap  uint64
	peakRSS   uint64
}

var memMetrics = []string{
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/gc/heap/allocs:bytes",
}

func readMem() (heapInUse, rss, allocs uint64) {
	s := make([]metrics.Sample, len(memMetrics))
	for i, n := range memMetrics {
		s[i].Name = n
	}
	metrics.Read(s)
	heapInUse = s[0].Value.Uint64() + s[1].Value.Uint64()
	allocs = s[2].Value.Uint64()
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			pages, _ := strconv.ParseUint(f[1], 10, 64)
			rss = pages * uint64(os.Getpagesize())
		}
	}
	return
}

func startMemSampler() *memSampler {
	runtime.GC()
	m := &memSampler{done: make(chan struct{})}
	m.baseHeap, m.baseRSS, m.baseAlloc = readMem()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			m.sample()
			select {
			case <-m.done:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

func (m *memSampler) sample() {
	heap, rss, _ := readMem()
	if heap > m.baseHeap {
		m.peakHeap = max(m.peakHeap, heap-m.baseHeap)
	}
	if rss > m.baseRSS {
		m.peakRSS = max(m.peakRSS, rss-m.baseRSS)
	}
}

// stop ends sampling and returns the peak heap and RSS growth and the bytes
// allocated since start.
func (m *memSampler) stop() (heap, rss, allocs uint64) {
	close(m.done)
	m.wg.Wait()
	m.sample()
	_, _, a := readMem()
	return m.peakHeap, m.peakRSS, a - m.baseAlloc
}
