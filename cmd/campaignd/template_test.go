package main_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/sqlite"
)

// The exact templates of the hardening issue (item 2).
const (
	budgetLoopTpl = "{{range 200000000}}{{end}}x"
	budgetSizeTpl = "{{range 30000000}}0123456789{{end}}"
	// budgetSlowTpl passes the parse-time check (the count is a variable)
	// and is stopped by the render budget at run time.
	budgetSlowTpl = "{{$n := 2000000000}}{{range $n}}{{end}}"
)

// tplCreate runs campaign create with a name and a from, then args.
func tplCreate(e *Env, args ...string) Result {
	e.T.Helper()
	return e.Run(append([]string{"campaign", "create", "--name", "tpl", "--from", "news@example.com"}, args...)...)
}

// TestTemplateCheckedAtCreate: every template is executed against a
// sample recipient at create; an unknown field is refused with its
// template, line and column; {{.UnsubscribeURL}} needs [http] public_url;
// nothing is stored for a refused campaign.
func TestTemplateCheckedAtCreate(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, "")
	badHTML := WriteFile(t, e.Dir, "bad.html", "<html>\n<body>\n<p>Dear {{.Name}}, {{.Campaign.Nmae}}</p>\n</body></html>\n")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"subject", []string{"--subject", "Hi {{.Nmae}}", "--text", "x"},
			"subject:1:6: unknown field Nmae (fields: .Email .Name .Attr.<key> .Campaign.Name .Campaign.ID .UnsubscribeURL)"},
		{"text", []string{"--subject", "Hi", "--text", "Dear {{.Name}},\n\n{{.Attr.city.zip}}\n"}, "text:3:8: can't evaluate field zip"},
		{"html", []string{"--subject", "Hi", "--html-file", badHTML}, "html:3:31: unknown field Nmae of .Campaign (fields: .Campaign.Name .Campaign.ID)"},
		{"unsubscribe", []string{"--subject", "Hi", "--text", "bye: {{.UnsubscribeURL}}"},
			"text:1:8: {{.UnsubscribeURL}} would render empty: set [http] public_url"},
		{"unsubscribe-html", []string{"--subject", "Hi", "--html", `<a href="{{$.UnsubscribeURL}}">x</a>`}, "[http] public_url"},
	} {
		r := tplCreate(e, tc.args...)
		if r.Code != 1 || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("%s: want exit 1 and %q\n%s", tc.name, tc.want, r)
		}
	}
	var cs []core.Campaign
	e.MustJSON(&cs, "campaign", "list")
	if len(cs) != 0 {
		t.Fatalf("refused campaigns were stored: %+v", cs)
	}

	// With public_url set, {{.UnsubscribeURL}} is fine.
	e2 := NewEnv(t, "[http]\npublic_url = \"https://mail.example.com/\"\nunsubscribe_secret = \"0123456789abcdef-unsubscribe\"\n")
	var c core.Campaign
	e2.MustJSON(&c, "campaign", "create", "--name", "u", "--from", "news@example.com", "--subject", "Hi", "--text", "bye: {{.UnsubscribeURL}}")
	if c.ID <= 0 || c.Status != core.CampaignDraft {
		t.Fatalf("create with public_url: %+v", c)
	}
}

// TestTemplateMissingAttrs: the attributes the templates use are stored
// and shown; import reports the rows lacking one; activate and execute
// refuse while a recipient lacks one (naming how many, one address and
// what to do) unless --allow-missing-attrs is given, standalone and
// through the daemon; with it, the missing attribute renders empty.
func TestTemplateMissingAttrs(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"standalone", "daemon"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := NewEnv(t, "")
			if mode == "daemon" {
				e.StartDaemon()
			}
			id := MustCreateCampaign(t, e, "--subject", "News for {{.Attr.city}}", "--text", `Your plan: {{index .Attr "plan"}}.`)
			ids := strconv.FormatInt(id, 10)
			var c core.Campaign
			e.MustJSON(&c, "campaign", "show", ids)
			if !slices.Equal(c.TemplateAttrs, []string{"city", "plan"}) {
				t.Fatalf("show --json: template_attrs %v, want [city plan]", c.TemplateAttrs)
			}
			if out := e.MustRun("campaign", "show", ids); !strings.Contains(out, "attributes:  city, plan (used by the templates)") {
				t.Errorf("show does not list the attributes:\n%s", out)
			}

			csv := WriteFile(t, e.Dir, "a.csv", "email,name,city,plan\nann@example.com,Ann,Oslo,gold\nbob@example.com,Bob,,gold\n"+
				"cid@example.com,Cid,Rome,gold\ndan@example.com,Dan,Lima,\n")
			var res core.ImportResult
			e.MustJSON(&res, "recipients", "import", ids, csv)
			if m := res.MissingAttrs; res.Added != 4 || m == nil || m.Rows != 2 || !slices.Equal(m.Lines, []int64{3, 5}) ||
				!slices.Equal(m.Attrs, []string{"city", "plan"}) {
				t.Fatalf("import --json: %+v missing %+v, want 2 rows (lines 3, 5) lacking city, plan", res, res.MissingAttrs)
			}
			more := WriteFile(t, e.Dir, "b.csv", "email,name\neve@example.com,Eve\n")
			if out := e.MustRun("recipients", "import", ids, more); !strings.Contains(out,
				"missing attributes: 1 rows lack city, plan, used by the templates (lines 2)") {
				t.Errorf("import does not report the missing attributes:\n%s", out)
			}

			for _, step := range []string{"activate", "execute"} {
				r := e.Run("campaign", step, ids)
				if r.Code != 1 || !strings.Contains(r.Stderr, "3 recipients lack attributes its templates use (city, plan)") ||
					!strings.Contains(r.Stderr, "bob@example.com lacks city") ||
					!strings.Contains(r.Stderr, "campaignd campaign "+step+" "+ids+" --allow-missing-attrs") {
					t.Fatalf("%s with recipients lacking attributes: want exit 1 naming 3, bob@example.com and the flag\n%s", step, r)
				}
				if step == "activate" {
					e.MustRun("campaign", "activate", ids, "--allow-missing-attrs")
				}
			}
			var x core.ExecuteResult
			e.MustJSON(&x, "campaign", "execute", "--allow-missing-attrs", ids)
			if x.Queued != 5 {
				t.Fatalf("execute --allow-missing-attrs: %+v", x)
			}
			var tr core.TickResult
			e.MustJSON(&tr, "tick")
			if tr.Sent != 5 {
				t.Fatalf("tick: %+v", tr)
			}
			var rs []core.Recipient
			e.MustJSON(&rs, "recipients", "list", ids)
			for _, r := range rs {
				b, err := os.ReadFile(filepath.Join(e.Outbox, fmt.Sprintf("%d-%d.eml", id, r.ID)))
				if err != nil {
					t.Fatal(err)
				}
				want := "Subject: News for " + r.Attrs["city"] + "\r\n"
				if r.Attrs["city"] == "" {
					want = "Subject: News for\r\n"
				}
				if !strings.Contains(string(b), want) && !strings.Contains(string(b), strings.TrimSuffix(want, "\r\n")+" \r\n") {
					t.Errorf("%s: message lacks %q:\n%s", r.Email, want, b)
				}
			}
		})
	}
}

// storeCampaign writes a campaign straight into the database, as a
// database written before templates were checked at create would hold
// it, and gives it one recipient per address, ready to send.
func storeCampaign(t *testing.T, e *Env, subject, text string, addrs ...string) string {
	t.Helper()
	db, err := sqlite.Open(context.Background(), e.DB)
	if err != nil {
		t.Fatal(err)
	}
	c := &core.Campaign{Name: "old", Sender: "outbox", From: "news@example.com", Subject: subject, Text: text,
		Concurrency: 5, BatchSize: 50}
	err = db.CreateCampaign(context.Background(), c)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	ids := strconv.FormatInt(c.ID, 10)
	csv := WriteFile(t, e.Dir, "old-"+ids+".csv", "email\n"+strings.Join(addrs, "\n")+"\n")
	e.MustRun("recipients", "import", ids, csv)
	e.MustRun("campaign", "activate", ids)
	e.MustRun("campaign", "execute", ids)
	return ids
}

// TestSecurityTemplateBudget (hardening item 2): the templates
// are refused at create at once; stored anyway (an older database), they
// fail their recipients with class template at send time, and a tick
// with a template over its time or size budget ends within tick_timeout.
func TestSecurityTemplateBudget(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, "[queue]\ntick_timeout = \"5s\"\nrender_timeout = \"300ms\"\nrender_max_bytes = 100000\n")
	for _, tc := range []struct{ flag, tpl, want string }{
		{"--subject", budgetLoopTpl, "subject:1:9: {{range 200000000}} asks for 200000000 iterations in all: at most 100000 per message"},
		{"--text", budgetSizeTpl, "text:1:9: {{range 30000000}} asks for 30000000 iterations"},
		{"--text", budgetSlowTpl, "rendering took longer than render_timeout (300ms)"},
		{"--text", "{{$n := 20000}}{{range $n}}0123456789{{end}}", "larger than render_max_bytes (100000 bytes)"},
	} {
		args := []string{"--subject", "Hi", "--text", "x"}
		if tc.flag == "--subject" {
			args[1] = tc.tpl
		} else {
			args[3] = tc.tpl
		}
		start := time.Now()
		r := tplCreate(e, args...)
		if r.Code != 1 || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("create %s %q: want exit 1 and %q\n%s", tc.flag, tc.tpl, tc.want, r)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("create %s %q took %s", tc.flag, tc.tpl, d)
		}
	}

	// The same templates already in the database: the tick fails their
	// recipients with class template and is not held.
	MustCreateCampaign(t, e) // creates the database
	type stored struct{ id, want string }
	var all []stored
	for i, tpl := range []struct{ subject, text, want string }{
		{budgetLoopTpl, "x", "{{range 200000000}}"},
		{"x", budgetSizeTpl, "{{range 30000000}}"},
		{"x", budgetSlowTpl, "render_timeout (300ms)"},
		{"x", "{{$n := 20000}}{{range $n}}0123456789{{end}}", "render_max_bytes (100000 bytes)"},
	} {
		id := storeCampaign(t, e, tpl.subject, tpl.text, fmt.Sprintf("a%d@example.com", i), fmt.Sprintf("b%d@example.com", i))
		all = append(all, stored{id, tpl.want})
	}
	start := time.Now()
	var tr core.TickResult
	e.MustJSON(&tr, "tick")
	if d := time.Since(start); d > 5*time.Second+3*time.Second {
		t.Errorf("tick took %s, past tick_timeout (5s)", d)
	}
	if tr.Failed != 8 || tr.Sent != 0 {
		t.Errorf("tick: %+v, want 8 failed", tr)
	}
	for _, s := range all {
		var rs []core.Recipient
		e.MustJSON(&rs, "recipients", "list", s.id)
		for _, r := range rs {
			if r.Status != core.RecipientFailed || r.LastErrorClass != core.ClassTemplate || !strings.Contains(r.LastError, s.want) {
				t.Errorf("campaign %s %s: %s class %q (%s), want FAILED class template naming %q", s.id, r.Email, r.Status, r.LastErrorClass, r.LastError, s.want)
			}
		}
	}
	if files, _ := filepath.Glob(filepath.Join(e.Outbox, "*.eml")); len(files) != 0 {
		t.Errorf("messages written for failed recipients: %v", files)
	}
}

// TestFaultTemplateSIGTERM (hardening item 2): SIGTERM ends the daemon
// within shutdown_timeout while a tick renders a template that would loop
// for minutes under a generous render budget; the recipients go back to
// the queue unsent, their attempts refunded.
func TestFaultTemplateSIGTERM(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, "shutdown_timeout = \"2s\"\n[queue]\ntick_timeout = \"60s\"\nrender_timeout = \"30s\"\n")
	MustCreateCampaign(t, e) // creates the database
	id := storeCampaign(t, e, "x", budgetSlowTpl, "a@example.com", "b@example.com")
	d := e.StartDaemon()
	tick := make(chan Result, 1)
	go func() { tick <- e.RunWith(RunOpts{Timeout: 90 * time.Second}, "tick") }()
	time.Sleep(time.Second) // the tick is rendering
	start := time.Now()
	if err := d.Stop(); err != nil {
		t.Fatalf("daemon stop: %v\n%s", err, d.Stderr())
	}
	if took := time.Since(start); took > 2*time.Second+3*time.Second {
		t.Errorf("the daemon took %s to stop after SIGTERM, past shutdown_timeout (2s)", took)
	}
	<-tick
	var rs []core.Recipient
	e.MustJSON(&rs, "recipients", "list", id)
	for _, r := range rs {
		if r.Status != core.RecipientQueued || r.Attempts != 0 {
			t.Errorf("%s: %s after %d attempts, want QUEUED with its attempt refunded", r.Email, r.Status, r.Attempts)
		}
	}
	if len(rs) != 2 {
		t.Fatalf("recipients: %+v", rs)
	}
}
