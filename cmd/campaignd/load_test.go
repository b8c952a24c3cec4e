package main_test

// TestLoad drives a 1,000,000-recipient campaign to completion through the
// daemon's own scheduler and watches its memory and its ticks. It is
// opt-in (it runs for tens of minutes):
//
//	CAMPAIGND_LOAD=1 go test -run '^TestLoad$' -timeout 90m ./cmd/campaignd/
//
// scripts/load.sh runs it (make load) and writes the "## Load" section of
// BENCHMARKS.md from its JSON report. Knobs:
//
//	CAMPAIGND_LOAD_RECIPIENTS  campaign size (default 1000000; 50000 for an estimate)
//	CAMPAIGND_LOAD_INTERVAL    the daemon's tick_interval (default 10ms)
//	CAMPAIGND_LOAD_TIMEOUT     bound on the sending phase (default 80m)
//	CAMPAIGND_LOAD_MAX_RSS_MB  the daemon's RSS ceiling (default 60)
//	CAMPAIGND_LOAD_IMPORT      "daemon": import through the running daemon (default: standalone, before it starts)
//	CAMPAIGND_LOAD_REPORT      write the figures as a BENCHMARKS.md section to this path

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/plugins/smtp/smtptest"
)

// loadReport is what TestLoad measured; it renders its own BENCHMARKS.md
// section (report_test.go).
type loadReport struct {
	Recipients     int
	TickInterval   string
	TickTimeout    string
	ImportSeconds  float64
	ImportPerSec   float64
	ImportVia      string
	ImportRSSMaxMB float64 // the daemon's VmHWM after an import through it
	ExecuteSeconds float64
	SendSeconds    float64
	EmailsPerSec   float64
	SinkMessages   int64
	Duplicates     int64
	SlowTicks      []core.TickRecord // over half of tick_timeout
	TimedOut       int
	Sent           int64
	Failed         int64
	Ticks          int
	MaxProcessed   int
	TicksOver50    int
	TickErrors     int
	TickP50MS      float64
	TickP95MS      float64
	TickP99MS      float64
	TickMaxMS      float64
	RSSMinMB       float64
	RSSMaxMB       float64
	RSSLastMB      float64
	RSSDecile2MB   float64
	RSSDecile10MB  float64
	RSSDecilesMB   []float64
	MaxRSSMB       float64
	HWMMB          float64
	PluginRSSMaxMB float64
	RSSSamples     int
	VerifyOK       bool
	VerifySeconds  float64
	WallSeconds    float64
	Failures       []string
	Passed         bool
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration", name, v)
	}
	return d
}

// writeLoadCSV writes n recipients to path, streaming.
func writeLoadCSV(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintln(w, "email,name,city")
	for i := range n {
		fmt.Fprintf(w, "load%07d@example.net,Load User %d,Lyon\n", i, i)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestLoad(t *testing.T) {
	if os.Getenv("CAMPAIGND_LOAD") != "1" {
		t.Skip("opt-in load test (tens of minutes): run with CAMPAIGND_LOAD=1 go test -run '^TestLoad$' -timeout 90m ./cmd/campaignd/ (or make load)")
	}
	wallStart := time.Now()
	n := envInt(t, "CAMPAIGND_LOAD_RECIPIENTS", 1_000_000)
	interval := envDuration(t, "CAMPAIGND_LOAD_INTERVAL", 10*time.Millisecond)
	sendBudget := envDuration(t, "CAMPAIGND_LOAD_TIMEOUT", 80*time.Minute)
	maxRSS := float64(envInt(t, "CAMPAIGND_LOAD_MAX_RSS_MB", 60))
	const tickTimeout = 10 * time.Second
	rep := &loadReport{Recipients: n, TickInterval: interval.String(), TickTimeout: tickTimeout.String(), MaxRSSMB: maxRSS}
	fail := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		rep.Failures = append(rep.Failures, msg)
		t.Error(msg)
	}
	defer func() {
		rep.WallSeconds = time.Since(wallStart).Seconds()
		rep.Passed = !t.Failed()
		t.Logf("load report: %+v", *rep)
		writeReport(t, "CAMPAIGND_LOAD_REPORT", rep.markdown)
	}()

	// Counting only: a million messages must cost the sink next to nothing and
	// no memory but one table entry per Message-ID.
	sink := startSink(t, smtptest.Options{Lean: true, SizeHint: n, ReadTimeout: 10 * time.Minute, WriteTimeout: time.Minute})
	e := NewEnv(t, fmt.Sprintf("tick_interval = %q\n[queue]\ntick_timeout = %q\nretry_base = \"1s\"\nretry_max = \"10s\"\n",
		interval.String(), tickTimeout.String())+
		sinkTOML("sink", sink, "max_connections = 5"))
	id := MustCreateCampaign(t, e, "--name", "load", "--sender", "sink", "--concurrency", "5", "--subject", "Hello {{.Name}}",
		"--text", "Hi {{.Name}} <{{.Email}}>,\n\nthis is {{.Campaign.Name}} for {{.Attr.city}}. Lorem ipsum dolor sit amet.\n")
	ids := strconv.FormatInt(id, 10)

	// The import goes through the daemon with CAMPAIGND_LOAD_IMPORT=daemon
	// (as in production with a daemon running); by default it runs
	// standalone before the daemon starts, so that the RSS measured while
	// sending is the sending's own, not what the import left behind.
	viaDaemon := os.Getenv("CAMPAIGND_LOAD_IMPORT") == "daemon"
	rep.ImportVia = "standalone"
	if viaDaemon {
		rep.ImportVia = "daemon"
	}
	type sample struct {
		sending bool
		rss     uint64
	}
	var (
		d         *Daemon
		pid       int
		smu       sync.Mutex
		samples   []sample
		sending   bool
		pluginMax uint64
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	startDaemon := func() {
		d = e.StartDaemon()
		pid = d.Cmd.Process.Pid
		wg.Add(1)
		go func() {
			defer wg.Done()
			tk := time.NewTicker(time.Second)
			defer tk.Stop()
			for {
				rss, _ := procMem(pid)
				var prss uint64
				for _, c := range procChildren(pid) {
					p, _ := procMem(c)
					prss = max(prss, p)
				}
				smu.Lock()
				if rss > 0 {
					samples = append(samples, sample{sending, rss})
				}
				pluginMax = max(pluginMax, prss)
				smu.Unlock()
				select {
				case <-stop:
					return
				case <-tk.C:
				}
			}
		}()
	}
	if viaDaemon {
		startDaemon()
	}

	csv := filepath.Join(e.Dir, "load.csv")
	writeLoadCSV(t, csv, n)
	start := time.Now()
	r := e.RunWith(RunOpts{Timeout: 30 * time.Minute}, "--json", "recipients", "import", ids, csv)
	if r.Code != 0 {
		t.Fatalf("import: %s", r)
	}
	rep.ImportSeconds = time.Since(start).Seconds()
	rep.ImportPerSec = float64(n) / rep.ImportSeconds
	var imp struct {
		Added int `json:"added"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &imp); err != nil || imp.Added != n {
		t.Fatalf("import: added %d of %d (%v)\n%s", imp.Added, n, err, r.Stdout)
	}
	os.Remove(csv)
	t.Logf("imported %d recipients (%s) in %.1fs (%.0f/s)", n, rep.ImportVia, rep.ImportSeconds, rep.ImportPerSec)
	if viaDaemon {
		_, hwm := procMem(pid)
		rep.ImportRSSMaxMB = float64(hwm) / 1e6
	}
	e.MustRun("campaign", "activate", ids)
	smu.Lock()
	sending = true
	smu.Unlock()
	start = time.Now()
	e.MustRun("campaign", "execute", ids)
	rep.ExecuteSeconds = time.Since(start).Seconds()
	sendStart := start
	if !viaDaemon {
		sendStart = time.Now()
		startDaemon()
	}

	ticks := map[int64]core.TickRecord{}
	// Polled every 30 s: at most ~700 ticks a minute happen, so the last
	// 2,000 records overlap the previous poll (a bigger answer would
	// itself show in the daemon's RSS).
	fetchTicks := func() {
		var ts []core.TickRecord
		e.MustJSON(&ts, "ticks", "--limit", "2000")
		for _, tr := range ts {
			ticks[tr.ID] = tr
		}
	}
	deadline := sendStart.Add(sendBudget)
	lastFetch, lastLog := time.Now(), time.Now()
	var c core.Campaign
	for {
		e.MustJSON(&c, "campaign", "show", ids)
		if c.Status == "COMPLETED" {
			break
		}
		if d.Exited() {
			t.Fatalf("daemon exited while sending: %s", d.Stderr())
		}
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			el := time.Since(sendStart)
			rep.Sent, rep.SendSeconds = c.Stats.Sent, el.Seconds()
			rep.EmailsPerSec = float64(c.Stats.Sent) / el.Seconds()
			fail("not COMPLETED within %s: %+v; %.0f emails/s, projected %.0f min for %d",
				sendBudget, c.Stats, rep.EmailsPerSec, float64(n)/max(rep.EmailsPerSec, 1)/60, n)
			return
		}
		if time.Since(lastFetch) >= 30*time.Second {
			fetchTicks()
			lastFetch = time.Now()
		}
		if time.Since(lastLog) >= time.Minute {
			el := time.Since(sendStart)
			rate := float64(c.Stats.Sent) / el.Seconds()
			smu.Lock()
			var rss uint64
			if len(samples) > 0 {
				rss = samples[len(samples)-1].rss
			}
			smu.Unlock()
			t.Logf("%s: sent %d/%d (%.0f/s, ~%.0f min left), daemon RSS %.1f MB, %d ticks seen",
				el.Round(time.Second), c.Stats.Sent, n, rate, float64(int64(n)-c.Stats.Sent)/max(rate, 1)/60, float64(rss)/1e6, len(ticks))
			lastLog = time.Now()
		}
		time.Sleep(2 * time.Second)
	}
	sendDur := time.Since(sendStart)
	close(stop)
	wg.Wait()
	_, hwm := procMem(pid)
	fetchTicks()

	rep.SendSeconds = sendDur.Seconds()
	rep.Sent, rep.Failed = c.Stats.Sent, c.Stats.Failed+c.Stats.Bounced
	rep.EmailsPerSec = float64(c.Stats.Sent) / sendDur.Seconds()
	counts := sink.Counts()
	rep.SinkMessages, rep.Duplicates = counts.Messages, counts.Duplicates
	noID := counts.NoMessageID
	rep.HWMMB = float64(hwm) / 1e6
	rep.PluginRSSMaxMB = float64(pluginMax) / 1e6

	// Ticks: none above the ceiling; latency percentiles.
	var durs []time.Duration
	sentByTicks := 0
	for _, tr := range ticks {
		rep.MaxProcessed = max(rep.MaxProcessed, tr.Processed)
		if tr.Processed > maxPerTick || tr.Sent > maxPerTick {
			rep.TicksOver50++
		}
		if tr.Error != "" {
			rep.TickErrors++
		}
		sentByTicks += tr.Sent
		if tr.Processed > 0 {
			durs = append(durs, tr.Duration)
		}
		if tr.Duration > tickTimeout/2 {
			rep.SlowTicks = append(rep.SlowTicks, tr)
		}
		if tr.Duration >= tickTimeout {
			rep.TimedOut++
		}
	}
	rep.Ticks = len(ticks)
	var lo, hi int64
	for id := range ticks {
		if lo == 0 || id < lo {
			lo = id
		}
		hi = max(hi, id)
	}
	if int(hi-lo+1) != len(ticks) {
		fail("tick records %d..%d, but %d seen: polls missed some", lo, hi, len(ticks))
	}
	if len(durs) > 0 {
		rep.TickP50MS = benchMS(benchQuantile(durs, 0.50))
		rep.TickP95MS = benchMS(benchQuantile(durs, 0.95))
		rep.TickP99MS = benchMS(benchQuantile(durs, 0.99))
		rep.TickMaxMS = benchMS(slices.Max(durs))
	}

	// Memory: flat. Samples from the second decile of the run to the last
	// must not trend upwards.
	var rss []float64
	for _, s := range samples {
		if s.sending {
			rss = append(rss, float64(s.rss)/1e6)
		}
	}
	rep.RSSSamples = len(rss)
	if len(rss) > 0 {
		rep.RSSMinMB, rep.RSSMaxMB, rep.RSSLastMB = slices.Min(rss), slices.Max(rss), rss[len(rss)-1]
	}
	mean := func(xs []float64) float64 {
		s := 0.0
		for _, x := range xs {
			s += x
		}
		return s / float64(max(len(xs), 1))
	}
	if len(rss) >= 20 {
		for k := range 10 {
			rep.RSSDecilesMB = append(rep.RSSDecilesMB, mean(rss[k*len(rss)/10:(k+1)*len(rss)/10]))
		}
		rep.RSSDecile2MB, rep.RSSDecile10MB = rep.RSSDecilesMB[1], rep.RSSDecilesMB[9]
	}

	t.Logf("sent %d in %s: %.0f emails/s; %d ticks (max %d per tick), tick p50 %.1f ms p95 %.1f ms p99 %.1f ms max %.1f ms",
		rep.Sent, sendDur.Round(time.Second), rep.EmailsPerSec, rep.Ticks, rep.MaxProcessed, rep.TickP50MS, rep.TickP95MS, rep.TickP99MS, rep.TickMaxMS)
	t.Logf("daemon RSS while sending: min %.1f MB, max %.1f MB, last %.1f MB, per tenth of the run %.1f MB, VmHWM %.1f MB (after an import through it: %.1f MB); plugin max %.1f MB",
		rep.RSSMinMB, rep.RSSMaxMB, rep.RSSLastMB, rep.RSSDecilesMB, rep.HWMMB, rep.ImportRSSMaxMB, rep.PluginRSSMaxMB)

	if c.Stats.Sent != int64(n) || c.Stats.Total != int64(n) {
		fail("campaign: %+v, want all %d SENT", c.Stats, n)
	}
	// Every message once. A tick that ran out of time cut its sends off in
	// doubt and they were sent again with the same Message-ID: at most its
	// concurrency (5) each; without a timeout there must be none.
	if noID > 0 {
		fail("%d messages without a Message-ID", noID)
	}
	if rep.SinkMessages-rep.Duplicates != int64(n) {
		fail("sink received %d distinct messages (%d in all, %d duplicates), want %d", rep.SinkMessages-rep.Duplicates, rep.SinkMessages, rep.Duplicates, n)
	}
	if rep.Duplicates > int64(5*rep.TimedOut) {
		fail("%d duplicates, but %d ticks ran into tick_timeout (at most 5 in flight each); slow ticks: %+v", rep.Duplicates, rep.TimedOut, rep.SlowTicks)
	}
	if len(rep.SlowTicks) > 0 {
		t.Logf("ticks over half of tick_timeout: %+v", rep.SlowTicks)
	}
	if sentByTicks != n {
		fail("tick records account for %d sent, want %d", sentByTicks, n)
	}
	if rep.TicksOver50 > 0 {
		fail("%d ticks processed more than %d (max %d)", rep.TicksOver50, maxPerTick, rep.MaxProcessed)
	}
	if rep.TickErrors > 0 {
		fail("%d tick records carry an error", rep.TickErrors)
	}
	if rep.RSSMaxMB >= maxRSS {
		fail("daemon RSS reached %.1f MB while sending, ceiling %.0f MB", rep.RSSMaxMB, maxRSS)
	}
	// Flat: the last decile at most 10% (and 3 MB of noise) above the second.
	if rep.RSSDecile2MB > 0 && rep.RSSDecile10MB > rep.RSSDecile2MB*1.10+3 {
		fail("daemon RSS trends upwards: %.1f MB in the second decile, %.1f MB in the last", rep.RSSDecile2MB, rep.RSSDecile10MB)
	}

	vstart := time.Now()
	vr := e.RunWith(RunOpts{Timeout: 5 * time.Minute}, "--json", "verify")
	rep.VerifySeconds = time.Since(vstart).Seconds()
	var vrep struct {
		Violations []json.RawMessage `json:"violations"`
	}
	if err := json.Unmarshal([]byte(vr.Stdout), &vrep); vr.Code != 0 || err != nil || len(vrep.Violations) != 0 {
		fail("verify: %s", vr)
	} else {
		rep.VerifyOK = true
	}
	if err := d.Stop(); err != nil {
		fail("daemon stop: %v\n%s", err, d.Stderr())
	}
	if log := strings.TrimSpace(d.Stderr()); log != "" {
		lines := strings.Split(log, "\n")
		t.Logf("the daemon logged %d lines (warn and above), the last ones:\n%s", len(lines), strings.Join(lines[max(0, len(lines)-40):], "\n"))
	}
}
