package core_test

import (
	"strings"
	"testing"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/sdk"
)

func TestTransition(t *testing.T) {
	type tc struct {
		from, pausedFrom core.CampaignStatus
		a                core.Action
		to               core.CampaignStatus // "" = illegal
	}
	cases := []tc{
		{core.CampaignDraft, "", core.ActionActivate, core.CampaignActive},
		{core.CampaignActive, "", core.ActionActivate, ""},
		{core.CampaignActive, "", core.ActionExecute, core.CampaignSending},
		{core.CampaignDraft, "", core.ActionExecute, ""},
		{core.CampaignSending, "", core.ActionExecute, ""},
		{core.CampaignActive, "", core.ActionPause, core.CampaignPaused},
		{core.CampaignSending, "", core.ActionPause, core.CampaignPaused},
		{core.CampaignDraft, "", core.ActionPause, ""},
		{core.CampaignPaused, core.CampaignSending, core.ActionResume, core.CampaignSending},
		{core.CampaignPaused, core.CampaignActive, core.ActionResume, core.CampaignActive},
		{core.CampaignSending, "", core.ActionResume, ""},
		{core.CampaignDraft, "", core.ActionCancel, core.CampaignCancelled},
		{core.CampaignSending, "", core.ActionCancel, core.CampaignCancelled},
		{core.CampaignPaused, core.CampaignSending, core.ActionCancel, core.CampaignCancelled},
		{core.CampaignCompleted, "", core.ActionCancel, ""},
		{core.CampaignCancelled, "", core.ActionCancel, ""},
		{core.CampaignCompleted, "", core.ActionRetry, core.CampaignSending},
		{core.CampaignSending, "", core.ActionRetry, core.CampaignSending},
		{core.CampaignDraft, "", core.ActionRetry, ""},
		{core.CampaignActive, "", core.ActionRetry, ""},
		{core.CampaignCancelled, "", core.ActionRetry, ""},
		{core.CampaignPaused, core.CampaignSending, core.ActionRetry, core.CampaignPaused}, // requeued, sent after resume
	}
	for _, c := range cases {
		to, err := core.Transition(c.from, c.pausedFrom, c.a)
		if c.to == "" {
			if err == nil {
				t.Errorf("%s from %s: want error, got %s", c.a, c.from, to)
				continue
			}
			if core.ErrorCode(err) != core.ECONFLICT || !strings.Contains(err.Error(), string(c.from)) {
				t.Errorf("%s from %s: error %q should be a conflict naming %s", c.a, c.from, err, c.from)
			}
			continue
		}
		if err != nil || to != c.to {
			t.Errorf("%s from %s: got %s, %v; want %s", c.a, c.from, to, err, c.to)
		}
	}
}

func TestTransitionErrorNamesBothStates(t *testing.T) {
	_, err := core.Transition(core.CampaignCompleted, "", core.ActionCancel)
	if err == nil || !strings.Contains(err.Error(), "COMPLETED") || !strings.Contains(err.Error(), "CANCELLED") {
		t.Fatalf("got %v, want both states named", err)
	}
}

func validSpec() core.CampaignSpec {
	return core.CampaignSpec{Name: "n", Sender: "mail", From: "a@example.com", Subject: "Hi {{.Name}}", Text: "body"}
}

func TestCampaignSpecValidate(t *testing.T) {
	cases := map[string]struct {
		mut  func(*core.CampaignSpec)
		want string // substring of the error; "" = valid
	}{
		"ok":                {func(*core.CampaignSpec) {}, ""},
		"no name":           {func(s *core.CampaignSpec) { s.Name = " " }, "name: required"},
		"bad from":          {func(s *core.CampaignSpec) { s.From = "nope" }, "from: invalid address"},
		"crlf subject":      {func(s *core.CampaignSpec) { s.Subject = "a\r\nBcc: x@y.z" }, "subject: contains CR or LF"},
		"lf name":           {func(s *core.CampaignSpec) { s.Name = "a\nb" }, "name: contains CR or LF"},
		"nul text":          {func(s *core.CampaignSpec) { s.Text = "a\x00" }, "text: contains a NUL"},
		"non utf8":          {func(s *core.CampaignSpec) { s.Subject = "\xff" }, "subject: not valid UTF-8"},
		"bad template":      {func(s *core.CampaignSpec) { s.Subject = "{{.Name" }, "subject: template"},
		"bad html template": {func(s *core.CampaignSpec) { s.HTML = "{{if}}" }, "html: template"},
		"no body":           {func(s *core.CampaignSpec) { s.Text = "" }, "needs a text or an HTML body"},
		"batch 51":          {func(s *core.CampaignSpec) { s.BatchSize = 51 }, "batch_size: 51"},
		"concurrency -1":    {func(s *core.CampaignSpec) { s.Concurrency = -1 }, "concurrency: -1"},
		"header crlf":       {func(s *core.CampaignSpec) { s.Headers = []sdk.Header{{Name: "X-A", Value: "1\r\nBcc: x@y.z"}} }, "header 1"},
		"header reserved":   {func(s *core.CampaignSpec) { s.Headers = []sdk.Header{{Name: "Message-ID", Value: "<x@y>"}} }, "cannot be overridden"},
		"reply-to crlf":     {func(s *core.CampaignSpec) { s.ReplyTo = "a@b.c\r\n" }, "reply_to: contains CR or LF"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			s := validSpec()
			c.mut(&s)
			err := s.Validate(5)
			if c.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if s.Concurrency != 5 || s.BatchSize != core.MaxBatchSize {
					t.Fatalf("defaults not applied: %+v", s)
				}
				return
			}
			if err == nil || core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want EINVALID containing %q", err, c.want)
			}
		})
	}
}

func TestNormalizeAddress(t *testing.T) {
	cases := []struct{ in, addr, name, err string }{
		{"Ann@Example.COM", "Ann@example.com", "", ""},
		{"  bob@x.org ", "bob@x.org", "", ""},
		{"Bob <bob@X.org>", "bob@x.org", "Bob", ""},
		{"root@localhost", "root@localhost", "", ""},
		{"nope", "", "", "invalid email address"},
		{"a@b", "", "", "not fully qualified"},
		{"", "", "", "empty"},
		{"a@b.c\r\nBcc: x@y.z", "", "", "CR, LF or NUL"},
		{"\xff@b.c", "", "", "UTF-8"},
		// IDN domains: one A-label form however they are spelled (issue 12
		// item 11), invalid ones refused.
		{"user@bücher.example", "user@xn--bcher-kva.example", "", ""},
		{"User@XN--BCHER-KVA.Example", "User@xn--bcher-kva.example", "", ""},
		{"Ann <ann@BÜCHER.example>", "ann@xn--bcher-kva.example", "Ann", ""},
		{"u@bu\u0308cher.example", "u@xn--bcher-kva.example", "", ""}, // decomposed ü
		{"u@ｂüｃｈｅｒ。example", "u@xn--bcher-kva.example", "", ""},       // full-width letters and dot
		{"u@xn--zz.example", "", "", "not a valid internationalised domain name"},
		{"u@xn--.example", "", "", "not a valid internationalised domain name"},
		{"u@ｂüｃｈｅｒ。example。", "", "", "ends with a dot"},
	}
	for _, c := range cases {
		addr, name, err := core.NormalizeAddress(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: got %q, %v; want error %q", c.in, addr, err, c.err)
			}
			continue
		}
		if err != nil || addr != c.addr || name != c.name {
			t.Errorf("%q: got %q %q %v; want %q %q", c.in, addr, name, err, c.addr, c.name)
		}
	}
}

func TestLimitsValidate(t *testing.T) {
	l := core.DefaultLimits()
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	l.BatchSize = 51
	if err := l.Validate(); err == nil || !strings.Contains(err.Error(), "queue.batch_size") {
		t.Fatalf("batch 51: got %v", err)
	}
	l = core.DefaultLimits()
	l.InDoubt = "maybe"
	if err := l.Validate(); err == nil || !strings.Contains(err.Error(), "queue.in_doubt") {
		t.Fatalf("in_doubt: got %v", err)
	}
}

// Every refusal of an operator's action names the campaign, its state and
// the command to run next, and keeps both states of the refused move.
func TestRefusedSaysNextCommand(t *testing.T) {
	c := &core.Campaign{ID: 3, Status: core.CampaignDraft}
	err := core.Refused(c, core.ActionExecute)
	if want := "campaign 3 is DRAFT: run `campaignd campaign activate 3` first"; err == nil || !strings.HasPrefix(err.Error(), want) ||
		!strings.Contains(err.Error(), "from DRAFT to SENDING") || core.ErrorCode(err) != core.ECONFLICT {
		t.Errorf("execute a DRAFT: %v, want %q... naming both states", err, want)
	}
	c = &core.Campaign{ID: 3, Status: core.CampaignSending, Stats: core.Stats{Queued: 1000, Sending: 200}}
	err = core.Refused(c, core.ActionExecute)
	if want := "campaign 3 is SENDING: already SENDING with 1,200 queued: `campaignd tick` sends them, or see `campaignd queue`"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("execute a SENDING campaign: %v, want %q", err, want)
	}
	statuses := []core.CampaignStatus{core.CampaignDraft, core.CampaignActive, core.CampaignSending, core.CampaignPaused, core.CampaignCompleted, core.CampaignCancelled}
	actions := []core.Action{core.ActionActivate, core.ActionExecute, core.ActionPause, core.ActionResume, core.ActionCancel, core.ActionRetry, core.ActionEdit, core.ActionDelete}
	for _, st := range statuses {
		for _, a := range actions {
			c := &core.Campaign{ID: 7, Status: st, PausedFrom: core.CampaignSending}
			err := core.Refused(c, a)
			if _, terr := core.Transition(st, c.PausedFrom, a); terr == nil {
				if err != nil {
					t.Errorf("%s %s: Transition allows it, Refused says %v", a, st, err)
				}
				continue
			}
			if err == nil || core.ErrorCode(err) != core.ECONFLICT || !strings.HasPrefix(err.Error(), "campaign 7 is "+string(st)+": ") ||
				!strings.Contains(err.Error(), "`campaignd ") {
				t.Errorf("%s %s: %v, want ECONFLICT naming campaign 7, its state and a command", a, st, err)
			}
		}
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1200: "1,200", 1234567: "1,234,567", -4500: "-4,500"} {
		if got := core.Thousands(n); got != want {
			t.Errorf("Thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
