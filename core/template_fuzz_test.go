package core_test

import (
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
)

// FuzzTemplates puts hostile templates through CheckTemplates and the
// renderer under a small budget. Invariants:
//   - CheckTemplates either refuses with EINVALID or accepts;
//   - it returns within the time budget plus a margin, whatever the
//     template does (loops that write, loops that do not, template calls);
//   - an accepted template renders the sample again within the budget,
//     and what it renders is never larger than the size budget.
//
// The corpus holds the inputs of the hardening issue
// ({{range 200000000}}{{end}}x, {{range 30000000}}0123456789{{end}}).
func FuzzTemplates(f *testing.F) {
	for _, s := range [][3]string{
		{"Hi {{.Name}}", "Dear {{.Name}} in {{.Attr.city}}", "<p>{{.Email}}</p>"},
		{"{{range 200000000}}{{end}}x", "x", ""},
		{"x", "{{range 30000000}}0123456789{{end}}", ""},
		{"x", "{{$n := 2000000000}}{{range $n}}{{end}}", ""},
		{"x", "", "{{$n := 90000}}{{range $n}}<b>{{$.Name}}</b>{{end}}"},
		{"x", `{{define "a"}}{{range 10}}{{template "b"}}{{end}}{{end}}{{define "b"}}{{range 99999}}{{end}}{{end}}{{template "a"}}`, ""},
		{"{{.Nmae}}", "x", ""},
		{"x", `{{define "r"}}{{template "r"}}{{end}}{{template "r"}}`, ""},
		{"x", `{{printf "%0999999d" 1}}{{printf "%0999999d" 1}}`, ""},
	} {
		f.Add(s[0], s[1], s[2])
	}
	budget := core.RenderBudget{Timeout: 50 * time.Millisecond, MaxBytes: 64 << 10}
	f.Fuzz(func(t *testing.T, subject, text, html string) {
		spec := core.CampaignSpec{Name: "f", Sender: "outbox", From: "a@example.org", Subject: subject, Text: text, HTML: html}
		start := time.Now()
		refs, err := core.CheckTemplates(spec, core.TemplateCheckOptions{Budget: budget, HasUnsubscribeURL: true})
		if d := time.Since(start); d > budget.Timeout+2*time.Second {
			t.Fatalf("CheckTemplates took %s with a %s budget", d, budget.Timeout)
		}
		if err != nil {
			if core.ErrorCode(err) != core.EINVALID {
				t.Fatalf("CheckTemplates: %v, want EINVALID", err)
			}
			return
		}
		c := &core.Campaign{ID: 1, Name: "f", From: spec.From, Subject: subject, Text: text, HTML: html}
		r, err := core.NewRenderer(c, "", nil, core.WithRenderBudget(budget))
		if err != nil {
			t.Fatalf("accepted by CheckTemplates, refused by NewRenderer: %v", err)
		}
		start = time.Now()
		m, err := r.Render(core.SampleRecipient(refs), time.Now())
		if d := time.Since(start); d > budget.Timeout+2*time.Second {
			t.Fatalf("Render took %s with a %s budget", d, budget.Timeout)
		}
		if err != nil {
			// The sample rendered at create within the same budget; a
			// second run may only run out of time on a loaded machine.
			if core.ErrorCode(err) != core.EINVALID {
				t.Fatalf("Render: %v", err)
			}
			return
		}
		if n := int64(len(m.Subject) + len(m.Text) + len(m.HTML)); n > budget.MaxBytes {
			t.Fatalf("rendered %d bytes past a %d-byte budget", n, budget.MaxBytes)
		}
	})
}
