package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// helpCommands returns the runnable commands `campaignd help` lists.
func helpCommands(t *testing.T, e *Env) []string {
	t.Helper()
	out := e.MustRun("help")
	_, list, ok := strings.Cut(out, "commands:\n")
	if !ok {
		t.Fatalf("help has no command list:\n%s", out)
	}
	list, _, _ = strings.Cut(list, "\n\n")
	var names []string
	for _, line := range strings.Split(list, "\n") {
		fields := strings.Fields(line)
		var words []string
		for _, f := range fields {
			if f != strings.ToLower(f) || strings.ContainsAny(f, "[|") {
				break // ID, FILE|-, [ID]: arguments
			}
			words = append(words, f)
			if len(words) == 2 || (len(words) == 1 && !isGroup(f)) {
				break
			}
		}
		names = append(names, strings.Join(words, " "))
	}
	return names
}

func isGroup(w string) bool {
	return w == "campaign" || w == "recipients" || w == "suppress" || w == "config" || w == "bounces" || w == "sender"
}

// Every command answers --help, -h and `help COMMAND` on stdout with exit
// 0, describes each of its flags, and its examples use every one of them.
func TestCLIHelp(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, "")
	names := helpCommands(t, e)
	if len(names) < 30 {
		t.Fatalf("help lists %d commands: %q", len(names), names)
	}
	flagLine := regexp.MustCompile(`^  (--?[a-z-]+)`)
	for _, name := range names {
		args := strings.Fields(name)
		var first string
		for i, form := range [][]string{append(args, "--help"), append(args, "-h"), append([]string{"help"}, args...)} {
			r := e.Run(form...)
			if r.Code != 0 || r.Stderr != "" || !strings.HasPrefix(r.Stdout, "usage: campaignd "+name) {
				t.Errorf("%q: %s", form, r)
				continue
			}
			if i == 0 {
				first = r.Stdout
			} else if r.Stdout != first {
				t.Errorf("%q differs from --help:\n%s", form, r.Stdout)
			}
		}
		_, flags, _ := strings.Cut(first, "\nflags:\n")
		flags, _, _ = strings.Cut(flags, "\n\n")
		_, examples, _ := strings.Cut(first, "\nexamples:\n")
		if examples == "" {
			t.Errorf("%s: no examples:\n%s", name, first)
		}
		for _, line := range strings.Split(flags, "\n") {
			m := flagLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			if !regexp.MustCompile(regexp.QuoteMeta(m[1]) + `\b`).MatchString(examples) {
				t.Errorf("%s: no example uses %s:\n%s", name, m[1], first)
			}
		}
	}
	// Groups list their subcommands.
	for _, g := range [][]string{{"campaign", "--help"}, {"help", "recipients"}, {"suppress", "-h"}} {
		if r := e.Run(g...); r.Code != 0 || !strings.Contains(r.Stdout, "subcommands:") {
			t.Errorf("%q: %s", g, r)
		}
	}
	// The usage of a command's mistake is its own.
	r := e.Run("campaign", "create", "--bogus")
	wantFail(t, r, 2, "bogus")
	if !strings.Contains(r.Stderr, "usage: campaignd campaign create [flags]") {
		t.Errorf("usage error: %s", r)
	}
}

// The completion scripts are generated from the same commands: each
// parses, and bash completes commands, subcommands and flags.
func TestCLICompletion(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, "")
	for _, sh := range []string{"bash", "zsh", "fish"} {
		script := WriteFile(t, e.Dir, "campaignd."+sh, e.MustRun("completion", sh))
		path, err := exec.LookPath(sh)
		if err != nil {
			t.Logf("%s is not installed: its script's syntax is not checked", sh)
			continue
		}
		check := []string{"-n", script}
		if sh == "fish" {
			check = []string{"--no-execute", script}
		}
		if out, err := exec.Command(path, check...).CombinedOutput(); err != nil {
			t.Errorf("%s %v: %v\n%s", sh, check, err, out)
		}
	}
	wantFail(t, e.Run("completion", "tcsh"), 2, "tcsh")
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	cases := map[string]string{
		"campaign cr":                        "create",
		"camp":                               "campaign campaigns",
		"--config x.toml campaigns ex":       "execute",
		"recipients list 3 --a":              "--after --all",
		"tick --camp":                        "--campaign",
		"completion f":                       "fish",
		"suppress ":                          "add import list remove",
		"executions --li":                    "--limit",
		"--db /tmp/x.db campaign create --h": "--header --html --html-file",
	}
	for line, want := range cases {
		words := strings.Split("campaignd "+line, " ")
		src := fmt.Sprintf(`source %q; COMP_WORDS=(%s); COMP_CWORD=%d; _campaignd; echo "${COMPREPLY[*]}"`,
			filepath.Join(e.Dir, "campaignd.bash"), quoteWords(words), len(words)-1)
		out, err := exec.Command(bash, "--norc", "-c", src).CombinedOutput()
		if err != nil {
			t.Errorf("%q: %v\n%s", line, err, out)
			continue
		}
		if got := strings.TrimSpace(string(out)); got != want {
			t.Errorf("complete %q = %q, want %q", line, got, want)
		}
	}
}

func quoteWords(ws []string) string {
	var q []string
	for _, w := range ws {
		q = append(q, "'"+w+"'")
	}
	return strings.Join(q, " ")
}

// recipients list pages with --limit and --after, streams with --all, and
// says on stderr when a page stops with rows left; standalone and through
// the daemon.
func TestCLIRecipientsListPages(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, "")
	id := MustCreateCampaign(t, e)
	ids := fmt.Sprint(id)
	var csv strings.Builder
	csv.WriteString("email,name\n")
	for i := range 2345 {
		fmt.Fprintf(&csv, "r%04d@example.com,R%d\n", i, i)
	}
	e.MustRun("recipients", "import", ids, WriteFile(t, e.Dir, "list.csv", csv.String()))
	check := func(t *testing.T) {
		r := e.Run("recipients", "list", ids)
		if r.Code != 0 || strings.Count(r.Stdout, "@example.com") != 100 {
			t.Fatalf("default page: %s", r)
		}
		var page []struct{ ID int64 }
		e.MustJSON(&page, "recipients", "list", ids, "--limit", "10")
		if len(page) != 10 {
			t.Fatalf("--limit 10: %d rows", len(page))
		}
		r = e.Run("recipients", "list", ids, "--limit", "10", "--json")
		if want := fmt.Sprintf("campaignd: showing 10 of 2,345: --limit N, --after %d or --all for more\n", page[9].ID); r.Stderr != want {
			t.Errorf("stderr = %q, want %q", r.Stderr, want)
		}
		var next []struct{ ID int64 }
		e.MustJSON(&next, "recipients", "list", ids, "--limit", "10", "--after", fmt.Sprint(page[9].ID))
		if len(next) != 10 || next[0].ID <= page[9].ID {
			t.Errorf("--after: %+v", next)
		}
		r = e.Run("recipients", "list", ids, "--after", fmt.Sprint(page[9].ID), "--limit", "5000")
		if r.Code != 0 || r.Stderr != "" || strings.Count(r.Stdout, "@example.com") != 2335 {
			t.Errorf("the last page says nothing more: %d rows, stderr %q", strings.Count(r.Stdout, "@example.com"), r.Stderr)
		}
		r = e.Run("recipients", "list", ids, "--all")
		if r.Code != 0 || r.Stderr != "" || strings.Count(r.Stdout, "@example.com") != 2345 || strings.Count(r.Stdout, "EMAIL") != 1 {
			t.Errorf("--all: %d rows, %d headers, stderr %q", strings.Count(r.Stdout, "@example.com"), strings.Count(r.Stdout, "EMAIL"), r.Stderr)
		}
		var all []struct {
			ID    int64
			Email string
		}
		e.MustJSON(&all, "recipients", "list", ids, "--all", "--json")
		if len(all) != 2345 || all[0].Email != "r0000@example.com" || all[2344].Email != "r2344@example.com" {
			t.Errorf("--all --json: %d rows", len(all))
		}
		wantFail(t, e.Run("recipients", "list", ids, "--limit", "100001"), 1, "100000")
	}
	t.Run("standalone", check)
	d := e.StartDaemon()
	defer d.Stop()
	t.Run("daemon", check)
}

// status answers standalone and through the daemon, one JSON shape.
func TestCLIStatus(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, "")
	wantFail(t, e.Run("status"), 1, "does not exist")
	e.MustRun("init")
	id := MustCreateCampaign(t, e)
	e.MustRun("recipients", "add", fmt.Sprint(id), "a@example.com")
	e.MustRun("campaign", "activate", fmt.Sprint(id))
	e.MustRun("campaign", "execute", fmt.Sprint(id))
	type status struct {
		Daemon        bool   `json:"daemon"`
		Version       string `json:"version"`
		Database      string `json:"database"`
		SchemaVersion int    `json:"schema_version"`
		Senders       []struct {
			Name    string `json:"name"`
			Found   bool   `json:"found"`
			Running *bool  `json:"running"`
		} `json:"senders"`
		LastTick *struct {
			Sent int `json:"sent"`
		} `json:"last_tick"`
		Queue *struct {
			Queued int64 `json:"queued"`
		} `json:"queue"`
	}
	var st status
	e.MustJSON(&st, "status", "--json")
	if st.Daemon || st.Version == "" || st.Database == "" || st.SchemaVersion == 0 || len(st.Senders) == 0 ||
		!st.Senders[0].Found || st.Senders[0].Running != nil || st.LastTick != nil || st.Queue == nil || st.Queue.Queued != 1 {
		t.Errorf("standalone status: %+v", st)
	}
	if out := e.MustRun("status"); !strings.Contains(out, "not running") || !strings.Contains(out, "last tick: none yet") ||
		!strings.Contains(out, "1 queued") || !strings.Contains(out, "\nconfig:    "+e.Config+"\n") {
		t.Errorf("status:\n%s", out)
	}
	e.MustRun("tick")
	d := e.StartDaemon()
	defer d.Stop()
	st = status{}
	e.MustJSON(&st, "status", "--json")
	if !st.Daemon || st.Database == "" || len(st.Senders) == 0 || st.Senders[0].Running == nil || st.LastTick == nil ||
		st.LastTick.Sent != 1 || st.Queue == nil || st.Queue.Queued != 0 {
		t.Errorf("daemon status: %+v", st)
	}
	if out := e.MustRun("status"); !strings.Contains(out, "daemon:    running") || !strings.Contains(out, "sent 1") {
		t.Errorf("status:\n%s", out)
	}
}

// Refusals say the command to run next; executions show their own result
// apart from the campaign's status; queue shows paused campaigns apart.
func TestCLINextSteps(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, "")
	id := MustCreateCampaign(t, e)
	ids := fmt.Sprint(id)
	var csv strings.Builder
	csv.WriteString("email\n")
	for i := range 1200 {
		fmt.Fprintf(&csv, "n%d@example.com\n", i)
	}
	e.MustRun("recipients", "import", ids, WriteFile(t, e.Dir, "n.csv", csv.String()))
	wantFail(t, e.Run("campaign", "execute", ids), 1,
		"campaign "+ids+" is DRAFT: run `campaignd campaign activate "+ids+"` first")
	e.MustRun("campaign", "activate", ids)
	wantFail(t, e.Run("campaign", "activate", ids), 1, "`campaignd campaign execute "+ids+"`")
	e.MustRun("campaign", "execute", ids)
	wantFail(t, e.Run("campaign", "execute", ids), 1,
		"campaign "+ids+" is SENDING: already SENDING with 1,200 queued: `campaignd tick` sends them, or see `campaignd queue`")

	out := e.MustRun("executions")
	if !strings.Contains(out, "RESULT OF THIS EXECUTION") || !strings.Contains(out, "refused, nothing queued: campaign "+ids+" is DRAFT") ||
		!strings.Contains(out, "ok: queued 1,200") || !strings.Contains(out, "SENDING") {
		t.Errorf("executions:\n%s", out)
	}
	if r := e.Run("executions", "--limit", "1"); r.Code != 0 || strings.Count(r.Stdout, "\n") != 2 || !strings.Contains(r.Stderr, "showing 1 of 3") {
		t.Errorf("executions --limit 1: %s", r)
	}

	if out := e.MustRun("queue"); strings.Contains(out, "paused") || !strings.Contains(out, "1200") {
		t.Errorf("queue while sending:\n%s", out)
	}
	e.MustRun("campaign", "pause", ids)
	var qs []struct {
		Status string `json:"status"`
		DueNow int64  `json:"due_now"`
		Held   int64  `json:"held_by_pause"`
	}
	e.MustJSON(&qs, "queue", "--json")
	if len(qs) != 1 || qs[0].Status != "PAUSED" || qs[0].DueNow != 0 || qs[0].Held != 1200 {
		t.Errorf("queue --json while paused: %+v", qs)
	}
	out = e.MustRun("queue")
	head, paused, ok := strings.Cut(out, "paused (nothing is sent until `campaignd campaign resume ID`):")
	if !ok || strings.Contains(head, "PAUSED") || !strings.Contains(paused, "1200") {
		t.Errorf("queue while paused:\n%s", out)
	}
	wantFail(t, e.Run("campaign", "pause", ids), 1, "`campaignd campaign resume "+ids+"`")
}

// The README's command list is the one `campaignd help` prints.
func TestREADMECommandList(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, "")
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "<!-- commands: the list `campaignd help` prints (TestREADMECommandList) -->\n```\n")
	if !ok {
		t.Fatal("README: no generated command list")
	}
	block, _, _ = strings.Cut(block, "```")
	_, list, _ := strings.Cut(e.MustRun("help"), "commands:\n")
	list, _, _ = strings.Cut(list, "\n\n")
	if strings.TrimSpace(block) != strings.TrimSpace(list) {
		t.Errorf("README's command list differs from `campaignd help`; paste this:\n%s", list)
	}
}
