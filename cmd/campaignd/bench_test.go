package main_test

// Process-level benchmarks of the design's target numbers, on the built binaries
// (harness_test.go) as separate processes, sending to a lean in-process
// SMTP server (plugins/smtp/smtptest with Lean) that only counts what it
// receives. scripts/bench.sh runs them once each and writes BENCHMARKS.md:
//
//	CAMPAIGND_BIN_DIR=bin go test -run '^$' -bench . -benchtime 1x ./cmd/campaignd
//
// Each benchmark does its own timing over many processes and reports
// medians and 95th percentiles as custom metrics; ns/op is the median.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/sqlite"
	"github.com/campaignd/campaignd/plugins/smtp/smtptest"
)

// ---- processes: timing, CPU and memory from /proc ----

// clockTick is USER_HZ, the unit of /proc/PID/stat times (100 on Linux).
const clockTick = 10 * time.Millisecond

// runTimed runs campaignd --config e.Config args... and returns its wall
// time, its CPU time (user+system, from wait4's rusage) and its stdout.
// The command must exit 0.
func runTimed(tb testing.TB, e *Env, args ...string) (wall, cpu time.Duration, stdout string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, Bin(), append([]string{"--config", e.Config}, args...)...)
	cmd.Dir = e.Dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	wall = time.Since(start)
	if err != nil {
		tb.Fatalf("campaignd %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return wall, cpu, out.String()
}

// tickSent runs `campaignd --json tick`, requires it to have sent exactly
// want emails and nothing else, and returns its wall and CPU time.
func tickSent(tb testing.TB, e *Env, want int) (wall, cpu time.Duration) {
	tb.Helper()
	wall, cpu, out := runTimed(tb, e, "--json", "tick")
	var r core.TickResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		tb.Fatalf("tick: %v\n%s", err, out)
	}
	if r.Sent != want || r.Processed != want || r.Skipped {
		tb.Fatalf("tick: %+v, want exactly %d sent", r, want)
	}
	return wall, cpu
}

// procStat returns a process's parent pid and its CPU time; withChildren
// adds the CPU of its children that have exited and been waited for.
func procStat(pid int, withChildren bool) (ppid int, cpu time.Duration, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	// pid (comm) state ppid ... : comm may hold spaces, so split after ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return 0, 0, false
	}
	num := func(k int) int64 { v, _ := strconv.ParseInt(f[k], 10, 64); return v }
	ppid = int(num(1))
	ticks := num(11) + num(12) // utime, stime (fields 14, 15)
	if withChildren {
		ticks += num(13) + num(14) // cutime, cstime
	}
	return ppid, time.Duration(ticks) * clockTick, true
}

// children returns the pids of pid's live child processes.
func procChildren(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, _, ok := procStat(p, false); ok && pp == pid {
			out = append(out, p)
		}
	}
	return out
}

// treeCPU is the CPU time of pid (with its reaped children) and, apart,
// of its live children (the plugins).
func treeCPU(pid int) (self, kids time.Duration) {
	_, self, _ = procStat(pid, true)
	for _, c := range procChildren(pid) {
		_, t, _ := procStat(c, false)
		kids += t
	}
	return self, kids
}

// procMem returns VmRSS and VmHWM of a process in bytes.
func procMem(pid int) (rss, hwm uint64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if k == "VmRSS" {
			rss = n << 10
		} else {
			hwm = n << 10
		}
	}
	return rss, hwm
}

// quantile returns the nearest-rank q-quantile of ds.
func benchQuantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*q+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func benchMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ---- campaigns ----

// benchCampaign creates a campaign for sender with n recipients, imports,
// activates and executes it through the CLI, and returns its id. create
// are more `campaign create` flags, which override the defaults here.
func benchCampaign(tb testing.TB, e *Env, sender string, n int, create ...string) int64 {
	tb.Helper()
	id := MustCreateCampaign(tb, e, append([]string{"--name", "bench", "--sender", sender, "--subject", "Hello {{.Name}}",
		"--text", "Hi {{.Name}} <{{.Email}}>,\n\nthis is {{.Campaign.Name}}. Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n"}, create...)...)
	ids := strconv.FormatInt(id, 10)
	var b strings.Builder
	b.WriteString("email,name,city\n")
	for i := range n {
		fmt.Fprintf(&b, "user%07d@example.net,User %d,Lyon\n", i, i)
	}
	f := WriteFile(tb, e.Dir, "bench.csv", b.String())
	var imp struct {
		Added int `json:"added"`
	}
	e.MustJSON(&imp, "recipients", "import", ids, f)
	if imp.Added != n {
		tb.Fatalf("import: added %d of %d", imp.Added, n)
	}
	e.MustRun("campaign", "activate", ids)
	e.MustRun("campaign", "execute", ids)
	return id
}

// ---- the benchmarks ----

// BenchmarkIdleTick times `campaignd tick` as cron runs it (no daemon, a
// database holding one COMPLETED campaign) as a whole process, 50 times
// after 3 warm-up runs. Metrics: median-ms, p95-ms, cpu-ms (median).
func BenchmarkIdleTick(b *testing.B) {
	const runs = 50
	e := NewEnv(b, "")
	id := benchCampaign(b, e, "outbox", 10)
	for i := 0; ; i++ {
		e.MustRun("tick")
		var c core.Campaign
		e.MustJSON(&c, "campaign", "show", strconv.FormatInt(id, 10))
		if c.Status == "COMPLETED" {
			break
		}
		if i == 5 {
			b.Fatal("campaign not COMPLETED after 5 ticks")
		}
	}
	for range 3 {
		runTimed(b, e, "tick")
	}
	var walls, cpus []time.Duration
	for b.Loop() {
		walls, cpus = walls[:0], cpus[:0]
		for range runs {
			w, c, out := runTimed(b, e, "tick")
			if out != "" {
				b.Fatalf("idle tick printed %q", out)
			}
			walls, cpus = append(walls, w), append(cpus, c)
		}
	}
	b.ReportMetric(float64(benchQuantile(walls, 0.5)), "ns/op")
	b.ReportMetric(benchMS(benchQuantile(walls, 0.5)), "median-ms")
	b.ReportMetric(benchMS(benchQuantile(walls, 0.95)), "p95-ms")
	b.ReportMetric(benchMS(benchQuantile(cpus, 0.5)), "cpu-ms")
}

// BenchmarkTickSMTP runs the daemon (tick_interval 0) with a campaign of
// 5,100 queued recipients and the smtp plugin, warms the plugin with one
// tick, then times 100 `campaignd --json tick` processes, each of which
// must send exactly 50 emails to the lean sink. Metrics: median-ms and
// p95-ms per tick (wall, the CLI process included), msgs/s over the 100
// back-to-back ticks, and CPU per 1,000 emails: cpu-ms/1k (everything),
// split into daemon-, plugin- and cli-cpu-ms/1k (utime+stime from /proc
// for the daemon and its plugin children, wait4's rusage for the CLIs).
func BenchmarkTickSMTP(b *testing.B) {
	const ticks, per = 100, core.MaxBatchSize
	sink := startSink(b, smtptest.Options{Lean: true})
	e := NewEnv(b, "tick_interval = \"0s\"\n"+sinkTOML("sink", sink))
	benchCampaign(b, e, "sink", (ticks+2)*per)
	d := e.StartDaemon()
	pid := d.Cmd.Process.Pid
	tickSent(b, e, per) // starts the plugin
	if len(procChildren(pid)) == 0 {
		b.Fatal("no plugin process under the daemon after a sending tick")
	}
	var (
		walls               []time.Duration
		cli, daemon, plugin time.Duration
		wall                time.Duration
		sent0               int64
		self                time.Duration
		reads               int64
	)
	for b.Loop() {
		walls, cli = walls[:0], 0
		sent0 = sink.Counts().Messages
		d0, p0 := treeCPU(pid)
		s0, r0 := selfCPU(), sink.Reads()
		start := time.Now()
		for range ticks {
			w, c := tickSent(b, e, per)
			walls = append(walls, w)
			cli += c
		}
		wall = time.Since(start)
		d1, p1 := treeCPU(pid)
		daemon, plugin = d1-d0, p1-p0
		self, reads = selfCPU()-s0, sink.Reads()-r0
	}
	got := sink.Counts().Messages - sent0
	if got != ticks*per {
		b.Fatalf("sink received %d messages, want %d", got, ticks*per)
	}
	per1k := func(d time.Duration) float64 { return benchMS(d) * 1000 / float64(got) }
	b.ReportMetric(float64(benchQuantile(walls, 0.5)), "ns/op")
	b.ReportMetric(benchMS(benchQuantile(walls, 0.5)), "median-ms")
	b.ReportMetric(benchMS(benchQuantile(walls, 0.95)), "p95-ms")
	b.ReportMetric(float64(got)/wall.Seconds(), "msgs/s")
	b.ReportMetric(per1k(daemon+plugin+cli), "cpu-ms/1k")
	b.ReportMetric(per1k(daemon), "daemon-cpu-ms/1k")
	b.ReportMetric(per1k(plugin), "plugin-cpu-ms/1k")
	b.ReportMetric(per1k(cli), "cli-cpu-ms/1k")
	// The sink runs in this process: its CPU is this process's, which
	// also pays for starting the 100 CLI processes (a constant share).
	b.ReportMetric(per1k(self), "sink-cpu-ms/1k")
	b.ReportMetric(float64(reads)/float64(got), "sink-reads/msg")
}

// bigDBVersion names the layout of the cached 10M-row database: bump it
// when bigDB changes what it builds.
const bigDBVersion = 1

// bigDB returns a database file with one campaign of n recipients (sender
// "sink"): SENDING with every recipient QUEUED, or, when execute is false,
// ACTIVE with every recipient PENDING. It is built once with core/sqlite's
// insert path and cached under os.TempDir, keyed by n, the state, the
// schema version and bigDBVersion.
func bigDB(tb testing.TB, n int, execute bool) string {
	tb.Helper()
	state := "queued"
	if !execute {
		state = "pending"
	}
	path := filepath.Join(os.TempDir(), fmt.Sprintf("campaignd-bench-%d-%s-schema%d-%s-v%d.db", n, state, sqlite.SchemaVersion(), schemaHash(), bigDBVersion))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	// Caches of older schemas or layouts are of no more use: 2 GB each.
	stale, _ := filepath.Glob(filepath.Join(os.TempDir(), fmt.Sprintf("campaignd-bench-%d-%s-schema*.db", n, state)))
	for _, p := range stale {
		os.Remove(p)
	}
	start := time.Now()
	tmp := path + ".building"
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(tmp + suffix)
	}
	ctx := context.Background()
	db, err := sqlite.Open(ctx, tmp, sqlite.WithCacheKiB(256<<10))
	if err != nil {
		tb.Fatal(err)
	}
	c := &core.Campaign{Name: "ten million", Sender: "sink", From: "news@example.org", Subject: "Hello {{.Name}}",
		Text:        "Hi {{.Name}} <{{.Email}}>,\n\nthis is {{.Campaign.Name}}. Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n",
		Concurrency: core.DefaultConcurrency, BatchSize: core.MaxBatchSize}
	if err := db.CreateCampaign(ctx, c); err != nil {
		tb.Fatal(err)
	}
	const chunk = 10000
	buf := make([]core.RecipientInput, chunk)
	t0 := time.Now()
	for i := 0; i < n; i += chunk {
		k := min(chunk, n-i)
		for j := range k {
			r := i + j
			buf[j] = core.RecipientInput{Email: fmt.Sprintf("user%08d@example.net", r), Name: fmt.Sprintf("User %d", r),
				Attrs: map[string]string{"city": "Lyon"}}
		}
		if _, err := db.InsertRecipients(ctx, c.ID, buf[:k], t0); err != nil {
			tb.Fatal(err)
		}
	}
	if err := db.SetCampaignStatus(ctx, c.ID, core.CampaignDraft, core.CampaignActive, t0); err != nil {
		tb.Fatal(err)
	}
	if execute {
		if x, err := db.Execute(ctx, c.ID, "bench", t0); err != nil || x.Queued != int64(n) {
			tb.Fatalf("execute: %v (queued %v)", err, x)
		}
	}
	if err := db.Checkpoint(ctx); err != nil {
		tb.Fatal(err)
	}
	if err := db.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("built %s (%d recipients) in %s", path, n, time.Since(start).Round(time.Second))
	return path
}

func benchCopyFile(tb testing.TB, src, dst string) {
	tb.Helper()
	in, err := os.Open(src)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkDaemonRSS10M starts the daemon on a copy of a database holding
// a SENDING campaign of 10,000,000 QUEUED recipients and sends 3,000 emails
// through it (60 ticks of 50 to the lean sink), sampling /proc every 10 ms.
// Metrics: hwm-MB (the daemon's VmHWM at the end: its peak RSS over its
// whole life), peak-rss-MB (highest VmRSS sampled while sending),
// start-rss-MB (VmRSS before the first tick), plugin-rss-MB (highest VmRSS
// of its plugin processes) and setup-s (the database copy and, the first
// time, its build).
func BenchmarkDaemonRSS10M(b *testing.B) {
	const n, ticks, per = 10_000_000, 60, core.MaxBatchSize
	setup := time.Now()
	src := bigDB(b, n, true)
	sink := startSink(b, smtptest.Options{Lean: true})
	e := NewEnv(b, "tick_interval = \"0s\"\n"+sinkTOML("sink", sink))
	benchCopyFile(b, src, e.DB)
	setupDur := time.Since(setup)
	d := e.StartDaemon()
	pid := d.Cmd.Process.Pid
	startRSS, _ := procMem(pid)

	var peak, pluginPeak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			if rss, _ := procMem(pid); rss > peak.Load() {
				peak.Store(rss)
			}
			for _, c := range procChildren(pid) {
				if rss, _ := procMem(c); rss > pluginPeak.Load() {
					pluginPeak.Store(rss)
				}
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	var walls []time.Duration
	for b.Loop() {
		for range ticks {
			w, _ := tickSent(b, e, per)
			walls = append(walls, w)
		}
	}
	close(stop)
	wg.Wait()
	_, hwm := procMem(pid)
	if got := sink.Counts().Messages; got < ticks*per {
		b.Fatalf("sink received %d messages, want at least %d", got, ticks*per)
	}
	mb := func(v uint64) float64 { return float64(v) / 1e6 }
	b.ReportMetric(float64(benchQuantile(walls, 0.5)), "ns/op")
	b.ReportMetric(mb(hwm), "hwm-MB")
	b.ReportMetric(mb(peak.Load()), "peak-rss-MB")
	b.ReportMetric(mb(startRSS), "start-rss-MB")
	b.ReportMetric(mb(pluginPeak.Load()), "plugin-rss-MB")
	b.ReportMetric(benchMS(benchQuantile(walls, 0.5)), "tick-median-ms")
	b.ReportMetric(setupDur.Seconds(), "setup-s")
}

// schemaHash fingerprints the migration files, so that an edited
// migration (same schema version, different tables or indexes) does not
// reuse a cached database built with the old one.
func schemaHash() string {
	files, _ := filepath.Glob(filepath.Join("..", "..", "core", "sqlite", "migrations", "*.sql"))
	if len(files) == 0 {
		return "unknown"
	}
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "unknown"
		}
		fmt.Fprintf(h, "%s %d\n", filepath.Base(f), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// openCopy copies a cached database into a temporary directory, opens it
// and returns it with the id of its one campaign.
func openCopy(tb testing.TB, src string) (*sqlite.DB, int64) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "campaignd.db")
	benchCopyFile(tb, src, path)
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	cs, err := db.Campaigns(context.Background())
	if err != nil || len(cs) != 1 {
		tb.Fatalf("campaigns: %v, %d", err, len(cs))
	}
	return db, cs[0].ID
}

// BenchmarkStore10M measures, on a copy of the 10,000,000-recipient
// database BenchmarkDaemonRSS10M sends from, the two store operations
// whose cost must not grow with the queue: claim50 (one tick's claim of 50
// QUEUED rows, a write transaction with its fsync) and stats (reading a
// campaign with its counters, as campaign stats does). scripts/bench.sh
// uses these when core/sqlite has no BenchmarkClaim50From10M or
// BenchmarkStats10M.
func BenchmarkStore10M(b *testing.B) {
	const n = 10_000_000
	ctx := context.Background()
	db, id := openCopy(b, bigDB(b, n, true))
	b.Run("claim50", func(b *testing.B) {
		now := time.Now()
		i := 0
		cpu0 := selfCPU()
		defer func() { b.ReportMetric(float64((selfCPU()-cpu0).Microseconds())/float64(i), "cpu-us/op") }()
		for b.Loop() {
			i++
			rs, err := db.Claim(ctx, id, core.MaxBatchSize, fmt.Sprintf("bench%d", i), now.Add(time.Minute), now)
			if err != nil || len(rs) != core.MaxBatchSize {
				b.Fatalf("claim: %v (%d rows)", err, len(rs))
			}
		}
	})
	b.Run("stats", func(b *testing.B) {
		for b.Loop() {
			c, err := db.Campaign(ctx, id)
			if err != nil || c.Stats.Total != n {
				b.Fatalf("campaign: %v", err)
			}
		}
	})
}

// BenchmarkStoreExecute1M times execute (PENDING -> QUEUED in one
// statement, with the campaign's move to SENDING and the execution
// record, one transaction) of a 1,000,000-recipient ACTIVE campaign, on a
// fresh copy of a cached database per iteration. scripts/bench.sh uses it
// when core/sqlite has no BenchmarkExecute1M.
func BenchmarkStoreExecute1M(b *testing.B) {
	const n = 1_000_000
	ctx := context.Background()
	src := bigDB(b, n, false)
	var cpu time.Duration
	iters := 0
	for b.Loop() {
		b.StopTimer()
		db, id := openCopy(b, src)
		b.StartTimer()
		cpu0 := selfCPU()
		x, err := db.Execute(ctx, id, "bench", time.Now())
		cpu += selfCPU() - cpu0
		iters++
		b.StopTimer()
		if err != nil || x.Queued != n {
			b.Fatalf("execute: %v (%v)", err, x)
		}
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(cpu.Seconds()/float64(iters), "cpu-s/op")
}

// selfCPU is this process's user+system CPU time so far: beside wall time,
// it shows how much of an operation was waiting (for the disk, or for a
// busy machine).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
