package core_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/sdk"
)

// countingObserver counts what the engine reports.
type countingObserver struct {
	mu       sync.Mutex
	outcomes map[string]int // "campaign sender kind"
	ticks    int
}

func (o *countingObserver) Outcome(id int64, sender string, k core.OutcomeKind) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.outcomes[fmt.Sprintf("%d %s %s", id, sender, k)]++
}

func (o *countingObserver) TickDone(*core.TickRecord) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ticks++
}

// Failures group by class, code and normalised text, largest first, and
// retry --class --code takes one group back; the observer hears every
// outcome and every tick, idle ones too.
func TestFailuresGroupAndRetryOneGroup(t *testing.T) {
	h := newHarness(t, nil)
	obs := &countingObserver{outcomes: map[string]int{}}
	h.eng.SetObserver(obs)
	h.sender.fn = func(m *sdk.Message, _ int) error {
		to := strings.Trim(m.To[strings.Index(m.To, "<"):], "<>")
		switch {
		case strings.HasPrefix(to, "u1@"), strings.HasPrefix(to, "u2@"), strings.HasPrefix(to, "u3@"):
			return sdk.Permanent("mailbox %s full, id 9f8e7d6c5b4a", to).WithSMTP(552, "5.2.2")
		case strings.HasPrefix(to, "u4@"):
			return sdk.Permanent("policy rejection").WithSMTP(554, "5.7.1")
		case strings.HasPrefix(to, "u5@"):
			return sdk.Bounced("no such user %s", to).WithSMTP(550, "5.1.1")
		}
		return nil
	}
	id := h.campaign(10, nil)
	h.tick()
	h.tick() // idle
	rep, err := h.eng.Failures(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 4 || rep.Bounced != 1 || len(rep.Groups) != 3 {
		t.Fatalf("report %+v", rep)
	}
	g := rep.Groups[0]
	if g.Count != 3 || g.Code != 552 || g.EnhancedCode != "5.2.2" || g.Class != core.ClassPermanent ||
		g.Text != "mailbox <address> full, id <id>" || !strings.HasPrefix(g.Example, "u") {
		t.Fatalf("largest group %+v", g)
	}
	if rep.Groups[1].Count != 1 || rep.Groups[2].Count != 1 {
		t.Fatalf("groups %+v", rep.Groups)
	}
	h.sender.fn = nil
	res, err := h.eng.Retry(ctx, id, "permanent", 552)
	if err != nil || res.Requeued != 3 || !strings.Contains(res.Message, "code 552") {
		t.Fatalf("retry one group: %+v %v", res, err)
	}
	if _, err := h.eng.Retry(ctx, id, "permanent", 1000); core.ErrorCode(err) != core.EINVALID {
		t.Fatalf("code out of range: %v", err)
	}
	h.tick()
	if st := h.stats(id); st.Sent != 8 || st.Failed != 1 || st.Bounced != 1 {
		t.Fatalf("after the retry: %+v", st)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	want := map[string]int{
		fmt.Sprintf("%d fake sent", id):    8,
		fmt.Sprintf("%d fake failed", id):  4,
		fmt.Sprintf("%d fake bounced", id): 1,
	}
	for k, n := range want {
		if obs.outcomes[k] != n {
			t.Errorf("observer %s = %d, want %d (all: %v)", k, obs.outcomes[k], n, obs.outcomes)
		}
	}
	if obs.ticks != 3 {
		t.Errorf("observer heard %d ticks, want 3", obs.ticks)
	}
	p, err := h.eng.Progress(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != core.CampaignCompleted || p.PercentDone != 100 || p.ETASeconds != nil || p.FinishedAt == nil || p.StartedAt == nil {
		t.Fatalf("progress %+v", p)
	}
	if rep, err := h.eng.Verify(ctx, id); err != nil || !rep.OK() {
		t.Fatalf("verify %+v %v", rep, err)
	}
}

// BenchmarkNormaliseErrorText is the per-failure cost of grouping when a
// text is new (repeated texts are normalised once per breakdown).
func BenchmarkNormaliseErrorText(b *testing.B) {
	for b.Loop() {
		core.NormaliseErrorText("552 5.2.2 <someone.long-name@example.org>: Mailbox full, quota exceeded (id 4Fq9Zk1b2Yz3)")
	}
}
