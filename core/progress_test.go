package core_test

import (
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
)

func TestComputeProgress(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 4, 30, 0, time.UTC)
	started := now.Add(-time.Hour)
	c := &core.Campaign{ID: 3, Status: core.CampaignSending, StartedAt: &started,
		Stats: core.Stats{Total: 1000, Queued: 600, Sent: 380, Failed: 15, Bounced: 5}}
	minute := func(ago int, sent, failed int64, last string) core.MinuteCount {
		return core.MinuteCount{Minute: now.Truncate(time.Minute).Add(-time.Duration(ago) * time.Minute), Sent: sent, Failed: failed, LastFailure: last}
	}
	ms := []core.MinuteCount{minute(9, 500, 0, "old"), minute(4, 40, 0, ""), minute(2, 40, 5, "x@y: permanent 552"), minute(0, 10, 0, "")}
	p := core.ComputeProgress(c, ms, core.Cadence{Interval: time.Minute, Share: 50}, now)
	if p.PercentDone != 40 || p.SentLast5m != 90 {
		t.Fatalf("done %v sent 5m %v", p.PercentDone, p.SentLast5m)
	}
	// 95 outcomes over the window: 4 whole minutes and 30 s.
	if p.RatePerMin != 21.1 || p.ETASeconds == nil || p.ETABasis != "rate" {
		t.Fatalf("rate %v eta %v %s", p.RatePerMin, p.ETASeconds, p.ETABasis)
	}
	if want := int64(1706); *p.ETASeconds < want || *p.ETASeconds > want+1 {
		t.Fatalf("eta %d, want about %d", *p.ETASeconds, want)
	}
	if len(p.RecentFailures) != 1 || p.RecentFailures[0] != "x@y: permanent 552" {
		t.Fatalf("recent failures %q", p.RecentFailures)
	}
	// Nothing seen yet: the cadence says 12 ticks of 50, a minute apart.
	p = core.ComputeProgress(c, nil, core.Cadence{Interval: time.Minute, Share: 50}, now)
	if p.RatePerMin != 0 || p.ETASeconds == nil || *p.ETASeconds != 720 || p.ETABasis != "cadence" {
		t.Fatalf("cadence eta %v %s", p.ETASeconds, p.ETABasis)
	}
	// Closed by its send window until 14:00 (1h55m30s away): the ETA waits
	// for it; an expiry before it opens leaves no ETA.
	w, err := core.ParseSendWindow("daily 14:00-18:00 UTC")
	if err != nil {
		t.Fatal(err)
	}
	c.Schedule = core.Schedule{SendWindow: w}
	p = core.ComputeProgress(c, nil, core.Cadence{Interval: time.Minute, Share: 50}, now)
	if p.ETASeconds == nil || *p.ETASeconds != 720+6930 {
		t.Fatalf("closed window eta %+v, want %d", p, 720+6930)
	}
	expires := now.Add(time.Hour)
	c.Schedule.Expires = &expires
	if p = core.ComputeProgress(c, nil, core.Cadence{Interval: time.Minute, Share: 50}, now); p.ETASeconds != nil {
		t.Fatalf("expires before the window opens, eta %v", *p.ETASeconds)
	}
	c.Schedule = core.Schedule{}
	// Not sending: no ETA.
	for _, st := range []core.CampaignStatus{core.CampaignPaused, core.CampaignCompleted, core.CampaignActive} {
		c.Status = st
		if p := core.ComputeProgress(c, ms, core.Cadence{Interval: time.Minute, Share: 50}, now); p.ETASeconds != nil {
			t.Fatalf("%s has an ETA", st)
		}
	}
	if p := core.ComputeProgress(&core.Campaign{Status: core.CampaignSending}, nil, core.Cadence{}, now); p.PercentDone != 100 || p.ETASeconds != nil {
		t.Fatalf("empty campaign: %+v", p)
	}
	// Started a minute and a half ago: the rate is over that, not five minutes.
	c.Status = core.CampaignSending
	recent := now.Add(-90 * time.Second)
	c.StartedAt = &recent
	if p := core.ComputeProgress(c, []core.MinuteCount{minute(1, 30, 0, ""), minute(0, 15, 0, "")}, core.Cadence{}, now); p.RatePerMin != 30 {
		t.Fatalf("rate since start %v", p.RatePerMin)
	}
}

func TestNormaliseErrorText(t *testing.T) {
	for in, want := range map[string]string{
		"mailbox x@y.example full":                               "mailbox <address> full",
		"552 5.2.2 <jo@example.org>: Mailbox full (quota 100MB)": "# #.#.# <<address>>: Mailbox full (quota #MB)",
		"queued as 4Fq9Zk1b2Yz3 rejected":                        "queued as <id> rejected",
		"  spaces\tand\nlines  ":                                 "spaces and lines",
		"":                                                       "",
	} {
		if got := core.NormaliseErrorText(in); got != want {
			t.Errorf("NormaliseErrorText(%q) = %q, want %q", in, got, want)
		}
	}
	if core.NormaliseErrorText("mailbox a@b full") != core.NormaliseErrorText("mailbox c@d.example full") {
		t.Error("addresses do not group")
	}
}

// Before any outcome the ETA assumes a tick a minute (cron) and an equal
// share of the tick's batch among the campaigns due.
func TestProgressCadenceShare(t *testing.T) {
	h := newHarness(t, nil)
	a := h.campaign(120, nil)
	p, err := h.eng.Progress(ctx, a)
	if err != nil || p.ETASeconds == nil || *p.ETASeconds != 180 || p.ETABasis != "cadence" {
		t.Fatalf("one campaign: %+v %v", p, err)
	}
	h.campaign(10, nil)
	h.eng.SetTickInterval(10 * time.Second)
	if p, err = h.eng.Progress(ctx, a); err != nil || p.ETASeconds == nil || *p.ETASeconds != 50 {
		t.Fatalf("two campaigns, a tick every 10s: %+v %v", p, err)
	}
	if _, err := h.eng.Progress(ctx, 999); core.ErrorCode(err) != core.ENOTFOUND {
		t.Fatalf("unknown campaign: %v", err)
	}
}
