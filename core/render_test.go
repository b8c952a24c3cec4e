package core_test

import (
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/sdk"
)

func TestRenderer(t *testing.T) {
	c := &core.Campaign{ID: 7, Name: "Spring", From: "News <news@Example.org>", Subject: "Hi {{.Name}} from {{.Attr.city}}",
		Text: "Dear {{.Name}}, {{.Campaign.Name}} {{.UnsubscribeURL}}", HTML: "<p>{{.Name}}</p>"}
	unsub := func(c *core.Campaign, r *core.Recipient) string { return "https://u.example/x?r=1" }
	r, err := core.NewRenderer(c, "", unsub)
	if err != nil {
		t.Fatal(err)
	}
	rc := &core.Recipient{ID: 42, Email: "ann@example.com", Name: "<Ann & Bob>", Attrs: map[string]string{"city": "Oslo"}}
	m, err := r.Render(rc, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if m.MessageID != "<c7.r42@Example.org>" && m.MessageID != "<c7.r42@example.org>" {
		t.Errorf("message id %q", m.MessageID)
	}
	if m.Subject != "Hi <Ann & Bob> from Oslo" {
		t.Errorf("subject %q", m.Subject)
	}
	if !strings.Contains(m.HTML, "&lt;Ann &amp; Bob&gt;") {
		t.Errorf("html not escaped: %q", m.HTML)
	}
	if !strings.Contains(m.Text, "Spring https://u.example/x?r=1") {
		t.Errorf("text %q", m.Text)
	}
	var hasUnsub, hasPost, hasBulk bool
	for _, h := range m.Headers {
		switch h.Name {
		case "List-Unsubscribe":
			hasUnsub = h.Value == "<https://u.example/x?r=1>"
		case "List-Unsubscribe-Post":
			hasPost = h.Value == "List-Unsubscribe=One-Click"
		case "Precedence":
			hasBulk = h.Value == "bulk"
		}
	}
	if !hasUnsub || !hasPost || !hasBulk {
		t.Errorf("headers %+v", m.Headers)
	}
	// Same recipient, same Message-ID: retries are recognisable.
	m2, _ := r.Render(rc, time.Now())
	if m2.MessageID != m.MessageID {
		t.Errorf("message id not deterministic: %q vs %q", m.MessageID, m2.MessageID)
	}
}

// A campaign's own Precedence header replaces the default "bulk" instead
// of adding a second one (issue 12 item 13).
func TestRenderCampaignPrecedence(t *testing.T) {
	c := &core.Campaign{ID: 7, Name: "L", From: "news@example.org", Subject: "s", Text: "t",
		Headers: []sdk.Header{{Name: "precedence", Value: "list"}, {Name: "X-Tag", Value: "a"}}}
	r, err := core.NewRenderer(c, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.Render(&core.Recipient{ID: 1, Email: "ann@example.com"}, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	var precedence []string
	for _, h := range m.Headers {
		if strings.EqualFold(h.Name, "Precedence") {
			precedence = append(precedence, h.Value)
		}
	}
	if len(precedence) != 1 || precedence[0] != "list" {
		t.Fatalf("Precedence headers %q, want just the campaign's \"list\"", precedence)
	}
}

func TestRenderTemplateFailure(t *testing.T) {
	c := &core.Campaign{ID: 1, From: "a@example.org", Subject: "{{.Attr.city}}", Text: "x"}
	r, err := core.NewRenderer(c, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Missing attributes are refused at activate and execute; one that
	// reaches the tick was allowed by the operator and renders empty.
	if m, err := r.Render(&core.Recipient{ID: 1, Email: "b@example.org"}, time.Now()); err != nil || m.Subject != "" {
		t.Fatalf("missing attribute: %v %+v", err, m)
	}
	c.Subject = "{{.Attr.x}}"
	r, _ = core.NewRenderer(c, "", nil)
	_, err = r.Render(&core.Recipient{ID: 1, Email: "b@example.org", Attrs: map[string]string{"x": "a\r\nBcc: evil@example.org"}}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "CR, LF") {
		t.Fatalf("header injection through an attribute: got %v", err)
	}
}
