package plugin_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/campaignd/campaignd/sdk"
	"github.com/campaignd/campaignd/sdk/plugin"
)

// echo mirrors the test plugin's Echo.
type echo struct {
	Pid         int
	CampaignID  int64
	RecipientID int64
	MessageID   string
	From        string
	To          string
	ReplyTo     string
	ReturnPath  string
	Subject     string
	Date        string
	Headers     []sdk.Header
	TextSHA     string
	HTMLSHA     string
	Options     map[string]string
}

func shaHex(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

func decodeEcho(t *testing.T, r *sdk.Receipt) echo {
	t.Helper()
	var e echo
	if err := json.Unmarshal([]byte(r.Response), &e); err != nil {
		t.Fatalf("receipt response %q: %v", r.Response, err)
	}
	return e
}

func TestLaunchSendRoundTrip(t *testing.T) {
	p := launch(t, map[string]string{"greeting": "hi"})
	if p.Pid() <= 0 || !alive(p.Pid()) || p.Exited() {
		t.Fatalf("plugin pid %d not running", p.Pid())
	}
	info, err := p.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Options and SecretOptions cross the wire (issue 12: config check
	// redacts what the plugin declares secret), and so do the DNS records
	// of the configuration Launch gave it (issue 15: DKIM's TXT record).
	wantInfo := sdk.Info{Name: "test", Version: "1.2.3", MaxPerSecond: 12.5, MaxConcurrency: 7,
		Options: []string{"greeting", "token"}, SecretOptions: []string{"token"},
		DNSRecords: []sdk.DNSRecord{{Name: "test._domainkey.example.com", Type: "TXT", Value: "greeting=hi"}}}
	if !reflect.DeepEqual(info, wantInfo) {
		t.Errorf("info = %+v, want %+v", info, wantInfo)
	}

	msg := testMsg("round trip")
	msg.ReplyTo = "help@example.com"
	msg.ReturnPath = "bounces+7.42@example.com"
	msg.HTML = "<p>hello</p>"
	msg.Date = time.Date(2025, 3, 4, 5, 6, 7, 0, time.FixedZone("CEST", 2*3600))
	msg.Headers = []sdk.Header{{Name: "List-Unsubscribe", Value: "<https://u.example/x>"}, {Name: "Precedence", Value: "bulk"}}
	r, err := p.Send(t.Context(), msg)
	if err != nil {
		t.Fatal(err)
	}
	e := decodeEcho(t, r)
	if r.ProviderID != strconv.Itoa(p.Pid()) || e.Pid != p.Pid() {
		t.Errorf("provider id %q, echo pid %d, want plugin pid %d", r.ProviderID, e.Pid, p.Pid())
	}
	want := echo{
		Pid: p.Pid(), CampaignID: 7, RecipientID: 42, MessageID: "<7.42@example.com>",
		From: msg.From, To: msg.To, ReplyTo: msg.ReplyTo, ReturnPath: msg.ReturnPath, Subject: msg.Subject,
		Date: "Tue, 04 Mar 2025 05:06:07 +0200", Headers: msg.Headers,
		TextSHA: shaHex(msg.Text), HTMLSHA: shaHex(msg.HTML), Options: map[string]string{"greeting": "hi"},
	}
	got, _ := json.Marshal(e)
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) {
		t.Errorf("plugin received\n%s\nwant\n%s", got, exp)
	}

	pid := p.Pid()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if !p.Exited() {
		t.Error("Exited() = false after Close")
	}
	waitGone(t, pid, 2*time.Second)
	if _, err := p.Send(t.Context(), msg); sdk.AsError(err) == nil || sdk.AsError(err).Class != sdk.ClassTransient {
		t.Errorf("send after close = %v, want transient error", err)
	}
}

func TestErrorsCrossIntact(t *testing.T) {
	p := launch(t, nil)
	for _, want := range []*sdk.Error{
		sdk.Transient("try later").WithSMTP(451, "4.3.0"),
		sdk.Throttled(1500*time.Millisecond, "slow down").WithHTTP(429),
		sdk.Permanent("rejected by policy").WithSMTP(554, "5.7.1"),
		sdk.Bounced("no such user").WithSMTP(550, "5.1.1"),
		sdk.ConfigError("bad api key").WithHTTP(401),
	} {
		_, err := p.Send(t.Context(), testMsg(string(want.Class)))
		var got *sdk.Error
		if !errors.As(err, &got) {
			t.Fatalf("%s: error %v (%T) is not an *sdk.Error", want.Class, err, err)
		}
		if *got != *want {
			t.Errorf("%s: got %+v, want %+v", want.Class, *got, *want)
		}
	}
	_, err := p.Send(t.Context(), testMsg("plain"))
	if e := sdk.AsError(err); e == nil || e.Class != sdk.ClassTransient || e.Message != "plain failure" {
		t.Errorf("plain error arrived as %+v, want transient %q", e, "plain failure")
	}
}

func TestLargeMessages(t *testing.T) {
	p := launch(t, nil)
	msg := testMsg("large")
	msg.HTML = "<p>" + strings.Repeat("x", 10<<20) + "</p>"
	msg.Text = strings.Repeat("y", 5<<20)
	r, err := p.Send(t.Context(), msg)
	if err != nil {
		t.Fatal(err)
	}
	if e := decodeEcho(t, r); e.HTMLSHA != shaHex(msg.HTML) || e.TextSHA != shaHex(msg.Text) {
		t.Error("large bodies arrived altered")
	}

	msg.HTML = strings.Repeat("z", plugin.MaxMessageBytes)
	_, err = p.Send(t.Context(), msg)
	if e := sdk.AsError(err); e == nil || e.Class != sdk.ClassPermanent {
		t.Fatalf("oversized message: %v, want permanent", err)
	}
	if _, err := p.Send(t.Context(), testMsg("after")); err != nil {
		t.Errorf("plugin unusable after an oversized message: %v", err)
	}
}

func TestLaunchChecksum(t *testing.T) {
	mark := filepath.Join(t.TempDir(), "mark")
	bin, err := os.ReadFile(pluginPath)
	if err != nil {
		t.Fatal(err)
	}
	actual := shaHex(string(bin))
	wrong := strings.Repeat("ab", 32)
	_, err = plugin.Launch(t.Context(), plugin.PluginConfig{
		Name: "mailer", Plugin: pluginPath, SHA256: wrong, Env: []string{"TESTPLUGIN_MARK=" + mark},
	})
	if !errors.Is(err, plugin.ErrChecksum) {
		t.Fatalf("err = %v, want ErrChecksum", err)
	}
	for _, s := range []string{"mailer", wrong, actual} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	if pids := markedPids(t, mark); len(pids) != 0 {
		t.Errorf("plugin was started despite the checksum mismatch: pids %v", pids)
	}

	p, err := plugin.Launch(t.Context(), plugin.PluginConfig{Plugin: pluginPath, SHA256: strings.ToUpper(actual), Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatalf("matching checksum: %v", err)
	}
	p.Close()
}

func TestLaunchShortNameAndMissing(t *testing.T) {
	p, err := plugin.Launch(t.Context(), plugin.PluginConfig{Name: "n", Plugin: "testplugin", Dir: pluginDir, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	p.Close()

	_, err = plugin.Launch(t.Context(), plugin.PluginConfig{Name: "mailer", Plugin: "nosuch", Dir: pluginDir})
	if err == nil || !strings.Contains(err.Error(), "mailer") || !strings.Contains(err.Error(), "campaignd-sender-nosuch") {
		t.Errorf("missing plugin: err = %v, want one naming the sender and the file", err)
	}
}

func TestLaunchBadStartups(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want string
	}{
		{"TESTPLUGIN_JUNK=1", `printed "junk before handshake" on stdout`},
		{"TESTPLUGIN_EXIT=1", "testplugin: refusing to start"},
	} {
		mark := filepath.Join(t.TempDir(), "mark")
		start := time.Now()
		_, err := plugin.Launch(t.Context(), plugin.PluginConfig{
			Name: "mailer", Plugin: pluginPath, Env: []string{tc.env, "TESTPLUGIN_MARK=" + mark}, Logger: hclog.NewNullLogger(),
		})
		if !errors.Is(err, plugin.ErrHandshake) || !strings.Contains(err.Error(), "mailer") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrHandshake naming mailer and containing %q", tc.env, err, tc.want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: failing launch took %s", tc.env, d)
		}
		for _, pid := range markedPids(t, mark) {
			waitGone(t, pid, 2*time.Second)
		}
	}
}

func TestLaunchConfigureRejected(t *testing.T) {
	mark := filepath.Join(t.TempDir(), "mark")
	_, err := plugin.Launch(t.Context(), plugin.PluginConfig{
		Name: "mailer", Plugin: pluginPath, Options: map[string]string{"reject": "yes"},
		Env: []string{"TESTPLUGIN_MARK=" + mark}, Logger: hclog.NewNullLogger(),
	})
	var e *sdk.Error
	if !errors.As(err, &e) || e.Class != sdk.ClassConfig || e.Message != "option reject is set: yes" {
		t.Fatalf("err = %v, want config error from the plugin", err)
	}
	if !strings.Contains(err.Error(), "mailer") {
		t.Errorf("error %q does not name the sender", err)
	}
	pids := markedPids(t, mark)
	if len(pids) != 1 {
		t.Fatalf("marked pids %v, want one start", pids)
	}
	waitGone(t, pids[0], 2*time.Second)

	_, err = plugin.Launch(t.Context(), plugin.PluginConfig{
		Plugin: pluginPath, Options: map[string]string{"reject_transient": "1"}, Logger: hclog.NewNullLogger(),
	})
	if !errors.As(err, &e) || e.Class != sdk.ClassTransient || e.SMTPCode != 421 {
		t.Errorf("err = %v, want the plugin's own transient class", err)
	}
}

func TestCrashAndDeadline(t *testing.T) {
	p := launch(t, nil)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	start := time.Now()
	_, err := p.Send(ctx, testMsg("ok"))
	if e := sdk.AsError(err); e == nil || e.Class != sdk.ClassTransient || time.Since(start) > 100*time.Millisecond {
		t.Errorf("cancelled send: %v after %s, want prompt transient", err, time.Since(start))
	}

	ctx, cancel = context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = p.Send(ctx, testMsg("hang"))
	if e := sdk.AsError(err); e == nil || e.Class != sdk.ClassTransient || !strings.Contains(e.Message, "timed out") {
		t.Errorf("hung send: %v, want transient timeout", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("hung send returned after %s", d)
	}
	if _, err := p.Send(t.Context(), testMsg("ok")); err != nil {
		t.Errorf("a Launch-level plugin is not killed on timeout; send after: %v", err)
	}

	_, err = p.Send(t.Context(), testMsg("crash"))
	if e := sdk.AsError(err); e == nil || e.Class != sdk.ClassTransient || !strings.Contains(e.Message, "plugin t crashed") {
		t.Errorf("crash: %v, want transient 'plugin t crashed'", err)
	}
	waitGone(t, p.Pid(), 2*time.Second)
	deadline := time.Now().Add(2 * time.Second)
	for !p.Exited() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !p.Exited() {
		t.Error("Exited() = false after the plugin crashed")
	}
}

func TestPluginLogsReachHost(t *testing.T) {
	for _, level := range []hclog.Level{hclog.Info, hclog.Debug} {
		var buf syncBuffer
		logger := hclog.New(&hclog.LoggerOptions{Level: level, Output: &buf, JSONFormat: true})
		p, err := plugin.Launch(t.Context(), plugin.PluginConfig{Name: "logname", Plugin: pluginPath, Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Send(t.Context(), testMsg("log")); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Second)
		for !strings.Contains(buf.String(), "info line") && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		for !strings.Contains(buf.String(), "stray stdout line") && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		p.Close()
		var info, debug, stray map[string]any
		for line := range strings.Lines(buf.String()) {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) != nil {
				continue
			}
			switch m["@message"] {
			case "info line":
				info = m
			case "debug line":
				debug = m
			case "stray stdout line":
				stray = m
			}
		}
		if info == nil || info["@level"] != "info" || info["k"] != "v" || info["sender"] != "logname" {
			t.Errorf("host at %s: plugin info line arrived as %v\nlog:\n%s", level, info, buf.String())
		}
		if stray == nil || stray["stream"] != "stdout" {
			t.Errorf("host at %s: plugin's stdout after Serve arrived as %v", level, stray)
		}
		if gotDebug := debug != nil; gotDebug != (level == hclog.Debug) {
			t.Errorf("host at %s: plugin debug line arrived = %v", level, gotDebug)
		} else if debug != nil && debug["@level"] != "debug" {
			t.Errorf("debug line arrived at level %v", debug["@level"])
		}
	}
}

func TestPluginExitsWhenHostDies(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	host := exec.Command(exe, "-test.run=^$")
	host.Env = append(os.Environ(), hostHelperEnv+"="+pluginPath)
	out, err := host.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	defer host.Process.Kill()
	line := make([]byte, 64)
	n, _ := out.Read(line)
	pid, err := strconv.Atoi(strings.TrimSpace(string(line[:n])))
	if err != nil {
		t.Fatalf("host helper said %q", line[:n])
	}
	if !alive(pid) {
		t.Fatalf("plugin %d not running under the host", pid)
	}
	if err := host.Process.Kill(); err != nil { // SIGKILL: the host cannot say goodbye
		t.Fatal(err)
	}
	_ = host.Wait()
	start := time.Now()
	waitGone(t, pid, 2*time.Second)
	t.Logf("plugin exited %s after its host was killed", time.Since(start).Round(time.Millisecond))
}

func TestPluginStartedByHandExits(t *testing.T) {
	cmd := exec.Command(pluginPath)
	cmd.Env = []string{}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "plugin") {
		t.Errorf("plugin run by hand: %v, %q; want exit 1 with a notice", err, out)
	}
}

// A plugin that starts and stops as it should logs nothing at info (a CLI
// tick from cron prints nothing); its start and exit lines are debug.
func TestPluginLifecycleLinesAreDebug(t *testing.T) {
	lifecycle := []string{"starting plugin", "plugin started", "sender plugin ready", "plugin process exited"}
	for _, level := range []hclog.Level{hclog.Info, hclog.Debug} {
		var buf syncBuffer
		logger := hclog.New(&hclog.LoggerOptions{Level: level, Output: &buf, JSONFormat: true})
		p, err := plugin.Launch(t.Context(), plugin.PluginConfig{Name: "quiet", Plugin: pluginPath, Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		seen := map[string]string{}
		for line := range strings.Lines(buf.String()) {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) != nil {
				t.Errorf("host at %s: not a JSON line: %q", level, line)
				continue
			}
			msg, _ := m["@message"].(string)
			lv, _ := m["@level"].(string)
			if slices.Contains(lifecycle, msg) {
				seen[msg] = lv
			}
		}
		for _, msg := range lifecycle {
			lv, ok := seen[msg]
			switch {
			case level == hclog.Info && ok:
				t.Errorf("host at info logged %q at %s", msg, lv)
			case level == hclog.Debug && (!ok || lv != "debug"):
				t.Errorf("host at debug: %q logged = %v at %q, want debug\nlog:\n%s", msg, ok, lv, buf.String())
			}
		}
	}
}
