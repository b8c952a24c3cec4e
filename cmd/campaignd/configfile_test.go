package main_test

// The configuration as an operator meets it: where it is found, what its
// relative paths mean, which commands may create the database, which
// sender a campaign gets, and what the logs look like under cron and under
// a service manager.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// noConfigEnv makes sure no configuration but the one a test names is
// found: no $CAMPAIGND_CONFIG from the test's environment.
var noConfigEnv = []string{"CAMPAIGND_CONFIG="}

// A relative database, socket, plugin_dir and outbox dir in a config file
// resolve against the file's directory, whatever the working directory and
// however the file was found (--config with a relative path, or
// $CAMPAIGND_CONFIG from elsewhere, as cron runs jobs from $HOME).
func TestConfigRelativePathsResolveAgainstConfigDir(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, "")
	srv := filepath.Join(e.Dir, "srv")
	rel, err := filepath.Rel(srv, binDir)
	if err != nil {
		t.Fatal(err)
	}
	WriteFile(t, srv, "campaignd.toml", fmt.Sprintf(
		"database = \"data/c.db\"\nsocket = \"run/c.sock\"\nplugin_dir = %q\n[senders.files]\nplugin = \"outbox\"\n[senders.files.options]\ndir = \"mail-out\"\n", rel))
	home := filepath.Join(e.Dir, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(srv, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	wantDB := filepath.Join(srv, "data", "c.db")

	viaFlag := RunOpts{Dir: e.Dir, NoConfig: true, Env: noConfigEnv}
	r := e.RunWith(viaFlag, "--config", "srv/campaignd.toml", "init")
	if r.Code != 0 || !strings.Contains(r.Stdout, wantDB) || !strings.Contains(r.Stdout, "created") {
		t.Fatalf("init with a relative --config: %s", r)
	}
	if _, err := os.Stat(wantDB); err != nil {
		t.Fatalf("init did not create %s: %v", wantDB, err)
	}

	viaEnv := RunOpts{Dir: home, NoConfig: true, Env: []string{"CAMPAIGND_CONFIG=" + filepath.Join(srv, "campaignd.toml")}}
	var cc struct {
		File     string `json:"file"`
		Database string `json:"database"`
		Socket   string `json:"socket"`
		Plugins  string `json:"plugin_dir"`
		Exists   bool   `json:"database_exists"`
	}
	r = e.RunWith(viaEnv, "--json", "config", "check")
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &cc) != nil {
		t.Fatalf("config check: %s", r)
	}
	if cc.File != filepath.Join(srv, "campaignd.toml") || cc.Database != wantDB || cc.Socket != filepath.Join(srv, "run", "c.sock") ||
		filepath.Clean(cc.Plugins) != filepath.Clean(binDir) || !cc.Exists {
		t.Errorf("config check from %s: %+v", home, cc)
	}

	var c struct {
		ID     int64  `json:"id"`
		Sender string `json:"sender"`
	}
	r = e.RunWith(viaEnv, "--json", "campaign", "create", "--name", "n", "--from", "a@example.com", "--subject", "s", "--text", "t", "--sender", "files")
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &c) != nil {
		t.Fatalf("create: %s", r)
	}
	id := fmt.Sprint(c.ID)
	for _, args := range [][]string{{"recipients", "add", id, "x@example.com"}, {"campaign", "activate", id}, {"campaign", "execute", id}, {"tick"}} {
		if r := e.RunWith(viaEnv, args...); r.Code != 0 {
			t.Fatalf("%v: %s", args, r)
		}
	}
	emls, _ := filepath.Glob(filepath.Join(srv, "mail-out", "*.eml"))
	if len(emls) != 1 {
		t.Errorf("the outbox dir \"mail-out\" should resolve to %s: found %v", filepath.Join(srv, "mail-out"), emls)
	}
	// The daemon, started from elsewhere with a relative --config, listens
	// where the file says.
	de := *e
	de.Dir, de.Config, de.Socket = home, filepath.Join("..", "srv", "campaignd.toml"), filepath.Join(srv, "run", "c.sock")
	de.ExtraEnv = append(append([]string{}, e.ExtraEnv...), noConfigEnv...)
	d := de.StartDaemon()
	r = e.RunWith(viaFlag, "--config", "srv/campaignd.toml", "--json", "campaign", "list")
	if r.Code != 0 || !strings.Contains(r.Stdout, `"files"`) {
		t.Errorf("list through the daemon: %s", r)
	}
	if err := d.Stop(); err != nil {
		t.Errorf("daemon: %v\n%s", err, d.Stderr())
	}
	for _, dir := range []string{e.Dir, home} {
		for _, name := range []string{"campaignd.db", "campaignd.db.lock", "data", "outbox"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				t.Errorf("%s was created in the working directory %s", name, dir)
			}
		}
	}
}

// The configuration is found in --config, then $CAMPAIGND_CONFIG, then
// ./campaignd.toml, then /etc/campaignd/campaignd.toml.
func TestConfigSearchOrder(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, "")
	flagFile := WriteFile(t, e.Dir, "flag/campaignd.toml", "[queue]\nbatch_size = 11\n")
	envFile := WriteFile(t, e.Dir, "env/campaignd.toml", "[queue]\nbatch_size = 12\n")
	WriteFile(t, e.Dir, "cwd/campaignd.toml", "[queue]\nbatch_size = 13\n")
	cwd := filepath.Join(e.Dir, "cwd")
	check := func(o RunOpts, args []string, wantFile string) {
		t.Helper()
		var cc struct {
			File string `json:"file"`
		}
		r := e.RunWith(o, append(args, "--json", "config", "check")...)
		if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &cc) != nil {
			t.Fatalf("config check: %s", r)
		}
		if cc.File != wantFile {
			t.Errorf("config in use %q, want %q", cc.File, wantFile)
		}
	}
	check(RunOpts{Dir: cwd, NoConfig: true, Env: []string{"CAMPAIGND_CONFIG=" + envFile}}, []string{"--config", flagFile}, flagFile)
	check(RunOpts{Dir: cwd, NoConfig: true, Env: []string{"CAMPAIGND_CONFIG=" + envFile}}, nil, envFile)
	check(RunOpts{Dir: cwd, NoConfig: true, Env: noConfigEnv}, nil, filepath.Join(cwd, "campaignd.toml"))
	// A $CAMPAIGND_CONFIG that does not exist is an error, not a fallback.
	wantFail(t, e.RunWith(RunOpts{Dir: cwd, NoConfig: true, Env: []string{"CAMPAIGND_CONFIG=" + filepath.Join(e.Dir, "nope.toml")}}, "config", "check"), 1, "nope.toml")
}

// Only init, campaign create and serve create a database. Every other
// command, tick included, fails with exit 1 naming the database and the
// configuration in use, and leaves nothing behind.
func TestConfigMissingDatabaseIsNotCreated(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, "")
	cmds := [][]string{
		{"tick"}, {"campaign", "list"}, {"campaign", "show", "1"}, {"campaign", "stats", "1"}, {"campaign", "activate", "1"},
		{"campaign", "execute", "1"}, {"campaign", "retry", "1"}, {"recipients", "add", "1", "x@example.com"},
		{"recipients", "list", "1"}, {"executions"}, {"ticks"}, {"queue"}, {"verify"},
		{"suppress", "add", "x@example.com"}, {"suppress", "list"},
	}
	for _, args := range cmds {
		wantFail(t, e.Run(args...), 1, "database "+e.DB+" does not exist", "config: "+e.Config, "campaignd init")
	}
	// Without any configuration, the message says where campaignd looked.
	empty := filepath.Join(e.Dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	none := RunOpts{Dir: empty, NoConfig: true, Env: noConfigEnv}
	wantFail(t, e.RunWith(none, "tick"), 1, filepath.Join(empty, "campaignd.db"), "none found", "$CAMPAIGND_CONFIG",
		filepath.Join(empty, "campaignd.toml"), "/etc/campaignd/campaignd.toml")
	wantFail(t, e.RunWith(none, "campaign", "list"), 1, filepath.Join(empty, "campaignd.db"))
	for _, dir := range []string{e.Dir, empty} {
		for _, name := range []string{"campaignd.db", "campaignd.db.lock", "campaignd.db-wal"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				t.Errorf("a refused command created %s in %s", name, dir)
			}
		}
	}

	// init creates it (and its directory) and says where; a second init
	// changes nothing and says so.
	var res struct {
		Database string `json:"database"`
		Config   string `json:"config"`
		Created  bool   `json:"created"`
	}
	e.MustJSON(&res, "init")
	if res.Database != e.DB || res.Config != e.Config || !res.Created {
		t.Errorf("init: %+v", res)
	}
	if out := e.MustRun("init"); !strings.Contains(out, e.DB) || !strings.Contains(out, "already exists") {
		t.Errorf("second init: %q", out)
	}
	if r := e.Run("tick"); r.Code != 0 || r.Stdout != "" || r.Stderr != "" {
		t.Errorf("tick on the new database: %s", r)
	}
	nested := NewEnv(t, "database = \"deep/er/campaignd.db\"\n")
	if out := nested.MustRun("init"); !strings.Contains(out, filepath.Join(nested.Dir, "deep", "er", "campaignd.db")) {
		t.Errorf("init into a missing directory: %q", out)
	}
	// campaign create may create the database: a first run needs no init.
	fresh := NewEnv(t, "")
	MustCreateCampaign(t, fresh)
	if _, err := os.Stat(fresh.DB); err != nil {
		t.Errorf("campaign create did not create the database: %v", err)
	}
}

// With a real sender configured and no default_sender, campaign create
// without --sender is refused naming the senders and the flag; with
// default_sender it sends through that sender; show and stats say plainly
// when a campaign's sender is the outbox.
func TestConfigDefaultSender(t *testing.T) {
	t.Parallel()
	mp := StartMailpit(t)
	e := NewEnv(t, mp.SenderTOML("mail"))
	args := []string{"campaign", "create", "--name", "n", "--from", "a@example.com", "--subject", "s", "--text", "t"}
	wantFail(t, e.Run(args...), 1, "mail", "outbox", "--sender", "default_sender")

	id := fmt.Sprint(MustCreateCampaign(t, e, "--sender", "outbox"))
	dry := "outbox (dry run: messages are written as .eml files to " + e.Outbox + ", nothing is delivered)"
	for _, sub := range []string{"show", "stats"} {
		if out := e.MustRun("campaign", sub, id); !strings.Contains(out, dry) {
			t.Errorf("campaign %s of an outbox campaign does not say it is a dry run:\n%s", sub, out)
		}
	}
	var j struct {
		DryRun *struct {
			Sender string `json:"sender"`
			Dir    string `json:"dir"`
		} `json:"dry_run"`
	}
	e.MustJSON(&j, "campaign", "show", id)
	if j.DryRun == nil || j.DryRun.Sender != "outbox" || j.DryRun.Dir != e.Outbox {
		t.Errorf("campaign show --json: dry_run = %+v", j.DryRun)
	}
	real := fmt.Sprint(MustCreateCampaign(t, e, "--sender", "mail"))
	for _, sub := range []string{"show", "stats"} {
		if out := e.MustRun("campaign", sub, real); strings.Contains(out, "dry run") {
			t.Errorf("campaign %s of an smtp campaign says dry run:\n%s", sub, out)
		}
	}

	// default_sender: create without --sender sends through it.
	d := NewEnv(t, "default_sender = \"mail\"\n"+mp.SenderTOML("mail"))
	var c struct {
		ID     int64  `json:"id"`
		Sender string `json:"sender"`
	}
	d.MustJSON(&c, args...)
	if c.Sender != "mail" {
		t.Fatalf("default_sender ignored: sender %q", c.Sender)
	}
	cid := fmt.Sprint(c.ID)
	d.MustRun("recipients", "add", cid, "reader@example.com")
	d.MustRun("campaign", "activate", cid)
	d.MustRun("campaign", "execute", cid)
	d.MustRun("tick")
	if n := mp.WaitCount(1, 10*time.Second); n != 1 {
		t.Errorf("mailpit got %d messages, want 1", n)
	}
	// Only the outbox configured: it stays the default, as on a first run.
	o := NewEnv(t, "")
	var oc struct {
		Sender string `json:"sender"`
	}
	o.MustJSON(&oc, args...)
	if oc.Sender != "outbox" {
		t.Errorf("with only the outbox, the default sender is %q", oc.Sender)
	}
	// A default_sender that is not configured is a config error.
	bad := NewEnv(t, "default_sender = \"mial\"\n"+mp.SenderTOML("mail"))
	wantFail(t, bad.Run("config", "check"), 1, "default_sender", "mial", "mail")
}

// With the defaults, a CLI tick that starts a plugin prints nothing: the
// CLI logs at cli_log_level (warn), not the daemon's log_level, and plugin
// start and exit lines are debug. log_format = "json" makes the daemon log
// one JSON object per line.
func TestConfigLogsForCronAndServices(t *testing.T) {
	t.Parallel()
	tickOnce := func(e *Env) Result {
		t.Helper()
		id := fmt.Sprint(MustCreateCampaign(t, e, "--sender", "outbox"))
		e.MustRun("recipients", "add", id, "x@example.com")
		e.MustRun("campaign", "activate", id)
		e.MustRun("campaign", "execute", id)
		r := e.Run("tick")
		if r.Code != 0 {
			t.Fatalf("tick: %s", r)
		}
		if emls, _ := filepath.Glob(filepath.Join(e.Outbox, "*.eml")); len(emls) != 1 {
			t.Fatalf("the tick sent %d messages, want 1 (so a plugin ran)", len(emls))
		}
		return r
	}
	// The daemon's log_level is debug; the CLI's stays warn.
	if r := tickOnce(NewEnv(t, "log_level = \"debug\"\n")); r.Stdout != "" || r.Stderr != "" {
		t.Errorf("a CLI tick with the default cli_log_level printed:\n%s", r)
	}
	// At info, a plugin that started and stopped as it should is silent.
	if r := tickOnce(NewEnv(t, "cli_log_level = \"info\"\n")); strings.Contains(r.Stderr, "plugin") {
		t.Errorf("a CLI tick at cli_log_level info logged a plugin lifecycle line:\n%s", r)
	}
	if r := tickOnce(NewEnv(t, "cli_log_level = \"debug\"\n")); !strings.Contains(r.Stderr, "plugin process exited") {
		t.Errorf("at cli_log_level debug the plugin's exit should be logged:\n%s", r)
	}
	wantFail(t, NewEnv(t, "cli_log_level = \"loud\"\n").Run("config", "check"), 1, "cli_log_level")
	wantFail(t, NewEnv(t, "log_format = \"xml\"\n").Run("config", "check"), 1, "log_format")

	e := NewEnv(t, "log_level = \"debug\"\nlog_format = \"json\"\ntick_interval = \"100ms\"\n")
	id := fmt.Sprint(MustCreateCampaign(t, e, "--sender", "outbox"))
	e.MustRun("recipients", "add", id, "x@example.com")
	e.MustRun("campaign", "activate", id)
	d := e.StartDaemon()
	e.MustRun("campaign", "execute", id)
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(d.Stderr(), "plugin process exited") && !strings.Contains(d.Stderr(), `"tick"`) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if err := d.Stop(); err != nil {
		t.Errorf("daemon: %v", err)
	}
	lines := 0
	for line := range strings.Lines(d.Stderr()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("daemon log line is not one JSON object: %q", line)
			continue
		}
		if m["@level"] == nil || m["@message"] == nil || m["@timestamp"] == nil {
			t.Errorf("daemon log line lacks @level, @message or @timestamp: %q", line)
		}
		lines++
	}
	for _, want := range []string{`"@message":"serving"`, `"@message":"tick"`, `"@message":"starting plugin"`} {
		if !strings.Contains(d.Stderr(), want) {
			t.Errorf("daemon log lacks %s:\n%s", want, d.Stderr())
		}
	}
	if lines == 0 {
		t.Error("the daemon logged nothing at log_level debug")
	}
}
