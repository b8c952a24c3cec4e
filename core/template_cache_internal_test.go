package core

import "testing"

// TestCampaignTemplatesCache checks that the engine reuses a campaign's
// parsed templates only for the same sources, and keeps at most
// maxCachedTemplates campaigns, dropping the least recently used.
func TestCampaignTemplatesCache(t *testing.T) {
	e := &Engine{}
	c := &Campaign{ID: 1, Subject: "Hi {{.Name}}", Text: "t", HTML: "<p>{{.Email}}</p>"}
	a, err := e.campaignTemplates(c)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := e.campaignTemplates(&Campaign{ID: 1, Subject: c.Subject, Text: c.Text, HTML: c.HTML}); b != a {
		t.Fatal("same sources: parsed again, want the cached templates")
	}
	edited := &Campaign{ID: 1, Subject: c.Subject, Text: c.Text, HTML: "<p>{{.Name}}</p>"}
	b, err := e.campaignTemplates(edited)
	if err != nil || b == a || !b.parses(edited.Subject, edited.Text, edited.HTML) {
		t.Fatalf("edited HTML: got the old templates (%v)", err)
	}
	if _, err := e.campaignTemplates(&Campaign{ID: 1, Subject: "{{.Nope"}); err == nil {
		t.Fatal("a template that does not parse: no error")
	}
	if got, _ := e.campaignTemplates(edited); got != b {
		t.Fatal("a failed parse replaced the cached templates")
	}
	for id := int64(2); id <= maxCachedTemplates; id++ {
		if _, err := e.campaignTemplates(&Campaign{ID: id, Subject: "s"}); err != nil {
			t.Fatal(err)
		}
	}
	e.campaignTemplates(edited) // campaign 1 is now the most recently used
	if _, err := e.campaignTemplates(&Campaign{ID: 100, Subject: "s"}); err != nil {
		t.Fatal(err)
	}
	if n := len(e.templates.entries); n != maxCachedTemplates {
		t.Fatalf("%d campaigns cached, want at most %d", n, maxCachedTemplates)
	}
	if e.templates.entries[2] != nil || e.templates.entries[1] == nil {
		t.Fatal("evicted the wrong campaign: want the least recently used (2)")
	}
}
