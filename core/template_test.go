package core_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
)

func checkSpec(subject, text, html string) core.CampaignSpec {
	return core.CampaignSpec{Name: "Spring", Sender: "outbox", From: "news@example.org", Subject: subject, Text: text, HTML: html}
}

func TestCheckTemplatesUnknownField(t *testing.T) {
	for _, tc := range []struct{ subject, text, html, want string }{
		{"Hi {{.Nmae}}", "x", "", "subject:1:6: unknown field Nmae (fields: .Email .Name .Attr.<key> .Campaign.Name .Campaign.ID .UnsubscribeURL)"},
		{"Hi", "line\n  {{.Campaign.Nmae}}", "", "text:2:14: unknown field Nmae of .Campaign"},
		{"Hi", "", "<p>{{.Emial}}</p>", "html:1:6: unknown field Emial"},
		{"Hi", "{{.Attr.city.x}}", "", "text:1:8: can't evaluate field x in type string"},
		{"Hi", "{{template \"x\" .}}{{define \"x\"}}{{.Nope}}{{end}}", "", "text:1:35: unknown field Nope"},
	} {
		_, err := core.CheckTemplates(checkSpec(tc.subject, tc.text, tc.html), core.TemplateCheckOptions{})
		if core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q/%q/%q: got %v, want %q", tc.subject, tc.text, tc.html, err, tc.want)
		}
	}
}

func TestCheckTemplatesRefs(t *testing.T) {
	refs, err := core.CheckTemplates(checkSpec("Hi {{.Attr.city}}",
		`{{with .Attr}}{{.plan}}{{end}}{{index .Attr "zip code"}}{{$a := .Attr}}{{$a.tier}}{{range .Attr}}{{.}}{{end}}`+
			`{{template "f" .Attr}}{{define "f"}}{{.inner}}{{$.deep}}{{end}}`,
		`<p>{{$.Attr.color}}{{range $i := 3}}{{$.Attr.loop}}{{end}}</p>`), core.TemplateCheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"city", "color", "deep", "inner", "loop", "plan", "tier", "zip code"}
	if !slices.Equal(refs.Attrs, want) {
		t.Errorf("attrs %v, want %v", refs.Attrs, want)
	}
}

func TestCheckTemplatesUnsubscribeNeedsPublicURL(t *testing.T) {
	spec := checkSpec("Hi", "bye\n{{.UnsubscribeURL}}", "")
	_, err := core.CheckTemplates(spec, core.TemplateCheckOptions{})
	if core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), "text:2:3") || !strings.Contains(err.Error(), "[http] public_url") {
		t.Fatalf("got %v", err)
	}
	refs, err := core.CheckTemplates(spec, core.TemplateCheckOptions{HasUnsubscribeURL: true})
	if err != nil || refs.UnsubscribeURL == "" {
		t.Fatalf("with a public URL: %v %+v", err, refs)
	}
}

// The exact inputs of the hardening issue: refused at create, fast.
func TestCheckTemplatesBudget(t *testing.T) {
	for _, tc := range []struct{ subject, text, want string }{
		{"{{range 200000000}}{{end}}x", "x", "subject:1:9: {{range 200000000}}"},
		{"x", "{{range 30000000}}0123456789{{end}}", "text:1:9: {{range 30000000}}"},
		{"x", "{{range 1000}}{{range 1000}}{{end}}{{end}}", "at most 100000"},
		{"x", "{{$n := 200000000}}{{range $n}}{{end}}", "render_timeout"},
		{"x", `{{$n := 90000}}{{range $n}}{{printf "%0999999d" 1}}{{end}}`, "render_max_bytes"},
		{"x", `{{define "a"}}{{range 10}}{{template "b"}}{{end}}{{end}}{{define "b"}}{{range 10}}{{template "c"}}{{end}}{{end}}` +
			`{{define "c"}}{{range 100000}}{{end}}{{end}}{{template "a"}}`, "render_timeout"},
	} {
		start := time.Now()
		_, err := core.CheckTemplates(checkSpec(tc.subject, tc.text, ""), core.TemplateCheckOptions{
			Budget: core.RenderBudget{Timeout: 200 * time.Millisecond, MaxBytes: 1 << 20}})
		if core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q/%q: got %v, want %q", tc.subject, tc.text, err, tc.want)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%q/%q: took %s", tc.subject, tc.text, d)
		}
	}
}

// A render over budget returns within the budget and its execution stops.
func TestRenderBudgetAtSendTime(t *testing.T) {
	c := &core.Campaign{ID: 1, From: "a@example.org", Subject: "x",
		Text: "{{$n := 2000000000}}{{range $n}}{{end}}"}
	r, err := core.NewRenderer(c, "", nil, core.WithRenderBudget(core.RenderBudget{Timeout: 100 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = r.Render(&core.Recipient{ID: 1, Email: "b@example.org"}, time.Now())
	if core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), "text: rendering took longer than render_timeout (100ms)") {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("render returned after %s", d)
	}
	// A context that ends first: not the recipient's fault.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	r, _ = core.NewRenderer(c, "", nil)
	if _, err := r.RenderContext(ctx, &core.Recipient{ID: 1, Email: "b@example.org"}, time.Now()); core.ErrorCode(err) != core.EUNAVAILABLE {
		t.Fatalf("cancelled: got %v", err)
	}
}

func TestMissingAttrsRefuseActivateAndExecute(t *testing.T) {
	h := newHarness(t, nil)
	c, err := h.eng.CreateCampaign(ctx, core.CampaignSpec{Name: "t", Sender: "fake", From: "a@example.org",
		Subject: "For {{.Attr.city}}", Text: `{{index .Attr "plan"}}`})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.TemplateAttrs, []string{"city", "plan"}) {
		t.Fatalf("template attrs %v", c.TemplateAttrs)
	}
	got, _ := h.eng.Campaign(ctx, c.ID)
	if !slices.Equal(got.TemplateAttrs, c.TemplateAttrs) {
		t.Fatalf("stored template attrs %v", got.TemplateAttrs)
	}
	csv := "email,city,plan\na@example.org,Oslo,gold\nb@example.org,,gold\nc@example.org,Rome,\nd@example.org,Rome,gold\n"
	res, err := h.eng.ImportRecipients(ctx, c.ID, core.FormatCSV, strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	if m := res.MissingAttrs; m == nil || m.Rows != 2 || !slices.Equal(m.Lines, []int64{3, 4}) || !slices.Equal(m.Attrs, []string{"city", "plan"}) {
		t.Fatalf("import missing attrs %+v", res.MissingAttrs)
	}
	_, err = h.eng.ChangeCampaign(ctx, c.ID, core.ActionActivate)
	if core.ErrorCode(err) != core.ECONFLICT || !strings.Contains(err.Error(), "2 recipients lack") ||
		!strings.Contains(err.Error(), "b@example.org lacks city") || !strings.Contains(err.Error(), "--allow-missing-attrs") {
		t.Fatalf("activate: %v", err)
	}
	if _, err := h.eng.ChangeCampaign(core.WithAllowMissingAttrs(ctx), c.ID, core.ActionActivate); err != nil {
		t.Fatal(err)
	}
	_, err = h.eng.Execute(ctx, c.ID)
	if core.ErrorCode(err) != core.ECONFLICT || !strings.Contains(err.Error(), "campaign execute") {
		t.Fatalf("execute: %v", err)
	}
	if xs, _ := h.eng.Executions(ctx, c.ID); len(xs) != 1 || xs[0].Status != core.ExecutionFailed {
		t.Fatalf("a refused execute leaves a FAILED record: %+v", xs)
	}
	if _, err := h.eng.Execute(core.WithAllowMissingAttrs(ctx), c.ID); err != nil {
		t.Fatal(err)
	}
	h.tick()
	if st := h.stats(c.ID); st.Sent != 4 {
		t.Fatalf("stats %+v", st)
	}
	subjects := map[string]bool{}
	h.sender.mu.Lock()
	for _, m := range h.sender.sent {
		subjects[m.Subject] = true
	}
	h.sender.mu.Unlock()
	if !subjects["For "] || !subjects["For Oslo"] {
		t.Fatalf("subjects %v", subjects)
	}
}

// The tick is not held by a template over budget: the recipient fails
// with class template. The campaigns are stored directly, as a database
// written before templates were checked at create would hold them.
func TestTickRenderBudget(t *testing.T) {
	h := newHarness(t, func(l *core.Limits) { l.RenderTimeout = 100 * time.Millisecond; l.RenderMaxBytes = 1000 })
	ids := map[string]int64{}
	for _, tc := range []struct{ name, subject, text string }{
		{"literal", "{{range 200000000}}{{end}}x", "x"},
		{"size-literal", "x", "{{range 30000000}}0123456789{{end}}"},
		{"slow", "x", "{{$n := 2000000000}}{{range $n}}{{end}}"},
		{"big", "x", "{{$n := 2000}}{{range $n}}0123456789{{end}}"},
	} {
		c := &core.Campaign{Name: tc.name, Sender: "fake", From: "a@example.org", Subject: tc.subject, Text: tc.text,
			Concurrency: 5, BatchSize: 50}
		if err := h.db.CreateCampaign(ctx, c); err != nil {
			t.Fatal(err)
		}
		csv := fmt.Sprintf("email\na@c%d.example.org\nb@c%d.example.org\n", c.ID, c.ID)
		if _, err := h.eng.ImportRecipients(ctx, c.ID, core.FormatCSV, strings.NewReader(csv)); err != nil {
			t.Fatal(err)
		}
		if _, err := h.eng.ChangeCampaign(ctx, c.ID, core.ActionActivate); err != nil {
			t.Fatal(err)
		}
		if _, err := h.eng.Execute(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		ids[tc.name] = c.ID
	}
	start := time.Now()
	res := h.tick()
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("tick took %s", d)
	}
	if res.Failed != 8 || res.Sent != 0 {
		t.Fatalf("tick %+v", res)
	}
	for name, want := range map[string]string{"literal": "subject:1:9: {{range 200000000}}", "size-literal": "text:1:9: {{range 30000000}}",
		"slow": "render_timeout (100ms)", "big": "render_max_bytes (1000 bytes)"} {
		for _, r := range h.recipients(ids[name], core.RecipientFailed) {
			if r.LastErrorClass != core.ClassTemplate || !strings.Contains(r.LastError, want) || r.Attempts != 1 {
				t.Errorf("%s: %+v, want class template and %q", name, r, want)
			}
		}
	}
}

// A tick whose deadline comes mid-render hands the recipient back unsent.
func TestTickDeadlineMidRender(t *testing.T) {
	h := newHarness(t, func(l *core.Limits) { l.TickTimeout = 200 * time.Millisecond; l.RenderTimeout = 10 * time.Second })
	c := &core.Campaign{Name: "slow", Sender: "fake", From: "a@example.org", Subject: "x",
		Text: "{{$n := 2000000000}}{{range $n}}{{end}}", Concurrency: 1, BatchSize: 50}
	if err := h.db.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.ImportRecipients(ctx, c.ID, core.FormatCSV, strings.NewReader("email\na@example.org\n")); err != nil {
		t.Fatal(err)
	}
	h.eng.ChangeCampaign(ctx, c.ID, core.ActionActivate)
	h.eng.Execute(ctx, c.ID)
	start := time.Now()
	h.tick()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("tick took %s past its 200ms deadline", d)
	}
	if rs := h.recipients(c.ID, core.RecipientQueued); len(rs) != 1 || rs[0].Attempts != 0 {
		t.Fatalf("recipient not handed back: %+v", rs)
	}
}

// Drain (SIGTERM) ends a render at once, whatever the template does.
func TestDrainStopsRender(t *testing.T) {
	h := newHarness(t, func(l *core.Limits) { l.TickTimeout = 60 * time.Second; l.RenderTimeout = 30 * time.Second })
	c := &core.Campaign{Name: "slow", Sender: "fake", From: "a@example.org", Subject: "x",
		Text: "{{$n := 2000000000}}{{range $n}}{{end}}", Concurrency: 2, BatchSize: 50}
	if err := h.db.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.ImportRecipients(ctx, c.ID, core.FormatCSV, strings.NewReader("email\na@example.org\nb@example.org\nc@example.org\n")); err != nil {
		t.Fatal(err)
	}
	h.eng.ChangeCampaign(ctx, c.ID, core.ActionActivate)
	h.eng.Execute(ctx, c.ID)
	done := make(chan struct{})
	go func() { h.eng.Tick(ctx, core.TriggerScheduler); close(done) }()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	h.eng.Drain()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("tick still running 5s after Drain")
	}
	t.Logf("tick ended %s after Drain", time.Since(start))
	if rs := h.recipients(c.ID, core.RecipientQueued); len(rs) != 3 {
		t.Fatalf("recipients not handed back: %+v", rs)
	}
}

func TestLimitsRenderBudget(t *testing.T) {
	l := core.DefaultLimits()
	if b := l.RenderBudget(); b != core.DefaultRenderBudget() || b.Timeout != 2*time.Second || b.MaxBytes != 10<<20 {
		t.Fatalf("default budget %+v", b)
	}
	l.RenderTimeout, l.RenderMaxBytes = 0, 0 // 0 takes the default
	if err := l.Validate(); err != nil || l.RenderBudget() != core.DefaultRenderBudget() {
		t.Fatalf("zero budget: %v %+v", err, l.RenderBudget())
	}
	for _, tc := range []struct {
		mut  func(*core.Limits)
		want string
	}{
		{func(l *core.Limits) { l.RenderTimeout = 31 * time.Second }, "queue.render_timeout"},
		{func(l *core.Limits) { l.RenderTimeout = -time.Second }, "queue.render_timeout"},
		{func(l *core.Limits) { l.RenderMaxBytes = -1 }, "queue.render_max_bytes"},
		{func(l *core.Limits) { l.RenderMaxBytes = 101 << 20 }, "queue.render_max_bytes"},
	} {
		l := core.DefaultLimits()
		tc.mut(&l)
		if err := l.Validate(); core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %s", l, err, tc.want)
		}
	}
}

// Pause, edit, resume: an edit that references a new attribute is checked
// against the PENDING and QUEUED recipients (activate and execute, which
// check PENDING only, are behind a campaign paused while SENDING), refused
// unless WithAllowMissingAttrs; an edit that adds no attribute is not.
func TestMissingAttrsRefuseEditOfPausedCampaign(t *testing.T) {
	h := newHarness(t, nil)
	c, err := h.eng.CreateCampaign(ctx, core.CampaignSpec{Name: "t", Sender: "fake", From: "a@example.org",
		Subject: "For {{.Attr.city}}", Text: "Hi"})
	if err != nil {
		t.Fatal(err)
	}
	csv := "email,city\na@example.org,Oslo\nb@example.org,Rome\n"
	if _, err := h.eng.ImportRecipients(ctx, c.ID, core.FormatCSV, strings.NewReader(csv)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.ChangeCampaign(ctx, c.ID, core.ActionActivate); err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.Execute(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.ChangeCampaign(ctx, c.ID, core.ActionPause); err != nil {
		t.Fatal(err)
	}
	text := "Your coupon: {{.Attr.coupon}}"
	_, err = h.eng.EditCampaign(ctx, c.ID, core.CampaignEdit{Text: &text})
	if core.ErrorCode(err) != core.ECONFLICT || !strings.Contains(err.Error(), "cannot edit campaign") ||
		!strings.Contains(err.Error(), "2 recipients lack") || !strings.Contains(err.Error(), "(coupon)") ||
		!strings.Contains(err.Error(), "--allow-missing-attrs") {
		t.Fatalf("edit adding {{.Attr.coupon}} to a paused campaign with queued recipients: %v", err)
	}
	if got, _ := h.eng.Campaign(ctx, c.ID); got.Text != "Hi" {
		t.Fatalf("a refused edit changed the text to %q", got.Text)
	}
	subject := "Still {{.Attr.city}}"
	if _, err := h.eng.EditCampaign(ctx, c.ID, core.CampaignEdit{Subject: &subject}); err != nil {
		t.Fatalf("an edit adding no attribute: %v", err)
	}
	if _, err := h.eng.EditCampaign(core.WithAllowMissingAttrs(ctx), c.ID, core.CampaignEdit{Text: &text}); err != nil {
		t.Fatalf("edit with WithAllowMissingAttrs: %v", err)
	}
	if got, _ := h.eng.Campaign(ctx, c.ID); !slices.Contains(got.TemplateAttrs, "coupon") {
		t.Fatalf("template attrs after the edit: %v", got.TemplateAttrs)
	}
}
