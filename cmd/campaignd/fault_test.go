package main_test

// End-to-end faults the delivery tests do not reach, on the built binaries:
//
//   - sender plugins that panic in Send, exit mid-send, hang past the
//     tick's deadline or answer garbage (testdata/faultplugin, a plugin
//     built from the sdk alone), through a standalone tick and through the
//     daemon;
//   - a database on a read-only file system, and a database file that is
//     read-only (immutable) on a writable one;
//   - a full disk under an import and under a tick;
//   - SIGTERM to the daemon in the middle of a tick, alone and together
//     with its plugins (systemd's default KillMode=control-group);
//   - SendGrid outages: 5xx, a refused connection, an API that never
//     answers.
//
// Every test ends with `campaignd verify` clean and every recipient
// accounted for. The file-system tests mount tmpfs file systems, so they
// need root or CAP_SYS_ADMIN (CI's VM runs them as root); without it they
// fail and say so instead of skipping.

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/plugins/sendgrid/sgfake"
	"github.com/campaignd/campaignd/plugins/smtp/smtptest"
	"github.com/campaignd/campaignd/sdk/sdktest"
	_ "github.com/mattn/go-sqlite3"
	"golang.org/x/sys/unix"
)

// ---- the fault plugin ----

// faultPluginName is the fault plugin's executable, as sdktest.BuildPlugin
// names it after its directory.
const faultPluginName = "campaignd-sender-faultplugin"

// faultPlugin returns the absolute path of testdata/faultplugin, built once
// per test process by the one plugin build helper (TestMain removes it).
func faultPlugin(t *testing.T) string {
	t.Helper()
	path, err := sdktest.BuildPlugin("./testdata/faultplugin")
	if err != nil {
		t.Fatalf("fault plugin: %v", err)
	}
	return path
}

// faultSenderTOML is a [senders.NAME] table running the fault plugin at
// path with its bookkeeping in state and the given options.
func faultSenderTOML(name, path, state string, opts map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n[senders.%s]\nplugin = %q\n\n[senders.%s.options]\nstate = %q\n", name, path, name, state)
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		fmt.Fprintf(&b, "%s = %q\n", k, opts[k])
	}
	return b.String()
}

// faultDelivered reads the fault plugin's delivery log: the Message-IDs
// it accepted, per bare address, in order.
func faultDelivered(t *testing.T, state string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	b, err := os.ReadFile(filepath.Join(state, "delivered"))
	if os.IsNotExist(err) {
		return out
	}
	if err != nil {
		t.Fatalf("delivery log: %v", err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		to, id, ok := strings.Cut(l, "\t")
		if !ok {
			continue
		}
		if a, err := mail.ParseAddress(to); err == nil {
			to = a.Address
		}
		out[to] = append(out[to], id)
	}
	return out
}

// faultPids returns the pid of every fault plugin process started with
// this state directory.
func faultPids(t *testing.T, state string) []int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(state, "pids"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("plugin pids: %v", err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if p, err := strconv.Atoi(f); err == nil {
			pids = append(pids, p)
		}
	}
	return pids
}

// procAlive reports whether pid is a running (not zombie) process whose
// executable is named base.
func procAlive(pid int, base string) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := strings.LastIndexByte(string(stat), ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	argv0, _, _ := strings.Cut(string(cmdline), "\x00")
	return filepath.Base(argv0) == base
}

// ---- shared checks ----

// verifyClean runs `campaignd verify`: exit 0 and silent.
func verifyClean(t *testing.T, e *Env) {
	t.Helper()
	if r := e.Run("verify"); r.Code != 0 || r.Stdout != "" {
		t.Errorf("campaignd verify is not clean: %s", r)
	}
}

// integrityOK opens the database afresh, with SQLite alone, and runs
// PRAGMA integrity_check.
func integrityOK(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer db.Close()
	rows, err := db.Query("PRAGMA integrity_check")
	if err != nil {
		t.Errorf("integrity_check of %s: %v", path, err)
		return
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		t.Errorf("integrity_check of %s: %v", path, err)
	}
	if len(msgs) != 1 || msgs[0] != "ok" {
		t.Errorf("integrity_check of %s: %q", path, msgs)
	}
}

// truncateWAL checkpoints the database's WAL into the file and truncates
// it to nothing, from a connection of its own (nothing may be writing).
func truncateWAL(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var busy, frames, done int
	if err := db.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &frames, &done); err != nil || busy != 0 {
		t.Fatalf("truncate the WAL of %s: busy %d: %v", path, busy, err)
	}
}

// editConfig replaces old with new in e's config file.
func editConfig(t *testing.T, e *Env, old, new string) {
	t.Helper()
	b, err := os.ReadFile(e.Config)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("config %s does not contain %q:\n%s", e.Config, old, b)
	}
	if err := os.WriteFile(e.Config, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// stderrLines returns the non-empty lines of a command's stderr.
func stderrLines(r Result) []string {
	var out []string
	for _, l := range strings.Split(r.Stderr, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// wantOneLineError checks a command failed with exit 1 and exactly one
// line on stderr matching re.
func wantOneLineError(t *testing.T, what string, r Result, re *regexp.Regexp) {
	t.Helper()
	lines := stderrLines(r)
	if r.Code != 1 || len(lines) != 1 || !re.MatchString(lines[0]) {
		t.Errorf("%s: want exit 1 and one line on stderr matching %s; got %s", what, re, r)
	}
}

// ---- mounts ----

var mountCheck struct {
	once sync.Once
	err  error
}

// requireMount fails the test, saying why, unless this process may mount
// a tmpfs (root or CAP_SYS_ADMIN). It checks once.
func requireMount(t *testing.T) {
	t.Helper()
	mountCheck.once.Do(func() {
		dir, err := os.MkdirTemp("", "cdmnt")
		if err != nil {
			mountCheck.err = err
			return
		}
		defer os.Remove(dir)
		if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
			mountCheck.err = err
			return
		}
		mountCheck.err = syscall.Unmount(dir, 0)
	})
	if mountCheck.err != nil {
		t.Fatalf("this test mounts a tmpfs and needs root or CAP_SYS_ADMIN (CI runs it as root in a VM): mount: %v", mountCheck.err)
	}
}

// mountTmpfs mounts a tmpfs of the given size ("16m") on a new directory
// and returns it; it is unmounted at cleanup, after what the test started
// later (a daemon) was stopped.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	requireMount(t)
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0755"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
			_ = syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

// remount makes the tmpfs at dir read-only or read-write again.
func remount(t *testing.T, dir string, readOnly bool) {
	t.Helper()
	flags := uintptr(syscall.MS_REMOUNT)
	if readOnly {
		flags |= syscall.MS_RDONLY
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", flags, ""); err != nil {
		t.Fatalf("remount %s (read-only %v): %v", dir, readOnly, err)
	}
}

// fsImmutableFL is FS_IMMUTABLE_FL of linux/fs.h (chattr +i).
const fsImmutableFL = 0x00000010

// setImmutable sets or clears a file's immutable attribute (chattr +i):
// even root cannot write to, rename or remove the file then.
func setImmutable(t *testing.T, path string, on bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil {
		t.Fatalf("get attributes of %s: %v", path, err)
	}
	if on {
		flags |= fsImmutableFL
	} else {
		flags &^= fsImmutableFL
	}
	if err := unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags)); err != nil {
		t.Fatalf("chattr %v %s: %v", on, path, err)
	}
}

// fillFree writes a ballast file on the file system holding dir so that
// about leave bytes stay free, and returns its path.
func fillFree(t *testing.T, dir string, leave int64) string {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	size := int64(st.Bavail)*st.Bsize - leave
	p := filepath.Join(dir, "ballast")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if size > 0 {
		if err := syscall.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
			t.Fatalf("fallocate %d bytes: %v", size, err)
		}
	}
	return p
}

// ---- 1. plugins that panic, exit, hang or answer garbage ----

// pluginFault is one way for the fault plugin to misbehave.
type pluginFault struct {
	mode string
	// opts are the plugin's options besides mode. A standalone tick runs
	// them as they are (their fail_times ends the fault by itself); the
	// daemon runs with fail_times 0 (every send faulty) until SIGHUP
	// reloads mode "ok".
	opts map[string]string
	// class, text (a regular expression) and code are what the affected
	// recipients carry.
	class, text string
	code        int
	// restarts: the fault costs the plugin process, and the next send
	// starts a new one.
	restarts bool
}

var pluginFaults = []pluginFault{
	{mode: "panic", opts: map[string]string{"fail_times": "1", "wait_inflight": "5", "delay": "300ms"},
		class: "transient", text: `plugin f (crashed|was stopped during send)`, restarts: true},
	{mode: "exit", opts: map[string]string{"fail_times": "1", "wait_inflight": "5", "delay": "300ms"},
		class: "transient", text: `plugin f (crashed|was stopped during send)`, restarts: true},
	{mode: "hang", opts: map[string]string{"fail_times": "1"},
		class: "in_doubt", text: `timed out`},
	{mode: "garbage", opts: map[string]string{"fail_times": "3"},
		class: "transient", text: `^faultplugin: garbage answer$`, code: 299},
	// A bad reply costs the plugin process, which can cut off a send of
	// the same process still in flight (seen on a loaded machine).
	{mode: "badreply", opts: map[string]string{"fail_times": "3"},
		class: "transient", text: `error while marshaling: string field contains invalid UTF-8|plugin f was stopped during send`, restarts: true},
}

// TestPluginFaults: a plugin that panics in Send, exits mid-send, hangs
// past the tick's deadline or answers garbage costs only its in-flight
// messages, which go back to the queue with the attempt counted (in doubt
// for the hang, which may have delivered) and are sent by a later tick once
// the plugin behaves; neither the standalone tick nor the daemon dies, and
// no plugin process is left behind.
func TestPluginFaults(t *testing.T) {
	t.Parallel()
	plugin := faultPlugin(t)
	for _, pf := range pluginFaults {
		for _, daemon := range []bool{false, true} {
			name := pf.mode + "/standalone"
			if daemon {
				name = pf.mode + "/daemon"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				runPluginFault(t, plugin, pf, daemon)
			})
		}
	}
}

func runPluginFault(t *testing.T, plugin string, pf pluginFault, daemon bool) {
	const n, conc = 10, 5
	// The hang lasts until the deadline; the others need time to restart
	// the plugin within the tick, on a loaded machine too.
	tickTimeout := 5 * time.Second
	if pf.mode == "hang" {
		tickTimeout = 3 * time.Second
	}
	state := t.TempDir()
	opts := maps.Clone(pf.opts)
	opts["mode"] = pf.mode
	top := ""
	if daemon {
		opts["fail_times"] = "0"
		top = "log_level = \"info\"\n"
	}
	e := NewEnv(t, top+fastRetry+fmt.Sprintf("tick_timeout = %q\n", tickTimeout)+faultSenderTOML("f", plugin, state, opts))
	var d *Daemon
	if daemon {
		d = e.StartDaemon()
	}
	rows := makeMailRows(n, "example.net")
	id := startSendingCampaign(t, e, mailRowsCSV(rows), "--sender", "f", "--concurrency", strconv.Itoa(conc))

	start := time.Now()
	// The tick survived: exit 0, or 3 when every send it made failed.
	r, problems, _ := tickAnyExit(t, e)
	if (len(problems) > 0) != (r.Sent == 0) {
		t.Errorf("faulty tick %+v with problems %q: want a problem exactly when nothing was sent", r, problems)
	}
	if took := time.Since(start); took > tickTimeout+10*time.Second {
		t.Errorf("the faulty tick took %s (tick_timeout %s)", took, tickTimeout)
	}
	if r.Processed != n || r.Failed != 0 || r.Retried == 0 || r.Sent+r.Retried > n {
		t.Errorf("faulty tick: %+v, want %d processed, none failed, some retried", r, n)
	}
	rs := dlvRecipients(t, e, id)
	affected := map[string]bool{}
	released := map[string]bool{}
	for _, row := range rows {
		rc := rs[row.Email]
		switch {
		case rc.Status == "SENT" && rc.Attempts == 1:
		case rc.Status == "QUEUED" && rc.Attempts == 0 && rc.LastErrorClass == "":
			released[row.Email] = true // claimed, never started: handed back
		case rc.Status == "QUEUED" && rc.Attempts == 1:
			affected[row.Email] = true
			if string(rc.LastErrorClass) != pf.class || !regexp.MustCompile(pf.text).MatchString(rc.LastError) || (pf.code != 0 && rc.LastErrorCode != pf.code) {
				t.Errorf("%s: %+v, want QUEUED with class %s and an error matching %s", row.Email, rc, pf.class, pf.text)
			}
			if rc.NextAttemptAt == nil {
				t.Errorf("%s: QUEUED with no next attempt", row.Email)
			}
		default:
			t.Errorf("%s after the faulty tick: %+v, want SENT, QUEUED retried or QUEUED handed back", row.Email, rc)
		}
	}
	if len(affected) != r.Retried || len(released) != n-r.Sent-r.Retried {
		t.Errorf("%d recipients retried and %d handed back, tick said %+v", len(affected), len(released), r)
	}
	if ts := dlvTicks(t, e); len(ts) != 1 || ts[0].Retried != r.Retried || ts[0].Skipped != len(released) {
		t.Errorf("tick records %+v, want one with %d retried and %d handed back", ts, r.Retried, len(released))
	}
	pids := faultPids(t, state)
	switch {
	case len(pids) == 0:
		t.Fatalf("no plugin process ever started")
	case pf.mode == "garbage" && len(pids) != 1:
		t.Errorf("plugin processes %v: junk output and an unknown class must not cost the plugin", pids)
	case pf.restarts && procAlive(pids[0], faultPluginName):
		t.Errorf("plugin %d survived its own crash", pids[0])
	case pf.mode == "hang" && procAlive(pids[0], faultPluginName):
		t.Errorf("the hung plugin %d was not killed", pids[0])
	}

	if daemon {
		if d.Exited() {
			t.Fatalf("the daemon died with its plugin:\n%s", d.Stderr())
		}
		children := childProcs(t, d.Cmd.Process.Pid, faultPluginName)
		for _, pid := range pids {
			if procAlive(pid, faultPluginName) != slices.Contains(children, pid) {
				t.Errorf("plugin %d is alive but not the daemon's child (children %v)", pid, children)
			}
		}
		// The operator fixes the sender and reloads.
		editConfig(t, e, fmt.Sprintf("mode = %q", pf.mode), `mode = "ok"`)
		reloads := strings.Count(d.Stderr(), "reloaded configuration")
		if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); strings.Count(d.Stderr(), "reloaded configuration") == reloads; {
			if time.Now().After(deadline) || d.Exited() {
				t.Fatalf("the daemon did not reload on SIGHUP:\n%s", d.Stderr())
			}
			time.Sleep(10 * time.Millisecond)
		}
	} else {
		// The tick has exited: no plugin process may outlive it.
		for _, pid := range pids {
			if procAlive(pid, faultPluginName) {
				t.Errorf("plugin %d outlived the standalone tick", pid)
			}
		}
	}

	time.Sleep(60 * time.Millisecond) // past retry_max
	tickUntilCompleted(t, e, id, 5, 60*time.Millisecond)
	checkCompleted(t, e, id, n, n, 0, 0)
	rs = dlvRecipients(t, e, id)
	delivered := faultDelivered(t, state)
	for _, row := range rows {
		rc, got := rs[row.Email], delivered[row.Email]
		want := 1
		if affected[row.Email] {
			want = 2
		}
		if rc.Attempts != want {
			t.Errorf("%s: SENT after %d attempts, want %d", row.Email, rc.Attempts, want)
		}
		// A message in flight when the plugin died may have been
		// delivered (at least once): never more than twice, never with
		// another Message-ID.
		switch {
		case len(got) == 1, len(got) == 2 && affected[row.Email] && got[0] == got[1]:
		default:
			t.Errorf("%s delivered %d times (%v), want once", row.Email, len(got), got)
		}
	}
	verifyClean(t, e)
	if daemon {
		if d.Exited() {
			t.Fatalf("the daemon died:\n%s", d.Stderr())
		}
		if c := childProcs(t, d.Cmd.Process.Pid, faultPluginName); len(c) != 1 {
			t.Errorf("daemon's plugin children %v, want the one healthy plugin", c)
		}
		for _, pid := range faultPids(t, state)[:len(pids)] {
			if procAlive(pid, faultPluginName) {
				t.Errorf("faulty plugin %d still runs after the reload", pid)
			}
		}
	}
}

// TestPluginRestartPastDeadline: the plugin crashes on the first send and
// its replacement is still starting when the tick's deadline comes. The
// messages that never reached a plugin were not sent, so they are not in
// doubt: even with in_doubt = "hold" they go back to the queue unharmed,
// with no attempt counted, instead of failing for the operator.
func TestPluginRestartPastDeadline(t *testing.T) {
	t.Parallel()
	plugin := faultPlugin(t)
	const n = 4
	state := t.TempDir()
	e := NewEnv(t, fastRetry+"tick_timeout = \"1500ms\"\nin_doubt = \"hold\"\n"+faultSenderTOML("f", plugin, state,
		map[string]string{"mode": "panic", "fail_times": "1", "restart_delay": "4s"}))
	rows := makeMailRows(n, "example.net")
	id := startSendingCampaign(t, e, mailRowsCSV(rows), "--sender", "f", "--concurrency", "1")

	if r, _ := tickProblems(t, e, "failed transiently"); countsOf(r) != (tickCounts{Processed: n, Retried: 1}) {
		t.Errorf("tick whose plugin crashed and restarted too slowly: %+v, want the crashed send retried and nothing failed", r)
	}
	if ts := dlvTicks(t, e); len(ts) != 1 || ts[0].Skipped != n-1 {
		t.Errorf("tick records %+v, want one with %d handed back unsent", ts, n-1)
	}
	rs := dlvRecipients(t, e, id)
	crashed := rows[0].Email // concurrency 1: the first claimed is the first sent
	for _, row := range rows {
		rc := rs[row.Email]
		switch {
		case row.Email == crashed:
			if rc.Status != "QUEUED" || rc.Attempts != 1 || rc.LastErrorClass != "transient" || !strings.Contains(rc.LastError, "crashed") {
				t.Errorf("%s, in flight at the crash: %+v, want QUEUED transient (crashed) after 1 attempt", row.Email, rc)
			}
		case rc.Status != "QUEUED" || rc.Attempts != 0 || rc.LastErrorClass != "":
			t.Errorf("%s, never sent: %+v, want QUEUED with no attempt counted (not in doubt)", row.Email, rc)
		}
	}
	time.Sleep(60 * time.Millisecond)
	tickUntilCompleted(t, e, id, 3, 60*time.Millisecond)
	checkCompleted(t, e, id, n, n, 0, 0)
	delivered := faultDelivered(t, state)
	for _, row := range rows {
		if len(delivered[row.Email]) != 1 {
			t.Errorf("%s delivered %d times, want once", row.Email, len(delivered[row.Email]))
		}
	}
	verifyClean(t, e)
}

// ---- 2. a read-only database ----

// readOnlyRe matches an error that says the database is read-only.
var readOnlyRe = regexp.MustCompile(`(?i)read-only`)

// roSnapshot is everything the CLI shows about the database.
func roSnapshot(t *testing.T, e *Env, ids ...int64) string {
	t.Helper()
	var b strings.Builder
	cmds := [][]string{{"campaign", "list"}, {"executions"}, {"ticks", "--limit", "100"}, {"suppress", "list"}}
	for _, id := range ids {
		cmds = append(cmds, []string{"recipients", "list", strconv.FormatInt(id, 10), "--limit", "1000"})
	}
	for _, c := range cmds {
		b.WriteString(e.MustRun(append([]string{"--json"}, c...)...))
	}
	return b.String()
}

// TestDatabaseReadOnly: with the database on a file system remounted
// read-only, or the database file itself immutable, every writing command
// (create, import, add, execute, tick, pause, suppress) fails with exit 1
// and one line saying the database is read-only, and changes nothing; once
// writable again, verify is clean and everything works.
func TestDatabaseReadOnly(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"remount", "immutable"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			mnt := mountTmpfs(t, "32m")
			db := filepath.Join(mnt, "campaignd.db")
			outbox := t.TempDir()
			e := NewEnv(t, fmt.Sprintf("database = %q\n[queue]\nretry_base = \"10ms\"\n\n[senders.box]\nplugin = \"outbox\"\n[senders.box.options]\ndir = %q\n", db, outbox))
			e.DB = db

			// Campaign 1 is SENDING with a tick behind it and queued
			// recipients left; campaign 2 is ACTIVE, waiting for execute.
			c1 := startSendingCampaign(t, e, mailRowsCSV(makeMailRows(6, "one.example")), "--sender", "box", "--batch-size", "2")
			runTick(t, e)
			c2 := MustCreateCampaign(t, e, "--sender", "box")
			c2s := strconv.FormatInt(c2, 10)
			csv2 := WriteFile(t, e.Dir, "two.csv", mailRowsCSV(makeMailRows(3, "two.example")))
			e.MustRun("recipients", "import", c2s, csv2)
			e.MustRun("campaign", "activate", c2s)
			e.MustRun("suppress", "add", "old@example.org")
			before := roSnapshot(t, e, c1, c2)

			switch how {
			case "remount":
				remount(t, mnt, true)
			case "immutable":
				setImmutable(t, db, true)
				t.Cleanup(func() { setImmutable(t, db, false) })
			}
			more := WriteFile(t, e.Dir, "more.csv", "email\nmore@two.example\n")
			for _, args := range [][]string{
				{"campaign", "create", "--name", "ro", "--sender", "box", "--from", "a@example.com", "--subject", "s", "--text", "t"},
				{"recipients", "import", c2s, more},
				{"recipients", "add", c2s, "added@two.example"},
				{"campaign", "execute", c2s},
				{"tick"},
				{"campaign", "pause", strconv.FormatInt(c1, 10)},
				{"suppress", "add", "new@example.org"},
			} {
				wantOneLineError(t, strings.Join(args[:min(2, len(args))], " "), e.Run(args...), readOnlyRe)
			}
			// Reading works where SQLite can, and otherwise says why.
			if r := e.Run("campaign", "list"); r.Code != 0 {
				wantOneLineError(t, "campaign list", r, readOnlyRe)
			} else if how == "immutable" {
				if got := roSnapshot(t, e, c1, c2); got != before {
					t.Errorf("a read-only database reads differently:\n%s\nwant:\n%s", got, before)
				}
			}

			switch how {
			case "remount":
				remount(t, mnt, false)
			case "immutable":
				setImmutable(t, db, false)
			}
			verifyClean(t, e)
			integrityOK(t, db)
			if got := roSnapshot(t, e, c1, c2); got != before {
				t.Errorf("the refused commands changed the database:\n%s\nwant:\n%s", got, before)
			}
			// Writable again, everything works.
			e.MustRun("campaign", "execute", c2s)
			tickUntilCompleted(t, e, c1, 10, 20*time.Millisecond)
			tickUntilCompleted(t, e, c2, 10, 20*time.Millisecond)
			checkCompleted(t, e, c1, 6, 6, 0, 0)
			checkCompleted(t, e, c2, 3, 3, 0, 0)
			if ents, err := os.ReadDir(outbox); err != nil || len(ents) != 9 {
				t.Errorf("outbox holds %d messages (%v), want 9", len(ents), err)
			}
			verifyClean(t, e)
		})
	}
}

// ---- 3. a full disk ----

// fullRe matches an error that says the disk is full.
var fullRe = regexp.MustCompile(`(?i)full|no space`)

// TestDiskFullImport: an import that runs out of space fails with a clear
// error; the 10,000-row batches it committed stay, the database is intact,
// and once space is freed the same import completes, counting the rows it
// already had as duplicates.
func TestDiskFullImport(t *testing.T) {
	t.Parallel()
	mnt := mountTmpfs(t, "16m")
	db := filepath.Join(mnt, "campaignd.db")
	e := NewEnv(t, fmt.Sprintf("database = %q\n", db))
	e.DB = db
	id := MustCreateCampaign(t, e)
	ids := strconv.FormatInt(id, 10)
	const n = 60000
	csv := WriteFile(t, e.Dir, "big.csv", mailRowsCSV(makeMailRows(n, "example.org")))
	ballast := fillFree(t, mnt, 5<<20) // room for a batch or two, not for 60,000 rows

	r := e.Run("--json", "recipients", "import", ids, csv)
	lines := stderrLines(r)
	if r.Code != 1 || len(lines) == 0 || !fullRe.MatchString(lines[len(lines)-1]) {
		t.Fatalf("import onto a full disk: want exit 1 and an error saying the disk is full; got %s", r)
	}
	m := regexp.MustCompile(`(\d+) recipients were added before the error`).FindStringSubmatch(r.Stderr)
	if m == nil {
		t.Fatalf("the failed import does not say how many rows it kept: %s", r)
	}
	kept, _ := strconv.ParseInt(m[1], 10, 64)
	if kept <= 0 || kept >= n || kept%10000 != 0 {
		t.Errorf("the failed import kept %d rows, want whole 10,000-row batches, some but not all", kept)
	}
	// Reading while the disk is still full works, or says why not.
	if r := e.Run("--json", "campaign", "stats", ids); r.Code != 0 {
		wantOneLineError(t, "stats on a full disk", r, fullRe)
	} else if got := stats(t, e, id); got.Total != kept || got.Pending != kept {
		t.Errorf("stats on a full disk: %+v, want %d pending", got, kept)
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	verifyClean(t, e)
	integrityOK(t, db)
	if got := stats(t, e, id); got.Total != kept || got.Pending != kept {
		t.Errorf("after the failed import: %+v, want the %d committed rows", got, kept)
	}
	imp := importFile(t, e, id, csv)
	if imp.Added != n-kept || imp.Duplicates != kept || imp.Invalid != 0 {
		t.Errorf("the same import again: %+v, want %d added and %d duplicates", imp, n-kept, kept)
	}
	if got := stats(t, e, id); got.Total != n || got.Pending != n {
		t.Errorf("after the second import: %+v, want %d", got, n)
	}
	verifyClean(t, e)
	integrityOK(t, db)
}

// TestDiskFullReadOnlyCommands is issue 12 item 13: with the disk full,
// read-only commands (which need room for the WAL's -shm file even to
// read) fail with one line saying the disk is full, not "internal error:
// disk I/O error", and work again once space is freed.
func TestDiskFullReadOnlyCommands(t *testing.T) {
	t.Parallel()
	mnt := mountTmpfs(t, "8m")
	db := filepath.Join(mnt, "campaignd.db")
	e := NewEnv(t, fmt.Sprintf("database = %q\n", db))
	e.DB = db
	id := strconv.FormatInt(MustCreateCampaign(t, e), 10)
	ballast := fillFree(t, mnt, 0)
	full := regexp.MustCompile(`disk is full: free space`)
	for _, args := range [][]string{{"campaign", "list"}, {"campaign", "stats", id}, {"recipients", "list", id}, {"verify"}} {
		r := e.Run(args...)
		if r.Code == 0 {
			continue // SQLite found room after all
		}
		wantOneLineError(t, strings.Join(args, " ")+" on a full disk", r, full)
		if strings.Contains(r.Stderr, "I/O error") || strings.Contains(r.Stderr, "internal error") {
			t.Errorf("%s on a full disk: %s", strings.Join(args, " "), r)
		}
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	e.MustRun("campaign", "stats", id)
	verifyClean(t, e)
}

// TestDiskFullTick: the disk fills while a tick's messages are in flight
// (the plugin fills it), so their outcomes cannot be recorded. The tick
// says so (exit 1, "full"), the daemon survives it, and no recipient is
// lost: once space is freed, verify is clean, the leases expire and are
// recovered by policy (resend: the same Message-ID again), and everything
// ends SENT.
func TestDiskFullTick(t *testing.T) {
	t.Parallel()
	plugin := faultPlugin(t)
	for _, daemon := range []bool{false, true} {
		name := "standalone"
		if daemon {
			name = "daemon"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			const n, conc = 10, 5
			mnt := mountTmpfs(t, "8m")
			db := filepath.Join(mnt, "campaignd.db")
			state := t.TempDir()
			fill := filepath.Join(mnt, "ballast")
			e := NewEnv(t, fmt.Sprintf("database = %q\n", db)+fastRetry+"tick_timeout = \"4s\"\nlease_margin = \"0s\"\n"+
				faultSenderTOML("f", plugin, state, map[string]string{"mode": "fill", "fail_times": "1", "fill": fill, "delay": "100ms"}))
			e.DB = db
			var d *Daemon
			if daemon {
				d = e.StartDaemon()
			}
			rows := makeMailRows(n, "example.net")
			id := startSendingCampaign(t, e, mailRowsCSV(rows), "--sender", "f", "--concurrency", strconv.Itoa(conc))
			// Start the tick with an empty WAL, as after a restart: a WAL
			// file grown earlier would give the outcomes room to be
			// written on a full disk.
			truncateWAL(t, db)

			start := time.Now()
			r := e.Run("--json", "tick")
			lines := stderrLines(r)
			if r.Code != 1 || len(lines) == 0 || !fullRe.MatchString(lines[len(lines)-1]) {
				t.Errorf("a tick that could not record its outcomes: want exit 1 and an error saying the disk is full; got %s", r)
			}
			if daemon {
				if d.Exited() {
					t.Fatalf("the daemon died of a full disk:\n%s", d.Stderr())
				}
				// The daemon still answers reads while the disk is full.
				if got := stats(t, e, id); got.Total != n || got.Sent+got.Sending != n {
					t.Errorf("stats through the daemon on a full disk: %+v", got)
				}
			}
			if err := os.Remove(fill); err != nil {
				t.Fatal(err)
			}
			verifyClean(t, e)
			rs := dlvRecipients(t, e, id)
			recorded := map[string]bool{}
			unrecorded := 0
			for _, row := range rows {
				switch rc := rs[row.Email]; rc.Status {
				case "SENT":
					recorded[row.Email] = true
				case "SENDING":
					unrecorded++
				default:
					t.Errorf("%s after the full-disk tick: %+v, want SENT or SENDING under its lease", row.Email, rc)
				}
			}
			if unrecorded == 0 {
				t.Errorf("every outcome was recorded on a full disk: the test did not fill it in time")
			}

			// The leases end tick_timeout after the tick started.
			time.Sleep(time.Until(start.Add(4*time.Second + 100*time.Millisecond)))
			tickUntilCompleted(t, e, id, 5, 50*time.Millisecond)
			checkCompleted(t, e, id, n, n, 0, 0)
			recovered := 0
			for _, tr := range dlvTicks(t, e) {
				recovered += tr.Recovered
			}
			if recovered != unrecorded {
				t.Errorf("ticks recovered %d leases, want the %d unrecorded outcomes", recovered, unrecorded)
			}
			delivered := faultDelivered(t, state)
			for _, row := range rows {
				got := delivered[row.Email]
				switch {
				case len(got) == 1:
				case len(got) == 2 && !recorded[row.Email] && got[0] == got[1]:
					// in doubt, resent with the same Message-ID
				default:
					t.Errorf("%s delivered %v (outcome recorded: %v)", row.Email, got, recorded[row.Email])
				}
			}
			verifyClean(t, e)
			integrityOK(t, db)
			if daemon && d.Exited() {
				t.Fatalf("the daemon died:\n%s", d.Stderr())
			}
		})
	}
}

// ---- 4. SIGTERM in the middle of a tick ----

// TestSIGTERMMidTick: SIGTERM to the daemon while a socket tick has five
// sends in flight (the SMTP server holds each reply two seconds): the
// in-flight sends finish and are recorded SENT, what the tick claimed but
// had not started goes back to the queue with no attempt counted, the
// daemon exits 0 well within shutdown_timeout and leaves no plugin
// process, and a later standalone tick sends the rest, each address
// exactly once. With "and-plugins" the plugin gets SIGTERM too, as
// systemd's default KillMode=control-group sends it to every process of
// the service.
func TestSIGTERMMidTick(t *testing.T) {
	t.Parallel()
	for _, who := range []string{"daemon", "and-plugins"} {
		t.Run(who, func(t *testing.T) {
			t.Parallel()
			const n, conc = 20, 5
			const shutdownTimeout = 10 * time.Second
			sink := NewSink(t, smtptest.Fault{Stage: smtptest.EndOfData, Times: conc, Stall: 2 * time.Second})
			e := NewEnv(t, "shutdown_timeout = \"10s\"\n"+fastRetry+sinkTOML("sink", sink))
			d := e.StartDaemon()
			rows := makeMailRows(n, "example.net")
			id := startSendingCampaign(t, e, mailRowsCSV(rows), "--sender", "sink", "--concurrency", strconv.Itoa(conc))

			tk := startBGProc(t, e, "--json", "tick")
			waitStalling(t, sink, conc, 20*time.Second)
			plugins := childProcs(t, d.Cmd.Process.Pid, "campaignd-sender-smtp")
			if len(plugins) != 1 {
				t.Fatalf("daemon plugin children %v, want one campaignd-sender-smtp", plugins)
			}
			start := time.Now()
			if who == "and-plugins" {
				for _, pid := range plugins {
					if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := d.Stop(); err != nil { // SIGTERM, then wait
				t.Errorf("daemon after SIGTERM: %v, want exit 0\n%s", err, d.Stderr())
			}
			if took := time.Since(start); took > shutdownTimeout {
				t.Errorf("the daemon took %s to stop, more than shutdown_timeout %s", took, shutdownTimeout)
			}
			for _, pid := range plugins {
				if procAlive(pid, "campaignd-sender-smtp") {
					t.Errorf("plugin %d outlived the daemon", pid)
				}
			}
			if code := tk.wait(t, 10*time.Second); code != 0 {
				t.Fatalf("the tick through the daemon: exit %d\n%s", code, tk.stderr.String())
			}
			var r core.TickResult
			if err := json.Unmarshal(tk.stdout.Bytes(), &r); err != nil {
				t.Fatalf("tick answer %q: %v", tk.stdout.String(), err)
			}
			if want := (tickCounts{Processed: n, Sent: conc}); countsOf(r) != want {
				t.Errorf("the tick cut short by SIGTERM: %+v, want %+v", r, want)
			}
			wantDrained(t, e, sink, id, rows, conc)
			if ts := dlvTicks(t, e); len(ts) != 1 || ts[0].Sent != conc || ts[0].Skipped != n-conc {
				t.Errorf("tick records %+v, want one with %d sent and %d handed back", ts, conc, n-conc)
			}

			tickUntilCompleted(t, e, id, 3, 0) // standalone now
			checkCompleted(t, e, id, n, n, 0, 0)
			got := sink.Received()
			for _, row := range rows {
				if got[row.Email] != 1 {
					t.Errorf("%s received %d times, want once", row.Email, got[row.Email])
				}
			}
			verifyClean(t, e)
		})
	}
}

// ---- 5. SendGrid outages ----

// TestSendGridFaults: SendGrid answering 5xx, a refused connection and an
// API that never answers. 5xx and refused are transient: requeued with
// the attempt counted and sent by a later tick. A request still unanswered
// at the tick's deadline is in doubt: with in_doubt = "resend" it is
// queued again (the fake never accepted it, so it arrives once); with
// "hold" it is FAILED in_doubt until the operator retries it.
func TestSendGridFaults(t *testing.T) {
	t.Parallel()
	const queue = "[queue]\nretry_base = \"10ms\"\nretry_max = \"50ms\"\n"

	// sentOnce checks every row ended SENT after the given attempts, with
	// the fake's message id, accepted by the fake exactly once.
	sentOnce := func(t *testing.T, c *sgCLI, fake *sgfake.Server, id int64, rows []sgRow, attempts map[string]int) {
		t.Helper()
		ids := map[string][]string{}
		for _, m := range fake.Messages() {
			for _, to := range m.Recipients() {
				ids[to] = append(ids[to], m.ID)
			}
		}
		rs := c.recipients(id)
		for _, row := range rows {
			rc, want := rs[row.Email], max(attempts[row.Email], 1)
			if rc.Status != "SENT" || rc.Attempts != want || len(ids[row.Email]) != 1 || rc.ProviderID != ids[row.Email][0] {
				t.Errorf("%s: %+v (accepted as %v), want SENT after %d attempts, accepted once", row.Email, rc, ids[row.Email], want)
			}
		}
		verifyClean(t, c.e)
	}

	t.Run("5xx-then-success", func(t *testing.T) {
		t.Parallel()
		key := sgTestKey(t)
		e, fake := sgEnv(t, queue, key)
		fake.SetAPIKey(key)
		c := &sgCLI{t: t, e: e}
		rows := sgRows(3)
		id := c.startCampaign(rows, "--concurrency", "1")
		fake.Enqueue(sgfake.Status(http.StatusInternalServerError), sgfake.Status(http.StatusServiceUnavailable))
		if r := c.tick(); countsOf(r) != (tickCounts{Processed: 3, Sent: 1, Retried: 2}) {
			t.Errorf("tick against two 5xx: %+v, want 1 sent and 2 retried", r)
		}
		attempts := map[string]int{}
		codes := map[int]bool{}
		for _, row := range rows {
			rc := c.recipients(id)[row.Email]
			if rc.Status == "SENT" {
				continue
			}
			codes[rc.LastErrorCode] = true
			attempts[row.Email] = 2
			if rc.Status != "QUEUED" || rc.Attempts != 1 || rc.LastErrorClass != "transient" {
				t.Errorf("%s after a 5xx: %+v, want QUEUED transient after 1 attempt", row.Email, rc)
			}
		}
		if !codes[500] || !codes[503] {
			t.Errorf("the retried recipients carry codes %v, want 500 and 503", codes)
		}
		time.Sleep(60 * time.Millisecond)
		c.tickUntilCompleted(id, 5, 50*time.Millisecond)
		sentOnce(t, c, fake, id, rows, attempts)
	})

	t.Run("connection-refused", func(t *testing.T) {
		t.Parallel()
		key := sgTestKey(t)
		e, fake := sgEnv(t, queue, key)
		fake.SetAPIKey(key)
		closed := fmt.Sprintf("http://127.0.0.1:%d", closedPort(t))
		editConfig(t, e, fmt.Sprintf("api_url = %q", fake.URL()), fmt.Sprintf("api_url = %q", closed))
		c := &sgCLI{t: t, e: e}
		rows := sgRows(3)
		id := c.startCampaign(rows, "--concurrency", "3")
		if r, _ := tickProblems(t, e, "failed transiently"); countsOf(r) != (tickCounts{Processed: 3, Retried: 3}) {
			t.Errorf("tick with SendGrid unreachable: %+v, want all 3 retried", r)
		}
		attempts := map[string]int{}
		for _, row := range rows {
			rc := c.recipients(id)[row.Email]
			attempts[row.Email] = 2
			if rc.Status != "QUEUED" || rc.Attempts != 1 || rc.LastErrorClass != "transient" || !strings.Contains(rc.LastError, "refused") {
				t.Errorf("%s with SendGrid unreachable: %+v, want QUEUED transient (connection refused) after 1 attempt", row.Email, rc)
			}
		}
		// The network comes back.
		editConfig(t, e, fmt.Sprintf("api_url = %q", closed), fmt.Sprintf("api_url = %q", fake.URL()))
		time.Sleep(60 * time.Millisecond)
		c.tickUntilCompleted(id, 5, 50*time.Millisecond)
		sentOnce(t, c, fake, id, rows, attempts)
	})

	for _, policy := range []string{"resend", "hold"} {
		t.Run("hang-"+policy, func(t *testing.T) {
			t.Parallel()
			const n, conc = 4, 2
			key := sgTestKey(t)
			// The plugin's own timeout (10s) is longer than the tick's. A
			// daemon keeps the plugin warm, so that the short tick is
			// spent waiting on SendGrid, not on starting the plugin.
			e, fake := sgEnv(t, queue+"tick_timeout = \"2s\"\nin_doubt = \""+policy+"\"\n", key)
			fake.SetAPIKey(key)
			c := &sgCLI{t: t, e: e}
			e.StartDaemon()
			warm := c.startCampaign([]sgRow{{Email: "warm@example.org", Name: "Warm", Code: "W"}})
			c.tickUntilCompleted(warm, 3, 0)
			rows := sgRows(n)
			id := c.startCampaign(rows, "--concurrency", strconv.Itoa(conc))
			fake.Stall(conc)
			start := time.Now()
			r, _ := tickProblems(t, e, "failed transiently") // every send cut off: exit 3
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("the tick took %s with tick_timeout 2s", took)
			}
			want := tickCounts{Processed: n, Retried: conc}
			if policy == "hold" {
				want = tickCounts{Processed: n, Failed: conc}
			}
			if countsOf(r) != want {
				t.Errorf("tick against a hanging API: %+v, want %+v", r, want)
			}
			inDoubt := map[string]bool{}
			attempts := map[string]int{}
			for _, row := range rows {
				rc := c.recipients(id)[row.Email]
				switch {
				case rc.LastErrorClass == "in_doubt":
					inDoubt[row.Email] = true
					if policy == "resend" {
						attempts[row.Email] = 2 // the operator's retry (hold) starts the count afresh
					}
					if wantSt := map[string]core.RecipientStatus{"resend": core.RecipientQueued, "hold": core.RecipientFailed}[policy]; rc.Status != wantSt || rc.Attempts != 1 {
						t.Errorf("%s, unanswered at the deadline: %+v, want %s in_doubt after 1 attempt", row.Email, rc, wantSt)
					}
				case rc.Status != "QUEUED" || rc.Attempts != 0 || rc.LastErrorClass != "":
					t.Errorf("%s, never started: %+v, want QUEUED with no attempt counted", row.Email, rc)
				}
			}
			if len(inDoubt) != conc {
				t.Errorf("%d recipients in doubt, want the %d in flight", len(inDoubt), conc)
			}
			if m := fake.Messages(); len(m) != 1 {
				t.Errorf("the fake accepted %d messages while hanging, want only the warm-up", len(m)-1)
			}
			time.Sleep(60 * time.Millisecond)
			c.tickUntilCompleted(id, 5, 50*time.Millisecond)
			if policy == "hold" {
				if cp := c.show(id); cp.Stats != (core.Stats{Total: n, Sent: n - conc, Failed: conc}) {
					t.Errorf("with hold: %+v, want the %d in doubt FAILED for the operator", cp.Stats, conc)
				}
				verifyClean(t, e)
				c.must("campaign", "retry", strconv.FormatInt(id, 10), "--class", "in_doubt")
				c.tickUntilCompleted(id, 5, 50*time.Millisecond)
			}
			sentOnce(t, c, fake, id, rows, attempts)
		})
	}
}

// Issue 12 item 8: one database reached through a symlink elsewhere (its
// lock file would be beside the symlink) has one lock: a second daemon
// through the other path is refused, and a standalone tick through it is
// skipped, naming the real holder (item 12).
func TestFaultOneDatabaseTwoPaths(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, "")
	MustCreateCampaign(t, e)
	linkDir, err := os.MkdirTemp("", "cdl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(linkDir) })
	link := filepath.Join(linkDir, "l")
	if err := os.Symlink(e.Dir, link); err != nil {
		t.Fatal(err)
	}
	// Through a symlinked directory, then through a symlink to the file.
	if err := os.Symlink(filepath.Join(link, "campaignd.db"), filepath.Join(linkDir, "other.db")); err != nil {
		t.Fatal(err)
	}
	other := &Env{T: t, Dir: e.Dir, DB: filepath.Join(linkDir, "other.db"), Socket: filepath.Join(e.Dir, "b.sock"),
		Config: filepath.Join(e.Dir, "b.toml"), Outbox: e.Outbox}
	WriteFile(t, e.Dir, "b.toml", fmt.Sprintf("database = %q\nsocket = %q\nplugin_dir = %q\nlog_level = \"warn\"\n",
		other.DB, other.Socket, binDir))

	d := e.StartDaemon()
	holder := fmt.Sprintf("pid %d: campaignd serve", d.Cmd.Process.Pid)
	r := other.RunWith(RunOpts{Timeout: 15 * time.Second}, "serve")
	if r.Code == 0 || !strings.Contains(r.Stderr, holder) {
		t.Errorf("a second daemon through a symlinked path: want refused naming %q; got %s", holder, r)
	}
	// Its socket (b.sock) is not the daemon's: a problem, exit 3.
	r = other.Run("tick", "-v")
	if r.Code != 3 || !strings.Contains(r.Stdout, "tick skipped") || !strings.Contains(r.Stderr, holder) || !strings.Contains(r.Stderr, "b.sock") {
		t.Errorf("a standalone tick through a symlinked path: want skipped, exit 3, naming %q and b.sock; got %s", holder, r)
	}
}

// Issue 12 item 12: a standalone import reading a stalled pipe does not
// hold the database lock while it waits, so ticks run meanwhile; it
// imports once its input ends.
func TestFaultImportStalledPipe(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, "")
	id := MustCreateCampaign(t, e)
	cmd := exec.Command(Bin(), "--config", e.Config, "--json", "recipients", "import", strconv.FormatInt(id, 10), "-")
	cmd.Dir = e.Dir
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if _, err := stdin.Write([]byte("email,name\nstalled@example.org,Stalled\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the import has read what there is, and waits for more
	r := e.Run("tick", "-v")
	if r.Code != 0 || strings.Contains(r.Stdout, "skipped") {
		t.Errorf("a tick beside an import waiting on its pipe: want it to run; got %s", r)
	}
	stdin.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil || !strings.Contains(out.String(), `"added": 1`) {
			t.Errorf("the import once its input ended: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the import did not finish after its input ended")
	}
}

// Issue 12 item 13: a database deleted under a running daemon is noticed:
// the daemon logs it, and refuses writes (naming the path) instead of
// writing into the unlinked file, whose rows would vanish at exit.
func TestFaultDatabaseDeletedUnderDaemon(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, "")
	MustCreateCampaign(t, e)
	d := e.StartDaemon()
	for _, f := range []string{e.DB, e.DB + "-wal", e.DB + "-shm"} {
		os.Remove(f)
	}
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(d.Stderr(), "database file lost") {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not log the deleted database:\n%s", d.Stderr())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(d.Stderr(), e.DB) {
		t.Errorf("the log does not name the database:\n%s", d.Stderr())
	}
	r := e.Run("campaign", "create", "--name", "after", "--from", "a@example.org", "--subject", "s", "--text", "t")
	if r.Code == 0 || !strings.Contains(r.Stderr, e.DB) || !strings.Contains(r.Stderr, "deleted") {
		t.Errorf("a write after the database was deleted: want refused naming it; got %s", r)
	}
	if _, err := os.Stat(e.DB); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the database reappeared: %v", err)
	}
}
