package core_test

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/sdk"
)

func ptr[T any](v T) *T { return &v }

func TestTransitionEditAndDelete(t *testing.T) {
	for _, st := range []core.CampaignStatus{core.CampaignDraft, core.CampaignActive, core.CampaignSending,
		core.CampaignPaused, core.CampaignCompleted, core.CampaignCancelled} {
		to, err := core.Transition(st, "", core.ActionEdit)
		editable := st == core.CampaignDraft || st == core.CampaignActive || st == core.CampaignPaused
		if editable != (err == nil) || (err == nil && to != st) {
			t.Errorf("edit from %s: %q %v", st, to, err)
		}
		_, err = core.Transition(st, "", core.ActionDelete)
		deletable := st == core.CampaignDraft || st == core.CampaignCancelled || st == core.CampaignCompleted
		if deletable != (err == nil) {
			t.Errorf("delete from %s: %v", st, err)
		}
		c := &core.Campaign{ID: 3, Status: st}
		for a, ok := range map[core.Action]bool{core.ActionEdit: editable, core.ActionDelete: deletable} {
			err := core.Refused(c, a)
			if ok {
				if err != nil {
					t.Errorf("Refused(%s, %s) = %v", st, a, err)
				}
				continue
			}
			if core.ErrorCode(err) != core.ECONFLICT || !strings.Contains(err.Error(), "campaign 3 is "+string(st)) ||
				!strings.Contains(err.Error(), "`campaignd campaign ") {
				t.Errorf("Refused(%s, %s) = %v, want ECONFLICT naming the state and a command", st, a, err)
			}
		}
	}
	if err := core.Refused(&core.Campaign{ID: 3, Status: core.CampaignSending}, core.ActionEdit); !strings.Contains(err.Error(), "campaign pause 3") {
		t.Errorf("edit of a SENDING campaign: %v, want it to say pause first", err)
	}
	if err := core.Refused(&core.Campaign{ID: 3, Status: core.CampaignActive}, core.ActionDelete); !strings.Contains(err.Error(), "campaign cancel 3") {
		t.Errorf("delete of an ACTIVE campaign: %v, want it to say cancel first", err)
	}
}

func TestEditCampaign(t *testing.T) {
	h := newHarness(t, nil)
	c, err := h.eng.CreateCampaign(ctx, core.CampaignSpec{Name: "n", Sender: "fake", From: "a@example.org", ReplyTo: "r@example.org",
		Subject: "S", Text: "T", Headers: []sdk.Header{{Name: "X-A", Value: "1"}}, Concurrency: 2, BatchSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	// Only what is given changes.
	got, err := h.eng.EditCampaign(ctx, c.ID, core.CampaignEdit{Subject: ptr("New {{.Name}}"), BatchSize: ptr(20)})
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject != "New {{.Name}}" || got.BatchSize != 20 || got.Name != "n" || got.ReplyTo != "r@example.org" ||
		got.Text != "T" || len(got.Headers) != 1 || got.Concurrency != 2 || got.Status != core.CampaignDraft {
		t.Fatalf("after edit: %+v", got)
	}
	// Clearing optional fields.
	got, err = h.eng.EditCampaign(ctx, c.ID, core.CampaignEdit{ReplyTo: ptr(""), Headers: &[]sdk.Header{}, HTML: ptr("<p>h</p>"), Text: ptr("")})
	if err != nil {
		t.Fatal(err)
	}
	if got.ReplyTo != "" || len(got.Headers) != 0 || got.Text != "" || got.HTML != "<p>h</p>" {
		t.Fatalf("after clearing: %+v", got)
	}
	// The same validation as create.
	for _, tc := range []struct {
		edit core.CampaignEdit
		want string
	}{
		{core.CampaignEdit{}, "nothing to change"},
		{core.CampaignEdit{Subject: ptr("{{.Name")}, "subject: template"},
		{core.CampaignEdit{Subject: ptr("a\r\nBcc: x@y.org")}, "subject: contains CR or LF"},
		{core.CampaignEdit{From: ptr("not an address")}, "from: invalid address"},
		{core.CampaignEdit{Sender: ptr("nope")}, `sender: "nope" is not configured`},
		{core.CampaignEdit{BatchSize: ptr(51)}, "batch_size: 51"},
		{core.CampaignEdit{HTML: ptr("")}, "text/html"},
		{core.CampaignEdit{Headers: &[]sdk.Header{{Name: "Subject", Value: "x"}}}, "cannot be overridden"},
	} {
		_, err := h.eng.EditCampaign(ctx, c.ID, tc.edit)
		if core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("edit %+v: %v, want EINVALID with %q", tc.edit, err, tc.want)
		}
	}
	if after, _ := h.eng.Campaign(ctx, c.ID); after.Subject != "New {{.Name}}" || after.HTML != "<p>h</p>" {
		t.Errorf("a refused edit changed the campaign: %+v", after)
	}
	if _, err := h.eng.EditCampaign(ctx, 999, core.CampaignEdit{Name: ptr("x")}); core.ErrorCode(err) != core.ENOTFOUND {
		t.Errorf("unknown campaign: %v", err)
	}

	// SENDING is refused, naming the state; PAUSED is allowed and stays PAUSED.
	id := h.campaign(3, nil)
	_, err = h.eng.EditCampaign(ctx, id, core.CampaignEdit{Name: ptr("x")})
	if core.ErrorCode(err) != core.ECONFLICT || !strings.Contains(err.Error(), "SENDING") {
		t.Fatalf("edit while SENDING: %v", err)
	}
	h.eng.ChangeCampaign(ctx, id, core.ActionPause)
	got, err = h.eng.EditCampaign(ctx, id, core.CampaignEdit{Name: ptr("x")})
	if err != nil || got.Status != core.CampaignPaused || got.PausedFrom != core.CampaignSending || got.Name != "x" {
		t.Fatalf("edit while PAUSED: %+v %v", got, err)
	}
}

// TestRetryTemplateAfterEdit: recipients that failed on the old template
// are sent with the new one after an edit and retry --class template.
func TestRetryTemplateAfterEdit(t *testing.T) {
	h := newHarness(t, nil)
	c, _ := h.eng.CreateCampaign(ctx, core.CampaignSpec{Name: "t", Sender: "fake", From: "a@example.org",
		Subject: "For {{.Attr.city}}", Text: "x", BatchSize: 2})
	// b's city breaks the subject (a header): b fails on the template.
	csv := "email,city\na@example.org,Oslo\nb@example.org,\"Os\nlo\"\nc@example.org,Rome\n"
	if _, err := h.eng.ImportRecipients(ctx, c.ID, core.FormatCSV, strings.NewReader(csv)); err != nil {
		t.Fatal(err)
	}
	h.eng.ChangeCampaign(ctx, c.ID, core.ActionActivate)
	h.eng.Execute(ctx, c.ID)
	h.tick() // a sent, b failed on the template; c still queued
	if st := h.stats(c.ID); st.Sent != 1 || st.Failed != 1 || st.Queued != 1 {
		t.Fatalf("stats %+v", st)
	}
	if _, err := h.eng.ChangeCampaign(ctx, c.ID, core.ActionPause); err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.EditCampaign(ctx, c.ID, core.CampaignEdit{Subject: ptr(`For {{if eq .Email "b@example.org"}}you{{else}}{{.Attr.city}}{{end}}`)}); err != nil {
		t.Fatal(err)
	}
	res, err := h.eng.Retry(ctx, c.ID, string(core.ClassTemplate), 0)
	if err != nil || res.Requeued != 1 {
		t.Fatalf("retry: %+v %v", res, err)
	}
	if _, err := h.eng.ChangeCampaign(ctx, c.ID, core.ActionResume); err != nil {
		t.Fatal(err)
	}
	h.tick()
	if st := h.stats(c.ID); st.Sent != 3 || st.Failed != 0 {
		t.Fatalf("stats after retry %+v", st)
	}
	subjects := map[string]string{}
	for _, m := range h.sender.sent {
		subjects[strings.Trim(m.To, "<>")] = m.Subject
	}
	if subjects["b@example.org"] != "For you" || subjects["c@example.org"] != "For Rome" || subjects["a@example.org"] != "For Oslo" {
		t.Fatalf("subjects %v", subjects)
	}
}

func TestCloneCampaign(t *testing.T) {
	h := newHarness(t, nil)
	id := h.campaign(4, func(s *core.CampaignSpec) { s.Headers = []sdk.Header{{Name: "X-A", Value: "1"}}; s.Concurrency = 3 })
	h.tick()
	src, _ := h.eng.Campaign(ctx, id)
	if err := h.eng.Suppress(ctx, core.Suppression{Email: "U1@C1.example.org"}); err != nil {
		t.Fatal(err)
	}

	bare, err := h.eng.CloneCampaign(ctx, id, core.CloneRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if bare.ID == id || bare.Status != core.CampaignDraft || bare.Name != src.Name+" (copy)" || bare.Subject != src.Subject ||
		bare.Text != src.Text || len(bare.Headers) != 1 || bare.Concurrency != 3 || bare.Stats.Total != 0 {
		t.Fatalf("clone without recipients: %+v", bare)
	}
	full, err := h.eng.CloneCampaign(ctx, id, core.CloneRequest{Name: "again", WithRecipients: true})
	if err != nil {
		t.Fatal(err)
	}
	if full.Name != "again" || full.Stats != (core.Stats{Total: 3, Pending: 3}) {
		t.Fatalf("clone with recipients: %+v", full)
	}
	rs := h.recipients(full.ID, "")
	if len(rs) != 3 || rs[0].Email != "u0@c1.example.org" || rs[0].Name != "User 0" || rs[0].Status != core.RecipientPending ||
		rs[0].Attempts != 0 || rs[0].ProviderID != "" {
		t.Fatalf("cloned recipients: %+v", rs[0])
	}
	for _, r := range rs {
		if r.Email == "u1@c1.example.org" {
			t.Errorf("a suppressed address was cloned")
		}
	}
	if rep, err := h.eng.Verify(ctx, 0); err != nil || len(rep.Violations) != 0 {
		t.Fatalf("verify after clone: %+v %v", rep, err)
	}
	// The clone is sent like any campaign; the source is untouched.
	h.eng.ChangeCampaign(ctx, full.ID, core.ActionActivate)
	if res, err := h.eng.Execute(ctx, full.ID); err != nil || res.Queued != 3 {
		t.Fatalf("execute clone: %+v %v", res, err)
	}
	h.tick()
	if st := h.stats(full.ID); st.Sent != 3 {
		t.Fatalf("clone stats %+v", st)
	}
	if st := h.stats(id); st != src.Stats {
		t.Fatalf("source stats changed: %+v, was %+v", st, src.Stats)
	}
	if _, err := h.eng.CloneCampaign(ctx, 999, core.CloneRequest{}); core.ErrorCode(err) != core.ENOTFOUND {
		t.Errorf("clone of an unknown campaign: %v", err)
	}
	if _, err := h.eng.CloneCampaign(ctx, id, core.CloneRequest{Name: "a\nb"}); core.ErrorCode(err) != core.EINVALID {
		t.Errorf("clone with a bad name: %v", err)
	}
}

func TestDeleteCampaign(t *testing.T) {
	h := newHarness(t, nil)
	id := h.campaign(3, nil)
	if _, err := h.eng.DeleteCampaign(ctx, id, true); core.ErrorCode(err) != core.ECONFLICT || !strings.Contains(err.Error(), "SENDING") {
		t.Fatalf("delete while SENDING: %v", err)
	}
	h.tick()
	dry, err := h.eng.DeleteCampaign(ctx, id, true)
	if err != nil {
		t.Fatal(err)
	}
	if !dry.DryRun || dry.Recipients != 3 || dry.Executions != 1 || dry.Status != core.CampaignCompleted ||
		!strings.Contains(dry.Message, "would delete campaign") {
		t.Fatalf("dry run: %+v", dry)
	}
	if _, err := h.eng.Campaign(ctx, id); err != nil {
		t.Fatalf("the dry run deleted: %v", err)
	}
	res, err := h.eng.DeleteCampaign(ctx, id, false)
	if err != nil || res.DryRun || res.Recipients != 3 {
		t.Fatalf("delete: %+v %v", res, err)
	}
	if _, err := h.eng.Campaign(ctx, id); core.ErrorCode(err) != core.ENOTFOUND {
		t.Fatalf("campaign after delete: %v", err)
	}
	if xs, err := h.eng.Executions(ctx, 0); err != nil || len(xs) != 0 {
		t.Fatalf("executions after delete: %+v %v", xs, err)
	}
	if ticks, err := h.eng.Ticks(ctx, 10); err != nil || len(ticks) != 1 {
		t.Fatalf("tick records after delete: %d %v (they are global and stay)", len(ticks), err)
	}
	// The id is never given again, so Message-IDs never repeat.
	c, err := h.eng.CreateCampaign(ctx, core.CampaignSpec{Name: "n", Sender: "fake", From: "a@example.org", Subject: "S", Text: "T"})
	if err != nil || c.ID <= id {
		t.Fatalf("new campaign after delete: %+v %v, want an id above %d", c, err, id)
	}
	if rep, err := h.eng.Verify(ctx, 0); err != nil || len(rep.Violations) != 0 {
		t.Fatalf("verify after delete: %+v %v", rep, err)
	}
	// DRAFT and CANCELLED delete too; ACTIVE and PAUSED do not.
	if _, err := h.eng.DeleteCampaign(ctx, c.ID, false); err != nil {
		t.Fatalf("delete DRAFT: %v", err)
	}
	for _, act := range []core.Action{core.ActionActivate, core.ActionPause, core.ActionCancel} {
		id := h.campaign(1, nil)
		if act == core.ActionActivate {
			c, _ := h.eng.CreateCampaign(ctx, core.CampaignSpec{Name: "n", Sender: "fake", From: "a@example.org", Subject: "S", Text: "T"})
			h.eng.ChangeCampaign(ctx, c.ID, act)
			id = c.ID
		} else {
			h.eng.ChangeCampaign(ctx, id, act)
		}
		c, _ := h.eng.Campaign(ctx, id)
		_, err := h.eng.DeleteCampaign(ctx, id, false)
		if (c.Status == core.CampaignCancelled) != (err == nil) {
			t.Errorf("delete from %s: %v", c.Status, err)
		}
	}
	if _, err := h.eng.DeleteCampaign(ctx, 999, false); core.ErrorCode(err) != core.ENOTFOUND {
		t.Errorf("delete of an unknown campaign: %v", err)
	}
}

func TestPreview(t *testing.T) {
	h := newHarness(t, nil)
	c, _ := h.eng.CreateCampaign(ctx, core.CampaignSpec{Name: "p", Sender: "fake", From: "News <news@example.org>",
		Subject: "Hi {{.Name}}", Text: "Hello {{.Email}} from {{.Campaign.Name}}", HTML: "<p>{{.Name}}</p>"})
	// No recipient yet: the sample.
	p, err := h.eng.Preview(ctx, c.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	sample := core.SampleRecipient(core.TemplateRefs{})
	if !p.Sample || p.RecipientID != 0 || p.Email != sample.Email || p.Subject != "Hi "+sample.Name {
		t.Fatalf("sample preview: %+v", p)
	}
	csv := "email,name\nann@example.org,Ann\nbob@example.org,Bob\n"
	if _, err := h.eng.ImportRecipients(ctx, c.ID, core.FormatCSV, strings.NewReader(csv)); err != nil {
		t.Fatal(err)
	}
	p, err = h.eng.Preview(ctx, c.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if p.Sample || p.Email != "ann@example.org" || p.Subject != "Hi Ann" || p.Text != "Hello ann@example.org from p" || p.HTML != "<p>Ann</p>" {
		t.Fatalf("first recipient preview: %+v", p)
	}
	p, err = h.eng.Preview(ctx, c.ID, "bob@Example.ORG")
	if err != nil {
		t.Fatal(err)
	}
	if p.Email != "bob@example.org" || p.Subject != "Hi Bob" {
		t.Fatalf("preview of bob: %+v", p)
	}
	if !strings.Contains(p.Message, "\r\nSubject: Hi Bob\r\n") || !strings.Contains(p.Message, "Message-Id: "+p.MessageID) &&
		!strings.Contains(p.Message, "Message-ID: "+p.MessageID) {
		t.Errorf("raw message:\n%s", p.Message)
	}
	names := map[string]string{}
	for _, hd := range p.Headers {
		names[strings.ToLower(hd.Name)] = hd.Value
	}
	if names["subject"] != "Hi Bob" || names["precedence"] != "bulk" || !strings.Contains(names["to"], "bob@example.org") ||
		!strings.Contains(names["content-type"], "multipart/alternative") {
		t.Errorf("headers: %+v", p.Headers)
	}
	// The preview is what the tick sends: same Message-ID, same bytes
	// (but the Date).
	h.eng.ChangeCampaign(ctx, c.ID, core.ActionActivate)
	h.eng.Execute(ctx, c.ID)
	h.tick()
	var sent *sdk.Message
	for _, m := range h.sender.sent {
		if strings.Contains(m.To, "bob@") {
			sent = m
		}
	}
	if sent == nil || sent.MessageID != p.MessageID {
		t.Fatalf("sent %+v, preview Message-ID %s", sent, p.MessageID)
	}
	var buf bytes.Buffer
	sent.Date = time.Time{}
	if _, err := sent.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if dropDate(buf.String()) != dropDate(p.Message) {
		t.Errorf("preview and sent message differ:\n%s\n----\n%s", p.Message, buf.String())
	}

	if _, err := h.eng.Preview(ctx, c.ID, "nobody@example.org"); core.ErrorCode(err) != core.ENOTFOUND || !strings.Contains(err.Error(), "nobody@example.org") {
		t.Errorf("preview of a stranger: %v", err)
	}
	if _, err := h.eng.Preview(ctx, c.ID, "not an address"); core.ErrorCode(err) != core.EINVALID {
		t.Errorf("preview of a bad address: %v", err)
	}
	// A recipient the template fails on: EINVALID with the template error.
	c2, _ := h.eng.CreateCampaign(ctx, core.CampaignSpec{Name: "q", Sender: "fake", From: "a@example.org", Subject: "For {{.Attr.city}}", Text: "x"})
	h.eng.AddRecipient(ctx, c2.ID, core.RecipientInput{Email: "z@example.org", Attrs: map[string]string{"city": "Os\nlo"}})
	if _, err := h.eng.Preview(ctx, c2.ID, ""); core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), "subject") {
		t.Errorf("preview of a failing template: %v", err)
	}
}

// dropDate removes the Date header line and names the MIME boundary B:
// what two renderings at different times differ in.
func dropDate(msg string) string {
	if m := regexp.MustCompile(`boundary=([0-9a-f]+)`).FindStringSubmatch(msg); m != nil {
		msg = strings.ReplaceAll(msg, m[1], "B")
	}
	var out []string
	for _, l := range strings.Split(msg, "\r\n") {
		if !strings.HasPrefix(l, "Date: ") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\r\n")
}

func TestTestSend(t *testing.T) {
	h := newHarness(t, nil)
	id := h.campaign(2, nil)
	before := h.stats(id)
	res, err := h.eng.TestSend(ctx, id, core.TestSendRequest{To: "Me@Example.org"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Sent || res.To != "Me@example.org" || !strings.HasPrefix(res.MessageID, "<test-c") || res.ProviderID == "" || res.Error != nil {
		t.Fatalf("test send: %+v", res)
	}
	if len(h.sender.sent) != 1 {
		t.Fatalf("%d messages sent", len(h.sender.sent))
	}
	m := h.sender.sent[0]
	if m.RecipientID != 0 || m.MessageID != res.MessageID || !strings.Contains(m.To, "Me@example.org") || m.Subject != "Hi User 0" {
		t.Fatalf("message %+v", m)
	}
	if st := h.stats(id); st != before {
		t.Fatalf("stats changed: %+v, was %+v", st, before)
	}
	// A refusal is the answer, not an error.
	h.sender.fn = func(*sdk.Message, int) error { return sdk.Permanent("relay denied").WithSMTP(550, "5.7.1") }
	res, err = h.eng.TestSend(ctx, id, core.TestSendRequest{To: "me@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent || res.Error == nil || res.Error.Class != sdk.ClassPermanent || res.Error.SMTPCode != 550 || res.Error.EnhancedCode != "5.7.1" {
		t.Fatalf("refused test send: %+v", res)
	}
	h.prov.err = errors.New("plugin would not start")
	res, err = h.eng.TestSend(ctx, id, core.TestSendRequest{To: "me@example.org"})
	if err != nil || res.Sent || res.Error.Class != sdk.ClassTransient || !strings.Contains(res.Error.Message, "would not start") {
		t.Fatalf("test send without a sender: %+v %v", res, err)
	}
	if _, err := h.eng.TestSend(ctx, id, core.TestSendRequest{To: "nope"}); core.ErrorCode(err) != core.EINVALID {
		t.Errorf("bad address: %v", err)
	}
	if st := h.stats(id); st != before {
		t.Fatalf("stats changed: %+v, was %+v", st, before)
	}
}

// Issue 12 item 5: a --header value with a word too long for a legal line
// was accepted at create and failed every message; create, edit and clone
// refuse it naming the header, and a long value that folds is accepted.
func TestHeaderTooLongToFoldRefused(t *testing.T) {
	h := newHarness(t, nil)
	long := []sdk.Header{{Name: "X-Long", Value: strings.Repeat("a", 1000)}}
	spec := core.CampaignSpec{Name: "n", Sender: "fake", From: "a@example.org", Subject: "S", Text: "T", Headers: long}
	if _, err := h.eng.CreateCampaign(ctx, spec); core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), "X-Long") {
		t.Fatalf("create with an unfoldable header: %v, want EINVALID naming it", err)
	}
	spec.Headers = []sdk.Header{{Name: "X-Folds", Value: strings.TrimSpace(strings.Repeat("word ", 400))}}
	c, err := h.eng.CreateCampaign(ctx, spec)
	if err != nil {
		t.Fatalf("create with a long header that folds: %v", err)
	}
	if _, err := h.eng.EditCampaign(ctx, c.ID, core.CampaignEdit{Headers: &long}); core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), "X-Long") {
		t.Fatalf("edit to an unfoldable header: %v, want EINVALID naming it", err)
	}
}
