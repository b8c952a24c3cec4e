package main_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/plugins/smtp/smtptest"
)

// quotaTOML is a sink sender with rate lines.
func quotaTOML(sink *smtptest.Server, rate string) string {
	return strings.Replace(sinkTOML("sink", sink), "[senders.sink.options]", "rate = "+rate+"\n\n[senders.sink.options]", 1)
}

// Issue 15 item 1: a tick sends no more than the sender's rate allows, the
// next one in the same window sends nothing and exits 0 quietly, and
// `queue` and `status` show the window spent and when it refills.
func TestSenderQuotaPacing(t *testing.T) {
	t.Parallel()
	sink := NewSink(t)
	e := NewEnv(t, quotaTOML(sink, `["3/minute", "500/day"]`))
	rows := makeMailRows(10, "example.net")
	id := startSendingCampaign(t, e, mailRowsCSV(rows), "--sender", "sink", "--concurrency", "2")

	if r := runTick(t, e); r.Sent != 3 || r.Processed != 3 {
		t.Fatalf("first tick %+v, want 3 sent (3/minute)", r)
	}
	out := e.Run("--json", "tick")
	if out.Code != 0 || out.Stderr != "" {
		t.Fatalf("paced tick: want exit 0 and nothing on stderr, got %s", out)
	}
	var r core.TickResult
	if err := json.Unmarshal([]byte(out.Stdout), &r); err != nil {
		t.Fatalf("tick output: %v\n%s", err, out)
	}
	if r.Processed != 0 || r.Sent != 0 || len(r.Problems) != 0 || r.Remaining != 7 {
		t.Fatalf("second tick %+v, want nothing claimed, no problem, 7 remaining", r)
	}
	if got := len(sink.Messages()); got != 3 {
		t.Fatalf("sink got %d messages, want 3", got)
	}
	queued := 0
	for _, rc := range dlvRecipients(t, e, id) {
		if rc.Status == "QUEUED" {
			queued++
			if rc.Attempts != 0 {
				t.Errorf("%s: %d attempts, want 0 (never claimed)", rc.Email, rc.Attempts)
			}
		}
	}
	if queued != 7 {
		t.Fatalf("%d QUEUED, want 7", queued)
	}

	var qs []core.QueueSummary
	e.MustJSON(&qs, "queue")
	if len(qs) != 1 || qs[0].Sender != "sink" || qs[0].Quota == nil || len(qs[0].Quota.Windows) != 2 {
		t.Fatalf("queue %+v, want the campaign with its sender's quota", qs)
	}
	minute, day := qs[0].Quota.Windows[0], qs[0].Quota.Windows[1]
	if minute.Rate != "3/minute" || minute.Remaining != 0 || minute.NextRefill == nil ||
		minute.NextRefill.Before(time.Now()) || minute.NextRefill.After(time.Now().Add(62*time.Second)) {
		t.Errorf("minute window %+v, want 0 left and a refill within the minute", minute)
	}
	if day.Rate != "500/day" || day.Used != 3 || day.Remaining != 497 {
		t.Errorf("day window %+v, want 3 used, 497 left", day)
	}
	human := e.Run("queue")
	if human.Code != 0 || !strings.Contains(human.Stdout, "sender quotas") || !regexp.MustCompile(`sink\s+3/minute\s+3\s+0\s+\d{4}-`).MatchString(human.Stdout) {
		t.Errorf("queue output lacks the quota line with the refill time:\n%s", human.Stdout)
	}
	var st struct {
		Quotas []core.QuotaStatus `json:"quotas"`
	}
	e.MustJSON(&st, "status")
	if len(st.Quotas) != 1 || st.Quotas[0].Sender != "sink" || st.Quotas[0].Windows[0].Remaining != 0 {
		t.Errorf("status quotas %+v", st.Quotas)
	}
	if s := e.Run("status"); !strings.Contains(s.Stdout, "quotas:") || !strings.Contains(s.Stdout, "500/day") {
		t.Errorf("status output lacks the quotas:\n%s", s.Stdout)
	}
	if c := e.Run("config", "check"); !strings.Contains(c.Stdout, "rate: 3/minute, 500/day") {
		t.Errorf("config check does not show the rate:\n%s", c)
	}

	// The daemon shares the window the standalone ticks spent: its tick
	// claims nothing, and its socket answers the same quota.
	e.StartDaemon()
	if r := runTick(t, e); r.Processed != 0 {
		t.Fatalf("tick through the daemon %+v, want nothing claimed (window spent by the cron ticks)", r)
	}
	qs = nil
	e.MustJSON(&qs, "queue")
	if len(qs) != 1 || qs[0].Quota == nil || qs[0].Quota.Windows[0].Remaining != 0 || qs[0].Quota.Windows[1].Used != 3 {
		t.Fatalf("queue through the daemon %+v", qs)
	}
	st.Quotas = nil
	e.MustJSON(&st, "status")
	if len(st.Quotas) != 1 || st.Quotas[0].Windows[1].Remaining != 497 {
		t.Errorf("status through the daemon: quotas %+v", st.Quotas)
	}
}

// A provider's daily-limit reply (Gmail's 550 5.4.5) is throttled, never
// FAILED: recipients stay QUEUED with no attempt burned, the sender is
// blocked (persisted: the next cron tick claims nothing for any campaign
// of it), and queue shows the block with the reply.
func TestSenderQuotaReplyBlocks(t *testing.T) {
	t.Parallel()
	sink := NewSink(t, smtptest.Fault{Stage: smtptest.Mail, Code: 550, Enhanced: "5.4.5",
		Text: "Daily user sending limit exceeded. For more information on Gmail sending limits go to https://support.google.com/a/answer/166852"})
	e := NewEnv(t, quotaTOML(sink, `["500/day"]`))
	rows := makeMailRows(5, "example.net")
	id := startSendingCampaign(t, e, mailRowsCSV(rows), "--sender", "sink", "--concurrency", "1")
	out := e.Run("--json", "tick")
	if out.Code != 0 || out.Stderr != "" {
		t.Fatalf("throttled tick: want exit 0 and nothing on stderr, got %s", out)
	}
	var r core.TickResult
	if err := json.Unmarshal([]byte(out.Stdout), &r); err != nil {
		t.Fatal(err)
	}
	if r.Throttled != 1 || r.Failed != 0 || r.Sent != 0 {
		t.Fatalf("tick %+v, want 1 throttled, nothing failed", r)
	}
	for _, rc := range dlvRecipients(t, e, id) {
		if rc.Status != "QUEUED" || rc.Attempts != 0 {
			t.Errorf("%s: %s with %d attempts, want QUEUED, none counted", rc.Email, rc.Status, rc.Attempts)
		}
	}
	// The provider would accept again; the block holds: a new campaign of
	// the same sender, due now, is not claimed.
	sink.SetFaults()
	other := startSendingCampaign(t, e, mailRowsCSV(makeMailRows(2, "example.com")), "--sender", "sink")
	if r := runTick(t, e); r.Processed != 0 {
		t.Fatalf("tick while blocked %+v, want nothing claimed", r)
	}
	for _, rc := range dlvRecipients(t, e, other) {
		if rc.Status != "QUEUED" || rc.Attempts != 0 {
			t.Errorf("%s: %s with %d attempts, want QUEUED, none counted", rc.Email, rc.Status, rc.Attempts)
		}
	}
	var qs []core.QueueSummary
	e.MustJSON(&qs, "queue")
	for _, q := range qs {
		if q.Quota == nil || q.Quota.BlockedUntil == nil || q.Quota.BlockedUntil.Before(time.Now().Add(23*time.Hour)) ||
			!strings.Contains(q.Quota.BlockedReason, "550 5.4.5") {
			t.Errorf("campaign %d: quota %+v, want blocked about a day by the 550 5.4.5", q.CampaignID, q.Quota)
		}
	}
	if human := e.Run("queue"); !strings.Contains(human.Stdout, "sink: blocked until") || !strings.Contains(human.Stdout, "Daily user sending limit exceeded") {
		t.Errorf("queue does not show the block:\n%s", human.Stdout)
	}
	if len(sink.Messages()) != 0 {
		t.Errorf("sink accepted %d messages", len(sink.Messages()))
	}
}

// An operator lifts a quota reply's block with `sender unblock` (the
// account's limit was raised): the next tick sends through the sender
// again, the messages the throttle held back included; standalone and
// through the daemon. Unblocking a sender that is not blocked is a quiet
// success; an unknown sender names the configured ones.
func TestSenderUnblock(t *testing.T) {
	t.Parallel()
	dailyLimit := smtptest.Fault{Stage: smtptest.Mail, Code: 550, Enhanced: "5.4.5", Text: "Daily user sending limit exceeded"}
	sink := NewSink(t, dailyLimit)
	e := NewEnv(t, quotaTOML(sink, `["500/day"]`))
	id := startSendingCampaign(t, e, mailRowsCSV(makeMailRows(4, "example.net")), "--sender", "sink", "--concurrency", "1")
	if r := runTick(t, e); r.Throttled != 1 || r.Sent != 0 {
		t.Fatalf("tick %+v, want 1 throttled", r)
	}
	sink.SetFaults()
	if r := runTick(t, e); r.Processed != 0 {
		t.Fatalf("tick while blocked %+v, want nothing claimed", r)
	}

	out := e.Run("sender", "unblock", "sink")
	if out.Code != 0 || out.Stderr != "" || !strings.Contains(out.Stdout, "unblocked sink (blocked until") ||
		!strings.Contains(out.Stdout, "550 5.4.5") || !strings.Contains(out.Stdout, "Daily user sending limit exceeded") ||
		!strings.Contains(out.Stdout, "4 waiting messages due now") {
		t.Fatalf("sender unblock: %s", out)
	}
	if r := runTick(t, e); r.Sent != 4 {
		t.Fatalf("tick after unblock %+v, want all 4 sent (the held-back ones due at once)", r)
	}
	for _, rc := range dlvRecipients(t, e, id) {
		if rc.Status != "SENT" {
			t.Errorf("%s: %s, want SENT", rc.Email, rc.Status)
		}
	}
	// Idempotent: nothing to lift is exit 0, a note on stderr, nothing on
	// stdout (--json: was_blocked false).
	if again := e.Run("sender", "unblock", "sink"); again.Code != 0 || again.Stdout != "" || !strings.Contains(again.Stderr, "sink is not blocked") {
		t.Errorf("sender unblock when not blocked: %s", again)
	}
	var u core.SenderUnblock
	e.MustJSON(&u, "sender", "unblock", "sink")
	if u.Sender != "sink" || u.WasBlocked || u.BlockedUntil != nil || u.Reason != "" || u.DueNow != 0 {
		t.Errorf("sender unblock --json when not blocked: %+v", u)
	}
	if bad := e.Run("sender", "unblock", "pigeon"); bad.Code != 1 || !strings.Contains(bad.Stderr, `"pigeon" is not configured`) ||
		!strings.Contains(bad.Stderr, "configured: outbox, sink") {
		t.Errorf("sender unblock of an unknown sender: %s", bad)
	}

	// Through the daemon: the same, in its own words.
	e.StartDaemon()
	sink.SetFaults(dailyLimit)
	other := startSendingCampaign(t, e, mailRowsCSV(makeMailRows(2, "example.com")), "--sender", "sink", "--concurrency", "1")
	if r := runTick(t, e); r.Throttled != 1 {
		t.Fatalf("tick through the daemon %+v, want 1 throttled", r)
	}
	sink.SetFaults()
	if r := runTick(t, e); r.Processed != 0 {
		t.Fatalf("tick through the daemon while blocked %+v, want nothing claimed", r)
	}
	u = core.SenderUnblock{}
	e.MustJSON(&u, "sender", "unblock", "sink")
	if u.Sender != "sink" || !u.WasBlocked || u.BlockedUntil == nil || u.BlockedUntil.Before(time.Now().Add(23*time.Hour)) ||
		!strings.Contains(u.Reason, "550 5.4.5") || u.DueNow != 2 {
		t.Fatalf("sender unblock --json through the daemon: %+v", u)
	}
	if r := runTick(t, e); r.Sent != 2 {
		t.Fatalf("tick through the daemon after unblock %+v, want both sent", r)
	}
	if st := dlvShow(t, e, other).Stats; st.Sent != 2 {
		t.Errorf("other campaign %+v, want 2 sent", st)
	}
	if bad := e.Run("sender", "unblock", "pigeon"); bad.Code != 1 || !strings.Contains(bad.Stderr, "configured: outbox, sink") {
		t.Errorf("sender unblock of an unknown sender through the daemon: %s", bad)
	}
	if got := len(sink.Messages()); got != 6 {
		t.Errorf("sink got %d messages, want 6", got)
	}
}
