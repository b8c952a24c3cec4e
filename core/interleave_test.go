package core_test

// Tests of an engine operation with another one committing in the middle
// of it, as a daemon's scheduler and an operator's command can: the other
// operation runs just before the named store call.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/sdk"
)

// interleave wraps the real store and runs a hook once, just before the
// named method, to stage a concurrent operation in the window between the
// engine's read and its write.
type interleave struct {
	core.Store
	before map[string]func()
}

func (s *interleave) run(name string) {
	if f := s.before[name]; f != nil {
		delete(s.before, name)
		f()
	}
}

func (s *interleave) Retry(ctx context.Context, id int64, class core.ErrorClass, code int, now time.Time) (int64, error) {
	s.run("Retry")
	return s.Store.Retry(ctx, id, class, code, now)
}

func (s *interleave) Claim(ctx context.Context, id int64, n int, token string, lease, now time.Time) ([]*core.Recipient, error) {
	s.run("Claim")
	return s.Store.Claim(ctx, id, n, token, lease, now)
}

func (s *interleave) Audit(ctx context.Context, id int64, now time.Time, maxAttempts int) (*core.AuditSnapshot, error) {
	s.run("Audit")
	return s.Store.Audit(ctx, id, now, maxAttempts)
}

// A tick completing the campaign between retry's read and its requeue must
// not leave QUEUED recipients under a COMPLETED campaign: the campaign
// reopens with them.
func TestRetryRacingCompletion(t *testing.T) {
	h := newHarness(t, nil)
	id := h.campaign(2, nil)
	if _, err := h.db.Claim(ctx, id, 2, "tok", time.Now().Add(time.Minute), time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, r := range h.recipients(id, core.RecipientSending) {
		if err := h.db.RecordOutcome(ctx, core.Outcome{RecipientID: r.ID, CampaignID: id, ClaimToken: "tok",
			Status: core.RecipientFailed, ErrorClass: "permanent", Error: "550"}); err != nil {
			t.Fatal(err)
		}
	}
	eng := h.engineOver(&interleave{Store: h.db, before: map[string]func(){"Retry": func() {
		if done, err := h.db.CompleteCampaigns(ctx, time.Now()); err != nil || len(done) != 1 {
			t.Fatalf("complete: %v %v", done, err)
		}
	}}})
	res, err := eng.Retry(ctx, id, "", 0)
	if err != nil || res.Requeued != 2 {
		t.Fatalf("retry: %+v %v", res, err)
	}
	if c, _ := h.eng.Campaign(ctx, id); c.Status != core.CampaignSending || c.Stats.Queued != 2 {
		t.Fatalf("after the retry: %s %+v, want SENDING with 2 queued", c.Status, c.Stats)
	}
	if r := h.tick(); r.Sent != 2 {
		t.Fatalf("tick after the retry: %+v", r)
	}
}

// An operator cancelling during a retry: the retry is refused, and the
// cancelled campaign gets nothing requeued.
func TestRetryRacingCancel(t *testing.T) {
	h := newHarness(t, nil)
	h.sender.fn = func(m *sdk.Message, _ int) error {
		if strings.Contains(m.To, "<u1@") || strings.Contains(m.To, "<u2@") {
			return sdk.Permanent("policy").WithSMTP(550, "5.7.1")
		}
		return nil
	}
	id := h.campaign(60, nil)
	h.tick() // 48 SENT, 2 FAILED, 10 still QUEUED: SENDING
	eng := h.engineOver(&interleave{Store: h.db, before: map[string]func(){"Retry": func() {
		if _, err := h.eng.ChangeCampaign(ctx, id, core.ActionCancel); err != nil {
			t.Fatal(err)
		}
	}}})
	if res, err := eng.Retry(ctx, id, "", 0); core.ErrorCode(err) != core.ECONFLICT {
		t.Fatalf("retry of a campaign cancelled meanwhile: %+v %v, want a conflict", res, err)
	}
	c, _ := h.eng.Campaign(ctx, id)
	if want := (core.Stats{Total: 60, Sent: 48, Failed: 12}); c.Status != core.CampaignCancelled || c.Stats != want {
		t.Fatalf("after the refused retry: %s %+v, want CANCELLED %+v", c.Status, c.Stats, want)
	}
}

// A cancel (or pause) committed after the tick chose its campaigns but
// before it claimed is not overtaken: nothing is claimed or sent.
func TestClaimAfterCancelSendsNothing(t *testing.T) {
	for _, action := range []core.Action{core.ActionCancel, core.ActionPause} {
		t.Run(string(action), func(t *testing.T) {
			h := newHarness(t, nil)
			id := h.campaign(5, nil)
			eng := h.engineOver(&interleave{Store: h.db, before: map[string]func(){"Claim": func() {
				if _, err := h.eng.ChangeCampaign(ctx, id, action); err != nil {
					t.Fatal(err)
				}
			}}})
			res, err := eng.Tick(ctx, core.TriggerCLI)
			if err != nil {
				t.Fatal(err)
			}
			if n := h.sender.sentCount(); n != 0 || res.Processed != 0 {
				t.Fatalf("%s committed before the claim, yet the tick sent %d (%+v)", action, n, res)
			}
			if st := h.stats(id); st.Sending != 0 {
				t.Fatalf("rows claimed under a %s campaign: %+v", action, st)
			}
		})
	}
}

// verify beside a daemon: an outcome committed between reading the
// counters and scanning the rows is no violation.
func TestVerifyBesideATick(t *testing.T) {
	h := newHarness(t, nil)
	id := h.campaign(3, nil)
	rs, err := h.db.Claim(ctx, id, 3, "live-tick", time.Now().Add(time.Minute), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	eng := h.engineOver(&interleave{Store: h.db, before: map[string]func(){"Audit": func() {
		if err := h.db.RecordOutcome(ctx, core.Outcome{RecipientID: rs[0].ID, CampaignID: id, ClaimToken: "live-tick",
			Status: core.RecipientSent, ProviderID: "p1", At: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}}})
	rep, err := eng.Verify(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range rep.Violations {
		t.Errorf("violation on a consistent database: %s: %s", v.Check, v.Message)
	}
	if rep.Recipients != 3 {
		t.Errorf("verified %d recipients, want 3", rep.Recipients)
	}
}
