package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/plugins/smtp/smtptest"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// freeAddr is a loopback address nothing listens on (for a moment).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// progressCSV is n recipients u0..u(n-1)@example.com plus the extra rows.
func progressCSV(n int, extra ...string) string {
	var b strings.Builder
	b.WriteString("email,name\n")
	for i := range n {
		fmt.Fprintf(&b, "u%d@example.com,U %d\n", i, i)
	}
	for _, e := range extra {
		b.WriteString(e + ",X\n")
	}
	return b.String()
}

// progressOf reads `campaign stats --json`.
func progressOf(t *testing.T, e *Env, id int64) core.Progress {
	t.Helper()
	var p core.Progress
	e.MustJSON(&p, "campaign", "stats", strconv.FormatInt(id, 10))
	return p
}

// TestWatchFailuresMetricsThroughDaemon: the daemon sends a campaign to
// the SMTP fake, which rejects three addresses (552 mailbox full) and
// bounces one; `campaign watch` follows it to COMPLETED one line per
// change; stats carry percent done, rate, times and no ETA; failures
// group the rejections; retry --class --code sends that group again;
// executions carry the outcomes; /metrics, /healthz and /readyz answer
// on the admin listener; verify is clean (minute counts included).
func TestWatchFailuresMetricsThroughDaemon(t *testing.T) {
	const n = 200
	full := []string{"full1@example.net", "full2@example.net", "full3@example.net"}
	const gone = "gone@example.net"
	var faults []smtptest.Fault
	for _, a := range full {
		faults = append(faults, smtptest.Fault{Stage: smtptest.Rcpt, Rcpt: a, Code: 552, Enhanced: "5.2.2", Text: "mailbox " + a + " full"})
	}
	faults = append(faults, smtptest.Fault{Stage: smtptest.Rcpt, Rcpt: gone, Code: 550, Enhanced: "5.1.1", Text: "no such user"})
	sink := NewSink(t, faults...)
	addr := freeAddr(t)
	e := NewEnv(t, "tick_interval = \"50ms\"\n"+sinkTOML("mail", sink)+"\n[admin]\nlisten = \""+addr+"\"\n")
	d := e.StartDaemon()
	defer d.Stop()

	id := startSendingCampaign(t, e, progressCSV(n, append(full, gone)...), "--sender", "mail")
	ids := strconv.FormatInt(id, 10)
	r := e.RunWith(RunOpts{Timeout: 60 * time.Second}, "campaign", "watch", ids, "--interval", "100ms")
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if r.Code != 0 || len(lines) == 0 || !strings.Contains(lines[len(lines)-1], "COMPLETED 100.0%") ||
		!strings.Contains(lines[len(lines)-1], fmt.Sprintf("sent %d failed 3 bounced 1 left 0", n)) {
		t.Fatalf("watch: %s", r)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "campaign "+ids+" ") {
			t.Fatalf("watch line %q", l)
		}
	}

	p := progressOf(t, e, id)
	if p.Status != core.CampaignCompleted || p.PercentDone != 100 || p.ETASeconds != nil || p.SentLast5m != n ||
		p.RatePerMin <= 0 || p.StartedAt == nil || p.FinishedAt == nil || p.LastTickAt == nil || p.Sent != n ||
		len(p.RecentFailures) == 0 {
		t.Fatalf("stats: %+v", p)
	}
	var show map[string]any
	e.MustJSON(&show, "campaign", "show", ids)
	for _, k := range []string{"percent_done", "sent_last_5m", "rate_per_min", "eta_seconds", "started_at", "finished_at", "last_tick_at"} {
		if _, ok := show[k]; !ok {
			t.Errorf("show --json lacks %s: %v", k, show)
		}
	}
	if out := e.MustRun("campaign", "show", ids); !strings.Contains(out, "progress:    100.0% done") {
		t.Errorf("show: %s", out)
	}

	var rep core.FailureReport
	e.MustJSON(&rep, "campaign", "failures", ids)
	if rep.Failed != 3 || rep.Bounced != 1 || len(rep.Groups) != 2 {
		t.Fatalf("failures: %+v", rep)
	}
	if g := rep.Groups[0]; g.Count != 3 || g.Code != 552 || g.EnhancedCode != "5.2.2" || g.Status != core.RecipientFailed ||
		!strings.Contains(g.Text, "mailbox <address> full") || !strings.HasPrefix(g.Example, "full") {
		t.Fatalf("largest group: %+v", g)
	}
	if out := e.MustRun("campaign", "failures", ids); !strings.Contains(out, "3      FAILED") && !strings.Contains(out, "552") {
		t.Errorf("failures table: %s", out)
	}

	sink.SetFaults()
	var res core.RetryResult
	e.MustJSON(&res, "campaign", "retry", ids, "--class", "permanent", "--code", "554")
	if res.Requeued != 0 {
		t.Fatalf("retry of another code: %+v", res)
	}
	e.MustJSON(&res, "campaign", "retry", ids, "--class", "permanent", "--code", "552")
	if res.Requeued != 3 {
		t.Fatalf("retry of the group: %+v", res)
	}
	if r := e.RunWith(RunOpts{Timeout: 60 * time.Second}, "--json", "campaign", "watch", ids, "--interval", "50ms"); r.Code != 0 {
		t.Fatalf("watch --json: %s", r)
	} else {
		sc := bufio.NewScanner(strings.NewReader(r.Stdout))
		var last core.Progress
		for sc.Scan() {
			if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
				t.Fatalf("watch --json line %q: %v", sc.Text(), err)
			}
		}
		if last.Status != core.CampaignCompleted || last.Sent != n+3 || last.Bounced != 1 {
			t.Fatalf("watch --json ended at %+v", last)
		}
	}

	var xs []core.Execution
	e.MustJSON(&xs, "executions", ids)
	if len(xs) != 1 || xs[0].Queued != n+4 || xs[0].Sent != n+3 || xs[0].Bounced != 1 || xs[0].Failed != 0 ||
		xs[0].SuccessRate == nil || *xs[0].SuccessRate != 99.5 {
		t.Fatalf("executions: %+v", xs)
	}
	if out := e.MustRun("executions", ids); !strings.Contains(out, "SUCCESS") || !strings.Contains(out, "99.5%") {
		t.Errorf("executions table: %s", out)
	}

	base := "http://" + addr
	get := func(path string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	code, body := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	emails := map[string]float64{}
	for _, m := range fams["campaignd_emails_total"].GetMetric() {
		l := labels(m)
		if l["campaign"] == ids && l["sender"] == "mail" {
			emails[l["outcome"]] = m.GetCounter().GetValue()
		}
	}
	if emails["sent"] != n+3 || emails["failed"] != 3 || emails["bounced"] != 1 {
		t.Errorf("campaignd_emails_total: %v", emails)
	}
	for _, name := range []string{"campaignd_queue_recipients", "campaignd_tick_duration_seconds", "campaignd_last_tick_timestamp_seconds"} {
		if fams[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if code, body := get("/healthz"); code != 200 {
		t.Errorf("/healthz: %d %s", code, body)
	}
	if code, body := get("/readyz"); code != 200 || !strings.Contains(string(body), `"database":"ok"`) || !strings.Contains(string(body), `"sender mail":"ok"`) {
		t.Errorf("/readyz: %d %s", code, body)
	}
	e.MustRun("verify", ids)
}

// labels is a metric's label pairs.
func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// TestWatchStandalone: with no daemon, watch reads the database while
// cron-style ticks (separate processes) send, and ends when the campaign
// is PAUSED; before any outcome the ETA comes from the tick cadence.
func TestWatchStandalone(t *testing.T) {
	sink := NewSink(t)
	e := NewEnv(t, sinkTOML("mail", sink))
	id := startSendingCampaign(t, e, progressCSV(120), "--sender", "mail")
	ids := strconv.FormatInt(id, 10)
	if p := progressOf(t, e, id); p.ETASeconds == nil || p.ETABasis != "cadence" || *p.ETASeconds != 180 || p.PercentDone != 0 {
		t.Fatalf("before the first tick: %+v", p)
	}
	cmd := exec.Command(Bin(), "--config", e.Config, "campaign", "watch", ids, "--interval", "50ms")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	e.MustRun("tick")
	e.MustRun("tick")
	p := progressOf(t, e, id)
	if p.Sent != 100 || p.ETASeconds == nil || p.ETABasis != "rate" || p.RatePerMin <= 0 {
		t.Fatalf("after two ticks: %+v", p)
	}
	e.MustRun("campaign", "pause", ids)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("watch: %v\n%s", err, out.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("watch did not end at PAUSED:\n%s", out.String())
	}
	if s := out.String(); !strings.Contains(s, "SENDING") || !strings.Contains(s, "PAUSED 83.3%") {
		t.Fatalf("watch output:\n%s", s)
	}
}
