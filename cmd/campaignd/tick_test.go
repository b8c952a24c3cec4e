package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/plugins/smtp/smtptest"
)

// tickCounts is what a tick did, without its Remaining and Problems:
// comparable, so a test can want an exact answer.
type tickCounts struct {
	Processed, Sent, Failed, Retried, Throttled, Recovered, Completed int
	Skipped                                                           bool
}

func countsOf(r core.TickResult) tickCounts {
	return tickCounts{r.Processed, r.Sent, r.Failed, r.Retried, r.Throttled, r.Recovered, r.Completed, r.Skipped}
}

// tickAnyExit runs `campaignd --json tick args...`, which may meet
// sender-level problems: it requires exit 0 with no problems, or exit 3
// with problems each printed on a stderr line of its own, and returns the
// answer, its problems and the run.
func tickAnyExit(t *testing.T, e *Env, args ...string) (core.TickResult, []string, Result) {
	t.Helper()
	r := e.Run(append([]string{"--json", "tick"}, args...)...)
	var res core.TickResult
	if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil {
		t.Fatalf("tick answer: %v\n%s", err, r)
	}
	if res.Problems == nil {
		t.Fatalf("tick answer without a problems list:\n%s", r)
	}
	switch {
	case len(res.Problems) == 0 && r.Code != 0:
		t.Fatalf("tick without problems: want exit 0\n%s", r)
	case len(res.Problems) > 0 && r.Code != 3:
		t.Fatalf("tick with problems: want exit 3\n%s", r)
	}
	lines := strings.Split(r.Stderr, "\n")
	for _, p := range res.Problems {
		if !containsLine(lines, "campaignd: "+p) {
			t.Errorf("problem %q is not a stderr line of its own:\n%s", p, r.Stderr)
		}
	}
	return res, res.Problems, r
}

// tickProblems is tickAnyExit for a tick that must meet problems, each
// naming a campaign and one of them containing want.
func tickProblems(t *testing.T, e *Env, want string, args ...string) (core.TickResult, []string) {
	t.Helper()
	res, problems, r := tickAnyExit(t, e, args...)
	found := false
	for _, p := range problems {
		if !strings.HasPrefix(p, "campaign ") {
			t.Errorf("problem %q does not name its campaign", p)
		}
		found = found || strings.Contains(p, want)
	}
	if !found {
		t.Fatalf("no problem says %q:\n%s", want, r)
	}
	return res, problems
}

func containsLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

// wantQuiet checks a run that must print nothing and exit 0 (cron mails
// any output).
func wantQuiet(t *testing.T, what string, r Result) {
	t.Helper()
	if r.Code != 0 || r.Stdout != "" || r.Stderr != "" {
		t.Errorf("%s: want exit 0 and no output\n%s", what, r)
	}
}

// TestTickQuietSuccessLoudFailure: a tick that delivered, had nothing to
// do, or met only a recipient's rejection prints nothing and exits 0; a
// tick that met a sender-level problem (server refusing connections,
// every send failing transiently, a plugin that will not start, a
// misconfigured sender) prints one line per problem and exits 3, the
// same standalone and through the daemon, and the HTTP cron answer lists
// the problems with a 200; a tick that cannot run exits 1.
func TestTickQuietSuccessLoudFailure(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"standalone", "daemon"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			const cronSecret = "tick-e2e-cron-secret-0123456789"
			sink := NewSink(t, smtptest.Fault{Stage: smtptest.Rcpt, Rcpt: "user0003@ok.example", Code: 552, Enhanced: "5.2.2", Text: "mailbox full"})
			port := freePort(t)
			top := fastRetry
			if mode == "daemon" {
				top = fmt.Sprintf("[http]\nlisten = \"127.0.0.1:%d\"\ncron_secret = %q\n", port, cronSecret) + fastRetry
			}
			e := NewEnv(t, top+sinkTOML("ok", sink)+smtpSenderTOML("down", "127.0.0.1", closedPort(t))+
				"\n[senders.ghost]\nplugin = \"does-not-exist\"\n")
			if mode == "daemon" {
				e.StartDaemon()
			}

			// Delivered, one address refused: quiet.
			ok := startSendingCampaign(t, e, mailRowsCSV(makeMailRows(5, "ok.example")), "--sender", "ok")
			wantQuiet(t, "a tick that delivered", e.Run("tick"))
			checkCompleted(t, e, ok, 5, 4, 1, 0)
			wantQuiet(t, "an idle tick", e.Run("tick"))

			// The server refuses connections: loud, one line per problem,
			// the tick record keeps it.
			down := startSendingCampaign(t, e, mailRowsCSV(makeMailRows(3, "down.example")), "--sender", "down", "--concurrency", "1")
			r := e.Run("tick")
			want := fmt.Sprintf("campaignd: campaign %d: all 3 sends through sender down failed transiently", down)
			if r.Code != 3 || r.Stdout != "" || !strings.HasPrefix(r.Stderr, want) || strings.Count(r.Stderr, "campaignd: ") != 1 {
				t.Errorf("tick against a server refusing connections: want exit 3 and one line %q...\n%s", want, r)
			}
			if ts := dlvTicks(t, e); len(ts) == 0 || !strings.Contains(ts[0].Error, "failed transiently") {
				t.Errorf("tick record %+v does not keep the problem", ts)
			}
			time.Sleep(60 * time.Millisecond) // past retry_max
			res, _ := tickProblems(t, e, "refused")
			if res.Retried != 3 || res.Sent != 0 {
				t.Errorf("--json tick against a server refusing connections: %+v", res)
			}

			// A plugin that will not start, beside a healthy campaign.
			healthy := startSendingCampaign(t, e, mailRowsCSV(makeMailRows(2, "healthy.example")), "--sender", "ok")
			ghost := startSendingCampaign(t, e, mailRowsCSV(makeMailRows(2, "ghost.example")), "--sender", "ghost")
			time.Sleep(60 * time.Millisecond)
			res, problems := tickProblems(t, e, fmt.Sprintf("campaign %d", ghost))
			if res.Sent != 2 {
				t.Errorf("the healthy campaign beside a broken one: %+v", res)
			}
			for _, p := range problems {
				if strings.HasPrefix(p, fmt.Sprintf("campaign %d", healthy)) || strings.HasPrefix(p, fmt.Sprintf("campaign %d", ok)) {
					t.Errorf("a problem blames a healthy campaign: %q", p)
				}
			}
			e.MustRun("campaign", "cancel", strconv.FormatInt(down, 10))
			e.MustRun("campaign", "cancel", strconv.FormatInt(ghost, 10))

			// A crontab's typo in --campaign is loud too.
			if r := e.Run("tick", "--campaign", "999"); r.Code != 1 || !strings.Contains(r.Stderr, "campaign 999") {
				t.Errorf("tick of a campaign that does not exist: want exit 1 naming it\n%s", r)
			}
			if r := e.Run("tick", "--campaign", "x"); r.Code != 2 {
				t.Errorf("tick --campaign x: want exit 2 (usage)\n%s", r)
			}

			if mode == "standalone" {
				// A tick that cannot run at all is exit 1.
				bad := filepath.Join(e.Dir, "no-such-dir", "c.db")
				if r := e.Run("--db", bad, "tick"); r.Code != 1 || !strings.Contains(r.Stderr, "campaignd: ") {
					t.Errorf("tick on a database it cannot open: want exit 1\n%s", r)
				}
				return
			}

			// The HTTP cron answer: 200 either way, problems [] or listed.
			p := &publicClient{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port), c: &http.Client{Timeout: 30 * time.Second}}
			bearer := map[string]string{"Authorization": "Bearer " + cronSecret}
			var answer struct {
				Processed, Sent, Failed, Retried, Throttled int
				Remaining                                   int64
				Problems                                    []string
			}
			hr := p.do("POST", "/api/cron/process-email-queue", bearer, "")
			p.wantStatus("idle cron tick", hr, http.StatusOK)
			keys := p.decode("idle cron tick", hr, &answer)
			if got := strings.Join(keys, ","); got != "failed,problems,processed,remaining,retried,sent,skipped,throttled" ||
				answer.Problems == nil || len(answer.Problems) != 0 {
				t.Errorf("idle cron tick: keys %s, %s", got, hr.Body)
			}
			again := startSendingCampaign(t, e, mailRowsCSV(makeMailRows(60, "again.example")), "--sender", "down")
			hr = p.do("POST", "/api/cron/process-email-queue", bearer, "")
			p.wantStatus("cron tick with problems", hr, http.StatusOK)
			p.decode("cron tick with problems", hr, &answer)
			if answer.Processed != 50 || answer.Retried != 50 || answer.Remaining != 60 || len(answer.Problems) != 1 ||
				!strings.HasPrefix(answer.Problems[0], fmt.Sprintf("campaign %d: all 50 sends", again)) {
				t.Errorf("cron tick against a server refusing connections: %s", hr.Body)
			}
		})
	}
}

// TestTickCampaignSets: `tick --campaign ID` ticks only those campaigns;
// ticks of disjoint sets run at the same time, each with its own 50 cap,
// standalone and through the daemon; a tick whose set overlaps a running
// one is skipped (exit 0, quiet); a tick without --campaign leaves the
// running one's campaigns alone; no address gets a message twice and
// verify finds the database sound.
func TestTickCampaignSets(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"standalone", "daemon"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			// Every message takes 100 ms: campaign a, sent one at a time,
			// keeps its tick busy for 5 s; b and c, ten at a time, for 0.5 s.
			sink := NewSink(t, smtptest.Fault{Stage: smtptest.EndOfData, Stall: 100 * time.Millisecond})
			e := NewEnv(t, sinkTOML("sink", sink))
			if mode == "daemon" {
				e.StartDaemon()
			}
			rows := map[string][]mailRow{}
			ids := map[string]int64{}
			for _, name := range []string{"a", "b", "c"} {
				rows[name] = makeMailRows(60, name+".example")
				conc := "10"
				if name == "a" {
					conc = "1"
				}
				ids[name] = startSendingCampaign(t, e, mailRowsCSV(rows[name]), "--sender", "sink", "--concurrency", conc)
			}
			idArg := func(name string) string { return strconv.FormatInt(ids[name], 10) }
			sentTo := func(domain string) int {
				n := 0
				for _, m := range sink.Messages() {
					if strings.HasSuffix(m.To, "@"+domain) {
						n++
					}
				}
				return n
			}

			// A tick of {a} is in flight.
			var wg sync.WaitGroup
			var aRun Result
			var aDone time.Time
			wg.Add(1)
			go func() {
				defer wg.Done()
				aRun = e.Run("--json", "tick", "--campaign", idArg("a"))
				aDone = time.Now()
			}()
			deadline := time.Now().Add(30 * time.Second)
			for sentTo("a.example") == 0 {
				if time.Now().After(deadline) {
					t.Fatal("the tick of campaign a sent nothing in 30s")
				}
				time.Sleep(10 * time.Millisecond)
			}

			// Overlapping sets skip, quietly.
			wantQuiet(t, "a tick of a set overlapping a running one", e.Run("tick", "--campaign", idArg("c"), "--campaign", idArg("a")))
			if res, _, _ := tickAnyExit(t, e, "--campaign", idArg("a")); countsOf(res) != (tickCounts{Skipped: true}) {
				t.Errorf("a second tick of {a}: %+v, want skipped", res)
			}
			// A disjoint set runs meanwhile, with its own cap.
			bRes, _, r := tickAnyExit(t, e, "--campaign", idArg("b"))
			bDone := time.Now()
			if bRes.Sent != maxPerTick || bRes.Skipped || r.Stderr != "" {
				t.Errorf("tick of {b} beside a tick of {a}: %+v\n%s", bRes, r)
			}
			// No set: everything due but a, which another tick holds.
			free, _, _ := tickAnyExit(t, e)
			freeDone := time.Now()
			if free.Sent != maxPerTick || free.Skipped {
				t.Errorf("tick without --campaign beside a tick of {a}: %+v, want 50 of b and c", free)
			}

			wg.Wait()
			var aRes core.TickResult
			if err := json.Unmarshal([]byte(aRun.Stdout), &aRes); err != nil || aRun.Code != 0 || aRes.Sent != maxPerTick || aRes.Skipped {
				t.Errorf("tick of {a}: %+v %v\n%s", aRes, err, aRun)
			}
			if !aDone.After(bDone) || !aDone.After(freeDone) {
				t.Errorf("the ticks did not overlap: a ended %s, b %s, the free tick %s", aDone, bDone, freeDone)
			}
			if st := dlvShow(t, e, ids["a"]).Stats; st.Sent != maxPerTick || st.Queued != 10 {
				t.Errorf("campaign a after its tick: %+v: another tick touched it", st)
			}
			if got := sentTo("b.example") + sentTo("c.example"); got != 2*maxPerTick {
				t.Errorf("b and c got %d messages, want %d", got, 2*maxPerTick)
			}

			for i := 0; i < 10; i++ {
				if res, _, _ := tickAnyExit(t, e); res.Processed == 0 {
					break
				}
			}
			for _, id := range ids {
				checkCompleted(t, e, id, 60, 60, 0, 0)
			}
			got := sink.Received()
			for _, rs := range rows {
				for _, row := range rs {
					if got[row.Email] != 1 {
						t.Errorf("%s received %d messages, want 1", row.Email, got[row.Email])
					}
				}
			}
			if r := e.Run("verify"); r.Code != 0 {
				t.Errorf("verify after concurrent ticks:\n%s", r)
			}
		})
	}
}
