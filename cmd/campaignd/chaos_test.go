package main_test

// TestChaos: campaignd's promise under crashes. Several campaigns of
// recipients are sent to a real SMTP server (an in-process go-smtp sink
// that records every message and then holds its reply back a random few
// milliseconds, so the message is delivered whether or not the client hears
// the reply: the worst case for duplicates) while a seeded driver, at random
// moments:
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
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/mail"
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
	"github.com/emersion/go-smtp"
)

// ---- the sink ----

// chaosSink is an SMTP server that accepts everything. After the final dot
// it records the message (the server has it: delivered) and then holds the
// reply back for a random delay in [minDelay, maxDelay], so a crash of the
// client lands mid-send and the message counts as delivered although the
// client never learned it.
type chaosSink struct {
	Host string
	Port int
	srv  *smtp.Server

	minDelay, maxDelay time.Duration

	mu       sync.Mutex
	slowTill time.Time // until then every reply is held back 1-4 s
	rng      *rand.Rand
	msgs     []chaosMsg
	open     int // connections open now
	conns    int // connections ever
}

type chaosMsg struct {
	To        string
	MessageID string
	At        time.Time
	conn      *chaosConn
}

// chaosConn is one client connection, the plugin process that opened it
// and that plugin's host (a tick or the daemon), found from /proc right
// after the connection is accepted.
type chaosConn struct {
	mu   sync.Mutex
	pid  int // 0 until resolved (or if it could not be)
	host int
}

func (c *chaosConn) Pids() (plugin, host int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pid, c.host
}

// Pids returns the plugin process that delivered m and its host, 0 if
// unknown.
func (m chaosMsg) Pids() (plugin, host int) {
	if m.conn == nil {
		return 0, 0
	}
	return m.conn.Pids()
}

func newChaosSink(t *testing.T, seed uint64, minDelay, maxDelay time.Duration) *chaosSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("chaos sink: %v", err)
	}
	s := &chaosSink{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, minDelay: minDelay, maxDelay: maxDelay,
		rng: rand.New(rand.NewPCG(seed, seed^0x5eed))}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		s.mu.Lock()
		s.open++
		s.conns++
		s.mu.Unlock()
		cc := &chaosConn{}
		if ra, ok := c.Conn().RemoteAddr().(*net.TCPAddr); ok {
			cc.mu.Lock() // held until resolved: Pid waits for the answer
			go func() {
				defer cc.mu.Unlock()
				cc.pid = socketOwner(ra.Port, s.Port, "campaignd-sender-smtp")
				if cc.pid != 0 {
					cc.host, _, _ = procStat(cc.pid, false)
				}
			}()
		}
		return &chaosSession{s: s, conn: cc}, nil
	}))
	s.srv.Domain = "chaos.sink"
	s.srv.ErrorLog = silentLog{}
	s.srv.ReadTimeout = time.Minute
	s.srv.WriteTimeout = 10 * time.Second
	go func() { _ = s.srv.Serve(ln) }()
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
}

// slowSinkMin and slowSinkMax bound the reply delay in a slow spell,
// around chaosTickTimeout: ticks run out of time mid-send.
const (
	slowSinkMin = time.Second
	slowSinkMax = 4 * time.Second
)

// SlowFor makes the sink hold every reply back 1-4 s for d.
func (s *chaosSink) SlowFor(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slowTill = time.Now().Add(d)
}

func (s *chaosSink) delay() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Now().Before(s.slowTill) {
		return slowSinkMin + time.Duration(s.rng.Int64N(int64(slowSinkMax-slowSinkMin)))
	}
	if s.maxDelay <= s.minDelay {
		return s.minDelay
	}
	return s.minDelay + time.Duration(s.rng.Int64N(int64(s.maxDelay-s.minDelay)))
}

// Messages returns the accepted messages in arrival order.
func (s *chaosSink) Messages() []chaosMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

// Open is how many client connections are open now.
func (s *chaosSink) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open
}

type chaosSession struct {
	s      *chaosSink
	conn   *chaosConn
	to     []string
	closed bool
}

func (c *chaosSession) Reset() { c.to = nil }
func (c *chaosSession) Logout() error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if !c.closed {
		c.closed = true
		c.s.open--
	}
	return nil
}
func (c *chaosSession) Mail(string, *smtp.MailOptions) error { return nil }
func (c *chaosSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	c.to = append(c.to, strings.ToLower(to))
	return nil
}

func (c *chaosSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err // the client went away mid-DATA: not delivered
	}
	id := ""
	if m, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil {
		id = m.Header.Get("Message-Id")
	}
	now := time.Now()
	c.s.mu.Lock()
	for _, to := range c.to {
		c.s.msgs = append(c.s.msgs, chaosMsg{To: to, MessageID: id, At: now, conn: c.conn})
	}
	c.s.mu.Unlock()
	time.Sleep(c.s.delay())
	return nil
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
// could cause: what the killed process could have had in flight.
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

// ---- the test ----

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

func TestChaos(t *testing.T) {
	wallStart := time.Now()
	p := chaosConfig(t)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("CAMPAIGND_CHAOS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CAMPAIGND_CHAOS_SEED=%q: %v", v, err)
		}
		seed = s
	}
	t.Logf("chaos: mode %s, seed %d (replay with CAMPAIGND_CHAOS_SEED=%d), %d campaigns x %d recipients, %s of chaos",
		p.mode, seed, seed, p.campaigns, p.perCamp, p.duration)
	rng := rand.New(rand.NewPCG(seed, 0xc4a05))
	bound := p.concurrent * p.campaigns
	rep := &chaosReport{Mode: p.mode, Seed: seed, Recipients: p.campaigns * p.perCamp, Campaigns: p.campaigns,
		InFlightBound: bound, SinkDelay: fmt.Sprintf("%s..%s", p.minDelay, p.maxDelay), Kills: map[string]int{}, DupsByKind: map[string]int{}}
	defer func() {
		rep.WallSeconds = time.Since(wallStart).Seconds()
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
	}()
	fail := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if len(rep.Failures) < 50 {
			rep.Failures = append(rep.Failures, msg)
		}
		t.Error(msg)
	}

	sink := newChaosSink(t, seed, p.minDelay, p.maxDelay)
	e := NewEnv(t, fmt.Sprintf(`tick_interval = "200ms"
shutdown_timeout = "15s"
lock_timeout = "30s"
[queue]
tick_timeout = %q
lease_margin = "0s"
retry_base = "50ms"
retry_max = "500ms"
in_doubt = "resend"
max_attempts = 20
`, chaosTickTimeout.String())+smtpSenderTOML("sink", sink.Host, sink.Port, fmt.Sprintf("max_connections = %d", bound)))

	// Campaigns, each imported up front; two execute now, the others one
	// by one during the first 60% of the chaos.
	var ids []int64
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
		ids = append(ids, id)
	}
	executed := 0
	execute := func() {
		t.Helper()
		id := strconv.FormatInt(ids[executed], 10)
		var x struct {
			Queued int `json:"queued"`
		}
		r := e.RunWith(RunOpts{Timeout: 2 * time.Minute}, "--json", "campaign", "execute", id)
		if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &x) != nil || x.Queued != p.perCamp {
			t.Fatalf("execute campaign %s during chaos: %s", id, r)
		}
		executed++
		rep.Executes++
	}
	execute()
	execute()
	execAt := make([]time.Duration, p.campaigns)
	for k := 2; k < p.campaigns; k++ {
		execAt[k] = p.duration * 6 / 10 * time.Duration(k-1) / time.Duration(p.campaigns-2)
	}

	// ---- the driver ----
	var (
		procs   []*chaosProc
		daemon  *chaosProc
		daemons []*chaosProc
		events  []*chaosEvent
	)
	t.Cleanup(func() {
		for _, pr := range procs {
			if !pr.exited() {
				_ = pr.cmd.Process.Kill()
				<-pr.done
			}
		}
	})
	start := func(kind string, args ...string) *chaosProc {
		t.Helper()
		pr := &chaosProc{kind: kind, done: make(chan struct{})}
		pr.cmd = exec.Command(Bin(), append([]string{"--config", e.Config}, args...)...)
		pr.cmd.Dir = e.Dir
		pr.cmd.Env = append(os.Environ(), e.ExtraEnv...)
		pr.cmd.Stdout, pr.cmd.Stderr = &pr.stdout, &pr.stderr
		pr.started = time.Now()
		if err := pr.cmd.Start(); err != nil {
			t.Fatalf("start campaignd %s: %v", strings.Join(args, " "), err)
		}
		go func() { _ = pr.cmd.Wait(); pr.ended = time.Now(); close(pr.done) }()
		procs = append(procs, pr)
		return pr
	}
	plugins := func(pr *chaosProc) []int {
		if pr == nil || pr.exited() {
			return nil
		}
		return childProcs(t, pr.pid(), "campaignd-sender-smtp")
	}
	// inFlight is what one process can have in flight now: concurrency
	// times the campaigns executed so far.
	inFlight := func() int { return min(p.concurrent*executed, bound) }
	// kill9 kills pr; its event's bound is what it could have had in
	// flight: inFlight if it ran a plugin, else nothing.
	kill9 := func(pr *chaosProc, kind string) {
		n := 0
		pl := plugins(pr)
		if len(pl) > 0 {
			n = inFlight()
		}
		pr.goneAt = time.Now()
		if err := syscall.Kill(pr.pid(), syscall.SIGKILL); err != nil {
			return // it exited meanwhile
		}
		pr.killed = true
		<-pr.done
		events = append(events, &chaosEvent{Kind: kind, At: time.Now(), Bound: n, Plugins: append([]int{}, pl...)})
		rep.Kills[kind]++
	}
	// startDaemon starts the daemon; while a standalone tick holds the
	// lock, serve refuses (naming the holder) and is retried, as a service
	// manager would, for up to a second.
	startDaemon := func() {
		pr := start("daemon", "serve")
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
					pr = start("daemon", "serve")
					rep.DaemonStarts++
					continue
				}
				t.Fatalf("daemon exited at start: exit %d\n%s", pr.exitCode(), pr.stderr.String())
			}
			if e.statusOK() {
				daemon = pr
				daemons = append(daemons, pr)
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("daemon socket did not answer within 20s\n%s", pr.stderr.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	stopDaemon := func() {
		pr := daemon
		daemon = nil
		pr.signalled = true
		rep.DaemonTerms++
		// SIGTERM drains: in-flight sends finish and are recorded, so it
		// may cause no duplicate.
		events = append(events, &chaosEvent{Kind: "daemon_sigterm", At: time.Now(), Bound: 0, Plugins: append([]int{}, plugins(pr)...)})
		pr.goneAt = time.Now()
		_ = syscall.Kill(pr.pid(), syscall.SIGTERM)
		select {
		case <-pr.done:
		case <-time.After(30 * time.Second):
			fail("daemon did not exit within 30s of SIGTERM; killing it\n%s", pr.stderr.String())
			kill9(pr, "daemon_kill")
		}
	}
	// reap accounts for finished ticks.
	reaped := map[*chaosProc]bool{}
	reap := func() {
		for _, pr := range procs {
			if pr.kind != "tick" || reaped[pr] || !pr.exited() {
				continue
			}
			reaped[pr] = true
			switch code := pr.exitCode(); {
			case pr.killed:
				rep.TicksKilled++
			case code == 0:
				var r core.TickResult
				if err := json.Unmarshal([]byte(pr.stdout.String()), &r); err != nil {
					fail("tick exit 0 with unreadable answer %q: %v", pr.stdout.String(), err)
				} else if r.Skipped {
					rep.TicksSkipped++
				} else {
					rep.TicksOK++
					if r.Processed > maxPerTick {
						fail("tick processed %d, more than %d", r.Processed, maxPerTick)
					}
				}
			default:
				// A tick may fail when the daemon it talks to is killed
				// or stops under it; it must then say why, in one line.
				rep.TicksFailed++
				msg := strings.TrimSpace(pr.stderr.String())
				if code != 1 || !strings.HasPrefix(msg, "campaignd: ") || strings.Contains(msg, "panic") {
					fail("tick exit %d without a clear reason:\n%s", code, msg)
				} else if !daemonEventDuring(daemons, pr.started, pr.ended) {
					fail("tick failed with no daemon crash or stop during its run (%s .. %s): %s",
						pr.started.Format("15:04:05.000"), pr.ended.Format("15:04:05.000"), msg)
				} else {
					t.Logf("tick failed as its daemon went away: %s", msg)
				}
			}
		}
	}
	liveTicks := func() []*chaosProc {
		var out []*chaosProc
		for _, pr := range procs {
			if pr.kind == "tick" && !pr.exited() {
				out = append(out, pr)
			}
		}
		return out
	}
	allFinal := func() bool {
		var cs []core.Campaign
		e.MustJSON(&cs, "campaign", "list")
		for _, c := range cs {
			if c.Status != "COMPLETED" {
				return false
			}
		}
		return true
	}

	chaosStart := time.Now()
	nextAction := chaosStart
	lastFinalCheck := chaosStart
	for time.Since(chaosStart) < p.duration {
		now := time.Now()
		el := now.Sub(chaosStart)
		// Doomed ticks: kill once they are sending.
		for _, pr := range liveTicks() {
			if !pr.doom || pr.killed {
				continue
			}
			if pr.killAt.IsZero() && len(plugins(pr)) > 0 {
				pr.killAt = now.Add(pr.killDelay)
			}
			if !pr.killAt.IsZero() && now.After(pr.killAt) {
				kill9(pr, "tick_kill")
			}
		}
		reap()
		if daemon != nil && daemon.exited() {
			t.Fatalf("daemon died by itself: exit %d\n%s", daemon.exitCode(), daemon.stderr.String())
		}
		if executed < p.campaigns && el >= execAt[executed] {
			execute()
		}
		if now.After(nextAction) {
			switch x := rng.IntN(100); {
			case x < 40: // overlapping ticks, some doomed
				if len(liveTicks()) >= 4 {
					break
				}
				for range 1 + rng.IntN(3) {
					pr := start("tick", "--json", "tick")
					rep.TicksStarted++
					if rng.IntN(100) < 50 {
						pr.doom = true
						pr.killDelay = time.Duration(rng.IntN(400)) * time.Millisecond
					}
				}
			case x < 65: // the daemon comes and goes
				switch {
				case daemon == nil:
					startDaemon()
				case rng.IntN(100) < 60:
					d := daemon
					daemon = nil
					kill9(d, "daemon_kill")
				default:
					stopDaemon()
				}
			case x < 80: // the plugin dies under the daemon or a tick
				var victims []int
				if daemon != nil {
					victims = plugins(daemon)
				}
				if len(victims) == 0 {
					for _, pr := range liveTicks() {
						victims = append(victims, plugins(pr)...)
					}
				}
				if len(victims) > 0 {
					v := victims[rng.IntN(len(victims))]
					if syscall.Kill(v, syscall.SIGKILL) == nil {
						events = append(events, &chaosEvent{Kind: "plugin_kill", At: time.Now(), Bound: inFlight(), Plugins: []int{v}})
						rep.Kills["plugin_kill"]++
					}
				}
			case x < 84: // the sink slows down: ticks run into tick_timeout
				d := time.Duration(1000+rng.IntN(2000)) * time.Millisecond
				sink.SlowFor(d)
				rep.SlowSpells++
				t.Logf("the sink is slow for %s from %s", d, time.Now().Format("15:04:05.000"))
			default: // a quiet moment
			}
			nextAction = time.Now().Add(time.Duration(100+rng.IntN(500)) * time.Millisecond)
		}
		if executed == p.campaigns && time.Since(lastFinalCheck) > time.Second {
			lastFinalCheck = time.Now()
			if allFinal() {
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	rep.ChaosSeconds = time.Since(chaosStart).Seconds()

	// ---- stop the chaos, then drain with clean ticks ----
	drainStart := time.Now()
	for _, pr := range liveTicks() {
		select {
		case <-pr.done:
		case <-time.After(30 * time.Second):
			fail("tick still running 30s after the chaos stopped\n%s", pr.stderr.String())
			kill9(pr, "tick_kill")
		}
	}
	reap()
	if daemon != nil {
		stopDaemon()
	}
	for _, d := range daemons {
		if d.signalled && !d.killed && d.exitCode() != 0 {
			fail("daemon exited %d after SIGTERM, want 0\n%s", d.exitCode(), d.stderr.String())
		}
		if strings.Contains(d.stderr.String(), "panic") {
			fail("daemon panicked:\n%s", d.stderr.String())
		}
	}
	for executed < p.campaigns {
		execute()
	}
	drainDeadline := time.Now().Add(2*time.Minute + time.Duration(rep.Recipients/maxPerTick)*time.Second)
	for !allFinal() {
		if time.Now().After(drainDeadline) {
			var cs []core.Campaign
			e.MustJSON(&cs, "campaign", "list")
			t.Fatalf("recipients not final after %d clean ticks: %+v", rep.DrainTicks, cs)
		}
		r := runTick(t, e)
		rep.DrainTicks++
		if r.Skipped {
			fail("a clean tick was skipped: something still holds the lock")
		}
		if r.Processed == 0 {
			time.Sleep(100 * time.Millisecond) // leases of killed ticks expire after tick_timeout
		}
	}
	// Orphaned plugins (their host killed) exit within about a second;
	// wait until none is connected before counting the deliveries.
	for deadline := time.Now().Add(15 * time.Second); sink.Open() > 0; {
		if time.Now().After(deadline) {
			fail("%d SMTP connections still open 15s after the drain: a plugin outlived its host", sink.Open())
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	rep.DrainSeconds = time.Since(drainStart).Seconds()

	// ---- the figures ----
	var ticks []core.TickRecord
	e.MustJSON(&ticks, "ticks", "--limit", "10000")
	rep.TickRecords = len(ticks)
	for _, tr := range ticks {
		rep.Recovered += tr.Recovered
		if tr.Processed > maxPerTick || tr.Sent > maxPerTick {
			fail("tick record %d processed %d, sent %d: more than %d", tr.ID, tr.Processed, tr.Sent, maxPerTick)
		}
		// A tick that ran into tick_timeout cut its sends off: in doubt,
		// requeued, possibly delivered twice. The engine counts a send
		// that failed within 250ms of the deadline as cut off (core's
		// deadlineSlack), so such a tick may end that much early.
		if tr.Duration >= chaosTickTimeout-300*time.Millisecond {
			rep.TickTimeouts++
			from, to := tr.Started, tr.Started.Add(tr.Duration)
			ev := &chaosEvent{Kind: "tick_timeout", At: tr.Started.Add(chaosTickTimeout), Bound: bound,
				Hosts: []int{}, From: from.Add(-time.Second), To: to.Add(2 * time.Second)}
			// The process that ran it: a standalone tick or a daemon
			// alive all along (their clocks are this machine's).
			kind := "daemon"
			if tr.Trigger == "cli" {
				kind = "tick"
			}
			for _, pr := range procs {
				if pr.kind == kind && !pr.started.After(from.Add(time.Second)) && (!pr.exited() || !pr.ended.Before(to.Add(-time.Second))) {
					ev.Hosts = append(ev.Hosts, pr.pid())
				}
			}
			events = append(events, ev)
			t.Logf("tick %d (%s) ran into tick_timeout: %+v; run by one of %v", tr.ID, tr.Trigger, tr, ev.Hosts)
		}
	}
	rep.Kills["tick_timeout"] = rep.TickTimeouts

	// ---- the promise ----
	type want struct {
		cid, rid  int64
		messageID string
		attempts  int
	}
	recips := map[string]want{}
	for _, id := range ids {
		c := dlvShow(t, e, id)
		if c.Status != "COMPLETED" || c.Stats.Sent != int64(p.perCamp) || c.Stats.Total != int64(p.perCamp) {
			fail("campaign %d: %s %+v, want COMPLETED with all %d SENT", id, c.Status, c.Stats, p.perCamp)
		}
		rep.Sent += int(c.Stats.Sent)
		for _, r := range dlvRecipients(t, e, id) {
			if r.Status != "SENT" || r.ProviderID == "" {
				fail("recipient %s: %+v, want SENT with a provider id", r.Email, r)
			}
			recips[r.Email] = want{cid: id, rid: r.ID, messageID: fmt.Sprintf("<c%d.r%d@example.com>", id, r.ID), attempts: r.Attempts}
		}
	}
	if len(recips) != rep.Recipients {
		fail("%d recipients listed, want %d", len(recips), rep.Recipients)
	}
	msgs := sink.Messages()
	rep.SinkMessages = len(msgs)
	type arrival struct {
		at      []time.Time
		ids     []string
		plugins []int
		hosts   []int
		n       int
	}
	got := map[string]*arrival{}
	for _, m := range msgs {
		a := got[m.To]
		if a == nil {
			a = &arrival{}
			got[m.To] = a
		}
		a.n++
		a.at = append(a.at, m.At)
		pl, host := m.Pids()
		a.plugins = append(a.plugins, pl)
		a.hosts = append(a.hosts, host)
		if pl == 0 {
			rep.UnknownPlugin++
		}
		a.ids = append(a.ids, m.MessageID)
	}
	// A duplicate is a copy after the first; it was caused by a crash
	// while the copy before it was in flight.
	type dup struct {
		addr   string
		prev   time.Time // the copy whose outcome was lost
		plugin int       // the plugin process that delivered it (0: unknown)
		host   int       // that plugin's host (0: unknown)
		index  int       // 2 for the second copy, ...
	}
	var dups []dup
	// A host that is none of the driver's processes (the plugin was an
	// orphan already when its connection was traced) is unknown.
	ours := map[int]bool{}
	for _, pr := range procs {
		ours[pr.pid()] = true
	}
	for _, a := range got {
		for i, h := range a.hosts {
			if !ours[h] {
				a.hosts[i] = 0
			}
		}
	}
	for addr, a := range got {
		w, ok := recips[addr]
		if !ok {
			fail("the sink received mail for %s, which is no recipient", addr)
			continue
		}
		for i, mid := range a.ids {
			if mid != a.ids[0] {
				fail("%s: copy %d has Message-ID %s, the first had %s", addr, i+1, mid, a.ids[0])
			}
		}
		if a.ids[0] != w.messageID {
			fail("%s: Message-ID %s, want %s", addr, a.ids[0], w.messageID)
		}
		if a.n > w.attempts {
			fail("%s arrived %d times but was attempted %d times", addr, a.n, w.attempts)
		}
		for i := 1; i < a.n; i++ {
			dups = append(dups, dup{addr: addr, prev: a.at[i-1], plugin: a.plugins[i-1], host: a.hosts[i-1], index: i + 1})
			rep.Duplicates++
		}
	}
	for addr := range recips {
		if got[addr] == nil {
			rep.Losses++
			fail("%s is SENT but never reached the sink: lost", addr)
		}
	}

	// Explain each duplicate by the crash that cut off the copy before it:
	// the crash that killed the plugin process which delivered that copy
	// (or its host), or a tick timeout close to it. Without a known plugin
	// process, any crash close to the copy: it reached the sink while the
	// crashed process had it in flight (up to the sink's reply delay plus
	// the recording before the crash, or an orphaned plugin finishing it
	// up to a second or so after).
	before, after := max(p.maxDelay, slowSinkMax)+2*time.Second, 2*time.Second
	for _, ev := range events {
		if ev.From.IsZero() {
			ev.From, ev.To = ev.At.Add(-before), ev.At.Add(after)
		}
	}
	explains := func(ev *chaosEvent, d dup) bool {
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
			fail("%s: copy %d is a duplicate (copy %d at %s by plugin %d of host %d) that no crash explains; events near it or on that plugin: %v",
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
		fail("%d duplicates, more than the sum %d of the crashes' in-flight bounds", rep.Duplicates, rep.DuplicateBound)
	}

	r := e.Run("--json", "verify")
	var v struct {
		Violations []json.RawMessage `json:"violations"`
	}
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &v) != nil || len(v.Violations) != 0 {
		fail("verify: %s", r)
	} else {
		rep.VerifyOK = true
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
	sink := NewSink(t, SinkRule{Stage: SinkData, Times: conc, Stall: 2 * time.Second})
	e := NewEnv(t, "tick_interval = \"100ms\"\nshutdown_timeout = \"20s\"\n"+fastRetry+sink.SenderTOML("sink"))
	rows := makeMailRows(n, "example.net")
	id := startSendingCampaign(t, e, mailRowsCSV(rows), "--sender", "sink", "--concurrency", strconv.Itoa(conc))
	d := e.StartDaemon()
	sink.WaitStalling(conc, 20*time.Second)
	if err := d.Stop(); err != nil {
		t.Fatalf("daemon after SIGTERM mid-send: %v\n%s", err, d.Stderr())
	}
	wantDrained(t, e, sink, id, rows, conc)
	tickUntilCompleted(t, e, id, 10, 50*time.Millisecond)
	checkCompleted(t, e, id, n, n, 0, 0)
	checkDuplicates(t, sink, rows, nil, 0)
}
