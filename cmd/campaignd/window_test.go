package main_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
)

// TestSendWindowEndToEnd, standalone and through the daemon: a campaign
// whose send window is closed is executed, a tick sends nothing and exits
// 0 quietly, `queue` says when the window opens (human and --json), `show`
// shows the schedule; moving the window to one that is open lets the next
// tick send. A campaign past its --expires has its unsent recipients
// FAILED with class expired at the next tick (the tick record counts
// them) and completes; retry refuses until --expires is extended, then
// they are sent. Mistakes in the flags are refused at create, naming the
// flag.
func TestSendWindowEndToEnd(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"standalone", "daemon"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			sink := NewSink(t)
			e := NewEnv(t, fastRetry+sinkTOML("ok", sink))
			if mode == "daemon" {
				e.StartDaemon()
			}

			// Mistakes are caught at create, naming the flag.
			for _, c := range []struct {
				args []string
				want string
			}{
				{[]string{"--send-window", "Mon-Fry 09:00-17:00 UTC"}, `--send-window "Mon-Fry 09:00-17:00 UTC": days "Mon-Fry"`},
				{[]string{"--send-window", "Mon-Fri 09:00-17:00 Mars/Olympus"}, "not a known IANA time zone"},
				{[]string{"--expires", "2020-01-01 00:00"}, "--expires 2020-01-01T00:00:00Z is in the past"},
				{[]string{"--not-before", "2030-01-02 00:00", "--expires", "2030-01-01 00:00"}, "is not after --not-before"},
				{[]string{"--not-before", "next week"}, `--not-before "next week": want RFC 3339`},
			} {
				args := append([]string{"campaign", "create", "--name", "bad", "--from", "a@example.com", "--subject", "s", "--text", "t", "--sender", "ok"}, c.args...)
				if r := e.Run(args...); r.Code == 0 || !strings.Contains(r.Stderr, c.want) {
					t.Errorf("create %q: want a refusal with %q\n%s", c.args, c.want, r)
				}
			}

			// A window that opens in two hours: closed now.
			now := time.Now().UTC()
			opens := now.Add(2 * time.Hour).Truncate(time.Minute)
			window := fmt.Sprintf("daily %s-%s UTC", opens.Format("15:04"), opens.Add(time.Hour).Format("15:04"))
			id := startSendingCampaign(t, e, mailRowsCSV(makeMailRows(3, "window.example")), "--sender", "ok", "--send-window", window)
			ids := strconv.FormatInt(id, 10)
			wantQuiet(t, "a tick outside the window", e.Run("tick"))
			if n := len(sink.Messages()); n != 0 {
				t.Fatalf("a tick outside the window sent %d messages", n)
			}
			var qs []core.QueueSummary
			e.MustJSON(&qs, "queue")
			if len(qs) != 1 || qs[0].CampaignID != id || qs[0].Closed != "send_window" || qs[0].OpensAt == nil || !qs[0].OpensAt.Equal(opens) {
				t.Fatalf("queue --json: %+v, want campaign %d closed by its send window, opening %s", qs, id, opens)
			}
			if out := e.MustRun("queue"); !strings.Contains(out, "outside their schedule") ||
				!strings.Contains(out, opens.Local().Format("2006-01-02 15:04:05 MST")) || !strings.Contains(out, "send window") {
				t.Errorf("queue does not say when the window opens (%s):\n%s", opens.Local(), out)
			}
			if out := e.MustRun("campaign", "show", ids); !strings.Contains(out, "window:      "+window) ||
				!strings.Contains(out, "closed (send window), opens "+opens.Format(time.RFC3339)) {
				t.Errorf("show does not show the window:\n%s", out)
			}
			if c := dlvShow(t, e, id); c.SendWindow == nil || c.SendWindow.String() != window {
				t.Errorf("show --json: send_window %v, want %q", c.SendWindow, window)
			}

			// Open it: the next tick sends (a schedule edit of a SENDING campaign).
			e.MustRun("campaign", "edit", ids, "--send-window", "daily 00:00-24:00 UTC")
			wantQuiet(t, "a tick inside the window", e.Run("tick"))
			checkCompleted(t, e, id, 3, 3, 0, 0)
			e.MustRun("campaign", "edit", ids, "--send-window", "")
			if c := dlvShow(t, e, id); c.SendWindow != nil {
				t.Errorf("--send-window \"\" left %v", c.SendWindow)
			}

			// Expiry: 60 recipients, 50 sent by the first tick, then the
			// campaign's expiry is moved into the past.
			exp := strconv.FormatInt(startSendingCampaign(t, e, mailRowsCSV(makeMailRows(60, "expires.example")),
				"--sender", "ok", "--expires", now.Add(time.Hour).Format(time.RFC3339)), 10)
			expID, _ := strconv.ParseInt(exp, 10, 64)
			wantQuiet(t, "a tick before the expiry", e.Run("tick"))
			e.MustRun("campaign", "edit", exp, "--expires", time.Now().UTC().Add(-time.Second).Format("2006-01-02 15:04:05"))
			var q []core.QueueSummary
			e.MustJSON(&q, "queue")
			if len(q) != 1 || q[0].Closed != "expired" || q[0].OpensAt != nil {
				t.Errorf("queue of an expired campaign: %+v", q)
			}
			wantQuiet(t, "the expiring tick", e.Run("tick"))
			checkCompleted(t, e, expID, 60, 50, 10, 0)
			if ts := dlvTicks(t, e); len(ts) == 0 || ts[0].Expired != 10 {
				t.Errorf("tick record %+v, want 10 expired", ts)
			}
			var rep core.FailureReport
			e.MustJSON(&rep, "campaign", "failures", exp)
			if len(rep.Groups) != 1 || rep.Groups[0].Class != core.ClassExpired || rep.Groups[0].Count != 10 {
				t.Errorf("failures: %+v, want 10 of class expired", rep)
			}
			if r := e.Run("campaign", "retry", exp, "--class", "expired"); r.Code == 0 || !strings.Contains(r.Stderr, "--expires") {
				t.Errorf("retry of an expired campaign: want a refusal saying to extend --expires\n%s", r)
			}
			e.MustRun("campaign", "edit", exp, "--expires", now.Add(time.Hour).Format(time.RFC3339))
			var rr core.RetryResult
			e.MustJSON(&rr, "campaign", "retry", exp, "--class", "expired")
			if rr.Requeued != 10 {
				t.Fatalf("retry: %+v", rr)
			}
			wantQuiet(t, "the tick after the retry", e.Run("tick"))
			checkCompleted(t, e, expID, 60, 60, 0, 0)
			if n := len(sink.Messages()); n != 63 {
				t.Errorf("the sink received %d messages, want 63", n)
			}
		})
	}
}
