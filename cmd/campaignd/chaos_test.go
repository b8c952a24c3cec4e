package main_test

// TestChaos: campaignd's promise under crashes. Several campaigns of
// recipients are sent to a real SMTP server (an in-process sink,
// plugins/smtp/smtptest, that records every message and then holds its
// reply back a random few milliseconds, so the message is delivered whether
// or not the client hears the reply: the worst case for duplicates) while
// a seeded driver, at random moments:
//
//   - starts 1-3 overlapping `campaignd tick` processes and kill -9s some of
//     them mid-batch (once their plugin runs);
//   - starts the daemon (tick_interval 200ms) and later kill -9s it or
//     SIGTERMs it (which must drain and exit 0);
//   - kill -9s the sender plugin under the daemon or under a standalone tick;
//   - slows the sink down to 1-4 s a reply for a few seconds, so ticks run
//     into tick_timeout (3s) mid-send;
//   - executes the next campaign (ticks overlapping a writer).
//
// While the daemon runs, the standalone ticks go through its socket. Then
// the chaos stops, clean ticks run until every recipient is final, and the
// test asserts: every recipient SENT (the sink accepts everything) and at
// the sink at least once, with its own Message-ID; an address that arrived
// more than once did so only with the Message-ID of its first copy and
// never more often than it was attempted; every duplicate is explained by
// the crash of the plugin process that delivered the copy before it (traced
// from /proc), of that plugin's host, or by a tick timeout in that host, and
// no crash explains more duplicates than could be in flight (concurrency 5 x
// campaigns executed), a SIGTERM none; the total is at most the sum of those
// bounds; nothing is lost; `campaignd verify` is clean; no process
// panicked, a SIGTERMed daemon exited 0, and a tick that failed said why.
//
// Modes:
//
//	go test -run '^TestChaos$' ./cmd/campaignd/                     short: 1,500 recipients, 30 s of chaos
//	CAMPAIGND_CHAOS=long go test -run '^TestChaos$' -timeout 60m ./cmd/campaignd/
//	                                                                long: 20,000 recipients, 10 min of chaos
//
// CAMPAIGND_CHAOS_SEED replays a seed (the seed is always printed; the
// process timing is not replayable, the driver's choices are);
// CAMPAIGND_CHAOS_DURATION sets the chaos phase; CAMPAIGND_CHAOS_REPORT
// writes the figures as a BENCHMARKS.md section to that path
// (scripts/chaos.sh).

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/plugins/smtp/smtptest"
)

// ---- the sink: smtptest with random reply delays and traced connections ----

// slowSinkMin and slowSinkMax bound the reply delay in a slow spell,
// around chaosTickTimeout: ticks run out of time mid-send.
const (
	slowSinkMin = time.Second
	slowSinkMax = 4 * time.Second
)

// chaosReplies is how long the sink holds each reply back after the final
// dot (the message is recorded first: delivered): a random delay in
// [min, max], or 1-4 s during a slow spell, so a crash of the client lands
// mid-send and the message counts as delivered although the client never
// learned it.
type chaosReplies struct {
	mu       sync.Mutex
	rng      *rand.Rand
	min, max time.Duration
	slowTill time.Time // until then every reply is held back 1-4 s
}

// SlowFor makes the sink hold every reply back 1-4 s for d.
func (c *chaosReplies) SlowFor(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.slowTill = time.Now().Add(d)
}

// delay is the sink's smtptest.Options.ReplyDelay.
func (c *chaosReplies) delay() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Now().Before(c.slowTill) {
		return slowSinkMin + time.Duration(c.rng.Int64N(int64(slowSinkMax-slowSinkMin)))
	}
	if c.max <= c.min {
		return c.min
	}
	return c.min + time.Duration(c.rng.Int64N(int64(c.max-c.min)))
}

// chaosConns traces each sink connection to the plugin process that opened
// it and that plugin's host (a tick or the daemon), from /proc right after
// the connection is accepted (smtptest.Options.OnConnect).
type chaosConns struct {
	mu   sync.Mutex
	byID map[int]*chaosConn
}

// chaosConn is one traced connection.
type chaosConn struct {
	mu   sync.Mutex // held until resolved: Pids waits for the answer
	pid  int        // 0 if it could not be resolved
	host int
}

// trace starts resolving the connection numbered id.
func (cs *chaosConns) trace(id int, c net.Conn) {
	cc := &chaosConn{}
	ra, okR := c.RemoteAddr().(*net.TCPAddr)
	la, okL := c.LocalAddr().(*net.TCPAddr)
	if okR && okL {
		cc.mu.Lock()
		go func() {
			defer cc.mu.Unlock()
			cc.pid = socketOwner(ra.Port, la.Port, "campaignd-sender-smtp")
			if cc.pid != 0 {
				cc.host, _, _ = procStat(cc.pid, false)
			}
		}()
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.byID[id] = cc
}

// Pids returns the plugin process that opened connection id and its host,
// 0 if unknown.
func (cs *chaosConns) Pids(id int) (plugin, host int) {
	cs.mu.Lock()
	cc := cs.byID[id]
	cs.mu.Unlock()
	if cc == nil {
		return 0, 0
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.pid, cc.host
}

// ---- processes ----

// chaosProc is a campaignd process the driver started.
type chaosProc struct {
	kind    string // "tick" or "daemon"
	cmd     *exec.Cmd
	started time.Time
	stdout  syncBuffer
	stderr  syncBuffer
	done    chan struct{}
	ended   time.Time

	// ticks the driver means to kill: once the tick runs a plugin (it is
	// sending), it is killed killDelay later.
	doom      bool
	killDelay time.Duration
	killAt    time.Time
	killed    bool
	signalled bool      // SIGTERM sent (daemons)
	goneAt    time.Time // when the driver sent SIGKILL or SIGTERM
}

func (p *chaosProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *chaosProc) pid() int { return p.cmd.Process.Pid }

// exitCode is the exit status, -1 when killed by a signal.
func (p *chaosProc) exitCode() int { return p.cmd.ProcessState.ExitCode() }

// ---- the report ----

// chaosEvent is one crash (or tick timeout) and how many duplicates it
// could cause: what the killed process could have left in doubt (see
// kill9), what a killed plugin had in flight.
type chaosEvent struct {
	Kind  string // tick_kill, daemon_kill, plugin_kill, tick_timeout, daemon_sigterm (bound 0)
	At    time.Time
	Bound int
	Dups  int
	// Plugins are the sender plugin processes a crash cut off; Hosts the
	// processes (ticks, daemons) that could have run a timed-out tick.
	Plugins []int
	Hosts   []int
	// From and To bound when the copy it cut off reached the sink, for a
	// duplicate whose plugin or host is unknown.
	From, To time.Time
}

// chaosReport is what TestChaos measured; it renders its own
// BENCHMARKS.md section (report_test.go).
type chaosReport struct {
	Mode            string
	Seed            uint64
	Recipients      int
	Campaigns       int
	InFlightBound   int
	SinkDelay       string
	ChaosSeconds    float64
	DrainSeconds    float64
	WallSeconds     float64
	Kills           map[string]int
	DaemonStarts    int
	DaemonRefused   int
	DaemonTerms     int
	TicksStarted    int
	TicksOK         int
	TicksSkipped    int
	TicksFailed     int
	TicksKilled     int
	TickRecords     int
	TickTimeouts    int
	DrainTicks      int
	SlowSpells      int
	Executes        int
	Recovered       int
	SinkMessages    int
	Sent            int
	Duplicates      int
	DuplicateBound  int
	MaxDupsPerEvent int
	Unexplained     int
	DupsByKind      map[string]int
	UnknownPlugin   int
	Losses          int
	VerifyOK        bool
	Failures        []string
	Passed          bool
}

// ---- the parameters ----

type chaosParams struct {
	mode       string
	campaigns  int
	perCamp    int
	duration   time.Duration
	minDelay   time.Duration
	maxDelay   time.Duration
	concurrent int // concurrency per campaign
}

func chaosConfig(t *testing.T) chaosParams {
	p := chaosParams{mode: "short", campaigns: 6, perCamp: 250, duration: 30 * time.Second,
		minDelay: 2 * time.Millisecond, maxDelay: 60 * time.Millisecond, concurrent: 5}
	if os.Getenv("CAMPAIGND_CHAOS") == "long" {
		p.mode, p.campaigns, p.perCamp, p.duration = "long", 8, 2500, 10*time.Minute
	}
	if v := os.Getenv("CAMPAIGND_CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("CAMPAIGND_CHAOS_DURATION=%q: want a positive duration", v)
		}
		p.duration = d
	}
	return p
}

const (
	chaosTickTimeout = 3 * time.Second
	chaosDomain      = "chaos.example"
	chaosFrom        = "news@example.com" // Message-IDs end in @example.com
)

// TestChaos runs in phases: setup (sink, config, campaigns), chaos (rounds
// of pick an action -> apply -> settle), drain (stop the chaos, clean ticks
// until every recipient is final), audit (tick timeouts, every recipient
// SENT and at the sink, every duplicate explained by a crash within its
// bound, verify clean), and the report, written whatever happened.
func TestChaos(t *testing.T) {
	r := newChaosRun(t)
	defer r.report()
	r.setup()
	r.chaos()
	r.drain()
	r.countTickTimeouts()
	r.audit()
}

// chaosRun is one run of TestChaos: its parameters, the sink, the
// environment, the processes the driver started and the crashes it caused.
type chaosRun struct {
	t         *testing.T
	p         chaosParams
	seed      uint64
	rng       *rand.Rand // the driver's choices
	bound     int        // what one process can have in flight at most
	rep       *chaosReport
	wallStart time.Time

	replies *chaosReplies
	conns   *chaosConns
	sink    *smtptest.Server
	e       *Env

	ids      []int64         // the campaigns, in execution order
	executed int             // how many of them are executed
	execAt   []time.Duration // when into the chaos each is executed

	procs   []*chaosProc
	daemon  *chaosProc // the daemon running now, if any
	daemons []*chaosProc
	events  []*chaosEvent
	reaped  map[*chaosProc]bool
}

// newChaosRun reads the mode and the seed and starts the report.
func newChaosRun(t *testing.T) *chaosRun {
	r := &chaosRun{t: t, wallStart: time.Now(), p: chaosConfig(t), reaped: map[*chaosProc]bool{}}
	p := r.p
	r.seed = uint64(time.Now().UnixNano())
	if v := os.Getenv("CAMPAIGND_CHAOS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CAMPAIGND_CHAOS_SEED=%q: %v", v, err)
		}
		r.seed = s
	}
	t.Logf("chaos: mode %s, seed %d (replay with CAMPAIGND_CHAOS_SEED=%d), %d campaigns x %d recipients, %s of chaos",
		p.mode, r.seed, r.seed, p.campaigns, p.perCamp, p.duration)
	r.rng = rand.New(rand.NewPCG(r.seed, 0xc4a05))
	r.bound = p.concurrent * p.campaigns
	r.rep = &chaosReport{Mode: p.mode, Seed: r.seed, Recipients: p.campaigns * p.perCamp, Campaigns: p.campaigns,
		InFlightBound: r.bound, SinkDelay: fmt.Sprintf("%s..%s", p.minDelay, p.maxDelay), Kills: map[string]int{}, DupsByKind: map[string]int{}}
	return r
}

// fail records a broken promise in the report and fails the test.
func (r *chaosRun) fail(format string, args ...any) {
	r.t.Helper()
	msg := fmt.Sprintf(format, args...)
	if len(r.rep.Failures) < 50 {
		r.rep.Failures = append(r.rep.Failures, msg)
	}
	r.t.Error(msg)
}

// report logs the figures and writes the BENCHMARKS.md section; deferred,
// so a run that stops early still reports.
func (r *chaosRun) report() {
	t, rep, seed := r.t, r.rep, r.seed
	rep.WallSeconds = time.Since(r.wallStart).Seconds()
	rep.Passed = !t.Failed()
	t.Logf("chaos figures: seed %d; kills %v; daemon starts %d (refused %d), SIGTERMs %d; ticks started %d (ok %d, skipped %d, failed %d, killed %d), tick records %d, timeouts %d, leases recovered %d, drain ticks %d; sink messages %d for %d recipients; duplicates %d (bound %d, max per event %d, by kind %v, unexplained %d; deliveries by an unidentified plugin %d); losses %d; chaos %.1fs, drain %.1fs, wall %.1fs",
		seed, rep.Kills, rep.DaemonStarts, rep.DaemonRefused, rep.DaemonTerms, rep.TicksStarted, rep.TicksOK, rep.TicksSkipped,
		rep.TicksFailed, rep.TicksKilled, rep.TickRecords, rep.TickTimeouts, rep.Recovered, rep.DrainTicks, rep.SinkMessages,
		rep.Recipients, rep.Duplicates, rep.DuplicateBound, rep.MaxDupsPerEvent, rep.DupsByKind, rep.Unexplained, rep.UnknownPlugin, rep.Losses,
		rep.ChaosSeconds, rep.DrainSeconds, rep.WallSeconds)
	if t.Failed() {
		t.Logf("FAILED with seed %d: replay with CAMPAIGND_CHAOS_SEED=%d", seed, seed)
	}
	writeReport(t, "CAMPAIGND_CHAOS_REPORT", rep.markdown)
}

// ---- phase 1: setup ----

// setup starts the sink and the environment and imports every campaign up
// front; two execute now, the others one by one during the first 60% of
// the chaos.
func (r *chaosRun) setup() {
	t, p := r.t, r.p
	r.replies = &chaosReplies{rng: rand.New(rand.NewPCG(r.seed, r.seed^0x5eed)), min: p.minDelay, max: p.maxDelay}
	r.conns = &chaosConns{byID: map[int]*chaosConn{}}
	r.sink = startSink(t, smtptest.Options{ReplyDelay: r.replies.delay, OnConnect: r.conns.trace})
	r.e = NewEnv(t, fmt.Sprintf(`tick_interval = "200ms"
shutdown_timeout = "15s"
lock_timeout = "30s"
[queue]
tick_timeout = %q
lease_margin = "0s"
retry_base = "50ms"
retry_max = "500ms"
in_doubt = "resend"
max_attempts = 20
`, chaosTickTimeout.String())+sinkTOML("sink", r.sink, fmt.Sprintf("max_connections = %d", r.bound)))
	e := r.e

	for k := range p.campaigns {
		id := MustCreateCampaign(t, e, "--name", fmt.Sprintf("chaos %d", k), "--sender", "sink", "--from", chaosFrom,
			"--concurrency", strconv.Itoa(p.concurrent), "--subject", "Chaos {{.Name}}",
			"--text", "Hi {{.Name}} <{{.Email}}>,\nthis is {{.Campaign.Name}}.\n")
		var b strings.Builder
		b.WriteString("email,name\n")
		for i := range p.perCamp {
			fmt.Fprintf(&b, "c%d-u%05d@%s,User %d-%d\n", k, i, chaosDomain, k, i)
		}
		f := WriteFile(t, e.Dir, fmt.Sprintf("c%d.csv", k), b.String())
		var imp struct {
			Added int `json:"added"`
		}
		e.MustJSON(&imp, "recipients", "import", strconv.FormatInt(id, 10), f)
		if imp.Added != p.perCamp {
			t.Fatalf("import: added %d of %d", imp.Added, p.perCamp)
		}
		e.MustRun("campaign", "activate", strconv.FormatInt(id, 10))
		r.ids = append(r.ids, id)
	}
	r.execute()
	r.execute()
	r.execAt = make([]time.Duration, p.campaigns)
	for k := 2; k < p.campaigns; k++ {
		r.execAt[k] = p.duration * 6 / 10 * time.Duration(k-1) / time.Duration(p.campaigns-2)
	}
	t.Cleanup(func() {
		for _, pr := range r.procs {
			if !pr.exited() {
				_ = pr.cmd.Process.Kill()
				<-pr.done
			}
		}
	})
}

// execute executes the next campaign (ticks may overlap the writer).
func (r *chaosRun) execute() {
	r.t.Helper()
	id := strconv.FormatInt(r.ids[r.executed], 10)
	var x struct {
		Queued int `json:"queued"`
	}
	res := r.e.RunWith(RunOpts{Timeout: 2 * time.Minute}, "--json", "campaign", "execute", id)
	if res.Code != 0 || json.Unmarshal([]byte(res.Stdout), &x) != nil || x.Queued != r.p.perCamp {
		r.t.Fatalf("execute campaign %s during chaos: %s", id, res)
	}
	r.executed++
	r.rep.Executes++
}

// ---- the driver's processes ----

// start starts `campaignd args...` in the background.
func (r *chaosRun) start(kind string, args ...string) *chaosProc {
	r.t.Helper()
	e := r.e
	pr := &chaosProc{kind: kind, done: make(chan struct{})}
	pr.cmd = exec.Command(Bin(), append([]string{"--config", e.Config}, args...)...)
	pr.cmd.Dir = e.Dir
	pr.cmd.Env = append(os.Environ(), e.ExtraEnv...)
	pr.cmd.Stdout, pr.cmd.Stderr = &pr.stdout, &pr.stderr
	pr.started = time.Now()
	if err := pr.cmd.Start(); err != nil {
		r.t.Fatalf("start campaignd %s: %v", strings.Join(args, " "), err)
	}
	go func() { _ = pr.cmd.Wait(); pr.ended = time.Now(); close(pr.done) }()
	r.procs = append(r.procs, pr)
	return pr
}

// plugins are the smtp plugin processes running under pr now.
func (r *chaosRun) plugins(pr *chaosProc) []int {
	if pr == nil || pr.exited() {
		return nil
	}
	return childProcs(r.t, pr.pid(), "campaignd-sender-smtp")
}

// inFlight is what one process can have in flight now: concurrency
// times the campaigns executed so far.
func (r *chaosRun) inFlight() int { return min(r.p.concurrent*r.executed, r.bound) }

// tickBound is what one tick can leave in doubt when its process dies:
// with group commit, every claimed row whose outcome was not yet
// committed (in flight, or sent and waiting for its group), so at most
// the tick's claimed batch: never above 50 (README, "What is not
// promised").
func (r *chaosRun) tickBound() int { return min(core.MaxBatchSize, r.p.perCamp*r.executed) }

// kill9 kills pr; its event's bound is what it could have left in doubt:
// nothing if it ran no plugin (a CLI tick served by the daemon), else the
// claimed batch of each tick it could be running: a standalone tick runs
// one, the daemon its own and one for each CLI tick it serves.
func (r *chaosRun) kill9(pr *chaosProc, kind string) {
	n := 0
	pl := r.plugins(pr)
	if len(pl) > 0 {
		ticks := 1
		if pr.kind == "daemon" {
			ticks += len(r.liveTicks())
		}
		n = min(ticks*r.tickBound(), r.p.perCamp*r.executed)
	}
	pr.goneAt = time.Now()
	if err := syscall.Kill(pr.pid(), syscall.SIGKILL); err != nil {
		return // it exited meanwhile
	}
	pr.killed = true
	<-pr.done
	r.events = append(r.events, &chaosEvent{Kind: kind, At: time.Now(), Bound: n, Plugins: append([]int{}, pl...)})
	r.rep.Kills[kind]++
}

// startDaemon starts the daemon; while a standalone tick holds the lock,
// serve refuses (naming the holder) and is retried, as a service manager
// would, for up to a second.
func (r *chaosRun) startDaemon() {
	t, rep := r.t, r.rep
	pr := r.start("daemon", "serve")
	rep.DaemonStarts++
	deadline := time.Now().Add(20 * time.Second)
	retryUntil := time.Now().Add(time.Second)
	for {
		if pr.exited() {
			if pr.exitCode() == 1 && strings.Contains(pr.stderr.String(), "locked by") {
				rep.DaemonRefused++
				if time.Now().After(retryUntil) {
					return
				}
				time.Sleep(50 * time.Millisecond)
				pr = r.start("daemon", "serve")
				rep.DaemonStarts++
				continue
			}
			t.Fatalf("daemon exited at start: exit %d\n%s", pr.exitCode(), pr.stderr.String())
		}
		if r.e.statusOK() {
			r.daemon = pr
			r.daemons = append(r.daemons, pr)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon socket did not answer within 20s\n%s", pr.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stopDaemon SIGTERMs the running daemon and waits for it to exit.
func (r *chaosRun) stopDaemon() {
	pr := r.daemon
	r.daemon = nil
	pr.signalled = true
	r.rep.DaemonTerms++
	// SIGTERM drains: in-flight sends finish and are recorded, so it
	// may cause no duplicate.
	r.events = append(r.events, &chaosEvent{Kind: "daemon_sigterm", At: time.Now(), Bound: 0, Plugins: append([]int{}, r.plugins(pr)...)})
	pr.goneAt = time.Now()
	_ = syscall.Kill(pr.pid(), syscall.SIGTERM)
	select {
	case <-pr.done:
	case <-time.After(30 * time.Second):
		r.fail("daemon did not exit within 30s of SIGTERM; killing it\n%s", pr.stderr.String())
		r.kill9(pr, "daemon_kill")
	}
}

// reap accounts for finished ticks: killed, ok, skipped, or failed for a
// reason they state and a daemon crash or stop explains.
func (r *chaosRun) reap() {
	rep := r.rep
	for _, pr := range r.procs {
		if pr.kind != "tick" || r.reaped[pr] || !pr.exited() {
			continue
		}
		r.reaped[pr] = true
		switch code := pr.exitCode(); {
		case pr.killed:
			rep.TicksKilled++
		case code == 0 || code == 3:
			// 3: the tick ran but met sender-level problems (a plugin
			// killed under it, the sink too slow for the deadline), each
			// a line of its own on stderr.
			var res core.TickResult
			if err := json.Unmarshal([]byte(pr.stdout.String()), &res); err != nil {
				r.fail("tick exit %d with unreadable answer %q: %v", code, pr.stdout.String(), err)
			} else if (code == 3) != (len(res.Problems) > 0) {
				r.fail("tick exit %d with problems %q", code, res.Problems)
			} else if res.Skipped {
				rep.TicksSkipped++
			} else {
				rep.TicksOK++
				if res.Processed > maxPerTick {
					r.fail("tick processed %d, more than %d", res.Processed, maxPerTick)
				}
			}
		default:
			// A tick may fail when the daemon it talks to is killed
			// or stops under it; it must then say why, in one line.
			rep.TicksFailed++
			msg := strings.TrimSpace(pr.stderr.String())
			if code != 1 || !strings.HasPrefix(msg, "campaignd: ") || strings.Contains(msg, "panic") {
				r.fail("tick exit %d without a clear reason:\n%s", code, msg)
			} else if !daemonEventDuring(r.daemons, pr.started, pr.ended) {
				r.fail("tick failed with no daemon crash or stop during its run (%s .. %s): %s",
					pr.started.Format("15:04:05.000"), pr.ended.Format("15:04:05.000"), msg)
			} else {
				r.t.Logf("tick failed as its daemon went away: %s", msg)
			}
		}
	}
}

// liveTicks are the standalone ticks still running.
func (r *chaosRun) liveTicks() []*chaosProc {
	var out []*chaosProc
	for _, pr := range r.procs {
		if pr.kind == "tick" && !pr.exited() {
			out = append(out, pr)
		}
	}
	return out
}

// allFinal reports whether every campaign is COMPLETED.
func (r *chaosRun) allFinal() bool {
	var cs []core.Campaign
	r.e.MustJSON(&cs, "campaign", "list")
	for _, c := range cs {
		if c.Status != "COMPLETED" {
			return false
		}
	}
	return true
}

// ---- phase 2: the chaos ----

// chaosAction is what the driver does in one round.
type chaosAction int

const (
	actTicks      chaosAction = iota // 1-3 overlapping ticks, about half doomed to a kill -9 mid-batch
	actDaemon                        // the daemon comes (start) and goes (kill -9 or SIGTERM)
	actKillPlugin                    // kill -9 of the plugin under the daemon or a tick
	actSlowSink                      // the sink slows down: ticks run into tick_timeout
	actQuiet                         // nothing
)

// chaos runs rounds until the chaos duration is over (or every campaign is
// executed and completed early). Each round kills the doomed ticks whose
// time has come, accounts for finished ticks, executes the next campaign
// when due, and, once the last action has settled, picks the next action
// and applies it.
func (r *chaosRun) chaos() {
	p := r.p
	chaosStart := time.Now()
	nextAction := chaosStart
	lastFinalCheck := chaosStart
	for time.Since(chaosStart) < p.duration {
		now := time.Now()
		el := now.Sub(chaosStart)
		r.killDoomedTicks(now)
		r.reap()
		if r.daemon != nil && r.daemon.exited() {
			r.t.Fatalf("daemon died by itself: exit %d\n%s", r.daemon.exitCode(), r.daemon.stderr.String())
		}
		if r.executed < p.campaigns && el >= r.execAt[r.executed] {
			r.execute()
		}
		if now.After(nextAction) {
			r.apply(r.pickAction())
			// Let it settle before the next one.
			nextAction = time.Now().Add(time.Duration(100+r.rng.IntN(500)) * time.Millisecond)
		}
		if r.executed == p.campaigns && time.Since(lastFinalCheck) > time.Second {
			lastFinalCheck = time.Now()
			if r.allFinal() {
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.rep.ChaosSeconds = time.Since(chaosStart).Seconds()
}

// killDoomedTicks kill -9s each doomed tick its delay after its plugin
// started (once it is sending).
func (r *chaosRun) killDoomedTicks(now time.Time) {
	for _, pr := range r.liveTicks() {
		if !pr.doom || pr.killed {
			continue
		}
		if pr.killAt.IsZero() && len(r.plugins(pr)) > 0 {
			pr.killAt = now.Add(pr.killDelay)
		}
		if !pr.killAt.IsZero() && now.After(pr.killAt) {
			r.kill9(pr, "tick_kill")
		}
	}
}

// pickAction draws the next action: ticks 40%, daemon 25%, plugin kill
// 15%, slow sink 4%, quiet the rest.
func (r *chaosRun) pickAction() chaosAction {
	switch x := r.rng.IntN(100); {
	case x < 40:
		return actTicks
	case x < 65:
		return actDaemon
	case x < 80:
		return actKillPlugin
	case x < 84:
		return actSlowSink
	default:
		return actQuiet
	}
}

// apply carries out one action.
func (r *chaosRun) apply(a chaosAction) {
	rng, rep := r.rng, r.rep
	switch a {
	case actTicks:
		if len(r.liveTicks()) >= 4 {
			return
		}
		for range 1 + rng.IntN(3) {
			pr := r.start("tick", "--json", "tick")
			rep.TicksStarted++
			if rng.IntN(100) < 50 {
				pr.doom = true
				pr.killDelay = time.Duration(rng.IntN(400)) * time.Millisecond
			}
		}
	case actDaemon:
		switch {
		case r.daemon == nil:
			r.startDaemon()
		case rng.IntN(100) < 60:
			d := r.daemon
			r.daemon = nil
			r.kill9(d, "daemon_kill")
		default:
			r.stopDaemon()
		}
	case actKillPlugin:
		var victims []int
		if r.daemon != nil {
			victims = r.plugins(r.daemon)
		}
		if len(victims) == 0 {
			for _, pr := range r.liveTicks() {
				victims = append(victims, r.plugins(pr)...)
			}
		}
		if len(victims) > 0 {
			v := victims[rng.IntN(len(victims))]
			if syscall.Kill(v, syscall.SIGKILL) == nil {
				r.events = append(r.events, &chaosEvent{Kind: "plugin_kill", At: time.Now(), Bound: r.inFlight(), Plugins: []int{v}})
				rep.Kills["plugin_kill"]++
			}
		}
	case actSlowSink:
		d := time.Duration(1000+rng.IntN(2000)) * time.Millisecond
		r.replies.SlowFor(d)
		rep.SlowSpells++
		r.t.Logf("the sink is slow for %s from %s", d, time.Now().Format("15:04:05.000"))
	case actQuiet:
	}
}

// ---- phase 3: drain ----

// drain stops the chaos (waits for the running ticks, SIGTERMs the daemon,
// checks how every daemon ended), executes what is left, runs clean ticks
// until every recipient is final, and waits until no plugin is connected
// to the sink, so every delivery is counted.
func (r *chaosRun) drain() {
	t, e, rep := r.t, r.e, r.rep
	drainStart := time.Now()
	// The chaos is over, a slow spell with it: one begun just before the
	// end would time the clean ticks out mid-send (exit 3, a tick problem).
	r.replies.SlowFor(0)
	for _, pr := range r.liveTicks() {
		select {
		case <-pr.done:
		case <-time.After(30 * time.Second):
			r.fail("tick still running 30s after the chaos stopped\n%s", pr.stderr.String())
			r.kill9(pr, "tick_kill")
		}
	}
	r.reap()
	if r.daemon != nil {
		r.stopDaemon()
	}
	for _, d := range r.daemons {
		if d.signalled && !d.killed && d.exitCode() != 0 {
			r.fail("daemon exited %d after SIGTERM, want 0\n%s", d.exitCode(), d.stderr.String())
		}
		if strings.Contains(d.stderr.String(), "panic") {
			r.fail("daemon panicked:\n%s", d.stderr.String())
		}
	}
	for r.executed < r.p.campaigns {
		r.execute()
	}
	drainDeadline := time.Now().Add(2*time.Minute + time.Duration(rep.Recipients/maxPerTick)*time.Second)
	for !r.allFinal() {
		if time.Now().After(drainDeadline) {
			var cs []core.Campaign
			e.MustJSON(&cs, "campaign", "list")
			t.Fatalf("recipients not final after %d clean ticks: %+v", rep.DrainTicks, cs)
		}
		res := runTick(t, e)
		rep.DrainTicks++
		if res.Skipped {
			r.fail("a clean tick was skipped: something still holds the lock")
		}
		if res.Processed == 0 {
			time.Sleep(100 * time.Millisecond) // leases of killed ticks expire after tick_timeout
		}
	}
	// Orphaned plugins (their host killed) exit within about a second;
	// wait until none is connected before counting the deliveries.
	for deadline := time.Now().Add(15 * time.Second); r.sink.Active() > 0; {
		if time.Now().After(deadline) {
			r.fail("%d SMTP connections still open 15s after the drain: a plugin outlived its host", r.sink.Active())
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	rep.DrainSeconds = time.Since(drainStart).Seconds()
}

// ---- phase 4: audit ----

// countTickTimeouts reads the tick records: none over the per-tick
// ceiling, and each tick that ran into tick_timeout is an event (it cut
// its sends off: in doubt, requeued, possibly delivered twice).
func (r *chaosRun) countTickTimeouts() {
	t, rep := r.t, r.rep
	var ticks []core.TickRecord
	r.e.MustJSON(&ticks, "ticks", "--limit", "10000")
	rep.TickRecords = len(ticks)
	for _, tr := range ticks {
		rep.Recovered += tr.Recovered
		if tr.Processed > maxPerTick || tr.Sent > maxPerTick {
			r.fail("tick record %d processed %d, sent %d: more than %d", tr.ID, tr.Processed, tr.Sent, maxPerTick)
		}
		// The engine counts a send that failed within 250ms of the
		// deadline as cut off (core's deadlineSlack), so such a tick may
		// end that much early.
		if tr.Duration >= chaosTickTimeout-300*time.Millisecond {
			rep.TickTimeouts++
			from, to := tr.Started, tr.Started.Add(tr.Duration)
			ev := &chaosEvent{Kind: "tick_timeout", At: tr.Started.Add(chaosTickTimeout), Bound: r.bound,
				Hosts: []int{}, From: from.Add(-time.Second), To: to.Add(2 * time.Second)}
			// The process that ran it: a standalone tick or a daemon
			// alive all along (their clocks are this machine's).
			kind := "daemon"
			if tr.Trigger == "cli" {
				kind = "tick"
			}
			for _, pr := range r.procs {
				if pr.kind == kind && !pr.started.After(from.Add(time.Second)) && (!pr.exited() || !pr.ended.Before(to.Add(-time.Second))) {
					ev.Hosts = append(ev.Hosts, pr.pid())
				}
			}
			r.events = append(r.events, ev)
			t.Logf("tick %d (%s) ran into tick_timeout: %+v; run by one of %v", tr.ID, tr.Trigger, tr, ev.Hosts)
		}
	}
	rep.Kills["tick_timeout"] = rep.TickTimeouts
}

// chaosWant is what the database says of one recipient.
type chaosWant struct {
	cid, rid  int64
	messageID string
	attempts  int
}

// chaosArrival is every copy the sink received for one address, in order.
type chaosArrival struct {
	at      []time.Time
	ids     []string
	plugins []int
	hosts   []int
	n       int
}

// chaosDup is a duplicate: a copy after the first, caused by a crash while
// the copy before it was in flight.
type chaosDup struct {
	addr   string
	prev   time.Time // the copy whose outcome was lost
	plugin int       // the plugin process that delivered it (0: unknown)
	host   int       // that plugin's host (0: unknown)
	index  int       // 2 for the second copy, ...
}

// audit checks the promise: every recipient SENT and at the sink with its
// own Message-ID, never more often than attempted, nothing lost; every
// duplicate explained by a crash within its bound; verify clean.
func (r *chaosRun) audit() {
	recips := r.finalRecipients()
	got := r.arrivals()
	dups := r.checkArrivals(recips, got)
	r.explainDuplicates(dups)
	r.verify()
}

// finalRecipients requires every campaign COMPLETED with every recipient
// SENT with a provider id, and returns the recipients by address.
func (r *chaosRun) finalRecipients() map[string]chaosWant {
	t, e, p, rep := r.t, r.e, r.p, r.rep
	recips := map[string]chaosWant{}
	for _, id := range r.ids {
		c := dlvShow(t, e, id)
		if c.Status != "COMPLETED" || c.Stats.Sent != int64(p.perCamp) || c.Stats.Total != int64(p.perCamp) {
			r.fail("campaign %d: %s %+v, want COMPLETED with all %d SENT", id, c.Status, c.Stats, p.perCamp)
		}
		rep.Sent += int(c.Stats.Sent)
		for _, rc := range dlvRecipients(t, e, id) {
			if rc.Status != "SENT" || rc.ProviderID == "" {
				r.fail("recipient %s: %+v, want SENT with a provider id", rc.Email, rc)
			}
			recips[rc.Email] = chaosWant{cid: id, rid: rc.ID, messageID: fmt.Sprintf("<c%d.r%d@example.com>", id, rc.ID), attempts: rc.Attempts}
		}
	}
	if len(recips) != rep.Recipients {
		r.fail("%d recipients listed, want %d", len(recips), rep.Recipients)
	}
	return recips
}

// arrivals groups the sink's messages by address, each copy with the
// plugin process that delivered it and that plugin's host (0 when unknown,
// or when the host is none of the driver's processes: the plugin was an
// orphan already when its connection was traced).
func (r *chaosRun) arrivals() map[string]*chaosArrival {
	rep := r.rep
	msgs := r.sink.Messages()
	rep.SinkMessages = len(msgs)
	got := map[string]*chaosArrival{}
	for _, m := range msgs {
		a := got[m.To]
		if a == nil {
			a = &chaosArrival{}
			got[m.To] = a
		}
		a.n++
		a.at = append(a.at, m.At)
		pl, host := r.conns.Pids(m.ConnID)
		a.plugins = append(a.plugins, pl)
		a.hosts = append(a.hosts, host)
		if pl == 0 {
			rep.UnknownPlugin++
		}
		a.ids = append(a.ids, m.MessageID)
	}
	ours := map[int]bool{}
	for _, pr := range r.procs {
		ours[pr.pid()] = true
	}
	for _, a := range got {
		for i, h := range a.hosts {
			if !ours[h] {
				a.hosts[i] = 0
			}
		}
	}
	return got
}

// checkArrivals requires each address at the sink to be a recipient, every
// copy to carry the recipient's own Message-ID, no more copies than
// attempts and no recipient missing; it returns the duplicates.
func (r *chaosRun) checkArrivals(recips map[string]chaosWant, got map[string]*chaosArrival) []chaosDup {
	rep := r.rep
	var dups []chaosDup
	for addr, a := range got {
		w, ok := recips[addr]
		if !ok {
			r.fail("the sink received mail for %s, which is no recipient", addr)
			continue
		}
		for i, mid := range a.ids {
			if mid != a.ids[0] {
				r.fail("%s: copy %d has Message-ID %s, the first had %s", addr, i+1, mid, a.ids[0])
			}
		}
		if a.ids[0] != w.messageID {
			r.fail("%s: Message-ID %s, want %s", addr, a.ids[0], w.messageID)
		}
		if a.n > w.attempts {
			r.fail("%s arrived %d times but was attempted %d times", addr, a.n, w.attempts)
		}
		for i := 1; i < a.n; i++ {
			dups = append(dups, chaosDup{addr: addr, prev: a.at[i-1], plugin: a.plugins[i-1], host: a.hosts[i-1], index: i + 1})
			rep.Duplicates++
		}
	}
	for addr := range recips {
		if got[addr] == nil {
			rep.Losses++
			r.fail("%s is SENT but never reached the sink: lost", addr)
		}
	}
	return dups
}

// explainDuplicates explains each duplicate by the crash that cut off the
// copy before it: the crash that killed the plugin process which delivered
// that copy (or its host), or a tick timeout close to it. Without a known
// plugin process, any crash close to the copy: it reached the sink while
// the crashed process had it in flight (up to the sink's reply delay plus
// the recording before the crash, or an orphaned plugin finishing it up to
// a second or so after). No event explains more than its bound, and the
// total is at most the sum of the bounds.
func (r *chaosRun) explainDuplicates(dups []chaosDup) {
	t, rep, events := r.t, r.rep, r.events
	before, after := max(r.p.maxDelay, slowSinkMax)+2*time.Second, 2*time.Second
	for _, ev := range events {
		if ev.From.IsZero() {
			ev.From, ev.To = ev.At.Add(-before), ev.At.Add(after)
		}
	}
	explains := func(ev *chaosEvent, d chaosDup) bool {
		if ev.Dups >= ev.Bound {
			return false
		}
		switch {
		case d.plugin != 0 && ev.Plugins != nil:
			// One process: only pid reuse could confuse it, hence a window.
			return slices.Contains(ev.Plugins, d.plugin) && !d.prev.Before(ev.At.Add(-time.Minute)) && !d.prev.After(ev.At.Add(5*time.Second))
		case d.host != 0 && ev.Hosts != nil:
			return slices.Contains(ev.Hosts, d.host) && !d.prev.Before(ev.From) && !d.prev.After(ev.To)
		}
		return !d.prev.Before(ev.From) && !d.prev.After(ev.To)
	}
	sort.Slice(dups, func(i, j int) bool { return dups[i].prev.Before(dups[j].prev) })
	for _, ev := range events {
		rep.DuplicateBound += ev.Bound
	}
	for _, d := range dups {
		var best *chaosEvent
		for _, ev := range events {
			if !explains(ev, d) {
				continue
			}
			if best == nil || absDur(d.prev.Sub(ev.At)) < absDur(d.prev.Sub(best.At)) {
				best = ev
			}
		}
		if best == nil {
			rep.Unexplained++
			var near []string
			for _, ev := range events {
				if absDur(d.prev.Sub(ev.At)) < 5*time.Second || slices.Contains(ev.Plugins, d.plugin) {
					near = append(near, fmt.Sprintf("%s at %s (plugins %v, hosts %v, bound %d, %d taken)", ev.Kind, ev.At.Format("15:04:05.000"), ev.Plugins, ev.Hosts, ev.Bound, ev.Dups))
				}
			}
			r.fail("%s: copy %d is a duplicate (copy %d at %s by plugin %d of host %d) that no crash explains; events near it or on that plugin: %v",
				d.addr, d.index, d.index-1, d.prev.Format("15:04:05.000"), d.plugin, d.host, near)
			continue
		}
		best.Dups++
	}
	sort.Slice(events, func(i, j int) bool { return events[i].At.Before(events[j].At) })
	for _, ev := range events {
		rep.MaxDupsPerEvent = max(rep.MaxDupsPerEvent, ev.Dups)
		rep.DupsByKind[ev.Kind] += ev.Dups
		t.Logf("event %s at %s: plugins %v, hosts %v, bound %d, duplicates %d", ev.Kind, ev.At.Format("15:04:05.000"), ev.Plugins, ev.Hosts, ev.Bound, ev.Dups)
	}

	if rep.Duplicates > rep.DuplicateBound {
		r.fail("%d duplicates, more than the sum %d of the crashes' bounds", rep.Duplicates, rep.DuplicateBound)
	}
}

// verify requires `campaignd verify` to find no violation.
func (r *chaosRun) verify() {
	res := r.e.Run("--json", "verify")
	var v struct {
		Violations []json.RawMessage `json:"violations"`
	}
	if res.Code != 0 || json.Unmarshal([]byte(res.Stdout), &v) != nil || len(v.Violations) != 0 {
		r.fail("verify: %s", res)
	} else {
		r.rep.VerifyOK = true
	}
}

// daemonEventDuring reports whether a daemon was going away (from the
// driver's SIGKILL or SIGTERM until it had exited) or starting at some
// time between from and to, give or take a little: what can make a tick
// through the socket fail.
func daemonEventDuring(daemons []*chaosProc, from, to time.Time) bool {
	const slack = 500 * time.Millisecond
	from, to = from.Add(-slack), to.Add(slack)
	for _, d := range daemons {
		if !d.goneAt.IsZero() && d.exited() && !d.goneAt.After(to) && !d.ended.Before(from) {
			return true
		}
		if !d.started.Before(from) && !d.started.After(to) {
			return true
		}
	}
	return false
}

// socketOwner returns the pid of the process named comm that owns the
// loopback TCP connection from local port clientPort to serverPort, or 0:
// the connection's inode from /proc/net/tcp, then the process holding a
// descriptor on that socket.
func socketOwner(clientPort, serverPort int, comm string) int {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0
	}
	local := fmt.Sprintf(":%04X", clientPort)
	remote := fmt.Sprintf(":%04X", serverPort)
	inode := ""
	for _, l := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) > 9 && strings.HasSuffix(f[1], local) && strings.HasSuffix(f[2], remote) {
			inode = f[9]
			break
		}
	}
	if inode == "" || inode == "0" {
		return 0
	}
	want := "socket:[" + inode + "]"
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		// comm is the executable's name cut to 15 bytes.
		if c, err := os.ReadFile("/proc/" + ent.Name() + "/comm"); err != nil || !strings.HasPrefix(comm, strings.TrimSpace(string(c))) {
			continue
		}
		fds, _ := os.ReadDir("/proc/" + ent.Name() + "/fd")
		for _, fd := range fds {
			if l, err := os.Readlink("/proc/" + ent.Name() + "/fd/" + fd.Name()); err == nil && l == want {
				return pid
			}
		}
	}
	return 0
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// TestDaemonSIGTERMDrainsScheduledTick is the deterministic form of a
// duplicate TestChaos found: SIGTERM while a tick of the daemon's own
// scheduler has sends in flight must let them finish and record them SENT
// (the design: "SIGTERM: stop claiming, let in-flight sends finish"), hand
// back what was claimed but not started, and exit 0: no send cut off into
// in-doubt, so nobody is mailed twice.
func TestDaemonSIGTERMDrainsScheduledTick(t *testing.T) {
	t.Parallel()
	const conc, n = 5, 10
	sink := NewSink(t, smtptest.Fault{Stage: smtptest.EndOfData, Times: conc, Stall: 2 * time.Second})
	e := NewEnv(t, "tick_interval = \"100ms\"\nshutdown_timeout = \"20s\"\n"+fastRetry+sinkTOML("sink", sink))
	rows := makeMailRows(n, "example.net")
	id := startSendingCampaign(t, e, mailRowsCSV(rows), "--sender", "sink", "--concurrency", strconv.Itoa(conc))
	d := e.StartDaemon()
	waitStalling(t, sink, conc, 20*time.Second)
	if err := d.Stop(); err != nil {
		t.Fatalf("daemon after SIGTERM mid-send: %v\n%s", err, d.Stderr())
	}
	wantDrained(t, e, sink, id, rows, conc)
	tickUntilCompleted(t, e, id, 10, 50*time.Millisecond)
	checkCompleted(t, e, id, n, n, 0, 0)
	checkDuplicates(t, sink, rows, nil, 0)
}
