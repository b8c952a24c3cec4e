package main_test

// End-to-end tests of campaign edit, clone, delete, preview and test send
// through the built binary, standalone and through the daemon. --json
// output is decoded into the core types themselves.

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/plugins/smtp/smtptest"
)

// mustCampaignJSON runs a command printing a campaign and decodes it.
func mustCampaignJSON(t *testing.T, e *Env, args ...string) core.Campaign {
	t.Helper()
	var c core.Campaign
	e.MustJSON(&c, args...)
	return c
}

// importCSV imports csv into campaign id.
func importCSV(t *testing.T, e *Env, id int64, csv string) {
	t.Helper()
	var res core.ImportResult
	e.MustJSON(&res, "recipients", "import", strconv.FormatInt(id, 10), WriteFile(t, e.Dir, "r.csv", csv))
	if res.Invalid != 0 || res.Added != int64(strings.Count(csv, "\n")-1) {
		t.Fatalf("import: %+v", res)
	}
}

func TestCampaignEditCloneDelete(t *testing.T) {
	eachMode(t, "", func(t *testing.T, e *Env, daemon bool) {
		id := MustCreateCampaign(t, e, "--name", "spring", "--subject", "Hi {{.Name}}", "--header", "X-Tag: a",
			"--concurrency", "3")
		ids := strconv.FormatInt(id, 10)
		importCSV(t, e, id, "email,name,city\nann@example.org,Ann,Oslo\nbob@example.org,Bob,Rome\ncy@example.org,Cy,Lyon\n")

		// Only the flags given change.
		c := mustCampaignJSON(t, e, "campaign", "edit", ids, "--subject", "New {{.Name}}", "--batch-size", "10")
		if c.Subject != "New {{.Name}}" || c.BatchSize != 10 || c.Name != "spring" || c.Concurrency != 3 ||
			len(c.Headers) != 1 || c.Status != core.CampaignDraft || c.Stats.Total != 3 {
			t.Fatalf("after edit: %+v", c)
		}
		body := WriteFile(t, e.Dir, "body.html", "<p>{{.Name}} of {{.Attr.city}}</p>")
		c = mustCampaignJSON(t, e, "campaign", "edit", ids, "--html-file", body, "--clear-headers")
		if c.HTML != "<p>{{.Name}} of {{.Attr.city}}</p>" || len(c.Headers) != 0 || c.Subject != "New {{.Name}}" {
			t.Fatalf("after second edit: %+v", c)
		}
		if out := e.MustRun("campaign", "edit", ids, "--name", "summer"); !strings.Contains(out, "edited campaign "+ids+" (summer)") {
			t.Errorf("edit says %q", out)
		}
		// The same validation as create.
		wantFail(t, e.Run("campaign", "edit", ids, "--subject", "{{.Name"), 1, "subject", "template")
		wantFail(t, e.Run("campaign", "edit", ids, "--header", "Bcc: x@example.org"), 1, "header", "Bcc")
		wantFail(t, e.Run("campaign", "edit", ids, "--batch-size", "0"), 1, "batch_size")
		wantFail(t, e.Run("campaign", "edit", ids, "--sender", "nope"), 1, "sender", "nope")
		wantFail(t, e.Run("campaign", "edit", ids), 1, "nothing to change")
		wantFail(t, e.Run("campaign", "edit", "999", "--name", "x"), 1, "999")

		// SENDING: refused, naming the state and what to do; PAUSED: allowed.
		e.MustRun("campaign", "activate", ids)
		e.MustRun("campaign", "execute", ids)
		wantFail(t, e.Run("campaign", "edit", ids, "--name", "x"), 1, "SENDING", "campaignd campaign pause "+ids)
		e.MustRun("campaign", "pause", ids)
		c = mustCampaignJSON(t, e, "campaign", "edit", ids, "--name", "paused edit")
		if c.Status != core.CampaignPaused || c.Name != "paused edit" {
			t.Fatalf("edit while PAUSED: %+v", c)
		}
		wantFail(t, e.Run("campaign", "delete", ids, "--yes"), 1, "PAUSED", "campaignd campaign cancel "+ids)

		// Clone: content, and the recipients as PENDING when asked.
		full := mustCampaignJSON(t, e, "campaign", "clone", ids, "--with-recipients", "--name", "again")
		if full.ID == id || full.Name != "again" || full.Status != core.CampaignDraft || full.HTML != c.HTML ||
			full.Stats != (core.Stats{Total: 3, Pending: 3}) {
			t.Fatalf("clone with recipients: %+v", full)
		}
		var rs []core.Recipient
		e.MustJSON(&rs, "recipients", "list", strconv.FormatInt(full.ID, 10))
		if len(rs) != 3 || rs[0].Email != "ann@example.org" || rs[0].Attrs["city"] != "Oslo" || rs[0].Status != core.RecipientPending {
			t.Fatalf("cloned recipients: %+v", rs)
		}
		bare := mustCampaignJSON(t, e, "campaign", "clone", ids)
		if bare.Name != "paused edit (copy)" || bare.Stats.Total != 0 {
			t.Fatalf("clone: %+v", bare)
		}
		if out := e.MustRun("campaign", "clone", ids); !strings.Contains(out, "cloned campaign "+ids+" into campaign") {
			t.Errorf("clone says %q", out)
		}

		// Delete: refused without --yes, saying what would go.
		e.MustRun("campaign", "cancel", ids)
		wantFail(t, e.Run("campaign", "delete", ids), 1, "would delete campaign "+ids, "3 recipients", "1 executions", "--yes")
		if got := mustCampaignJSON(t, e, "campaign", "show", ids); got.ID != id {
			t.Fatalf("delete without --yes deleted: %+v", got)
		}
		var del core.DeleteResult
		e.MustJSON(&del, "campaign", "delete", ids, "--yes")
		if del.CampaignID != id || del.Recipients != 3 || del.Executions != 1 || del.DryRun || del.Status != core.CampaignCancelled {
			t.Fatalf("delete: %+v", del)
		}
		wantFail(t, e.Run("campaign", "show", ids), 1, "not found")
		wantFail(t, e.Run("recipients", "list", ids), 1, "not found")
		var xs []core.Execution
		e.MustJSON(&xs, "executions")
		for _, x := range xs {
			if x.CampaignID == id {
				t.Errorf("an execution of the deleted campaign is left: %+v", x)
			}
		}
		// The clones live on, and a new campaign never takes the id.
		if got := mustCampaignJSON(t, e, "campaign", "show", strconv.FormatInt(full.ID, 10)); got.Stats.Total != 3 {
			t.Fatalf("clone after the original's delete: %+v", got)
		}
		e.MustRun("campaign", "delete", strconv.FormatInt(bare.ID+1, 10), "--yes") // the last clone: a DRAFT
		if next := MustCreateCampaign(t, e); next <= bare.ID+1 {
			t.Fatalf("new campaign %d reuses a deleted id", next)
		}
		var rep core.VerifyReport
		e.MustJSON(&rep, "verify")
		if !rep.OK() {
			t.Fatalf("verify: %+v", rep)
		}
	})
}

// TestCampaignRetryTemplateAfterEdit: a recipient that failed on the
// template is sent with the edited one after retry --class template.
func TestCampaignRetryTemplateAfterEdit(t *testing.T) {
	t.Parallel()
	sink := NewSink(t)
	eachMode(t, sinkTOML("sink", sink), func(t *testing.T, e *Env, daemon bool) {
		domain := "standalone.example.org"
		if daemon {
			domain = "daemon.example.org"
		}
		a, b, c := "a@"+domain, "b@"+domain, "c@"+domain
		// b's city breaks the subject (a header): b fails on the template.
		id := startSendingCampaign(t, e, "email,city\n"+a+",Oslo\n"+b+",\"Os\rlo\"\n"+c+",Rome\n",
			"--sender", "sink", "--subject", "For {{.Attr.city}}", "--batch-size", "2")
		ids := strconv.FormatInt(id, 10)
		if r := runTick(t, e); r.Sent != 1 || r.Failed != 1 {
			t.Fatalf("first tick: %+v", r)
		}
		e.MustRun("campaign", "pause", ids)
		e.MustRun("campaign", "edit", ids, "--subject", `For {{if eq .Email "`+b+`"}}you{{else}}{{.Attr.city}}{{end}}`)
		var rr core.RetryResult
		e.MustJSON(&rr, "campaign", "retry", ids, "--class", "template")
		if rr.Requeued != 1 {
			t.Fatalf("retry: %+v", rr)
		}
		e.MustRun("campaign", "resume", ids)
		if r := runTick(t, e); r.Sent != 2 || r.Failed != 0 {
			t.Fatalf("tick after retry: %+v", r)
		}
		checkCompleted(t, e, id, 3, 3, 0, 0)
		subjects := map[string]string{}
		for _, m := range sink.Messages() {
			subjects[m.To] = m.Subject
		}
		if subjects[a] != "For Oslo" || subjects[b] != "For you" || subjects[c] != "For Rome" {
			t.Fatalf("subjects: %v", subjects)
		}
	})
}

// TestCampaignPreviewAndTestMailpit: preview prints the message the tick
// then delivers; a test send reaches mailpit with a Message-ID of its own
// and leaves the campaign as it was.
func TestCampaignPreviewAndTestMailpit(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"standalone", "daemon"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			testPreviewAndTestMailpit(t, mode == "daemon")
		})
	}
}

func testPreviewAndTestMailpit(t *testing.T, daemon bool) {
	mp := StartMailpit(t)
	e := NewEnv(t, modeTOML+mp.SenderTOML("mp"))
	if daemon {
		e.StartDaemon()
	}
	id := MustCreateCampaign(t, e, "--sender", "mp", "--from", "News <news@example.com>",
		"--subject", "Hi {{.Name}}", "--text", "Hello {{.Name}} <{{.Email}}>", "--html", "<p>Dear {{.Name}}</p>")
	ids := strconv.FormatInt(id, 10)

	// No recipients yet: the sample, said on stderr.
	r := e.Run("campaign", "preview", ids)
	if r.Code != 0 || !strings.Contains(r.Stdout, "Subject: Hi Sample Recipient\r\n") || !strings.Contains(r.Stderr, "sample") {
		t.Fatalf("sample preview: %s", r)
	}
	importCSV(t, e, id, "email,name\nann@example.org,Ann\nbob@example.org,Bob\n")
	raw := e.MustRun("campaign", "preview", ids)
	if !strings.Contains(raw, "\r\nTo: \"Ann\" <ann@example.org>\r\n") || !strings.Contains(raw, "Subject: Hi Ann\r\n") ||
		!strings.Contains(raw, "Content-Type: multipart/alternative") {
		t.Fatalf("preview:\n%s", raw)
	}
	var p core.Preview
	e.MustJSON(&p, "campaign", "preview", ids, "--recipient", "bob@example.org")
	if p.Email != "bob@example.org" || p.Subject != "Hi Bob" || p.Text != "Hello Bob <bob@example.org>" ||
		p.HTML != "<p>Dear Bob</p>" || p.Sample || len(p.Headers) < 6 {
		t.Fatalf("preview --json: %+v", p)
	}
	wantFail(t, e.Run("campaign", "preview", ids, "--recipient", "nobody@example.org"), 1, "no recipient", "nobody@example.org")

	// A test send: through the sender, outside the queue.
	before := mustCampaignJSON(t, e, "campaign", "show", ids)
	out := e.MustRun("campaign", "test", ids, "--to", "me@example.net")
	if !strings.Contains(out, "accepted") || !strings.Contains(out, "<test-c"+ids+".") {
		t.Errorf("test says %q", out)
	}
	var tr core.TestSendResult
	e.MustJSON(&tr, "campaign", "test", ids, "--to", "me@example.net", "--recipient", "bob@example.org")
	if !tr.Sent || tr.Error != nil || tr.Sender != "mp" || !strings.HasPrefix(tr.MessageID, "<test-c"+ids+".") {
		t.Fatalf("test --json: %+v", tr)
	}
	if got := mp.WaitCount(2, 10*time.Second); got != 2 {
		t.Fatalf("mailpit holds %d messages after two test sends", got)
	}
	subjects := map[string]bool{}
	for _, m := range mp.Messages() {
		if len(m.To) != 1 || m.To[0].Address != "me@example.net" || !strings.HasPrefix(m.MessageID, "test-c"+ids+".") {
			t.Errorf("test message %+v", m)
		}
		subjects[m.Subject] = true
	}
	if !subjects["Hi Ann"] || !subjects["Hi Bob"] {
		t.Errorf("test subjects %v, want Hi Ann and Hi Bob", subjects)
	}
	after := mustCampaignJSON(t, e, "campaign", "show", ids)
	if after.Stats != before.Stats || after.Status != before.Status {
		t.Fatalf("a test send changed the campaign: %+v, was %+v", after, before)
	}
	var xs []core.Execution
	e.MustJSON(&xs, "executions", ids)
	if len(xs) != 0 {
		t.Fatalf("a test send left executions: %+v", xs)
	}

	// What the tick delivers is what preview showed.
	e.MustRun("campaign", "activate", ids)
	e.MustRun("campaign", "execute", ids)
	runTick(t, e)
	if got := mp.WaitCount(4, 10*time.Second); got != 4 {
		t.Fatalf("mailpit holds %d messages, want 4", got)
	}
	for _, m := range mp.Messages() {
		if m.MessageID != strings.Trim(p.MessageID, "<>") {
			continue
		}
		full := mp.Message(m.ID)
		if full.Subject != p.Subject || strings.TrimSpace(full.Text) != p.Text || !strings.Contains(full.HTML, p.HTML) {
			t.Fatalf("delivered %+v, previewed %+v", full, p)
		}
		return
	}
	t.Fatalf("no delivered message has the previewed Message-ID %s", p.MessageID)
}

// TestCampaignTestSendFailure: a refused or failed test send exits 1 with
// the class and codes the server answered; through the daemon it uses the
// daemon's warm plugin (one SMTP connection for several sends).
func TestCampaignTestSendFailure(t *testing.T) {
	t.Parallel()
	dead := closedPort(t)
	for _, mode := range []string{"standalone", "daemon"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			sink := NewSink(t, smtptest.Fault{Stage: smtptest.Rcpt, Rcpt: "denied@example.net", Code: 554, Enhanced: "5.7.1", Text: "content rejected"})
			e := NewEnv(t, modeTOML+sinkTOML("sink", sink)+smtpSenderTOML("dead", "127.0.0.1", dead))
			if mode == "daemon" {
				e.StartDaemon()
			}
			id := MustCreateCampaign(t, e, "--sender", "sink")
			ids := strconv.FormatInt(id, 10)
			wantFail(t, e.Run("campaign", "test", ids, "--to", "denied@example.net"), 1,
				"failed", "permanent", "554", "5.7.1", "content rejected", "sink")
			r := e.Run("--json", "campaign", "test", ids, "--to", "denied@example.net")
			var tr core.TestSendResult
			if err := json.Unmarshal([]byte(r.Stdout), &tr); r.Code != 1 || err != nil || tr.Sent || tr.Error == nil ||
				tr.Error.SMTPCode != 554 || tr.Error.EnhancedCode != "5.7.1" || tr.Error.Class != "permanent" {
				t.Fatalf("test --json refused: %+v %v\n%s", tr, err, r)
			}
			e.MustRun("campaign", "test", ids, "--to", "ok@example.net")
			e.MustRun("campaign", "test", ids, "--to", "ok2@example.net")
			// The daemon's plugin is warm and keeps its connection; each
			// standalone command starts a plugin of its own.
			if conns := sink.Connections(); (mode == "daemon") != (conns == 1) {
				t.Errorf("%s: %d SMTP connections for 4 test sends", mode, conns)
			}
			if got := sink.Received(); got["ok@example.net"] != 1 || got["ok2@example.net"] != 1 {
				t.Errorf("received %v", got)
			}
			wantFail(t, e.Run("campaign", "test", ids), 2, "--to")
			wantFail(t, e.Run("campaign", "test", ids, "--to", "not an address"), 1, "to")

			other := MustCreateCampaign(t, e, "--sender", "dead")
			wantFail(t, e.Run("campaign", "test", strconv.FormatInt(other, 10), "--to", "me@example.net"), 1, "failed", "transient", "dead")
		})
	}
}

// TestCampaignEditPausedMissingAttrs: pause, edit, resume. An edit of a
// campaign paused while SENDING that references a new attribute its
// queued recipients lack is refused (activate and execute, which would
// have caught it, are behind it), unless --allow-missing-attrs; with the
// flag it applies, through the daemon too.
func TestCampaignEditPausedMissingAttrs(t *testing.T) {
	t.Parallel()
	eachMode(t, "", func(t *testing.T, e *Env, daemon bool) {
		id := startSendingCampaign(t, e, "email,name\na@example.org,A\nb@example.org,B\n", "--sender", "outbox")
		ids := strconv.FormatInt(id, 10)
		e.MustRun("campaign", "pause", ids)
		r := e.Run("campaign", "edit", ids, "--text", "Your coupon: {{.Attr.coupon}}")
		wantFail(t, r, 1, "cannot edit campaign "+ids, "2 recipients lack", "coupon", "--allow-missing-attrs")
		var c core.Campaign
		e.MustJSON(&c, "campaign", "show", ids)
		if strings.Contains(c.Text, "coupon") {
			t.Errorf("a refused edit changed the text: %q", c.Text)
		}
		e.MustRun("campaign", "edit", ids, "--text", "Your coupon: {{.Attr.coupon}}", "--allow-missing-attrs")
		e.MustJSON(&c, "campaign", "show", ids)
		if !strings.Contains(c.Text, "coupon") {
			t.Errorf("the edit with --allow-missing-attrs did not apply: %q", c.Text)
		}
	})
}
