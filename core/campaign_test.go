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
