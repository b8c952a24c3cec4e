package main_test

// End-to-end tests of `campaignd config check`: each configured plugin is
// started and validates its options, --connect opens a real session
// through the optional sdk.Checker call, and secrets are printed as the
// ${VAR} they came from.

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/campaignd/campaignd/sdk/sdktest"
)

var exampleOnce struct {
	sync.Once
	path string
	err  error
}

// examplePlugin is sdk/example built once: a third-party plugin that
// accepts any option and does not implement sdk.Checker.
func examplePlugin(t *testing.T) string {
	t.Helper()
	exampleOnce.Do(func() { exampleOnce.path, exampleOnce.err = sdktest.BuildPlugin("../../sdk/example") })
	if exampleOnce.err != nil {
		t.Fatal(exampleOnce.err)
	}
	return exampleOnce.path
}

// checked is config check's JSON, the parts these tests read.
type checked struct {
	LogLevel     string `json:"log_level"`
	TickInterval string `json:"tick_interval"`
	DefaultFrom  string `json:"default_from"`
	HTTP         struct {
		Listen            string `json:"listen"`
		PublicURL         string `json:"public_url"`
		CronSecret        string `json:"cron_secret"`
		UnsubscribeSecret string `json:"unsubscribe_secret"`
	} `json:"http"`
	Env     map[string]string `json:"env"`
	Senders map[string]struct {
		Plugin  string            `json:"plugin"`
		Options map[string]string `json:"options"`
		Env     map[string]string `json:"env"`
		Check   string            `json:"check"`
		Connect string            `json:"connect"`
	} `json:"senders"`
}

func decodeChecked(t *testing.T, r Result) checked {
	t.Helper()
	var c checked
	if err := json.Unmarshal([]byte(r.Stdout), &c); err != nil {
		t.Fatalf("config check --json: %v\n%s", err, r)
	}
	return c
}

// wantCheckFail: exit 1, the config still printed on stdout, and on
// stderr one "campaignd: " line per problem, each want among them.
func wantCheckFail(t *testing.T, r Result, want ...string) {
	t.Helper()
	if r.Code != 1 || r.Stdout == "" {
		t.Fatalf("want exit 1 with the config on stdout, got %s", r)
	}
	for l := range strings.Lines(r.Stderr) {
		if !strings.HasPrefix(l, "campaignd: ") {
			t.Errorf("stderr line %q is not a \"campaignd: \" problem line:\n%s", l, r.Stderr)
		}
	}
	for _, w := range want {
		if !strings.Contains(r.Stderr, w) {
			t.Errorf("stderr does not say %q:\n%s", w, r.Stderr)
		}
	}
}

func TestConfigCheckMisspelledOption(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, smtpSenderTOML("mail", "127.0.0.1", 25, `username = "u"`, `pasword = "x"`))
	r := e.Run("config", "check")
	wantCheckFail(t, r, `campaignd: senders.mail: configure smtp: unknown option "pasword" (did you mean "password"?)`)
	if !strings.Contains(r.Stdout, "FAILED") {
		t.Errorf("the printed config does not mark the sender as failed:\n%s", r.Stdout)
	}
	r = e.Run("--json", "config", "check")
	wantCheckFail(t, r)
	if c := decodeChecked(t, r); !strings.Contains(c.Senders["mail"].Check, `unknown option "pasword"`) || c.Senders["outbox"].Check != "ok" {
		t.Errorf("JSON checks: mail %q, outbox %q", c.Senders["mail"].Check, c.Senders["outbox"].Check)
	}
	// A bad value names the key too.
	e = NewEnv(t, smtpSenderTOML("mail", "127.0.0.1", 25, `max_connections = "lots"`))
	wantCheckFail(t, e.Run("config", "check"), `campaignd: senders.mail: configure smtp: option "max_connections": invalid value "lots"`)
}

func TestConfigCheckUnknownPlugin(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, "[senders.mail]\nplugin = \"smtpp\"\n")
	wantCheckFail(t, e.Run("config", "check"),
		`campaignd: senders.mail: plugin "smtpp" not found: no executable `+binDir+"/campaignd-sender-smtpp",
		"plugin_dir "+binDir)
}

func TestConfigCheckConnectMailpit(t *testing.T) {
	t.Parallel()
	mp := StartMailpit(t)
	const pass = "mailpit-PASSWORD-4711"
	e := NewEnv(t, mp.SenderTOML("mail", `username = "news"`, `password = "${CD_CC_PASS}"`, `auth = "plain"`))
	e.ExtraEnv = []string{"CD_CC_PASS=" + pass}
	r := e.Run("--json", "config", "check", "--connect")
	if r.Code != 0 || r.Stderr != "" {
		t.Fatalf("config check --connect against mailpit: %s", r)
	}
	c := decodeChecked(t, r)
	for _, name := range []string{"mail", "outbox"} {
		if s := c.Senders[name]; s.Check != "ok" || s.Connect != "ok" {
			t.Errorf("sender %s: check %q connect %q, want ok/ok", name, s.Check, s.Connect)
		}
	}
	if got := c.Senders["mail"].Options["password"]; got != "${CD_CC_PASS}" {
		t.Errorf("password shown as %q, want ${CD_CC_PASS}", got)
	}
	human := e.MustRun("config", "check", "--connect")
	if !strings.Contains(human, "session opened") || strings.Contains(human+r.Stdout, pass) {
		t.Errorf("human output:\n%s", human)
	}
	if n := mp.Count(); n != 0 {
		t.Errorf("config check --connect delivered %d messages", n)
	}
}

func TestConfigCheckConnectClosedPort(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	e := NewEnv(t, smtpSenderTOML("mail", "127.0.0.1", port))
	// The options are valid: without --connect nothing is dialed.
	if r := e.Run("config", "check"); r.Code != 0 {
		t.Fatalf("config check: %s", r)
	}
	wantCheckFail(t, e.Run("config", "check", "--connect"),
		fmt.Sprintf("campaignd: senders.mail: connect 127.0.0.1:%d: connection refused", port))
}

func TestConfigCheckConnectSendGridKey(t *testing.T) {
	t.Parallel()
	bad := sgTestKey(t)
	e, fake := sgEnv(t, "", bad)
	r := e.Run("config", "check", "--connect")
	wantCheckFail(t, r, "campaignd: senders.sg: GET "+fake.URL()+"/v3/scopes: ",
		"The provided authorization grant is invalid, expired, or revoked", "(HTTP 401)")
	if strings.Contains(r.Stdout+r.Stderr, bad) {
		t.Errorf("config check printed the API key:\n%s", r)
	}
	if st := fake.Stats(); st.ScopeRequests != 1 || st.Requests != 0 {
		t.Errorf("fake saw %+v: want one scopes request and no send", st)
	}

	e.ExtraEnv = []string{sgKeyEnv + "=" + fake.APIKey()}
	r = e.Run("--json", "config", "check", "--connect")
	if r.Code != 0 {
		t.Fatalf("config check --connect with the right key: %s", r)
	}
	if s := decodeChecked(t, r).Senders["sg"]; s.Connect != "ok" || s.Options["api_key"] != "${"+sgKeyEnv+"}" {
		t.Errorf("sg: connect %q, api_key shown as %q", s.Connect, s.Options["api_key"])
	}
}

// TestConfigCheckConnectNotSupported: a plugin without the optional Check
// call (here the sdk's example, a third-party plugin) is reported as not
// supporting --connect, and that is not a failure.
func TestConfigCheckConnectNotSupported(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, fmt.Sprintf("[senders.log]\nplugin = %q\n", examplePlugin(t)))
	r := e.Run("--json", "config", "check", "--connect")
	if r.Code != 0 {
		t.Fatalf("config check --connect: %s", r)
	}
	if s := decodeChecked(t, r).Senders["log"]; s.Check != "ok" || s.Connect != "not supported" {
		t.Errorf("log: check %q connect %q, want ok / not supported", s.Check, s.Connect)
	}
	if human := e.MustRun("config", "check", "--connect"); !strings.Contains(human, "--connect not supported by this plugin") {
		t.Errorf("human output does not say --connect is not supported:\n%s", human)
	}
}

// TestConfigCheckPrintsEffectiveConfig: [http], tick_interval, log_level
// and default_from are printed, and every secret is shown as the ${VAR}
// it came from (a ${VAR} in the file, a variable read by default, or a
// plugin's fallback variable), a literal secret as "(set, redacted)",
// never a value.
func TestConfigCheckPrintsEffectiveConfig(t *testing.T) {
	t.Parallel()
	const (
		unsub   = "UNSUB-secret-value-0123456789"
		cron    = "CRON-secret-value-0123456789"
		pass    = "EMAIL-PASS-secret-value"
		literal = "SG.LITERAL-secret-value"
	)
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	e := NewEnv(t, `log_level = "error"
tick_interval = "45s"
default_from = "${CD_CC_FROM}"

[http]
listen = "`+listen+`"
public_url = "https://mail.example.com"
unsubscribe_secret = "${CD_CC_UNSUB}"
`+smtpSenderTOML("mail", "127.0.0.1", 25, `username = "news"`)+`
[senders.sg]
plugin = "sendgrid"

[senders.sg.options]
api_key = "`+literal+`"
`)
	e.ExtraEnv = []string{"CD_CC_FROM=ops@example.com", "CD_CC_UNSUB=" + unsub, "CRON_SECRET=" + cron, "EMAIL_PASS=" + pass}
	r := e.Run("--json", "config", "check")
	human := e.Run("config", "check")
	if r.Code != 0 || human.Code != 0 {
		t.Fatalf("config check:\n%s\n%s", r, human)
	}
	for _, secret := range []string{unsub, cron, pass, literal} {
		if strings.Contains(r.Stdout+r.Stderr+human.Stdout+human.Stderr, secret) {
			t.Errorf("config check printed the secret %q:\n%s\n%s", secret, r.Stdout, human.Stdout)
		}
	}
	c := decodeChecked(t, r)
	if c.LogLevel != "error" || c.TickInterval != "45s" || c.DefaultFrom != "ops@example.com" {
		t.Errorf("log_level %q tick_interval %q default_from %q", c.LogLevel, c.TickInterval, c.DefaultFrom)
	}
	if c.Env["default_from"] != "${CD_CC_FROM}" {
		t.Errorf("env = %v, want default_from from ${CD_CC_FROM}", c.Env)
	}
	if c.HTTP.Listen != listen || c.HTTP.PublicURL != "https://mail.example.com" ||
		c.HTTP.UnsubscribeSecret != "${CD_CC_UNSUB}" || c.HTTP.CronSecret != "${CRON_SECRET}" {
		t.Errorf("http = %+v", c.HTTP)
	}
	if got := c.Senders["mail"].Options["password"]; got != "${EMAIL_PASS}" {
		t.Errorf("smtp password (EMAIL_PASS fallback) shown as %q, want ${EMAIL_PASS}", got)
	}
	if got := c.Senders["sg"].Options["api_key"]; got != "(set, redacted)" {
		t.Errorf("literal api_key shown as %q, want (set, redacted)", got)
	}
	for _, want := range []string{"tick_interval: 45s", "logs:          log_level error (serve), cli_log_level warn", "default_from:  ops@example.com (from ${CD_CC_FROM})",
		"listen " + listen, "cron_secret ${CRON_SECRET}", "unsubscribe_secret ${CD_CC_UNSUB}", "password = ${EMAIL_PASS}", "is valid"} {
		if !strings.Contains(human.Stdout, want) {
			t.Errorf("human output does not show %q:\n%s", want, human.Stdout)
		}
	}
}
