package core_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/sdk"
)

// TestTickProblems: what is a problem of the tick (sender-level: it
// would not start, it is misconfigured, every send of a campaign failed
// transiently) and what is only a recipient's outcome.
func TestTickProblems(t *testing.T) {
	for _, c := range []struct {
		name    string
		fn      func(m *sdk.Message, attempt int) error
		provErr error
		want    []string // substrings, one per problem
	}{
		{name: "all sent"},
		{name: "one rejected", fn: func(m *sdk.Message, _ int) error {
			if strings.HasPrefix(m.To, "u3@") {
				return sdk.Permanent("550 no such user").WithSMTP(550, "5.1.1")
			}
			return nil
		}},
		{name: "one bounced", fn: func(m *sdk.Message, _ int) error {
			if strings.HasPrefix(m.To, "u3@") {
				return sdk.Bounced("550 5.1.1 unknown")
			}
			return nil
		}},
		{name: "some transient", fn: func(m *sdk.Message, _ int) error {
			if strings.HasPrefix(m.To, "u3@") {
				return sdk.Transient("451 try later")
			}
			return nil
		}},
		{name: "throttled", fn: func(*sdk.Message, int) error { return sdk.Throttled(time.Minute, "421 slow down") }},
		{name: "all transient", fn: func(*sdk.Message, int) error { return sdk.Transient("dial tcp 127.0.0.1:25: connection refused") },
			want: []string{"all 10 sends through sender fake failed transiently: dial tcp 127.0.0.1:25: connection refused"}},
		{name: "misconfigured", fn: func(*sdk.Message, int) error { return sdk.ConfigError("authentication failed") },
			want: []string{"paused: sender fake is misconfigured: authentication failed; fix it, then run `campaignd campaign resume"}},
		{name: "would not start", provErr: errors.New("fork/exec plugins/campaignd-sender-fake: no such file or directory"),
			want: []string{"sender fake would not start: fork/exec plugins/campaignd-sender-fake: no such file or directory"}},
		{name: "misconfigured at start", provErr: sdk.ConfigError("checksum mismatch"),
			want: []string{"paused: sender fake is misconfigured: checksum mismatch"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.sender.fn, h.prov.err = c.fn, c.provErr
			id := h.campaign(10, func(s *core.CampaignSpec) { s.Concurrency = 1 })
			res := h.tick()
			if len(res.Problems) != len(c.want) {
				t.Fatalf("problems %q, want %d", res.Problems, len(c.want))
			}
			ticks, _ := h.eng.Ticks(ctx, 1)
			for i, w := range c.want {
				if p := fmt.Sprintf("campaign %d", id); !strings.HasPrefix(res.Problems[i], p) || !strings.Contains(res.Problems[i], w) {
					t.Errorf("problem %q, want %q naming the campaign", res.Problems[i], w)
				}
				if len(ticks) != 1 || !strings.Contains(ticks[0].Error, res.Problems[i]) {
					t.Errorf("tick record %+v does not keep the problem", ticks)
				}
			}
			if res.Problems == nil {
				t.Errorf("problems is nil, want []")
			}
		})
	}
}

// TestTickRemaining: what is left QUEUED or SENDING in the tick's campaigns.
func TestTickRemaining(t *testing.T) {
	h := newHarness(t, nil)
	a := h.campaign(70, nil)
	b := h.campaign(10, nil)
	if res := h.tick(); res.Sent != 50 || res.Remaining != 30 || h.stats(a).Queued+h.stats(b).Queued != 30 {
		t.Fatalf("first tick %+v, want 50 sent and 30 remaining", res)
	}
	if res := h.tick(); res.Sent != 30 || res.Remaining != 0 || res.Completed != 1 {
		t.Fatalf("second tick %+v", res)
	}
	if res := h.tick(); res.Processed != 0 || res.Remaining != 0 || res.Skipped || len(res.Problems) != 0 {
		t.Fatalf("idle tick %+v", res)
	}
}

// gate is a sender that holds every send until it is opened, so that a
// tick is known to be in flight.
type gate struct {
	fakeSender
	started chan struct{}
	open    chan struct{}
	once    sync.Once
}

func newGate() *gate { return &gate{started: make(chan struct{}), open: make(chan struct{})} }

func (g *gate) Send(ctx context.Context, m *sdk.Message) (*sdk.Receipt, error) {
	g.once.Do(func() { close(g.started) })
	<-g.open
	return g.fakeSender.Send(ctx, m)
}

// TestTickCampaignSets: ticks of disjoint campaign sets run at once, each
// with its own budget; ticks whose sets overlap skip; a tick without a set
// leaves alone the campaigns another tick is working on.
func TestTickCampaignSets(t *testing.T) {
	h := newHarness(t, nil)
	g := newGate()
	h.prov.senders["gated"] = g
	a := h.campaign(60, func(s *core.CampaignSpec) { s.Sender = "gated" })
	b := h.campaign(60, nil)
	c := h.campaign(5, nil)

	// A tick of {a} is in flight.
	first := make(chan *core.TickResult)
	go func() {
		res, err := h.eng.Tick(ctx, core.TriggerCLI, a)
		if err != nil {
			t.Error(err)
		}
		first <- res
	}()
	<-g.started

	// Overlapping sets skip, whatever else they name.
	for _, set := range [][]int64{{a}, {b, a}} {
		res, err := h.eng.Tick(ctx, core.TriggerCLI, set...)
		if err != nil || !res.Skipped || res.Processed != 0 {
			t.Fatalf("tick of %v beside a tick of {%d}: %+v %v", set, a, res, err)
		}
	}
	// A disjoint set runs, with a budget of its own.
	if res, err := h.eng.Tick(ctx, core.TriggerCLI, b); err != nil || res.Sent != 50 || res.Skipped {
		t.Fatalf("tick of {%d} beside a tick of {%d}: %+v %v", b, a, res, err)
	}
	// No set: everything due but a.
	if res, err := h.eng.Tick(ctx, core.TriggerCLI); err != nil || res.Sent != 15 || res.Remaining != 0 {
		t.Fatalf("tick without a set beside a tick of {%d}: %+v %v", a, res, err)
	}
	if st := h.stats(a); st.Sending != 50 || st.Sent != 0 {
		t.Fatalf("campaign %d was touched: %+v", a, st)
	}
	// Only a is due, and busy: skipped.
	if res, err := h.eng.Tick(ctx, core.TriggerCLI); err != nil || !res.Skipped {
		t.Fatalf("tick with every due campaign busy: %+v %v", res, err)
	}
	close(g.open)
	if res := <-first; res.Sent != 50 || res.Remaining != 10 {
		t.Fatalf("tick of {%d}: %+v", a, res)
	}
	if res := h.tick(); res.Sent != 10 || res.Skipped {
		t.Fatalf("last tick %+v", res)
	}
	for _, id := range []int64{a, b, c} {
		if st := h.stats(id); st.Unfinished() != 0 || st.Sent != st.Total {
			t.Errorf("campaign %d: %+v", id, st)
		}
	}
	if got := h.sender.sentCount() + g.sentCount(); got != 125 {
		t.Errorf("%d sends, want 125 (each once)", got)
	}

	// A campaign that is not there, or not an id, is the caller's mistake.
	if _, err := h.eng.Tick(ctx, core.TriggerCLI, 999); core.ErrorCode(err) != core.ENOTFOUND {
		t.Errorf("tick of an unknown campaign: %v", err)
	}
	if _, err := h.eng.Tick(ctx, core.TriggerCLI, 0); core.ErrorCode(err) != core.EINVALID {
		t.Errorf("tick of campaign 0: %v", err)
	}
}

// busyLocker is a CampaignLocker where the campaigns in busy are another
// process's.
type busyLocker struct {
	mu   sync.Mutex
	busy map[int64]bool
	held map[int64]bool
}

func (l *busyLocker) TryLockCampaign(id int64) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.busy[id] {
		return false, nil
	}
	l.held[id] = true
	return true, nil
}

func (l *busyLocker) UnlockCampaign(id int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.held, id)
	return nil
}

// TestTickCampaignLocker: the engine takes its campaigns through the
// locker too, and gives them all back.
func TestTickCampaignLocker(t *testing.T) {
	h := newHarness(t, nil)
	a := h.campaign(5, nil)
	b := h.campaign(5, nil)
	l := &busyLocker{busy: map[int64]bool{a: true}, held: map[int64]bool{}}
	h.eng.SetCampaignLocker(l)
	if res := h.tick(); res.Sent != 5 || h.stats(a).Sent != 0 || h.stats(b).Sent != 5 {
		t.Fatalf("tick beside another process's tick of %d: %+v", a, res)
	}
	if res, err := h.eng.Tick(ctx, core.TriggerCLI, a, b); err != nil || !res.Skipped {
		t.Fatalf("tick of a set with a busy campaign: %+v %v", res, err)
	}
	if len(l.held) != 0 {
		t.Fatalf("campaigns still held after the ticks: %v", l.held)
	}
	l.busy = nil
	if res := h.tick(); res.Sent != 5 {
		t.Fatalf("tick once %d is free: %+v", a, res)
	}
}

// TestTickRecoveryAndCompletionBesideAnotherTick: lease recovery and
// completion are not limited to a tick's campaigns, and need not be: run
// beside a tick with sends in flight, they take only expired leases and
// complete only campaigns with nothing in flight.
func TestTickRecoveryAndCompletionBesideAnotherTick(t *testing.T) {
	h := newHarness(t, nil)
	g := newGate()
	h.prov.senders["gated"] = g
	a := h.campaign(10, func(s *core.CampaignSpec) { s.Sender = "gated" })
	b := h.campaign(5, nil)
	c := h.campaign(3, nil)

	first := make(chan *core.TickResult)
	go func() {
		res, err := h.eng.Tick(ctx, core.TriggerCLI, a)
		if err != nil {
			t.Error(err)
		}
		first <- res
	}()
	<-g.started
	// Meanwhile, a tick that claimed c died: its lease is already over.
	now := time.Now()
	if rs, err := h.db.Claim(ctx, c, 3, "dead-tick", now.Add(5*time.Millisecond), now); err != nil || len(rs) != 3 {
		t.Fatalf("claim %v %v", rs, err)
	}
	time.Sleep(20 * time.Millisecond)

	// The tick of {b} recovers c's dead lease and completes b, and leaves
	// a's live leases and a itself alone.
	res, err := h.eng.Tick(ctx, core.TriggerCLI, b)
	if err != nil || res.Recovered != 3 || res.Sent != 5 || res.Completed != 1 {
		t.Fatalf("tick of {%d}: %+v %v", b, res, err)
	}
	if ca, _ := h.eng.Campaign(ctx, a); ca.Status != core.CampaignSending || ca.Stats.Sending != 10 {
		t.Fatalf("campaign %d beside the tick of {%d}: %s %+v", a, b, ca.Status, ca.Stats)
	}
	// Without a set: c, recovered, not a.
	if res := h.tick(); res.Sent != 3 || res.Recovered != 0 || res.Completed != 1 {
		t.Fatalf("tick without a set: %+v", res)
	}
	close(g.open)
	if res := <-first; res.Sent != 10 || res.Completed != 1 || len(res.Problems) != 0 {
		t.Fatalf("tick of {%d}: %+v", a, res)
	}
	for _, s := range []*fakeSender{h.sender, &g.fakeSender} {
		for id, n := range s.attempts {
			if n != 1 {
				t.Errorf("recipient %d sent %d times", id, n)
			}
		}
	}
	if rep, err := h.eng.Verify(ctx, 0); err != nil || !rep.OK() {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}
