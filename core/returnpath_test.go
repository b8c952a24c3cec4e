package core_test

import (
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
)

// TestRenderReturnPath: with a VERP template every message's envelope
// sender names its campaign and recipient; without one it is empty (the
// plugin's default).
func TestRenderReturnPath(t *testing.T) {
	c := &core.Campaign{ID: 7, From: "news@example.org", Subject: "Hi", Text: "x"}
	r, err := core.NewRenderer(c, "", nil, core.WithReturnPath("bounces+{campaign}.{recipient}@example.org"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.Render(&core.Recipient{ID: 42, Email: "ann@example.com"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if m.ReturnPath != "bounces+7.42@example.org" {
		t.Errorf("ReturnPath = %q", m.ReturnPath)
	}
	plain, _ := core.NewRenderer(c, "", nil)
	if m, _ := plain.Render(&core.Recipient{ID: 42, Email: "ann@example.com"}, time.Now()); m.ReturnPath != "" {
		t.Errorf("ReturnPath without a template = %q, want empty", m.ReturnPath)
	}
}

func TestValidateReturnPath(t *testing.T) {
	for _, ok := range []string{"bounces+{campaign}.{recipient}@example.com", "b-{recipient}-{campaign}@mail.example.com"} {
		if err := core.ValidateReturnPath(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for tmpl, want := range map[string]string{
		"bounces@example.com":                                    "{campaign} exactly once",
		"bounces+{campaign}@example.com":                         "{recipient} exactly once",
		"b+{campaign}.{recipient}.{campaign}@x.org":              "{campaign} exactly once",
		"bounces+{campaign}@{recipient}.example.com":             "local part",
		"bounces+{campaign}{recipient}@example.com":              "separated",
		"b1{campaign}.{recipient}@example.com":                   "separated",
		"bounces {campaign}.{recipient}@example.com":             "bare address",
		"Bounces <b+{campaign}.{recipient}@x.org>":               "bare address",
		"bounces+{campaign}.{recipient}":                         "must be an address",
		strings.Repeat("b", 30) + "{campaign}.{recipient}@x.org": "64 octets",
	} {
		err := core.ValidateReturnPath(tmpl)
		if err == nil || core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want EINVALID saying %q", tmpl, err, want)
		}
	}
	lim := core.DefaultLimits()
	lim.ReturnPath = "bounces@example.com"
	if err := lim.Validate(); err == nil || !strings.Contains(err.Error(), "bounces.return_path") {
		t.Errorf("Limits.Validate = %v, want it to name bounces.return_path", err)
	}
}
