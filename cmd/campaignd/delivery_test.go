package main_test

// End-to-end delivery: the built campaignd and campaignd-sender-smtp run as
// separate processes against mailpit (a real SMTP server with an API) and
// against NewSink (plugins/smtp/smtptest: an in-process go-smtp server
// programmed with faults).

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/quotedprintable"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/plugins/smtp/smtptest"
)

// ---- helpers ----

// maxPerTick is the design's hard ceiling of emails per tick.
const maxPerTick = 50

// mailRow is one generated recipient.
type mailRow struct {
	Email, Name, City string
}

var rowCities = []string{"Paris", "Oslo", "Zürich", "Lima", "São Paulo", "Kyoto", "Accra"}

// makeMailRows returns n recipients user0000@<domain>... with names and rowCities;
// a few names need quoting or escaping.
func makeMailRows(n int, domain string) []mailRow {
	rows := make([]mailRow, n)
	for i := range rows {
		name := fmt.Sprintf("User %04d", i)
		switch i % 50 {
		case 7:
			name = fmt.Sprintf("Tom & Jerry %d", i)
		case 13:
			name = fmt.Sprintf("Zoë O'Brien %d", i)
		}
		rows[i] = mailRow{Email: fmt.Sprintf("user%04d@%s", i, domain), Name: name, City: rowCities[i%len(rowCities)]}
	}
	return rows
}

// mailRowsCSV renders rows as CSV with email, name and city columns.
func mailRowsCSV(rows []mailRow) string {
	var b strings.Builder
	b.WriteString("email,name,city\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "%s,%q,%q\n", r.Email, r.Name, r.City)
	}
	return b.String()
}

// The templates of the rendered campaigns, and what they give for a row.
const (
	subjectTpl = "Hello {{.Name}} from {{.Attr.city}}"
	textTpl    = "Dear {{.Name}},\nnews for {{.Attr.city}} ({{.Email}}).\n"
	htmlTpl    = "<p>Dear {{.Name}}, news for {{.Attr.city}}.</p>\n"
)

func wantSubject(r mailRow) string { return "Hello " + r.Name + " from " + r.City }
func wantText(r mailRow) string {
	return "Dear " + r.Name + ",\nnews for " + r.City + " (" + r.Email + ").\n"
}
func wantHTML(r mailRow) string {
	esc := strings.NewReplacer("&", "&amp;", "'", "&#39;", "<", "&lt;", ">", "&gt;", `"`, "&#34;")
	return "<p>Dear " + esc.Replace(r.Name) + ", news for " + esc.Replace(r.City) + ".</p>\n"
}

// startSendingCampaign creates a campaign (createArgs override MustCreateCampaign's
// defaults), imports csv, activates and executes it, and returns its id.
func startSendingCampaign(t *testing.T, e *Env, csv string, createArgs ...string) int64 {
	t.Helper()
	id := MustCreateCampaign(t, e, createArgs...)
	ids := strconv.FormatInt(id, 10)
	f := WriteFile(t, e.Dir, "recipients-"+ids+".csv", csv)
	var imp core.ImportResult
	e.MustJSON(&imp, "recipients", "import", ids, f)
	if want := int64(strings.Count(csv, "\n") - 1); imp.Added != want || imp.Invalid != 0 {
		t.Fatalf("import: added %d, invalid %d; want %d added", imp.Added, imp.Invalid, want)
	}
	e.MustRun("campaign", "activate", ids)
	var x core.ExecuteResult
	e.MustJSON(&x, "campaign", "execute", ids)
	if x.Queued != imp.Added {
		t.Fatalf("execute queued %d, want %d", x.Queued, imp.Added)
	}
	return id
}

func dlvShow(t *testing.T, e *Env, id int64) core.Campaign {
	t.Helper()
	var c core.Campaign
	e.MustJSON(&c, "campaign", "show", strconv.FormatInt(id, 10))
	return c
}

func dlvRecipients(t *testing.T, e *Env, id int64) map[string]core.Recipient {
	t.Helper()
	var rs []core.Recipient
	e.MustJSON(&rs, "recipients", "list", strconv.FormatInt(id, 10), "--limit", "100000")
	m := make(map[string]core.Recipient, len(rs))
	for _, r := range rs {
		m[r.Email] = r
	}
	return m
}

func dlvTicks(t *testing.T, e *Env) []core.TickRecord {
	t.Helper()
	var ts []core.TickRecord
	e.MustJSON(&ts, "ticks", "--limit", "10000")
	return ts
}

// runTick runs one `campaignd --json tick` (standalone, or through the daemon
// when one runs) and checks the per-tick ceiling.
func runTick(t *testing.T, e *Env) core.TickResult {
	t.Helper()
	var r core.TickResult
	e.MustJSON(&r, "tick")
	if r.Processed > maxPerTick || r.Sent > maxPerTick {
		t.Errorf("tick processed %d, sent %d: more than %d", r.Processed, r.Sent, maxPerTick)
	}
	return r
}

// wantDrained checks what a SIGTERM in the middle of sending leaves: the
// conc messages that reached the server are SENT after one attempt (the
// drain let them finish), every other recipient is QUEUED with no attempt
// counted and no error (handed back unsent).
func wantDrained(t *testing.T, e *Env, sink *smtptest.Server, id int64, rows []mailRow, conc int) {
	t.Helper()
	inFlight := map[string]bool{}
	for _, m := range sink.Messages() {
		inFlight[m.To] = true
	}
	if len(inFlight) != conc {
		t.Errorf("%d messages reached the server before the SIGTERM, want %d", len(inFlight), conc)
	}
	rs := dlvRecipients(t, e, id)
	for _, row := range rows {
		rc := rs[row.Email]
		switch {
		case inFlight[row.Email]:
			if rc.Status != "SENT" || rc.Attempts != 1 {
				t.Errorf("%s, in flight at the SIGTERM: %+v, want SENT after 1 attempt (the drain lets it finish)", row.Email, rc)
			}
		case rc.Status != "QUEUED" || rc.Attempts != 0 || rc.LastErrorClass != "":
			t.Errorf("%s, not started at the SIGTERM: %+v, want QUEUED with no attempt counted", row.Email, rc)
		}
	}
}

// tickUntilCompleted ticks (pausing between ticks) until the campaign is
// COMPLETED, at most maxTicks times, and returns the tick results.
func tickUntilCompleted(t *testing.T, e *Env, id int64, maxTicks int, pause time.Duration) []core.TickResult {
	t.Helper()
	var res []core.TickResult
	for i := 0; i < maxTicks; i++ {
		res = append(res, runTick(t, e))
		if c := dlvShow(t, e, id); c.Status == "COMPLETED" {
			return res
		}
		time.Sleep(pause)
	}
	c := dlvShow(t, e, id)
	t.Fatalf("campaign %d not COMPLETED after %d ticks: %s %+v\nticks: %+v", id, maxTicks, c.Status, c.Stats, res)
	return nil
}

// checkCompleted checks a campaign ended COMPLETED with exactly these counters
// and that none is lost: total == sent + failed + bounced.
func checkCompleted(t *testing.T, e *Env, id int64, total, sent, failed, bounced int64) {
	t.Helper()
	c := dlvShow(t, e, id)
	want := core.Stats{Total: total, Sent: sent, Failed: failed, Bounced: bounced}
	if c.Status != "COMPLETED" || c.Stats != want {
		t.Errorf("campaign %d: %s %+v, want COMPLETED %+v", id, c.Status, c.Stats, want)
	}
	if c.Stats.Total != c.Stats.Sent+c.Stats.Failed+c.Stats.Bounced {
		t.Errorf("campaign %d lost recipients: %+v", id, c.Stats)
	}
}

// bgProc is a campaignd process started without waiting for it.
type bgProc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
	err            error
}

// startBGProc starts campaignd --config e.Config args... in the background; it
// is killed at cleanup if still running.
func startBGProc(t *testing.T, e *Env, args ...string) *bgProc {
	t.Helper()
	b := &bgProc{done: make(chan struct{})}
	b.cmd = exec.Command(Bin(), append([]string{"--config", e.Config}, args...)...)
	b.cmd.Dir = e.Dir
	b.cmd.Env = append(os.Environ(), e.ExtraEnv...)
	b.cmd.Stdout, b.cmd.Stderr = &b.stdout, &b.stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start campaignd %s: %v", strings.Join(args, " "), err)
	}
	go func() { b.err = b.cmd.Wait(); close(b.done) }()
	t.Cleanup(func() {
		select {
		case <-b.done:
		default:
			_ = b.cmd.Process.Kill()
			<-b.done
		}
	})
	return b
}

// wait waits for the process (at most timeout) and returns its exit code.
func (b *bgProc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(timeout):
		_ = b.cmd.Process.Kill()
		<-b.done
		t.Fatalf("campaignd %s: still running after %s\nstderr:\n%s", strings.Join(b.cmd.Args[1:], " "), timeout, b.stderr.String())
	}
	return b.cmd.ProcessState.ExitCode()
}

// childProcs returns the pids of parent's child processes whose executable
// is named base, from /proc.
func childProcs(t *testing.T, parent int, base string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("read /proc: %v", err)
	}
	var pids []int
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parens.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(parent) {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv0, _, _ := strings.Cut(string(cmdline), "\x00")
		if filepath.Base(argv0) == base {
			pids = append(pids, pid)
		}
	}
	return pids
}

// ---- 1. mailpit: a whole campaign, rendered, once each ----

// mailpitCampaign runs the shared part of the mailpit tests: 300 recipients
// with rendered subject, text and HTML, sent by send until COMPLETED, then
// checks every delivery in mailpit and every tick record.
func mailpitCampaign(t *testing.T, daemonArgs []string, topTOML string, send func(t *testing.T, e *Env, id int64), wantTrigger core.TickTrigger) {
	mp := StartMailpit(t)
	e := NewEnv(t, topTOML+mp.SenderTOML("mp"))
	if daemonArgs != nil {
		e.StartDaemon(daemonArgs...)
	}
	const n = 300
	rows := makeMailRows(n, "example.org")
	id := startSendingCampaign(t, e, mailRowsCSV(rows), "--sender", "mp", "--from", "News <news@example.com>",
		"--subject", subjectTpl, "--text", textTpl, "--html", htmlTpl)

	send(t, e, id)
	checkCompleted(t, e, id, n, n, 0, 0)

	// Tick records: none above the ceiling, together they sent each once.
	totalSent, ticks := 0, 0
	for _, r := range dlvTicks(t, e) {
		if r.Processed > maxPerTick || r.Sent > maxPerTick {
			t.Errorf("tick %d (%s) processed %d, sent %d: more than %d", r.ID, r.Trigger, r.Processed, r.Sent, maxPerTick)
		}
		if r.Trigger != wantTrigger {
			t.Errorf("tick %d: trigger %q, want %q", r.ID, r.Trigger, wantTrigger)
		}
		if r.Error != "" || r.Failed != 0 || r.Retried != 0 {
			t.Errorf("tick %d: %+v", r.ID, r)
		}
		totalSent += r.Sent
		if r.Processed > 0 {
			ticks++
		}
	}
	if totalSent != n || ticks < n/maxPerTick {
		t.Errorf("tick records: %d sent in %d ticks, want %d in at least %d", totalSent, ticks, n, n/maxPerTick)
	}

	// mailpit: every recipient exactly once, rendered, own Message-ID.
	recips := dlvRecipients(t, e, id)
	byEmail := map[string]mailRow{}
	for _, r := range rows {
		byEmail[r.Email] = r
	}
	if got := mp.WaitCount(n, 10*time.Second); got != n {
		t.Fatalf("mailpit holds %d messages, want %d", got, n)
	}
	// One broken header would fail 300 times: report the first few.
	nerr := 0
	errorf := func(format string, args ...any) {
		t.Helper()
		if nerr++; nerr <= 20 {
			t.Errorf(format, args...)
		}
	}
	defer func() {
		if nerr > 20 {
			t.Errorf("... and %d more delivery errors", nerr-20)
		}
	}()
	sums := mp.Messages()
	msgs, hdrs := mp.Full(sums)
	seen := map[string]int{}
	ids := map[string]bool{}
	for i, m := range msgs {
		if len(m.To) != 1 {
			errorf("message %s: To %+v", m.ID, m.To)
			continue
		}
		addr := strings.ToLower(m.To[0].Address)
		seen[addr]++
		r, ok := byEmail[addr]
		if !ok {
			errorf("message %s to unknown %s", m.ID, addr)
			continue
		}
		rc := recips[addr]
		wantID := fmt.Sprintf("c%d.r%d@example.com", id, rc.ID)
		if m.MessageID != wantID {
			errorf("%s: Message-ID %q, want %q", addr, m.MessageID, wantID)
		}
		if h := hdrs[i]["Message-Id"]; len(h) != 1 || h[0] != "<"+wantID+">" {
			errorf("%s: Message-Id header %q, want <%s>", addr, h, wantID)
		}
		ids[m.MessageID] = true
		if m.To[0].Name != r.Name {
			errorf("%s: To name %q, want %q", addr, m.To[0].Name, r.Name)
		}
		if m.From.Address != "news@example.com" || m.From.Name != "News" {
			errorf("%s: From %+v", addr, m.From)
		}
		if m.Subject != wantSubject(r) {
			errorf("%s: subject %q, want %q", addr, m.Subject, wantSubject(r))
		}
		if got := strings.ReplaceAll(m.Text, "\r\n", "\n"); got != wantText(r) {
			errorf("%s: text %q, want %q", addr, got, wantText(r))
		}
		if got := strings.ReplaceAll(m.HTML, "\r\n", "\n"); got != wantHTML(r) {
			errorf("%s: html %q, want %q", addr, got, wantHTML(r))
		}
		if p := hdrs[i]["Precedence"]; len(p) != 1 || p[0] != "bulk" {
			errorf("%s: Precedence %q, want bulk", addr, p)
		}
		if lu, ok := hdrs[i]["List-Unsubscribe"]; ok || m.ListUnsubscribe.Header != "" {
			errorf("%s: List-Unsubscribe %q present, but no unsubscribe URL is configured", addr, lu)
		}
		if _, ok := hdrs[i]["List-Unsubscribe-Post"]; ok {
			errorf("%s: List-Unsubscribe-Post present, but no unsubscribe URL is configured", addr)
		}
		if rc.Status != "SENT" || rc.Attempts != 1 || rc.ProviderID == "" {
			errorf("%s: recipient %+v, want SENT after 1 attempt with a provider id", addr, rc)
		}
	}
	for _, r := range rows {
		if seen[r.Email] != 1 {
			errorf("%s arrived %d times, want once", r.Email, seen[r.Email])
		}
	}
	if len(ids) != n {
		t.Errorf("%d distinct Message-IDs, want %d", len(ids), n)
	}
}

// TestMailpitStandaloneTicks sends 300 recipients by repeated standalone
// `campaignd tick` runs, as cron would.
func TestMailpitStandaloneTicks(t *testing.T) {
	t.Parallel()
	mailpitCampaign(t, nil, "", func(t *testing.T, e *Env, id int64) {
		res := tickUntilCompleted(t, e, id, 20, 0)
		if len(res) < 6 {
			t.Errorf("300 recipients completed in %d ticks; at most 50 per tick needs 6", len(res))
		}
		for i, r := range res {
			if r.Skipped || r.Failed != 0 || r.Sent != r.Processed {
				t.Errorf("tick %d: %+v", i, r)
			}
		}
		// An idle tick afterwards does nothing.
		if r := runTick(t, e); countsOf(r) != (tickCounts{}) {
			t.Errorf("idle tick: %+v, want all zero", r)
		}
	}, "cli")
}

// TestMailpitDaemonSocketTicks sends through a running daemon, each
// `campaignd tick` going over its control socket.
func TestMailpitDaemonSocketTicks(t *testing.T) {
	t.Parallel()
	mailpitCampaign(t, []string{}, "", func(t *testing.T, e *Env, id int64) {
		res := tickUntilCompleted(t, e, id, 20, 0)
		if len(res) < 6 {
			t.Errorf("300 recipients completed in %d ticks; at most 50 per tick needs 6", len(res))
		}
	}, "socket")
}

// TestMailpitDaemonScheduler lets the daemon's own tick_interval send.
func TestMailpitDaemonScheduler(t *testing.T) {
	t.Parallel()
	mailpitCampaign(t, []string{}, "tick_interval = \"150ms\"\n", func(t *testing.T, e *Env, id int64) {
		deadline := time.Now().Add(60 * time.Second)
		for {
			c := dlvShow(t, e, id)
			if c.Status == "COMPLETED" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("campaign not COMPLETED by the scheduler after 60s: %s %+v", c.Status, c.Stats)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}, "scheduler")
}

// ---- 2. faults, with the programmable sink ----

// fastRetry makes a transient failure due again on the next tick.
const fastRetry = "[queue]\nretry_base = \"10ms\"\nretry_max = \"50ms\"\n"

// TestSMTPFaultOutcomes: 4xx then success is SENT after a retry, and so is
// a connection the server dropped; a 5xx is FAILED with its code and text;
// 550 5.1.1 is BOUNCED and suppressed.
func TestSMTPFaultOutcomes(t *testing.T) {
	t.Parallel()
	const (
		soft   = "soft@example.net"
		drop   = "drop@example.net"
		hard   = "hard@example.net"
		gone   = "gone@example.net"
		okA    = "ok-a@example.net"
		okB    = "ok-b@example.net"
		hardTx = "message content rejected by policy"
	)
	sink := NewSink(t,
		smtptest.Fault{Stage: smtptest.Rcpt, Rcpt: soft, Times: 1, Code: 451, Enhanced: "4.3.0", Text: "mailbox busy, come back later"},
		smtptest.Fault{Stage: smtptest.Rcpt, Rcpt: drop, Times: 1, Drop: true},
		smtptest.Fault{Stage: smtptest.EndOfData, Rcpt: hard, Code: 554, Enhanced: "5.6.0", Text: hardTx},
		smtptest.Fault{Stage: smtptest.Rcpt, Rcpt: gone, Code: 550, Enhanced: "5.1.1", Text: "no such user here"},
	)
	e := NewEnv(t, fastRetry+sinkTOML("sink", sink))
	csv := "email,name\n" + soft + ",Soft\n" + hard + ",Hard\n" + gone + ",Gone\n" + okA + ",A\n" + okB + ",B\n" + drop + ",Drop\n"
	id := startSendingCampaign(t, e, csv, "--sender", "sink")

	first := runTick(t, e)
	if want := (tickCounts{Processed: 6, Sent: 2, Failed: 2, Retried: 2}); countsOf(first) != want {
		t.Errorf("first tick: %+v, want %+v", first, want)
	}
	rs := dlvRecipients(t, e, id)
	if r := rs[soft]; r.Status != "QUEUED" || r.Attempts != 1 || r.LastErrorClass != "transient" || r.LastErrorCode != 451 ||
		r.LastEnhancedCode != "4.3.0" || !strings.Contains(r.LastError, "come back later") {
		t.Errorf("after a 451: %+v, want QUEUED, 1 attempt, transient 451 4.3.0", r)
	}
	if r := rs[drop]; r.Status != "QUEUED" || r.Attempts != 1 || r.LastErrorClass != "transient" {
		t.Errorf("after a dropped connection: %+v, want QUEUED, 1 attempt, transient", r)
	}
	if r := rs[hard]; r.Status != "FAILED" || r.LastErrorClass != "permanent" || r.LastErrorCode != 554 ||
		r.LastEnhancedCode != "5.6.0" || !strings.Contains(r.LastError, hardTx) {
		t.Errorf("after a 554: %+v, want FAILED permanent 554 5.6.0 %q", r, hardTx)
	}
	if r := rs[gone]; r.Status != "BOUNCED" || r.LastErrorClass != "bounced" || r.LastErrorCode != 550 ||
		r.LastEnhancedCode != "5.1.1" || !strings.Contains(r.LastError, "no such user") {
		t.Errorf("after a 550 5.1.1: %+v, want BOUNCED 550 5.1.1", r)
	}

	time.Sleep(30 * time.Millisecond) // the retry's backoff is at most 10ms
	res := tickUntilCompleted(t, e, id, 10, 20*time.Millisecond)
	if res[0].Sent != 2 || res[0].Processed != 2 {
		t.Errorf("retry tick: %+v, want the two retried recipients sent", res[0])
	}
	rs = dlvRecipients(t, e, id)
	for _, a := range []string{soft, drop} {
		if r := rs[a]; r.Status != "SENT" || r.Attempts != 2 {
			t.Errorf("%s after the retry: %+v, want SENT after 2 attempts", a, r)
		}
	}
	for _, a := range []string{okA, okB} {
		if r := rs[a]; r.Status != "SENT" || r.Attempts != 1 {
			t.Errorf("%s: %+v, want SENT after 1 attempt", a, r)
		}
	}
	checkCompleted(t, e, id, 6, 4, 1, 1)

	got := sink.Received()
	for addr, want := range map[string]int{soft: 1, drop: 1, okA: 1, okB: 1, hard: 0, gone: 0} {
		if got[addr] != want {
			t.Errorf("sink got %d messages for %s, want %d", got[addr], addr, want)
		}
	}
	if n := sink.RcptAttempts(soft); n != 2 {
		t.Errorf("RCPT TO %s tried %d times, want 2", soft, n)
	}

	var sup []core.Suppression
	e.MustJSON(&sup, "suppress", "list")
	if len(sup) != 1 || sup[0].Email != gone || sup[0].Source != "bounce" || !strings.Contains(sup[0].Reason, "5.1.1") {
		t.Errorf("suppression list %+v, want only %s from a bounce with 5.1.1", sup, gone)
	}
	// A suppressed address is not added again.
	var add core.ImportResult
	other := MustCreateCampaign(t, e, "--sender", "sink")
	e.MustJSON(&add, "recipients", "add", strconv.FormatInt(other, 10), gone)
	if add.Added != 0 || add.Suppressed != 1 {
		t.Errorf("adding a bounced address to another campaign: %+v, want suppressed", add)
	}
}

// TestSMTPThrottled: a 421 or 454 is not a failure, costs no attempt, and
// hands the rest of the tick's batch back unsent.
func TestSMTPThrottled(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code     int
		enhanced string
		text     string
	}{
		{421, "4.7.0", "too busy, closing connection"},
		{454, "4.7.0", "temporary service failure"},
	} {
		t.Run(strconv.Itoa(tc.code), func(t *testing.T) {
			t.Parallel()
			sink := NewSink(t, smtptest.Fault{Stage: smtptest.Rcpt, Times: 1, Code: tc.code, Enhanced: tc.enhanced, Text: tc.text})
			e := NewEnv(t, fastRetry+"throttle_delay = \"3s\"\n"+sinkTOML("sink", sink))
			const n = 8
			rows := makeMailRows(n, "example.net")
			id := startSendingCampaign(t, e, mailRowsCSV(rows), "--sender", "sink", "--concurrency", "1")

			before := time.Now()
			// Run as cron runs it: a throttle is routine, so the tick
			// prints nothing at the default log level.
			out := e.Run("--json", "tick")
			if out.Code != 0 || out.Stderr != "" {
				t.Errorf("throttled tick: want exit 0 and nothing on stderr, got %s", out)
			}
			var r core.TickResult
			if err := json.Unmarshal([]byte(out.Stdout), &r); err != nil {
				t.Fatalf("tick output: %v\n%s", err, out)
			}
			if want := (tickCounts{Processed: n, Throttled: 1}); countsOf(r) != want {
				t.Errorf("throttled tick: %+v, want %+v", r, want)
			}
			ts := dlvTicks(t, e)
			if len(ts) != 1 || ts[0].Throttled != 1 || ts[0].Skipped != n-1 || ts[0].Sent != 0 {
				t.Errorf("tick records %+v, want one with 1 throttled and %d handed back", ts, n-1)
			}
			rs := dlvRecipients(t, e, id)
			throttled := 0
			for _, row := range rows {
				rc := rs[row.Email]
				if rc.Status != "QUEUED" || rc.Attempts != 0 {
					t.Errorf("%s: %s after %d attempts, want QUEUED with no attempt counted", row.Email, rc.Status, rc.Attempts)
				}
				if rc.NextAttemptAt == nil || rc.NextAttemptAt.Before(before.Add(2*time.Second)) {
					t.Errorf("%s: next attempt %v, want about 3s after the throttle", row.Email, rc.NextAttemptAt)
				}
				if rc.LastErrorClass != "" {
					throttled++
					if rc.LastErrorClass != "throttled" || rc.LastErrorCode != tc.code || !strings.Contains(rc.LastError, tc.text) {
						t.Errorf("%s: %+v, want throttled %d %q", row.Email, rc, tc.code, tc.text)
					}
				}
			}
			if throttled != 1 {
				t.Errorf("%d recipients carry an error, want only the throttled one", throttled)
			}
			if len(sink.Messages()) != 0 {
				t.Errorf("sink received %d messages during the throttled tick", len(sink.Messages()))
			}
			// The sender is left alone until the provider's delay has passed.
			if r := runTick(t, e); r.Processed != 0 {
				t.Errorf("tick right after the throttle: %+v, want nothing due", r)
			}
			time.Sleep(time.Until(before.Add(3200 * time.Millisecond)))
			tickUntilCompleted(t, e, id, 10, 50*time.Millisecond)
			checkCompleted(t, e, id, n, n, 0, 0)
			for _, row := range rows {
				if rc := dlvRecipients(t, e, id)[row.Email]; rc.Attempts != 1 {
					t.Errorf("%s: %d attempts, want 1 (the throttle not counted)", row.Email, rc.Attempts)
				}
			}
			for _, row := range rows {
				if got := sink.Received()[row.Email]; got != 1 {
					t.Errorf("%s received %d times, want once", row.Email, got)
				}
			}
		})
	}
}

// TestSMTPServerDown: connection refused is transient: retried, not
// failed, until max_attempts, then FAILED with class transient.
func TestSMTPServerDown(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, fastRetry+"max_attempts = 3\n"+smtpSenderTOML("down", "127.0.0.1", closedPort(t)))
	rows := makeMailRows(3, "example.net")
	id := startSendingCampaign(t, e, mailRowsCSV(rows), "--sender", "down")
	for attempt := 1; attempt <= 3; attempt++ {
		r, _ := tickProblems(t, e, "failed transiently") // exit 3: cron must hear
		rs := dlvRecipients(t, e, id)
		for _, row := range rows {
			rc := rs[row.Email]
			if rc.Attempts != attempt || rc.LastErrorClass != "transient" || !strings.Contains(rc.LastError, "refused") {
				t.Errorf("attempt %d: %s: %+v, want %d attempts, transient connection refused", attempt, row.Email, rc, attempt)
			}
			want := core.RecipientQueued
			if attempt == 3 {
				want = core.RecipientFailed
			}
			if rc.Status != want {
				t.Errorf("attempt %d: %s is %s, want %s", attempt, row.Email, rc.Status, want)
			}
		}
		if attempt < 3 && (r.Processed != 3 || r.Retried != 3 || r.Failed != 0) {
			t.Errorf("attempt %d: tick %+v, want 3 retried", attempt, r)
		}
		if attempt == 3 && (r.Processed != 3 || r.Failed != 3 || r.Completed != 1) {
			t.Errorf("last attempt: tick %+v, want 3 failed and the campaign completed", r)
		}
		time.Sleep(60 * time.Millisecond) // past retry_max
	}
	checkCompleted(t, e, id, 3, 0, 3, 0)
}

// TestPluginKilledMidBatch: kill -9 of the daemon's SMTP plugin while it
// has sends in flight costs those sends a transient failure; the daemon
// keeps answering, restarts the plugin, and a later tick sends them.
func TestPluginKilledMidBatch(t *testing.T) {
	t.Parallel()
	const conc = 5
	sink := NewSink(t, smtptest.Fault{Stage: smtptest.EndOfData, Times: conc, Stall: 30 * time.Second})
	e := NewEnv(t, fastRetry+sinkTOML("sink", sink))
	d := e.StartDaemon()
	const n = 10
	rows := makeMailRows(n, "example.net")
	id := startSendingCampaign(t, e, mailRowsCSV(rows), "--sender", "sink", "--concurrency", strconv.Itoa(conc))

	tk := startBGProc(t, e, "--json", "tick")
	waitStalling(t, sink, conc, 20*time.Second)
	plugins := childProcs(t, d.Cmd.Process.Pid, "campaignd-sender-smtp")
	if len(plugins) != 1 {
		t.Fatalf("daemon %d has plugin children %v, want one campaignd-sender-smtp", d.Cmd.Process.Pid, plugins)
	}
	if err := syscall.Kill(plugins[0], syscall.SIGKILL); err != nil {
		t.Fatalf("kill plugin: %v", err)
	}
	if code := tk.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("tick through the daemon: exit %d\n%s", code, tk.stderr.String())
	}
	var r core.TickResult
	if err := json.Unmarshal(tk.stdout.Bytes(), &r); err != nil {
		t.Fatalf("tick answer %q: %v", tk.stdout.String(), err)
	}
	if r.Processed != n || r.Failed != 0 || r.Retried != conc || r.Sent != n-conc {
		t.Errorf("tick with the plugin killed: %+v, want %d sent and the %d in flight retried", r, n-conc, conc)
	}
	if d.Exited() {
		t.Fatalf("daemon died with its plugin:\n%s", d.Stderr())
	}
	if c := dlvShow(t, e, id); c.Stats.Sent != int64(n-conc) || c.Stats.Queued != conc {
		t.Errorf("after the crash: %+v, want %d sent and %d queued again", c.Stats, n-conc, conc)
	}
	stalled := map[string]bool{}
	for _, m := range sink.Messages() {
		if m.Committed {
			stalled[m.To] = true
		}
	}
	rs := dlvRecipients(t, e, id)
	for addr := range stalled {
		if rc := rs[addr]; rc.Status != "QUEUED" || rc.LastErrorClass != "transient" {
			t.Errorf("in flight when the plugin died: %s: %+v, want QUEUED transient", addr, rc)
		}
	}

	time.Sleep(60 * time.Millisecond)
	tickUntilCompleted(t, e, id, 10, 50*time.Millisecond)
	checkCompleted(t, e, id, n, n, 0, 0)
	if again := childProcs(t, d.Cmd.Process.Pid, "campaignd-sender-smtp"); len(again) != 1 || again[0] == plugins[0] {
		t.Errorf("plugin children after the restart: %v (killed %d)", again, plugins[0])
	}
	rs = dlvRecipients(t, e, id)
	for addr := range stalled {
		if rc := rs[addr]; rc.Status != "SENT" || rc.Attempts != 2 {
			t.Errorf("%s: %+v, want SENT on the second attempt", addr, rc)
		}
	}
	checkDuplicates(t, sink, rows, stalled, conc)
}

// checkDuplicates checks every row arrived, only the addresses in inFlight
// arrived twice, never more, each copy with the same Message-ID, and at
// most bound of them.
func checkDuplicates(t *testing.T, sink *smtptest.Server, rows []mailRow, inFlight map[string]bool, bound int) {
	t.Helper()
	ids := map[string]map[string]bool{}
	for _, m := range sink.Messages() {
		if ids[m.To] == nil {
			ids[m.To] = map[string]bool{}
		}
		ids[m.To][m.MessageID] = true
	}
	got := sink.Received()
	dups := 0
	for _, r := range rows {
		switch n := got[r.Email]; {
		case n == 1:
		case n == 2 && inFlight[r.Email]:
			dups++
		default:
			t.Errorf("%s arrived %d times (in flight at the crash: %v)", r.Email, n, inFlight[r.Email])
		}
		if len(ids[r.Email]) != 1 {
			t.Errorf("%s arrived with Message-IDs %v, want one", r.Email, ids[r.Email])
		}
	}
	if dups > bound {
		t.Errorf("%d duplicates, more than the concurrency %d", dups, bound)
	}
}

// ---- 3. overlap ----

// TestOverlappingTicks: several standalone ticks started at once against
// one database: one sends, the others are skipped and exit 0, and no
// address receives a message twice.
func TestOverlappingTicks(t *testing.T) {
	t.Parallel()
	sink := NewSink(t, smtptest.Fault{Stage: smtptest.EndOfData, Stall: 20 * time.Millisecond})
	e := NewEnv(t, sinkTOML("sink", sink))
	const n, procs = 120, 5
	rows := makeMailRows(n, "example.net")
	id := startSendingCampaign(t, e, mailRowsCSV(rows), "--sender", "sink")

	sent, skipped := 0, 0
	for round := 0; round < 20; round++ {
		var wg sync.WaitGroup
		results := make([]Result, procs)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = e.Run("--json", "tick")
			}()
		}
		wg.Wait()
		ran := 0
		for _, res := range results {
			if res.Code != 0 {
				t.Fatalf("overlapping tick: %s", res)
			}
			var r core.TickResult
			if err := json.Unmarshal([]byte(res.Stdout), &r); err != nil {
				t.Fatalf("tick answer %q: %v", res.Stdout, err)
			}
			if r.Skipped {
				skipped++
				if countsOf(r) != (tickCounts{Skipped: true}) {
					t.Errorf("skipped tick did something: %+v", r)
				}
				continue
			}
			ran++
			if r.Processed > maxPerTick {
				t.Errorf("tick processed %d, more than %d", r.Processed, maxPerTick)
			}
			sent += r.Sent
		}
		if ran == 0 {
			t.Errorf("round %d: every tick skipped", round)
		}
		if dlvShow(t, e, id).Status == "COMPLETED" {
			break
		}
	}
	if skipped == 0 {
		t.Errorf("no tick was skipped: the ticks did not overlap")
	}
	if sent != n {
		t.Errorf("ticks sent %d in total, want %d", sent, n)
	}
	checkCompleted(t, e, id, n, n, 0, 0)
	got := sink.Received()
	for _, r := range rows {
		if got[r.Email] != 1 {
			t.Errorf("%s received %d times, want once", r.Email, got[r.Email])
		}
	}
	if len(sink.Messages()) != n {
		t.Errorf("sink received %d messages, want %d", len(sink.Messages()), n)
	}
}

// ---- 4. crash ----

// TestTickKilledMidBatch: kill -9 of a standalone tick with sends in
// flight; later ticks recover the expired leases by policy. resend: every
// recipient ends SENT, the in-flight ones possibly twice with the same
// Message-ID; hold: the in-flight ones end FAILED in_doubt. None is lost.
func TestTickKilledMidBatch(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{"resend", "hold"} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			const conc, n = 5, 20
			sink := NewSink(t, smtptest.Fault{Stage: smtptest.EndOfData, Times: conc, Stall: 30 * time.Second})
			e := NewEnv(t, fastRetry+"tick_timeout = \"2s\"\nlease_margin = \"0s\"\nin_doubt = \""+policy+"\"\n"+sinkTOML("sink", sink))
			rows := makeMailRows(n, "example.net")
			// One batch is exactly what is in flight: all its leases are in doubt.
			id := startSendingCampaign(t, e, mailRowsCSV(rows), "--sender", "sink",
				"--concurrency", strconv.Itoa(conc), "--batch-size", strconv.Itoa(conc))

			tk := startBGProc(t, e, "tick")
			waitStalling(t, sink, conc, 20*time.Second)
			if err := tk.cmd.Process.Kill(); err != nil {
				t.Fatalf("kill tick: %v", err)
			}
			tk.wait(t, 10*time.Second)
			inFlight := map[string]bool{}
			for _, m := range sink.Messages() {
				inFlight[m.To] = true
			}
			if len(inFlight) != conc {
				t.Fatalf("%d messages in flight at the kill, want %d", len(inFlight), conc)
			}
			if c := dlvShow(t, e, id); c.Stats.Sending != conc {
				t.Errorf("after the kill: %+v, want %d SENDING under a lease", c.Stats, conc)
			}

			tickUntilCompleted(t, e, id, 60, 100*time.Millisecond)
			recovered := 0
			for _, r := range dlvTicks(t, e) {
				recovered += r.Recovered
			}
			if recovered != conc {
				t.Errorf("ticks recovered %d leases, want %d", recovered, conc)
			}
			rs := dlvRecipients(t, e, id)
			switch policy {
			case "resend":
				checkCompleted(t, e, id, n, n, 0, 0)
				for addr := range inFlight {
					if rc := rs[addr]; rc.Status != "SENT" || rc.Attempts != 2 {
						t.Errorf("%s: %+v, want SENT on the second attempt", addr, rc)
					}
				}
				checkDuplicates(t, sink, rows, inFlight, conc)
			case "hold":
				checkCompleted(t, e, id, n, n-conc, conc, 0)
				for _, r := range rows {
					rc := rs[r.Email]
					switch {
					case inFlight[r.Email]:
						if rc.Status != "FAILED" || rc.LastErrorClass != "in_doubt" {
							t.Errorf("%s in flight at the crash: %+v, want FAILED in_doubt", r.Email, rc)
						}
					case rc.Status != "SENT" || rc.Attempts != 1:
						t.Errorf("%s: %+v, want SENT after 1 attempt", r.Email, rc)
					}
				}
				got := sink.Received()
				for _, r := range rows {
					if got[r.Email] != 1 {
						t.Errorf("%s received %d times, want once (hold never resends)", r.Email, got[r.Email])
					}
				}
				// The operator can list and retry them.
				var failed []core.Recipient
				e.MustJSON(&failed, "recipients", "list", strconv.FormatInt(id, 10), "--status", "FAILED")
				if len(failed) != conc {
					t.Errorf("FAILED listing has %d recipients, want %d", len(failed), conc)
				}
			}
		})
	}
}

// ---- 5. template failure ----

// TestTemplateFailureOneRecipient: a recipient whose data breaks the
// template (a CR carried into the subject) is FAILED class template; the
// rest is sent. (A missing attribute is refused at activate: see
// TestTemplateMissingAttrs.)
func TestTemplateFailureOneRecipient(t *testing.T) {
	t.Parallel()
	sink := NewSink(t)
	e := NewEnv(t, sinkTOML("sink", sink))
	rows := makeMailRows(6, "example.net")
	broken := rows[3].Email
	rows[3].City = "Oslo\rBcc: evil@example.net"
	csv := strings.Replace(mailRowsCSV(rows), `Oslo\rBcc`, "Oslo\rBcc", 1)
	id := startSendingCampaign(t, e, csv, "--sender", "sink", "--subject", subjectTpl, "--text", textTpl)

	r := runTick(t, e)
	if want := (tickCounts{Processed: 6, Sent: 5, Failed: 1, Completed: 1}); countsOf(r) != want {
		t.Errorf("tick: %+v, want %+v", r, want)
	}
	checkCompleted(t, e, id, 6, 5, 1, 0)
	rs := dlvRecipients(t, e, id)
	if rc := rs[broken]; rc.Status != "FAILED" || rc.LastErrorClass != "template" || !strings.Contains(rc.LastError, "CR, LF") {
		t.Errorf("%s: %+v, want FAILED template naming the CR", broken, rc)
	}
	got := sink.Received()
	for _, row := range rows {
		want := 1
		if row.Email == broken {
			want = 0
		}
		if got[row.Email] != want {
			t.Errorf("%s received %d times, want %d", row.Email, got[row.Email], want)
		}
	}
	for _, m := range sink.Messages() {
		for _, row := range rows {
			if row.Email == m.To && m.Subject != wantSubject(row) {
				t.Errorf("%s: subject %q, want %q", m.To, m.Subject, wantSubject(row))
			}
		}
	}
}

// ---- the budget across campaigns ----

// TestBudgetSharedAcrossCampaigns: one tick sends at most 50 across all
// due campaigns, shared fairly, each campaign capped by its batch size.
func TestBudgetSharedAcrossCampaigns(t *testing.T) {
	t.Parallel()
	sink := NewSink(t)
	e := NewEnv(t, sinkTOML("sink", sink))
	const n = 40
	var ids []int64
	for i, batch := range []string{"10", "50", "50"} {
		rows := makeMailRows(n, fmt.Sprintf("c%d.example.net", i))
		ids = append(ids, startSendingCampaign(t, e, mailRowsCSV(rows), "--sender", "sink", "--batch-size", batch))
	}
	sentBy := func() []int64 {
		var s []int64
		for _, id := range ids {
			s = append(s, dlvShow(t, e, id).Stats.Sent)
		}
		return s
	}
	if r := runTick(t, e); r.Processed != maxPerTick || r.Sent != maxPerTick {
		t.Errorf("first tick: %+v, want %d sent", r, maxPerTick)
	}
	if got := sentBy(); got[0] != 10 || got[1] != 20 || got[2] != 20 {
		t.Errorf("first tick sent %v per campaign, want [10 20 20] (batch size 10 caps the first)", got)
	}
	total := maxPerTick
	for i := 0; i < 10; i++ {
		r := runTick(t, e)
		total += r.Sent
		if r.Processed == 0 {
			break
		}
	}
	if total != 3*n {
		t.Errorf("ticks sent %d, want %d", total, 3*n)
	}
	for _, id := range ids {
		checkCompleted(t, e, id, n, n, 0, 0)
	}
	if got := len(sink.Messages()); got != 3*n {
		t.Errorf("sink received %d messages, want %d", got, 3*n)
	}
}

// TestTickTimeoutMidSend: a tick whose sends outlast tick_timeout ends on
// time; the sends cut off are in doubt (resend: queued again with the same
// Message-ID; hold: FAILED in_doubt) and what it claimed but never started
// is handed back.
func TestTickTimeoutMidSend(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{"resend", "hold"} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			const conc, n = 5, 10
			sink := NewSink(t, smtptest.Fault{Stage: smtptest.EndOfData, Times: conc, Stall: 30 * time.Second})
			e := NewEnv(t, fastRetry+"tick_timeout = \"1500ms\"\nin_doubt = \""+policy+"\"\n"+sinkTOML("sink", sink))
			rows := makeMailRows(n, "example.net")
			id := startSendingCampaign(t, e, mailRowsCSV(rows), "--sender", "sink", "--concurrency", strconv.Itoa(conc))

			start := time.Now()
			r, _ := tickProblems(t, e, "failed transiently") // every send cut off: exit 3
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("tick took %s with tick_timeout 1.5s", took)
			}
			inFlight := map[string]bool{}
			for _, m := range sink.Messages() {
				inFlight[m.To] = true
			}
			if len(inFlight) != conc {
				t.Fatalf("%d messages in flight at the deadline, want %d", len(inFlight), conc)
			}
			want := tickCounts{Processed: n, Retried: conc}
			if policy == "hold" {
				want = tickCounts{Processed: n, Failed: conc}
			}
			if countsOf(r) != want {
				t.Errorf("timed-out tick: %+v, want %+v", r, want)
			}
			if ts := dlvTicks(t, e); len(ts) != 1 || ts[0].Skipped != n-conc {
				t.Errorf("tick records %+v, want one with %d handed back unsent", ts, n-conc)
			}
			rs := dlvRecipients(t, e, id)
			for _, row := range rows {
				rc := rs[row.Email]
				switch {
				case !inFlight[row.Email]:
					if rc.Status != "QUEUED" || rc.Attempts != 0 || rc.LastErrorClass != "" {
						t.Errorf("%s, never started: %+v, want QUEUED with no attempt counted", row.Email, rc)
					}
				case policy == "hold":
					if rc.Status != "FAILED" || rc.LastErrorClass != "in_doubt" {
						t.Errorf("%s, cut off: %+v, want FAILED in_doubt", row.Email, rc)
					}
				default:
					if rc.Status != "QUEUED" || rc.LastErrorClass != "in_doubt" {
						t.Errorf("%s, cut off: %+v, want QUEUED in_doubt", row.Email, rc)
					}
				}
			}

			tickUntilCompleted(t, e, id, 10, 20*time.Millisecond)
			if policy == "hold" {
				checkCompleted(t, e, id, n, n-conc, conc, 0)
				for _, row := range rows {
					if got := sink.Received()[row.Email]; got != 1 {
						t.Errorf("%s received %d times, want once", row.Email, got)
					}
				}
				return
			}
			checkCompleted(t, e, id, n, n, 0, 0)
			checkDuplicates(t, sink, rows, inFlight, conc)
		})
	}
}

// TestListUnsubscribeConfigured: with http.public_url set, every message
// carries its recipient's one-click List-Unsubscribe (RFC 8058) and the
// same URL is {{.UnsubscribeURL}} in the body.
func TestListUnsubscribeConfigured(t *testing.T) {
	t.Parallel()
	const secret = "0123456789abcdef-unsubscribe"
	sink := NewSink(t)
	e := NewEnv(t, "[http]\npublic_url = \"https://mail.example.com/\"\nunsubscribe_secret = \""+secret+"\"\n"+sinkTOML("sink", sink))
	rows := makeMailRows(3, "example.net")
	id := startSendingCampaign(t, e, mailRowsCSV(rows), "--sender", "sink",
		"--text", "Hi {{.Name}}\nunsubscribe: {{.UnsubscribeURL}}\n")
	tickUntilCompleted(t, e, id, 3, 0)
	checkCompleted(t, e, id, 3, 3, 0, 0)

	rs := dlvRecipients(t, e, id)
	msgs := sink.Messages()
	if len(msgs) != len(rows) {
		t.Fatalf("sink received %d messages, want %d", len(msgs), len(rows))
	}
	for _, m := range msgs {
		rid := rs[m.To].ID
		mac := hmac.New(sha256.New, []byte(secret))
		fmt.Fprintf(mac, "unsubscribe:%d:%d", id, rid)
		want := fmt.Sprintf("https://mail.example.com/unsubscribe/%d.%d.%s", id, rid, base64.RawURLEncoding.EncodeToString(mac.Sum(nil)))
		if got := m.Header.Get("List-Unsubscribe"); got != "<"+want+">" {
			t.Errorf("%s: List-Unsubscribe %q, want <%s>", m.To, got, want)
		}
		if got := m.Header.Get("List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
			t.Errorf("%s: List-Unsubscribe-Post %q", m.To, got)
		}
		if got := m.Header.Get("Precedence"); got != "bulk" {
			t.Errorf("%s: Precedence %q, want bulk", m.To, got)
		}
		body, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(m.Body)))
		if err != nil {
			t.Fatalf("%s: body: %v", m.To, err)
		}
		if !strings.Contains(strings.ReplaceAll(string(body), "\r\n", "\n"), "unsubscribe: "+want+"\n") {
			t.Errorf("%s: body %q does not carry the unsubscribe URL %s", m.To, body, want)
		}
	}
}
