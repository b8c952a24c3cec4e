package main_test

// The end-to-end harness: it builds the real campaignd binary and the
// first-party sender plugins once, and runs them as separate processes
// against a real SQLite file and a real Unix socket in a short temporary
// directory per test.
//
// Set CAMPAIGND_BIN_DIR to a directory holding prebuilt campaignd and
// campaignd-sender-* binaries to skip the build.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/sdk/sdktest"
)

// binDir holds campaignd and the campaignd-sender-* plugin binaries:
// $CAMPAIGND_BIN_DIR if set, else built once by TestMain into a temporary
// directory.
var binDir string

// runTimeout bounds one CLI invocation.
const runTimeout = 60 * time.Second

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	defer sdktest.RemoveBuilt()
	if d := os.Getenv("CAMPAIGND_BIN_DIR"); d != "" {
		abs, err := filepath.Abs(d)
		if err != nil {
			fmt.Fprintf(os.Stderr, "CAMPAIGND_BIN_DIR: %v\n", err)
			return 1
		}
		binDir = abs
		if _, err := os.Stat(filepath.Join(binDir, "campaignd")); err != nil {
			fmt.Fprintf(os.Stderr, "CAMPAIGND_BIN_DIR: %v\n", err)
			return 1
		}
		return m.Run()
	}
	dir, err := buildBinaries()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n", err)
		return 1
	}
	binDir = dir
	return m.Run()
}

// buildBinaries builds every plugin under ../../plugins with
// sdktest.BuildPlugin (plugin "x" becomes campaignd-sender-x, all in one
// directory) and campaignd beside them, and returns that directory, which
// sdktest.RemoveBuilt deletes. Any package that does not build fails the
// run.
func buildBinaries() (string, error) {
	entries, err := os.ReadDir(filepath.Join("..", "..", "plugins"))
	if err != nil {
		return "", err
	}
	var dir string
	for _, e := range entries {
		if e.IsDir() {
			path, err := sdktest.BuildPlugin("../../plugins/" + e.Name())
			if err != nil {
				return "", err
			}
			dir = filepath.Dir(path)
		}
	}
	if dir == "" {
		return "", errors.New("no plugin under ../../plugins")
	}
	var buf bytes.Buffer
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "campaignd"), ".")
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build campaignd: %v\n%s", err, buf.String())
	}
	return dir, nil
}

// Env is one test's campaignd installation: a short temporary directory
// with a config file, a database path, a socket path and the outbox
// directory the built-in outbox sender writes to.
type Env struct {
	T      testing.TB
	Dir    string // the temporary directory; CLI commands run in it
	DB     string // Dir/campaignd.db
	Socket string // Dir/campaignd.sock
	Config string // Dir/campaignd.toml
	Outbox string // Dir/outbox: where the default outbox sender writes

	// ExtraEnv is added to the environment of every command this Env runs
	// ("KEY=value").
	ExtraEnv []string
}

// defaultKeys are the top-level keys NewEnv writes unless extraTOML sets
// them itself before its first table.
var defaultKeys = []string{"database", "socket", "plugin_dir", "log_level"}

// NewEnv makes a short temporary directory (Unix socket paths must stay
// under 108 bytes) and writes a config file with database, socket,
// plugin_dir = binDir and log_level = "warn", then appends extraTOML
// verbatim. A top-level key among those four that extraTOML sets before
// any [table] replaces the default instead of duplicating it.
func NewEnv(t testing.TB, extraTOML string) *Env {
	t.Helper()
	dir, err := os.MkdirTemp("", "cd")
	if err != nil {
		t.Fatalf("NewEnv: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := &Env{
		T:      t,
		Dir:    dir,
		DB:     filepath.Join(dir, "campaignd.db"),
		Socket: filepath.Join(dir, "campaignd.sock"),
		Config: filepath.Join(dir, "campaignd.toml"),
		Outbox: filepath.Join(dir, "outbox"),
	}
	if len(e.Socket) >= 100 {
		t.Fatalf("NewEnv: socket path %s is too long for a Unix socket; set TMPDIR to a short directory", e.Socket)
	}
	own := topLevelKeys(extraTOML)
	vals := map[string]string{"database": e.DB, "socket": e.Socket, "plugin_dir": binDir, "log_level": "warn"}
	var b strings.Builder
	for _, k := range defaultKeys {
		if !own[k] {
			fmt.Fprintf(&b, "%s = %q\n", k, vals[k])
		}
	}
	b.WriteString(extraTOML)
	if extraTOML != "" && !strings.HasSuffix(extraTOML, "\n") {
		b.WriteString("\n")
	}
	if err := os.WriteFile(e.Config, []byte(b.String()), 0o644); err != nil {
		t.Fatalf("NewEnv: %v", err)
	}
	return e
}

var tomlKeyLine = regexp.MustCompile(`^\s*([A-Za-z0-9_-]+)\s*=`)

// topLevelKeys returns the bare keys set before the first [table] header.
func topLevelKeys(doc string) map[string]bool {
	keys := map[string]bool{}
	for _, l := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "[") {
			break
		}
		if m := tomlKeyLine.FindStringSubmatch(l); m != nil {
			keys[m[1]] = true
		}
	}
	return keys
}

// Bin returns the path of the campaignd binary.
func Bin() string { return filepath.Join(binDir, "campaignd") }

// Result is one finished command.
type Result struct {
	Stdout, Stderr string
	Code           int // exit code; -1 if the process did not exit normally (killed, timed out)
}

func (r Result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
}

// RunOpts adjusts one command run by RunWith.
type RunOpts struct {
	Stdin    string
	Env      []string      // added to the environment ("KEY=value")
	Dir      string        // working directory; default e.Dir
	NoConfig bool          // do not pass --config e.Config
	Timeout  time.Duration // default 60 s
}

// RunWith runs campaignd [--config e.Config] args... and returns what it
// did. It never stops the test; a command that cannot start or times out
// is reported with t.Errorf and Code -1.
func (e *Env) RunWith(o RunOpts, args ...string) Result {
	e.T.Helper()
	if o.Timeout == 0 {
		o.Timeout = runTimeout
	}
	if o.Dir == "" {
		o.Dir = e.Dir
	}
	if !o.NoConfig {
		args = append([]string{"--config", e.Config}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, Bin(), args...)
	cmd.Dir = o.Dir
	cmd.Env = append(append(os.Environ(), e.ExtraEnv...), o.Env...)
	cmd.Stdin = strings.NewReader(o.Stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		r.Code = -1
		e.T.Errorf("campaignd %s: timed out after %s\n%s", strings.Join(args, " "), o.Timeout, r)
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	default:
		r.Code = -1
		e.T.Errorf("campaignd %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// Run runs campaignd --config e.Config args... (60 s timeout; the test's
// environment passes through).
func (e *Env) Run(args ...string) Result {
	e.T.Helper()
	return e.RunWith(RunOpts{}, args...)
}

// RunIn is Run with stdin.
func (e *Env) RunIn(stdin string, args ...string) Result {
	e.T.Helper()
	return e.RunWith(RunOpts{Stdin: stdin}, args...)
}

// MustRun runs the command and fails the test (t.Fatal, so only from the
// test goroutine) unless it exits 0; it returns stdout.
func (e *Env) MustRun(args ...string) string {
	e.T.Helper()
	r := e.Run(args...)
	if r.Code != 0 {
		e.T.Fatalf("campaignd %s: %s", strings.Join(args, " "), r)
	}
	return r.Stdout
}

// MustJSON runs the command with --json, requires exit 0 and decodes its
// one JSON document into v (unknown fields allowed; trailing data not).
func (e *Env) MustJSON(v any, args ...string) {
	e.T.Helper()
	out := e.MustRun(append([]string{"--json"}, args...)...)
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(v); err != nil {
		e.T.Fatalf("campaignd --json %s: decode %T: %v\nstdout:\n%s", strings.Join(args, " "), v, err, out)
	}
	if dec.More() {
		e.T.Fatalf("campaignd --json %s: more than one JSON document:\n%s", strings.Join(args, " "), out)
	}
}

// HTTPClient returns an HTTP client whose every request goes to the
// daemon's control socket (use any host in URLs, e.g. http://campaignd/v1/status).
func (e *Env) HTTPClient() *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", e.Socket)
			},
			DisableKeepAlives: true,
		},
	}
}

// Daemon is a running `campaignd serve`.
type Daemon struct {
	Cmd *exec.Cmd
	env *Env

	stderr *syncBuffer
	stdout *syncBuffer
	done   chan struct{}
	err    error // from Wait, valid after done is closed

	mu      sync.Mutex
	stopped bool // Stop or Kill was called
}

// syncBuffer is a bytes.Buffer safe for the process's writer goroutine and
// the test reading it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// daemonStartTimeout bounds how long StartDaemon waits for the socket.
const daemonStartTimeout = 30 * time.Second

// StartDaemon runs campaignd --config e.Config serve extraArgs... and waits
// until the control socket answers GET /v1/status. It stops the daemon with
// SIGTERM in t.Cleanup and fails the test if it then exits non-zero (or had
// already died).
func (e *Env) StartDaemon(extraArgs ...string) *Daemon {
	e.T.Helper()
	args := append([]string{"--config", e.Config, "serve"}, extraArgs...)
	cmd := exec.Command(Bin(), args...)
	cmd.Dir = e.Dir
	cmd.Env = append(os.Environ(), e.ExtraEnv...)
	d := &Daemon{Cmd: cmd, env: e, stderr: &syncBuffer{}, stdout: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = d.stdout, d.stderr
	if err := cmd.Start(); err != nil {
		e.T.Fatalf("start daemon: %v", err)
	}
	go func() {
		d.err = cmd.Wait()
		close(d.done)
	}()
	e.T.Cleanup(func() {
		d.mu.Lock()
		stopped := d.stopped
		d.mu.Unlock()
		if stopped {
			return
		}
		select {
		case <-d.done:
			e.T.Errorf("daemon died during the test: %v\nstderr:\n%s", d.err, d.Stderr())
			return
		default:
		}
		if err := d.Stop(); err != nil {
			e.T.Errorf("daemon did not stop cleanly: %v\nstderr:\n%s", err, d.Stderr())
		}
	})
	deadline := time.Now().Add(daemonStartTimeout)
	for {
		select {
		case <-d.done:
			d.mu.Lock()
			d.stopped = true
			d.mu.Unlock()
			e.T.Fatalf("daemon exited before its socket answered: %v\nstdout:\n%s\nstderr:\n%s", d.err, d.stdout.String(), d.Stderr())
		default:
		}
		if fi, err := os.Lstat(e.Socket); err == nil && fi.Mode().Type() == os.ModeSocket && e.statusOK() {
			return d
		}
		if time.Now().After(deadline) {
			d.Kill()
			e.T.Fatalf("daemon socket %s did not answer within %s\nstderr:\n%s", e.Socket, daemonStartTimeout, d.Stderr())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// statusOK reports whether GET /v1/status on the socket answers 200.
func (e *Env) statusOK() bool {
	c := e.HTTPClient()
	c.Timeout = 2 * time.Second
	resp, err := c.Get("http://campaignd/v1/status")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

// Stderr returns what the daemon has logged so far.
func (d *Daemon) Stderr() string { return d.stderr.String() }

// Exited reports whether the daemon process has exited.
func (d *Daemon) Exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// daemonStopTimeout bounds Stop's wait after SIGTERM.
const daemonStopTimeout = 30 * time.Second

// Stop sends SIGTERM and waits (at most 30 s, then SIGKILL). It returns nil
// only if the daemon exited 0.
func (d *Daemon) Stop() error {
	d.mu.Lock()
	d.stopped = true
	d.mu.Unlock()
	select {
	case <-d.done:
		return d.err
	default:
	}
	if err := d.Cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("SIGTERM: %w", err)
	}
	select {
	case <-d.done:
		return d.err
	case <-time.After(daemonStopTimeout):
		_ = d.Cmd.Process.Kill()
		<-d.done
		return fmt.Errorf("daemon did not exit within %s of SIGTERM; killed", daemonStopTimeout)
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (d *Daemon) Kill() {
	d.mu.Lock()
	d.stopped = true
	d.mu.Unlock()
	_ = d.Cmd.Process.Kill()
	<-d.done
}

// MustCreateCampaign runs campaign create with defaults (--name, --from
// test@example.com, --subject, --text) that args override, and returns the
// new campaign's id. Giving any of --text, --text-file, --html or
// --html-file drops the default --text.
func MustCreateCampaign(t testing.TB, e *Env, args ...string) int64 {
	t.Helper()
	has := func(flags ...string) bool {
		for _, a := range args {
			if !strings.HasPrefix(a, "-") {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
			for _, f := range flags {
				if name == strings.TrimLeft(f, "-") {
					return true
				}
			}
		}
		return false
	}
	full := []string{"campaign", "create"}
	if !has("--name") {
		full = append(full, "--name", "test campaign")
	}
	if !has("--from") {
		full = append(full, "--from", "test@example.com")
	}
	if !has("--subject") {
		full = append(full, "--subject", "Hello {{.Name}}")
	}
	if !has("--text", "--text-file", "--html", "--html-file") {
		full = append(full, "--text", "Hi {{.Name}} <{{.Email}}>, this is {{.Campaign.Name}}.\n")
	}
	full = append(full, args...)
	var c core.Campaign
	if e.T != t {
		// Run through e, but report to the caller's t.
		e2 := *e
		e2.T = t
		e = &e2
	}
	e.MustJSON(&c, full...)
	if c.ID <= 0 {
		t.Fatalf("campaign create: no id in the answer (id %d)", c.ID)
	}
	return c.ID
}

// WriteFile writes content to dir/name and returns the path.
func WriteFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	return p
}
