package core_test

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/sqlite"
	"github.com/campaignd/campaignd/sdk"
	"github.com/hashicorp/go-hclog"
)

// fakeSender answers each Send with what fn says, tracking concurrency.
type fakeSender struct {
	fn       func(m *sdk.Message, attempt int) error
	mu       sync.Mutex
	attempts map[int64]int
	sent     []*sdk.Message
	inFlight atomic.Int32
	maxSeen  atomic.Int32
	delay    time.Duration
}

func (f *fakeSender) Configure(context.Context, map[string]string) error { return nil }
func (f *fakeSender) Info(context.Context) (sdk.Info, error)             { return sdk.Info{Name: "fake"}, nil }
func (f *fakeSender) Send(ctx context.Context, m *sdk.Message) (*sdk.Receipt, error) {
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		old := f.maxSeen.Load()
		if n <= old || f.maxSeen.CompareAndSwap(old, n) {
			break
		}
	}
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	f.mu.Lock()
	if f.attempts == nil {
		f.attempts = map[int64]int{}
	}
	f.attempts[m.RecipientID]++
	attempt := f.attempts[m.RecipientID]
	f.mu.Unlock()
	if f.fn != nil {
		if err := f.fn(m, attempt); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	f.sent = append(f.sent, m)
	f.mu.Unlock()
	return &sdk.Receipt{ProviderID: "p-" + m.MessageID}, nil
}

func (f *fakeSender) sentCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent)
}

type fakeProvider struct {
	senders map[string]sdk.Sender
	err     error
	calls   atomic.Int32
}

func (p *fakeProvider) Sender(_ context.Context, name string) (sdk.Sender, error) {
	p.calls.Add(1)
	if p.err != nil {
		return nil, p.err
	}
	return p.senders[name], nil
}
func (p *fakeProvider) Has(name string) bool { _, ok := p.senders[name]; return ok }
func (p *fakeProvider) Names() []string      { return slices.Sorted(maps.Keys(p.senders)) }

type harness struct {
	t      testing.TB
	db     *sqlite.DB
	eng    *core.Engine
	prov   *fakeProvider
	sender *fakeSender
}

func newHarness(t testing.TB, mut func(*core.Limits)) *harness {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	lim := core.DefaultLimits()
	lim.RetryBase, lim.RetryMax = 0, 0
	lim.TickTimeout = 10 * time.Second
	if mut != nil {
		mut(&lim)
	}
	fs := &fakeSender{}
	prov := &fakeProvider{senders: map[string]sdk.Sender{"fake": fs}}
	eng, err := core.NewEngine(db, prov, lim, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, db: db, eng: eng, prov: prov, sender: fs}
}

var ctx = context.Background()

// engineOver is an engine like h's over store.
func (h *harness) engineOver(store core.Store) *core.Engine {
	h.t.Helper()
	eng, err := core.NewEngine(store, h.prov, h.eng.Limits(), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return eng
}

// campaign creates, fills with n recipients, activates and executes a campaign.
func (h *harness) campaign(n int, mut func(*core.CampaignSpec)) int64 {
	h.t.Helper()
	spec := core.CampaignSpec{Name: "c", Sender: "fake", From: "news@example.org", Subject: "Hi {{.Name}}", Text: "Hello {{.Email}}"}
	if mut != nil {
		mut(&spec)
	}
	c, err := h.eng.CreateCampaign(ctx, spec)
	if err != nil {
		h.t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("email,name\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "u%d@c%d.example.org,User %d\n", i, c.ID, i)
	}
	if _, err := h.eng.ImportRecipients(ctx, c.ID, core.FormatCSV, strings.NewReader(b.String())); err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.eng.ChangeCampaign(ctx, c.ID, core.ActionActivate); err != nil {
		h.t.Fatal(err)
	}
	if res, err := h.eng.Execute(ctx, c.ID); err != nil || res.Queued != int64(n) {
		h.t.Fatalf("execute: %+v %v", res, err)
	}
	return c.ID
}

func (h *harness) tick() *core.TickResult {
	h.t.Helper()
	res, err := h.eng.Tick(ctx, core.TriggerCLI)
	if err != nil {
		h.t.Fatal(err)
	}
	return res
}

func (h *harness) stats(id int64) core.Stats {
	h.t.Helper()
	st, err := h.eng.Stats(ctx, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return *st
}

func (h *harness) recipients(id int64, st core.RecipientStatus) []*core.Recipient {
	h.t.Helper()
	rs, err := h.eng.Recipients(ctx, id, core.RecipientFilter{Status: st, Limit: 10000})
	if err != nil {
		h.t.Fatal(err)
	}
	return rs
}

func TestTickSendsAtMost50AndCompletes(t *testing.T) {
	h := newHarness(t, nil)
	id := h.campaign(120, nil)
	for i, want := range []int{50, 50, 20} {
		res := h.tick()
		if res.Sent != want || res.Processed != want {
			t.Fatalf("tick %d: %+v, want %d sent", i, res, want)
		}
	}
	st := h.stats(id)
	if st.Sent != 120 || st.Unfinished() != 0 || st.Total != 120 {
		t.Fatalf("stats %+v", st)
	}
	c, _ := h.eng.Campaign(ctx, id)
	if c.Status != core.CampaignCompleted {
		t.Fatalf("status %s", c.Status)
	}
	ticks, _ := h.eng.Ticks(ctx, 10)
	if len(ticks) != 3 {
		t.Fatalf("%d tick records, want 3", len(ticks))
	}
	// Distinct, deterministic Message-IDs.
	seen := map[string]bool{}
	for _, m := range h.sender.sent {
		if seen[m.MessageID] {
			t.Fatalf("message id %s twice", m.MessageID)
		}
		seen[m.MessageID] = true
		if m.MessageID != fmt.Sprintf("<c%d.r%d@example.org>", id, m.RecipientID) {
			t.Fatalf("message id %s", m.MessageID)
		}
	}
	// An idle tick reads only: no plugin, no tick record.
	calls := h.prov.calls.Load()
	if res := h.tick(); res.Processed != 0 {
		t.Fatalf("idle tick processed %d", res.Processed)
	}
	if h.prov.calls.Load() != calls {
		t.Fatal("idle tick asked for a sender")
	}
	if ticks, _ := h.eng.Ticks(ctx, 10); len(ticks) != 3 {
		t.Fatalf("idle tick left a record: %d", len(ticks))
	}
	for _, r := range h.recipients(id, core.RecipientSent) {
		if r.ProviderID == "" || r.SentAt == nil || r.Attempts != 1 {
			t.Fatalf("sent recipient %+v", r)
		}
	}
}

func TestTickSharesBudgetFairly(t *testing.T) {
	h := newHarness(t, nil)
	a := h.campaign(100, nil)
	b := h.campaign(100, nil)
	c := h.campaign(100, func(s *core.CampaignSpec) { s.BatchSize = 5 })
	res := h.tick()
	if res.Sent != 50 {
		t.Fatalf("sent %d", res.Sent)
	}
	sa, sb, sc := h.stats(a).Sent, h.stats(b).Sent, h.stats(c).Sent
	if sc != 5 || sa+sb != 45 || sa < 22 || sb < 22 {
		t.Fatalf("shares a=%d b=%d c=%d", sa, sb, sc)
	}
}

func TestTickConcurrencyBound(t *testing.T) {
	h := newHarness(t, nil)
	h.sender.delay = 20 * time.Millisecond
	h.campaign(30, func(s *core.CampaignSpec) { s.Concurrency = 3 })
	h.tick()
	if m := h.sender.maxSeen.Load(); m != 3 {
		t.Fatalf("max in flight %d, want 3", m)
	}
}

func TestTransientRetriesThenSucceeds(t *testing.T) {
	h := newHarness(t, nil)
	h.sender.fn = func(m *sdk.Message, attempt int) error {
		if attempt == 1 {
			return sdk.Transient("try later").WithSMTP(451, "4.3.0")
		}
		return nil
	}
	id := h.campaign(10, nil)
	if res := h.tick(); res.Retried != 10 || res.Sent != 0 {
		t.Fatalf("first tick %+v", res)
	}
	q := h.recipients(id, core.RecipientQueued)
	if len(q) != 10 || q[0].LastErrorCode != 451 || q[0].LastEnhancedCode != "4.3.0" || q[0].Attempts != 1 {
		t.Fatalf("queued after transient: %+v", q[0])
	}
	if res := h.tick(); res.Sent != 10 {
		t.Fatalf("second tick %+v", res)
	}
	if st := h.stats(id); st.Sent != 10 || st.Queued != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTransientGivesUpAfterMaxAttempts(t *testing.T) {
	h := newHarness(t, func(l *core.Limits) { l.MaxAttempts = 3 })
	h.sender.fn = func(*sdk.Message, int) error { return sdk.Transient("connection refused") }
	id := h.campaign(4, nil)
	for i := 0; i < 3; i++ {
		h.tick()
	}
	failed := h.recipients(id, core.RecipientFailed)
	if len(failed) != 4 || failed[0].Attempts != 3 || !strings.Contains(failed[0].LastError, "gave up after 3 attempts") {
		t.Fatalf("failed %+v", failed)
	}
	c, _ := h.eng.Campaign(ctx, id)
	if c.Status != core.CampaignCompleted || c.Stats.Failed != 4 {
		t.Fatalf("campaign %+v", c)
	}
	// Operator retry reopens the campaign and requeues with fresh attempts.
	h.sender.fn = nil
	res, err := h.eng.Retry(ctx, id, "transient", 0)
	if err != nil || res.Requeued != 4 {
		t.Fatalf("retry %+v %v", res, err)
	}
	if r := h.tick(); r.Sent != 4 {
		t.Fatalf("after retry %+v", r)
	}
}

// Retry of a PAUSED campaign requeues and leaves it paused: nothing is sent
// until the operator resumes it.
func TestRetryWhilePausedWaitsForResume(t *testing.T) {
	h := newHarness(t, nil)
	h.sender.fn = func(m *sdk.Message, _ int) error {
		if strings.Contains(m.To, "<u1@") {
			return sdk.Permanent("policy").WithSMTP(550, "5.7.1")
		}
		return nil
	}
	id := h.campaign(60, nil)
	h.tick() // 49 SENT, 1 FAILED, 10 still QUEUED: SENDING
	if _, err := h.eng.ChangeCampaign(ctx, id, core.ActionPause); err != nil {
		t.Fatal(err)
	}
	h.sender.fn = nil
	res, err := h.eng.Retry(ctx, id, "permanent", 0)
	if err != nil || res.Requeued != 1 {
		t.Fatalf("retry while paused: %+v %v", res, err)
	}
	if c, _ := h.eng.Campaign(ctx, id); c.Status != core.CampaignPaused || c.Stats.Queued != 11 {
		t.Fatalf("after the retry: %s %+v, want PAUSED with 11 queued", c.Status, c.Stats)
	}
	if r := h.tick(); r.Processed != 0 {
		t.Fatalf("tick while paused: %+v", r)
	}
	if _, err := h.eng.ChangeCampaign(ctx, id, core.ActionResume); err != nil {
		t.Fatal(err)
	}
	if r := h.tick(); r.Sent != 11 {
		t.Fatalf("tick after resume: %+v", r)
	}
}

func TestThrottleHandsBackBatchWithoutCountingAttempts(t *testing.T) {
	h := newHarness(t, func(l *core.Limits) { l.ThrottleDelay = time.Hour })
	var calls atomic.Int32
	h.sender.fn = func(*sdk.Message, int) error {
		calls.Add(1)
		return sdk.Throttled(0, "too many messages").WithSMTP(421, "4.7.0")
	}
	id := h.campaign(20, func(s *core.CampaignSpec) { s.Concurrency = 1 })
	res := h.tick()
	if res.Throttled != 1 || res.Sent != 0 || res.Failed != 0 || calls.Load() != 1 {
		t.Fatalf("tick %+v, %d sends attempted", res, calls.Load())
	}
	q := h.recipients(id, core.RecipientQueued)
	if len(q) != 20 {
		t.Fatalf("%d queued, want all 20", len(q))
	}
	for _, r := range q {
		if r.Attempts != 0 {
			t.Fatalf("throttle counted an attempt: %+v", r)
		}
		if r.NextAttemptAt == nil || time.Until(*r.NextAttemptAt) < 50*time.Minute {
			t.Fatalf("recipient %d due at %v, want ~1h from now", r.ID, r.NextAttemptAt)
		}
	}
	if res := h.tick(); res.Processed != 0 {
		t.Fatalf("throttled work resent early: %+v", res)
	}
}

func TestBounceSuppresses(t *testing.T) {
	h := newHarness(t, nil)
	h.sender.fn = func(m *sdk.Message, _ int) error {
		if strings.HasPrefix(m.To, `"User 0"`) {
			return sdk.Bounced("no such user").WithSMTP(550, "5.1.1")
		}
		if strings.HasPrefix(m.To, `"User 1"`) {
			return sdk.Permanent("message rejected").WithSMTP(554, "5.7.1")
		}
		return nil
	}
	id := h.campaign(5, nil)
	h.tick()
	st := h.stats(id)
	if st.Bounced != 1 || st.Failed != 1 || st.Sent != 3 {
		t.Fatalf("stats %+v", st)
	}
	b := h.recipients(id, core.RecipientBounced)[0]
	if b.LastErrorCode != 550 || b.LastEnhancedCode != "5.1.1" || b.Attempts != 1 {
		t.Fatalf("bounced %+v", b)
	}
	sup, _ := h.eng.Suppressions(ctx, 10)
	if len(sup) != 1 || sup[0].Email != b.Email || sup[0].Source != "bounce" {
		t.Fatalf("suppressions %+v", sup)
	}
	c2, _ := h.eng.CreateCampaign(ctx, core.CampaignSpec{Name: "again", Sender: "fake", From: "a@example.org", Subject: "s", Text: "t"})
	res, err := h.eng.AddRecipient(ctx, c2.ID, core.RecipientInput{Email: b.Email})
	if err != nil || res.Suppressed != 1 || res.Added != 0 {
		t.Fatalf("suppressed address added again: %+v %v", res, err)
	}
}

func TestConfigErrorPausesCampaign(t *testing.T) {
	h := newHarness(t, nil)
	h.sender.fn = func(*sdk.Message, int) error { return sdk.ConfigError("authentication failed").WithSMTP(535, "5.7.8") }
	id := h.campaign(10, func(s *core.CampaignSpec) { s.Concurrency = 1 })
	h.tick()
	c, _ := h.eng.Campaign(ctx, id)
	if c.Status != core.CampaignPaused || c.Stats.Queued != 10 || c.Stats.Failed != 0 {
		t.Fatalf("campaign %+v", c)
	}
	for _, r := range h.recipients(id, core.RecipientQueued) {
		if r.Attempts != 0 {
			t.Fatalf("config error counted an attempt: %+v", r)
		}
	}
	ticks, _ := h.eng.Ticks(ctx, 1)
	if len(ticks) != 1 || !strings.Contains(ticks[0].Error, "paused") {
		t.Fatalf("tick record %+v", ticks)
	}
	h.sender.fn = nil
	if _, err := h.eng.ChangeCampaign(ctx, id, core.ActionResume); err != nil {
		t.Fatal(err)
	}
	if res := h.tick(); res.Sent != 10 {
		t.Fatalf("after resume %+v", res)
	}
}

func TestSenderUnavailableRequeuesWithoutFailing(t *testing.T) {
	h := newHarness(t, nil)
	h.prov.err = fmt.Errorf("plugin would not start")
	id := h.campaign(5, nil)
	res := h.tick()
	if res.Failed != 0 || res.Sent != 0 {
		t.Fatalf("%+v", res)
	}
	for _, r := range h.recipients(id, core.RecipientQueued) {
		if r.Attempts != 0 {
			t.Fatalf("attempt counted: %+v", r)
		}
	}
	h.prov.err = nil
	if res := h.tick(); res.Sent != 5 {
		t.Fatalf("%+v", res)
	}
}

func TestTemplateFailureIsPerRecipient(t *testing.T) {
	h := newHarness(t, nil)
	c, _ := h.eng.CreateCampaign(ctx, core.CampaignSpec{Name: "t", Sender: "fake", From: "a@example.org", Subject: "For {{.Attr.city}}", Text: "x"})
	// b's city breaks the subject (a header): b fails, the others go out.
	csv := "email,city\na@example.org,Oslo\nb@example.org,\"Os\nlo\"\nc@example.org,Rome\n"
	if _, err := h.eng.ImportRecipients(ctx, c.ID, core.FormatCSV, strings.NewReader(csv)); err != nil {
		t.Fatal(err)
	}
	h.eng.ChangeCampaign(ctx, c.ID, core.ActionActivate)
	h.eng.Execute(ctx, c.ID)
	h.tick()
	st := h.stats(c.ID)
	if st.Sent != 2 || st.Failed != 1 {
		t.Fatalf("stats %+v", st)
	}
	f := h.recipients(c.ID, core.RecipientFailed)[0]
	if f.Email != "b@example.org" || f.LastErrorClass != core.ClassTemplate {
		t.Fatalf("failed %+v", f)
	}
}

func TestExpiredLeaseRecovery(t *testing.T) {
	for _, policy := range []core.InDoubtPolicy{core.InDoubtResend, core.InDoubtHold} {
		t.Run(string(policy), func(t *testing.T) {
			h := newHarness(t, func(l *core.Limits) { l.InDoubt = policy })
			id := h.campaign(3, nil)
			// A tick that claimed and then died: its lease is already over.
			now := time.Now()
			if rs, err := h.db.Claim(ctx, id, 3, "dead-tick", now.Add(5*time.Millisecond), now); err != nil || len(rs) != 3 {
				t.Fatalf("claim %v %v", rs, err)
			}
			time.Sleep(20 * time.Millisecond)
			res := h.tick()
			if res.Recovered != 3 {
				t.Fatalf("%+v", res)
			}
			st := h.stats(id)
			if policy == core.InDoubtResend && st.Sent != 3 {
				t.Fatalf("resend: %+v", st)
			}
			if policy == core.InDoubtHold {
				f := h.recipients(id, core.RecipientFailed)
				if st.Failed != 3 || len(f) != 3 || f[0].LastErrorClass != core.ClassInDoubt {
					t.Fatalf("hold: %+v %+v", st, f)
				}
			}
			// The dead tick's late outcome must not overwrite anything.
			err := h.db.RecordOutcome(ctx, core.Outcome{RecipientID: 1, CampaignID: id, ClaimToken: "dead-tick", Status: core.RecipientFailed, At: time.Now()})
			if core.ErrorCode(err) != core.ECONFLICT {
				t.Fatalf("stale outcome: %v", err)
			}
		})
	}
}

func TestDrainHandsBackUnsentWork(t *testing.T) {
	h := newHarness(t, nil)
	release := make(chan struct{})
	var once sync.Once
	h.sender.fn = func(*sdk.Message, int) error {
		once.Do(func() {
			h.eng.Drain()
			close(release)
		})
		return nil
	}
	id := h.campaign(40, func(s *core.CampaignSpec) { s.Concurrency = 1 })
	res := h.tick()
	<-release
	st := h.stats(id)
	if res.Sent != 1 || st.Sent != 1 || st.Queued != 39 || st.Sending != 0 {
		t.Fatalf("tick %+v stats %+v", res, st)
	}
	if _, err := h.eng.Tick(ctx, core.TriggerCLI); core.ErrorCode(err) != core.EUNAVAILABLE {
		t.Fatalf("tick while draining: %v", err)
	}
}

func TestExecuteFailureLeavesRecord(t *testing.T) {
	h := newHarness(t, nil)
	c, _ := h.eng.CreateCampaign(ctx, core.CampaignSpec{Name: "d", Sender: "fake", From: "a@example.org", Subject: "s", Text: "t"})
	_, err := h.eng.Execute(core.WithActor(ctx, "tester"), c.ID)
	if core.ErrorCode(err) != core.ECONFLICT || !strings.Contains(err.Error(), "DRAFT") {
		t.Fatalf("execute of DRAFT: %v", err)
	}
	xs, _ := h.eng.Executions(ctx, c.ID)
	if len(xs) != 1 || xs[0].Status != core.ExecutionFailed || xs[0].By != "tester" || xs[0].Error == "" {
		t.Fatalf("executions %+v", xs)
	}
	if got, _ := h.eng.Campaign(ctx, c.ID); got.Status != core.CampaignDraft {
		t.Fatalf("campaign changed: %s", got.Status)
	}
	if _, err := h.eng.CreateCampaign(ctx, core.CampaignSpec{Name: "x", Sender: "nope", From: "a@example.org", Subject: "s", Text: "t"}); core.ErrorCode(err) != core.EINVALID {
		t.Fatalf("unknown sender: %v", err)
	}
}

// TestExecuteAndTickLeaveHistory checks the records an execute and a tick
// leave: the execution names its caller, a second execute is a conflict
// (recorded too), and a tick record carries its trigger and counts.
func TestExecuteAndTickLeaveHistory(t *testing.T) {
	h := newHarness(t, nil)
	c, err := h.eng.CreateCampaign(ctx, core.CampaignSpec{Name: "h", Sender: "fake", From: "a@example.org", Subject: "s", Text: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.ImportRecipients(ctx, c.ID, core.FormatCSV, strings.NewReader("email\na@example.org\nb@example.org\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.ChangeCampaign(ctx, c.ID, core.ActionActivate); err != nil {
		t.Fatal(err)
	}
	res, err := h.eng.Execute(core.WithActor(ctx, "cron job"), c.ID)
	if err != nil || res.Queued != 2 || res.Message == "" {
		t.Fatalf("execute: %+v %v", res, err)
	}
	if _, err := h.eng.Execute(ctx, c.ID); core.ErrorCode(err) != core.ECONFLICT {
		t.Fatalf("second execute: %v, want conflict", err)
	}
	if _, err := h.eng.Execute(ctx, c.ID+100); core.ErrorCode(err) != core.ENOTFOUND {
		t.Fatalf("execute of an unknown campaign: %v, want not found", err)
	}
	xs, err := h.eng.Executions(ctx, c.ID)
	if err != nil || len(xs) != 2 {
		t.Fatalf("executions %+v %v", xs, err)
	}
	// Newest first: the refused second execute, then the first.
	if xs[1].Status != core.ExecutionCompleted || xs[1].Queued != 2 || xs[1].By != "cron job" ||
		xs[0].Status != core.ExecutionFailed || !strings.Contains(xs[0].Error, "SENDING") {
		t.Fatalf("executions %+v %+v", *xs[0], *xs[1])
	}

	if r, err := h.eng.Tick(ctx, core.TriggerHTTP); err != nil || r.Sent != 2 {
		t.Fatalf("tick: %+v %v", r, err)
	}
	if r := h.tick(); r.Processed != 0 {
		t.Fatalf("idle tick: %+v", r)
	}
	ts, err := h.eng.Ticks(ctx, 10)
	if err != nil || len(ts) != 1 {
		t.Fatalf("tick records %+v %v (an idle tick writes none)", ts, err)
	}
	if tr := ts[0]; tr.Trigger != core.TriggerHTTP || tr.Processed != 2 || tr.Sent != 2 || tr.Failed != 0 || tr.Duration <= 0 {
		t.Fatalf("tick record %+v", *tr)
	}
}

// hangSender never answers: each Send blocks until the tick's deadline,
// like a tarpitting SMTP server.
type hangSender struct{ fakeSender }

func (h *hangSender) Send(ctx context.Context, m *sdk.Message) (*sdk.Receipt, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// A send cut off by tick_timeout is in doubt, with the policy of an expired
// lease: resent with backoff, and failed in_doubt once max_attempts is
// reached, so a server that never answers cannot hold a campaign open.
func TestTickTimeoutHonoursMaxAttempts(t *testing.T) {
	h := newHarness(t, func(l *core.Limits) {
		l.MaxAttempts = 2
		l.TickTimeout = 100 * time.Millisecond
	})
	h.prov.senders["fake"] = &hangSender{}
	id := h.campaign(1, nil)
	for i := 0; i < 5; i++ {
		if _, err := h.eng.Tick(ctx, core.TriggerCLI); err != nil {
			t.Fatalf("tick %d: %v", i, err)
		}
	}
	r := h.recipients(id, "")[0]
	if r.Status != core.RecipientFailed || r.LastErrorClass != core.ClassInDoubt || r.Attempts != 2 {
		t.Errorf("after 5 timed-out ticks with max_attempts 2: %s class %s after %d attempts; want FAILED in_doubt after 2",
			r.Status, r.LastErrorClass, r.Attempts)
	}
	if c, _ := h.eng.Campaign(ctx, id); c.Status != core.CampaignCompleted {
		t.Errorf("campaign %s, want COMPLETED", c.Status)
	}
	rep, err := h.eng.Verify(ctx, id)
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// earlySender gives up a moment before the tick's deadline, as a plugin
// does: the deadline reaches it with the call, a little ahead of the
// tick's own.
type earlySender struct{ fakeSender }

func (s *earlySender) Send(ctx context.Context, m *sdk.Message) (*sdk.Receipt, error) {
	dl, _ := ctx.Deadline()
	time.Sleep(time.Until(dl) - 50*time.Millisecond)
	return nil, sdk.Transient("end of DATA: timed out waiting for the reply")
}

// A send that failed because the deadline was about to cut it off is in
// doubt (the server may have the message), not an ordinary transient
// failure, even when its answer beats the tick's own context.
func TestSendCutOffJustBeforeTheDeadlineIsInDoubt(t *testing.T) {
	h := newHarness(t, func(l *core.Limits) { l.TickTimeout = 400 * time.Millisecond })
	h.prov.senders["fake"] = &earlySender{}
	id := h.campaign(1, nil)
	h.tick()
	r := h.recipients(id, "")[0]
	if r.Status != core.RecipientQueued || r.LastErrorClass != core.ClassInDoubt || !strings.Contains(r.LastError, "timed out mid-send") {
		t.Fatalf("%s class %q %q, want QUEUED in_doubt (resend policy)", r.Status, r.LastErrorClass, r.LastError)
	}
}

// failSuppressedAmong is a store whose suppression check fails.
type failSuppressedAmong struct{ core.Store }

func (failSuppressedAmong) SuppressedAmong(context.Context, []string) (map[string]bool, error) {
	return nil, core.Errorf(core.EUNAVAILABLE, "check suppressions: database is busy")
}

// When the claim-time suppression check fails, nothing is sent (an address
// suppressed after import is exactly what it exists for): the batch goes
// back to the queue with no attempt counted, and the tick says why.
func TestClaimTimeSuppressionFailsClosed(t *testing.T) {
	h := newHarness(t, nil)
	id := h.campaign(3, nil)
	r := h.recipients(id, core.RecipientQueued)[0]
	if err := h.eng.Suppress(ctx, core.Suppression{Email: r.Email, Reason: "complaint"}); err != nil {
		t.Fatal(err)
	}
	// The tick fails (cron hears of it), having sent nothing.
	if _, err := h.engineOver(failSuppressedAmong{h.db}).Tick(ctx, core.TriggerCLI); err == nil || !strings.Contains(err.Error(), "suppression check") {
		t.Fatalf("tick: %v, want the failed suppression check", err)
	}
	if n := h.sender.sentCount(); n != 0 {
		t.Fatalf("sent %d although the suppression check failed", n)
	}
	for _, q := range h.recipients(id, core.RecipientQueued) {
		if q.Attempts != 0 {
			t.Errorf("recipient %d: %d attempts counted for a batch never sent", q.ID, q.Attempts)
		}
	}
	if st := h.stats(id); st.Queued != 3 {
		t.Fatalf("stats %+v, want all 3 back in the queue", st)
	}
	ts, _ := h.eng.Ticks(ctx, 1)
	if len(ts) != 1 || !strings.Contains(ts[0].Error, "suppression check") {
		t.Fatalf("tick records %+v, want one naming the failed check", ts)
	}
	// With the check working again, the suppressed address fails as such
	// and the others are sent.
	if res := h.tick(); res.Sent != 2 || res.Failed != 1 {
		t.Fatalf("next tick: %+v", res)
	}
}

// Cancelling a campaign ends every recipient not yet sent: FAILED with
// class cancelled, counters moved, nothing left waiting. A send in flight
// at the cancel that comes back for a retry ends the same way at the next
// tick.
func TestCancelFailsUnsentRecipients(t *testing.T) {
	h := newHarness(t, nil)
	id := h.campaign(60, nil)
	h.tick() // 50 SENT, 10 QUEUED
	inflight, err := h.db.Claim(ctx, id, 2, "in-flight", time.Now().Add(time.Minute), time.Now())
	if err != nil || len(inflight) != 2 {
		t.Fatalf("claim: %v %v", inflight, err)
	}
	if _, err := h.eng.ChangeCampaign(ctx, id, core.ActionCancel); err != nil {
		t.Fatal(err)
	}
	if want := (core.Stats{Total: 60, Sending: 2, Sent: 50, Failed: 8}); h.stats(id) != want {
		t.Fatalf("after cancel: %+v, want %+v", h.stats(id), want)
	}
	for _, r := range h.recipients(id, core.RecipientFailed) {
		if r.LastErrorClass != core.ClassCancelled || !strings.Contains(r.LastError, "cancelled") {
			t.Errorf("recipient %d: class %q error %q", r.ID, r.LastErrorClass, r.LastError)
		}
	}
	// The in-flight sends finish: one sent, one transient (back to QUEUED).
	outcomes := []core.Outcome{
		{RecipientID: inflight[0].ID, CampaignID: id, ClaimToken: "in-flight", Status: core.RecipientSent, ProviderID: "p", At: time.Now()},
		{RecipientID: inflight[1].ID, CampaignID: id, ClaimToken: "in-flight", Status: core.RecipientQueued, ErrorClass: "transient", Error: "451", At: time.Now()},
	}
	for _, o := range outcomes {
		if err := h.db.RecordOutcome(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if rep, _ := h.eng.Verify(ctx, id); !rep.OK() || len(rep.Notes) != 1 {
		t.Fatalf("verify with a requeued row under the cancel: %+v (want one note, no violation)", rep)
	}
	h.tick()
	if want := (core.Stats{Total: 60, Sent: 51, Failed: 9}); h.stats(id) != want {
		t.Fatalf("after the next tick: %+v, want %+v", h.stats(id), want)
	}
	if rep, err := h.eng.Verify(ctx, id); err != nil || !rep.OK() || len(rep.Notes) != 0 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	// A DRAFT campaign's PENDING recipients end too.
	c, _ := h.eng.CreateCampaign(ctx, core.CampaignSpec{Name: "d", Sender: "fake", From: "a@example.org", Subject: "s", Text: "t"})
	if _, err := h.eng.ImportRecipients(ctx, c.ID, core.FormatCSV, strings.NewReader("email\na@example.org\nb@example.org\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.ChangeCampaign(ctx, c.ID, core.ActionCancel); err != nil {
		t.Fatal(err)
	}
	if want := (core.Stats{Total: 2, Failed: 2}); h.stats(c.ID) != want {
		t.Fatalf("cancelled draft: %+v, want %+v", h.stats(c.ID), want)
	}
}

func TestOverlappingTicksInOneProcessSkip(t *testing.T) {
	h := newHarness(t, nil)
	h.sender.delay = 50 * time.Millisecond
	h.campaign(50, nil)
	var wg sync.WaitGroup
	results := make([]*core.TickResult, 4)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i], _ = h.eng.Tick(ctx, core.TriggerCLI)
		}(i)
	}
	wg.Wait()
	// One tick sends the batch. Each other one either met the campaign
	// locked (skipped) or, starting after the claim, found nothing due:
	// ticks lock campaigns, not the engine.
	sent, worked := 0, 0
	for _, r := range results {
		sent += r.Sent
		if r.Processed > 0 {
			worked++
		}
	}
	if sent != 50 || worked != 1 || h.sender.sentCount() != 50 {
		t.Fatalf("sent %d by %d ticks, %d sends; want 50 by one tick", sent, worked, h.sender.sentCount())
	}
}

func TestClaimTimeSuppression(t *testing.T) {
	h := newHarness(t, nil)
	id := h.campaign(3, nil)
	victim := h.recipients(id, core.RecipientQueued)[1]
	if err := h.eng.Suppress(ctx, core.Suppression{Email: strings.ToUpper(victim.Email[:1]) + victim.Email[1:], Reason: "complained"}); err != nil {
		t.Fatal(err)
	}
	res := h.tick()
	if res.Sent != 2 || res.Failed != 1 || h.sender.sentCount() != 2 {
		t.Fatalf("%+v", res)
	}
	f := h.recipients(id, core.RecipientFailed)
	if len(f) != 1 || f[0].ID != victim.ID || f[0].LastErrorClass != core.ClassSuppressed || f[0].Attempts != 0 {
		t.Fatalf("failed %+v", f)
	}
}

// TestVerifyAfterLoweringMaxAttempts is issue 12 item 9: rows tried under
// a higher max_attempts are not violations once the limit is lowered (a
// note says so); only attempts no configuration allows are.
func TestVerifyAfterLoweringMaxAttempts(t *testing.T) {
	h := newHarness(t, nil) // max_attempts 5
	id := h.campaign(3, nil)
	h.tick()
	raw, err := sql.Open("sqlite3", h.db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`UPDATE recipients SET attempts = 4 WHERE id = (SELECT min(id) FROM recipients)`); err != nil {
		t.Fatal(err)
	}
	lim := h.eng.Limits()
	lim.MaxAttempts = 2
	if err := h.eng.SetLimits(lim); err != nil {
		t.Fatal(err)
	}
	rep, err := h.eng.Verify(ctx, id)
	if err != nil || !rep.OK() {
		t.Fatalf("verify after lowering max_attempts: %+v %v, want no violation", rep, err)
	}
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "1 SENT recipients have more attempts than the current max_attempts (2)") {
		t.Fatalf("notes %q, want one about the row tried under the higher limit", rep.Notes)
	}
}

func TestVerifyFindsBrokenInvariants(t *testing.T) {
	h := newHarness(t, nil)
	id := h.campaign(10, nil)
	h.tick()
	rep, err := h.eng.Verify(ctx, 0)
	if err != nil || !rep.OK() || rep.Recipients != 10 || rep.Campaigns != 1 {
		t.Fatalf("clean database: %+v %v", rep, err)
	}
	raw, err := sql.Open("sqlite3", h.db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, q := range []string{
		`UPDATE recipients SET provider_id = NULL WHERE id = (SELECT min(id) FROM recipients)`,
		`UPDATE recipients SET status = 'QUEUED', next_attempt_at = NULL WHERE id = (SELECT max(id) FROM recipients)`,
		`UPDATE recipients SET attempts = 101 WHERE id = (SELECT min(id) + 1 FROM recipients)`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	rep, err = h.eng.Verify(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]bool{}
	for _, v := range rep.Violations {
		checks[v.Check] = true
	}
	for _, want := range []string{"sent", "queued", "counters", "completed", "attempts"} {
		if !checks[want] {
			t.Errorf("verify missed %q: %+v", want, rep.Violations)
		}
	}
	if _, err := h.eng.Verify(ctx, 999); core.ErrorCode(err) != core.ENOTFOUND {
		t.Fatalf("unknown campaign: %v", err)
	}
}
