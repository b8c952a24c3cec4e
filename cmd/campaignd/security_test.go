package main_test

// Security end-to-end tests: the real binaries as separate processes, on a
// real SQLite file, a real control socket, a real SMTP sink and the real
// outbox plugin. What they pin down:
//
//   - files campaignd creates are private whatever the umask: database (and
//     its -wal/-shm), lock file and control socket 0600, the outbox
//     directory and its .eml files without any permission for others;
//   - secrets (password/api_key/secret options, CRON_SECRET, EMAIL_PASS, the
//     unsubscribe secret) appear neither in `config check` (text or JSON)
//     nor anywhere in a trace-level daemon log of a whole send;
//   - a plugin whose sha256 does not match the configuration never runs;
//   - no CLI field can inject a header: CR/LF is refused at the door, and
//     an attribute that would carry one into the subject fails that
//     recipient with class template and writes no message;
//   - HTML bodies escape recipient data;
//   - the control socket refuses a uid it was not told to allow, even when
//     its mode lets everyone connect; and the CLI refuses a daemon run by
//     a uid it was not told to trust, before sending anything;
//   - unsigned SendGrid webhooks are refused unless the operator opted in,
//     and the route exists only with a SendGrid sender;
//   - text output escapes control characters from CSVs, webhooks and SMTP
//     replies, while --json stays exact;
//   - an IDN address is one recipient and one suppression however its
//     domain is spelt; a public_url with credentials is refused; a
//     campaign's Precedence replaces the default; paging past the int64
//     maximum is an empty page.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/plugins/smtp/smtptest"
)

// ---- helpers (prefixed sec to stay out of other files' way) ----

// secRunUmask0 runs campaignd --config e.Config args... under umask 000, so
// every mode it leaves on disk is one it chose, not one the umask gave.
func secRunUmask0(t *testing.T, e *Env, args ...string) Result {
	t.Helper()
	cmd := exec.Command("/bin/sh", append([]string{"-c", `umask 000 && exec "$0" "$@"`, Bin(), "--config", e.Config}, args...)...)
	cmd.Dir = e.Dir
	cmd.Env = append(os.Environ(), e.ExtraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(runTimeout):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("campaignd %s: timed out", strings.Join(args, " "))
	}
	r := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("campaignd %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// secMode fails the test unless path exists with permission bits that
// share nothing with forbidden; it returns the mode.
func secMode(t *testing.T, path string, forbidden os.FileMode) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return 0
	}
	if p := fi.Mode().Perm(); p&forbidden != 0 {
		t.Errorf("%s has mode %04o: the bits %04o must be clear", path, p, forbidden)
	}
	return fi.Mode()
}

// secID extracts the "id" a --json create printed.
func secID(t *testing.T, out string) string {
	t.Helper()
	var v core.Campaign
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.ID <= 0 {
		t.Fatalf("no id in %q (%v)", out, err)
	}
	return strconv.FormatInt(v.ID, 10)
}

func secRecipients(t *testing.T, e *Env, id string) map[string]core.Recipient {
	t.Helper()
	var rs []core.Recipient
	e.MustJSON(&rs, "recipients", "list", id)
	m := map[string]core.Recipient{}
	for _, r := range rs {
		m[r.Email] = r
	}
	return m
}

// secCampaign creates a campaign with args, adds the recipients (each a
// list of `recipients add` arguments after the id), activates and executes
// it, and returns its id.
func secCampaign(t *testing.T, e *Env, create []string, recipients ...[]string) string {
	t.Helper()
	id := secID(t, e.MustRun(append([]string{"--json", "campaign", "create"}, create...)...))
	for _, r := range recipients {
		e.MustRun(append([]string{"recipients", "add", id}, r...)...)
	}
	e.MustRun("campaign", "activate", id)
	e.MustRun("campaign", "execute", id)
	return id
}

// secTick runs `campaignd --json tick` and decodes its answer.
func secTick(t *testing.T, e *Env) (res struct{ Processed, Sent, Failed int }, r Result) {
	t.Helper()
	r = e.Run("--json", "tick")
	if r.Code != 0 {
		t.Fatalf("tick: %s", r)
	}
	if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil {
		t.Fatalf("tick answer %q: %v", r.Stdout, err)
	}
	return res, r
}

// secParseEML parses an outbox file and returns the message and its
// decoded text and HTML parts.
func secParseEML(t *testing.T, path string) (msg *mail.Message, text, html string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	msg, err = mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: %v\n%s", path, err, raw)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("%s: Content-Type: %v", path, err)
	}
	decode := func(r io.Reader) string {
		b, err := io.ReadAll(quotedprintable.NewReader(r))
		if err != nil {
			t.Fatalf("%s: quoted-printable: %v", path, err)
		}
		return string(b)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		body := decode(msg.Body)
		if mt == "text/html" {
			return msg, "", body
		}
		return msg, body, ""
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: multipart: %v", path, err)
		}
		switch ct := p.Header.Get("Content-Type"); {
		case strings.HasPrefix(ct, "text/plain"):
			text = decode(p)
		case strings.HasPrefix(ct, "text/html"):
			html = decode(p)
		}
	}
	return msg, text, html
}

// ---- file modes ----

// TestSecurityFileModes: under umask 000, everything campaignd creates is
// still private.
func TestSecurityFileModes(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, "")
	run := func(args ...string) string {
		t.Helper()
		r := secRunUmask0(t, e, args...)
		if r.Code != 0 {
			t.Fatalf("campaignd %s: %s", strings.Join(args, " "), r)
		}
		return r.Stdout
	}
	id := secID(t, run("--json", "campaign", "create", "--name", "modes", "--from", "news@example.com",
		"--subject", "Hi {{.Name}}", "--text", "Hello {{.Name}}"))
	run("recipients", "add", id, "ann@example.com", "--name", "Ann")
	run("recipients", "add", id, "bob@example.com", "--name", "Bob")
	run("campaign", "activate", id)
	run("campaign", "execute", id)
	run("tick")

	secMode(t, e.DB, 0o177) // exactly rw for the owner
	for _, suffix := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(e.DB + suffix); err == nil {
			secMode(t, e.DB+suffix, 0o177)
		}
	}
	secMode(t, e.DB+".lock", 0o177)
	if m := secMode(t, e.Outbox, 0o007); !m.IsDir() {
		t.Errorf("outbox %s is not a directory", e.Outbox)
	}
	emls, _ := filepath.Glob(filepath.Join(e.Outbox, "*"))
	if len(emls) != 2 {
		t.Errorf("outbox holds %v, want two .eml files", emls)
	}
	for _, f := range emls {
		secMode(t, f, 0o077)
	}

	// The daemon's socket, also under umask 000.
	cmd := exec.Command("/bin/sh", "-c", `umask 000 && exec "$0" "$@"`, Bin(), "--config", e.Config, "serve")
	cmd.Dir = e.Dir
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("daemon: %v\n%s", err, stderr.String())
			}
		case <-time.After(daemonStopTimeout):
			_ = cmd.Process.Kill()
			t.Errorf("daemon did not stop on SIGTERM")
		}
	}()
	deadline := time.Now().Add(daemonStartTimeout)
	for !e.statusOK() {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("daemon exited: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon socket did not answer\n%s", stderr.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
	if m := secMode(t, e.Socket, 0o177); m.Type() != os.ModeSocket {
		t.Errorf("%s is %v, not a socket", e.Socket, m)
	}
	secMode(t, e.DB, 0o177)
	secMode(t, e.DB+".lock", 0o177)
}

// ---- secrets ----

// TestSecuritySecretsNeverPrinted: secrets from the file and from the
// environment never show in config check, nor in a trace-level daemon log
// of a whole send (plugin start and configure, SMTP, the HTTP cron
// endpoint with its bearer token, unsubscribe URLs).
func TestSecuritySecretsNeverPrinted(t *testing.T) {
	t.Parallel()
	const (
		smtpPass   = "sEcReT-smtp-password-4242"
		emailPass  = "sEcReT-EMAIL_PASS-1717"
		cronSecret = "sEcReT-CRON_SECRET-0123456789"
		apiKey     = "sEcReT-literal-api-key-9898"
		secretOpt  = "sEcReT-option-secret-5656"
		unsubSec   = "sEcReT-unsubscribe-0123456789"
	)
	secrets := []string{smtpPass, emailPass, cronSecret, apiKey, secretOpt, unsubSec}
	sink := NewSink(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := ln.Addr().String()
	ln.Close()
	e := NewEnv(t, `log_level = "trace"

[http]
listen = "`+httpAddr+`"
public_url = "http://`+httpAddr+`"
cron_secret = "${CRON_SECRET}"
unsubscribe_secret = "${CD_SEC_UNSUB}"
`+sinkTOML("mail", sink, `auth = "none"`, `password = "${CD_SEC_SMTP_PASS}"`)+`
[senders.sg]
plugin = "sendgrid"

[senders.sg.options]
api_key = "`+apiKey+`"
secret = "`+secretOpt+`"
`)
	e.ExtraEnv = []string{"CD_SEC_SMTP_PASS=" + smtpPass, "EMAIL_PASS=" + emailPass,
		"CRON_SECRET=" + cronSecret, "CD_SEC_UNSUB=" + unsubSec}
	var outputs []string
	noLeak := func(what, s string) {
		t.Helper()
		for _, sec := range secrets {
			if strings.Contains(s, sec) {
				t.Errorf("%s shows the secret %q:\n%s", what, sec, s)
			}
		}
	}

	// sendgrid has no option "secret": config check prints the config and
	// refuses it, naming the option, never its value.
	humanRun, jsonRun := e.Run("config", "check"), e.Run("--json", "config", "check")
	asJSON := jsonRun.Stdout
	if humanRun.Code != 1 || !strings.Contains(humanRun.Stderr, `senders.sg: configure sendgrid: unknown option "secret"`) {
		t.Errorf("config check with an unknown sendgrid option: %s", humanRun)
	}
	noLeak("config check", humanRun.Stdout+humanRun.Stderr)
	noLeak("config check --json", jsonRun.Stdout+jsonRun.Stderr)
	var cc struct {
		Senders map[string]struct {
			Options map[string]string `json:"options"`
		} `json:"senders"`
	}
	if err := json.Unmarshal([]byte(asJSON), &cc); err != nil {
		t.Fatalf("config check --json: %v\n%s", err, asJSON)
	}
	for _, o := range []struct{ sender, key string }{{"mail", "password"}, {"sg", "api_key"}, {"sg", "secret"}} {
		if v := cc.Senders[o.sender].Options[o.key]; v == "" {
			t.Errorf("config check does not list senders.%s.options.%s at all (want it shown as set, redacted): %v", o.sender, o.key, cc.Senders)
		}
	}

	d := e.StartDaemon()
	id := secCampaign(t, e, []string{"--name", "secrets", "--sender", "mail", "--from", "news@example.com",
		"--subject", "Hi {{.Name}}", "--text", "Hello {{.Name}} {{.UnsubscribeURL}}"},
		[]string{"ann@example.com", "--name", "Ann"}, []string{"bob@example.com", "--name", "Bob"})
	r := e.Run("-v", "tick")
	outputs = append(outputs, r.Stdout, r.Stderr)
	if r.Code != 0 {
		t.Fatalf("tick: %s", r)
	}
	if got := len(sink.Messages()); got != 2 {
		t.Fatalf("the sink received %d messages, want 2\n%s", got, d.Stderr())
	}
	// The cron endpoint, with a wrong and with the right bearer token.
	for _, tok := range []string{"wrong-token", cronSecret} {
		req, _ := http.NewRequest("POST", "http://"+httpAddr+"/api/cron/process-email-queue", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("cron endpoint: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		outputs = append(outputs, string(body))
		if want := map[bool]int{false: 401, true: 200}[tok == cronSecret]; resp.StatusCode != want {
			t.Errorf("cron endpoint with token %q: %d %s, want %d", tok, resp.StatusCode, body, want)
		}
	}
	outputs = append(outputs, e.MustRun("--json", "recipients", "list", id), e.MustRun("--json", "ticks"))
	if err := d.Stop(); err != nil {
		t.Errorf("daemon stop: %v", err)
	}
	log := d.Stderr()
	if !strings.Contains(log, "[TRACE]") && !strings.Contains(log, "[DEBUG]") {
		t.Fatalf("the daemon did not log at trace level; nothing was checked:\n%s", log)
	}
	noLeak("the daemon's trace log", log)
	for _, o := range outputs {
		noLeak("CLI/HTTP output", o)
	}
	for _, m := range sink.Messages() {
		noLeak("a sent message", string(m.Data))
	}
}

// ---- plugin checksum ----

// TestSecurityPluginChecksumMismatch: a plugin whose SHA-256 differs from
// the configured one is never executed, standalone or in the daemon; the
// tick survives it, no recipient fails, the campaign pauses, and the error
// says why. The same script with the right checksum does run (the marker
// works).
func TestSecurityPluginChecksumMismatch(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"standalone", "daemon"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			marker := filepath.Join(dir, "started")
			script := filepath.Join(dir, "campaignd-sender-tampered")
			content := "#!/bin/sh\necho started >> '" + marker + "'\nexit 1\n"
			if err := os.WriteFile(script, []byte(content), 0o755); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256([]byte(content))
			good := hex.EncodeToString(sum[:])
			wrong := strings.Repeat("0", 64)
			e := NewEnv(t, fmt.Sprintf("\n[senders.tampered]\nplugin = %q\nsha256 = %q\n\n[senders.control]\nplugin = %q\nsha256 = %q\n",
				script, wrong, script, strings.ToUpper(good)))
			if mode == "daemon" {
				e.StartDaemon()
			}
			id := secCampaign(t, e, []string{"--name", "tampered", "--sender", "tampered", "--from", "news@example.com",
				"--subject", "Hi", "--text", "Hello"}, []string{"ann@example.com"}, []string{"bob@example.com"})
			res, _, r := tickAnyExit(t, e)
			if r.Code != 3 {
				t.Errorf("tick with a tampered plugin: want exit 3 (a problem of the tick)\n%s", r)
			}
			if res.Sent != 0 || res.Failed != 0 {
				t.Errorf("tick: %+v, want nothing sent or failed", res)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatalf("the plugin with the wrong checksum was executed")
			}
			var c core.Campaign
			e.MustJSON(&c, "campaign", "show", id)
			if c.Stats.Queued != 2 || c.Stats.Failed+c.Stats.Bounced+c.Stats.Sent != 0 {
				t.Errorf("campaign stats %+v: the recipients must stay queued", c.Stats)
			}
			if c.Status != "PAUSED" {
				t.Errorf("campaign is %s, want PAUSED (a sender that cannot be trusted is a configuration error)", c.Status)
			}
			said := r.Stderr
			for _, rc := range secRecipients(t, e, id) {
				if rc.Status != "QUEUED" || rc.Attempts != 0 {
					t.Errorf("%s: %s after %d attempts, want QUEUED with none", rc.Email, rc.Status, rc.Attempts)
				}
				said += rc.LastError
			}
			var ticks []core.TickRecord
			e.MustJSON(&ticks, "ticks")
			for _, tk := range ticks {
				said += tk.Error
			}
			if !strings.Contains(said, "checksum") || !strings.Contains(said, wrong) {
				t.Errorf("nothing names the checksum mismatch; tick stderr, recipients' errors and tick records say:\n%s", said)
			}

			// The control: the right checksum lets the same script run
			// (it then fails its handshake, which is not this test's
			// business).
			secCampaign(t, e, []string{"--name", "control", "--sender", "control", "--from", "news@example.com",
				"--subject", "Hi", "--text", "Hello"}, []string{"cy@example.com"})
			tickAnyExit(t, e) // its handshake fails: a problem of the tick
			if _, err := os.Stat(marker); err != nil {
				t.Errorf("the plugin with the right checksum did not run either: the marker proves nothing (%v)", err)
			}
		})
	}
}

// ---- header injection and escaping ----

// TestSecurityCRLFRejectedAtTheDoor: every header-bound CLI field refuses
// CR and LF (and headers campaignd sets itself), in both modes, and
// nothing is created.
func TestSecurityCRLFRejectedAtTheDoor(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"standalone", "daemon"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := NewEnv(t, "")
			if mode == "daemon" {
				e.StartDaemon()
			}
			base := map[string]string{"--name": "spring", "--from": "news@example.com", "--subject": "Hi {{.Name}}",
				"--text": "Hello", "--reply-to": "help@example.com"}
			evil := "\r\nBcc: victim@example.net"
			cases := []struct {
				flag, value string
			}{
				{"--name", "spring" + evil},
				{"--name", "spring\nBcc: victim@example.net"},
				{"--subject", "Hi" + evil},
				{"--subject", "Hi\rBcc: victim@example.net"},
				{"--subject", "Hi {{.Name}}\n\n<html>body</html>"},
				{"--from", "news@example.com" + evil},
				{"--from", "\"News" + evil + "\" <news@example.com>"},
				{"--reply-to", "help@example.com" + evil},
				{"--reply-to", "help@example.com\nBcc: victim@example.net"},
				{"--header", "X-Tag: a" + evil},
				{"--header", "X-Tag: a\nBcc: victim@example.net"},
				{"--header", "X-Tag" + evil + ": a"},
				{"--header", "Bcc: victim@example.net"},
				{"--header", "cc: victim@example.net"},
				{"--header", "To: victim@example.net"},
				{"--header", "Content-Type: text/html"},
			}
			for _, c := range cases {
				args := []string{"campaign", "create"}
				for k, v := range base {
					if k != c.flag {
						args = append(args, k, v)
					}
				}
				args = append(args, c.flag, c.value)
				if r := e.Run(args...); r.Code == 0 {
					t.Errorf("campaign create %s %q was accepted:\n%s", c.flag, c.value, r)
				}
			}
			var cs []json.RawMessage
			e.MustJSON(&cs, "campaign", "list")
			if len(cs) != 0 {
				t.Fatalf("%d campaigns were created from rejected input", len(cs))
			}

			id := secID(t, e.MustRun("--json", "campaign", "create", "--name", "ok", "--from", "news@example.com",
				"--subject", "Hi {{.Name}}", "--text", "Hello"))
			for _, args := range [][]string{
				{"victim@example.com" + evil},
				{"victim@example.com\nBcc: x@example.net"},
				{"\"Ann" + evil + "\" <ann@example.com>"},
				{"ann@example.com", "--name", "Ann" + evil},
				{"ann@example.com", "--name", "Ann\nBcc: victim@example.net"},
				{"ann@example.com", "--name", "Ann\rBcc: victim@example.net"},
			} {
				if r := e.Run(append([]string{"recipients", "add", id}, args...)...); r.Code == 0 {
					t.Errorf("recipients add %q was accepted:\n%s", args, r)
				}
			}
			if rs := secRecipients(t, e, id); len(rs) != 0 {
				t.Fatalf("rejected recipients were stored: %v", rs)
			}
		})
	}
}

// TestSecurityTemplateInjection: attributes may hold line breaks (bodies
// use them), but one that would carry a line break into the subject fails
// that recipient with class template and no message is written; recipient
// data is escaped in HTML bodies; a sent message has exactly one To and no
// Bcc.
func TestSecurityTemplateInjection(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, "")
	htmlFile := WriteFile(t, e.Dir, "body.html", "<html><body><p>Dear {{.Name}},</p><p>{{.Attr.note}}</p>"+
		"<a href=\"https://example.com/?c={{.Attr.city}}\">more</a></body></html>\n")
	const scriptName = "<script>alert(1)</script>"
	id := secCampaign(t, e, []string{"--name", "inject", "--from", "News <news@example.com>",
		"--subject", "Hello {{.Name}} from {{.Attr.city}}", "--text", "Dear {{.Name}}, {{.Attr.note}}", "--html-file", htmlFile},
		[]string{"ok@example.com", "--name", scriptName, "--attr", "city=Oslo\"><script>x()</script>",
			"--attr", "note=<img src=x onerror=alert(2)> & </p><script>alert(3)</script>"},
		[]string{"crlf@example.com", "--name", "Victim", "--attr", "city=Oslo\r\nBcc: evil@example.net", "--attr", "note=n"},
		[]string{"lf@example.com", "--name", "Victim", "--attr", "city=Oslo\nBcc: evil@example.net", "--attr", "note=n"},
		[]string{"cr@example.com", "--name", "Victim", "--attr", "city=Oslo\rBcc: evil@example.net", "--attr", "note=n"},
	)
	// One more through a CSV import: a quoted field may span lines.
	csv := WriteFile(t, e.Dir, "more.csv", "email,name,city,note\nimported@example.com,Imp,\"Oslo\r\nBcc: evil@example.net\",n\n")
	e.MustRun("recipients", "import", id, csv)

	res, _ := secTick(t, e)
	if res.Processed != 5 || res.Sent != 1 || res.Failed != 4 {
		t.Errorf("tick %+v, want 5 processed, 1 sent, 4 failed", res)
	}
	rs := secRecipients(t, e, id)
	for _, addr := range []string{"crlf@example.com", "lf@example.com", "cr@example.com", "imported@example.com"} {
		rc := rs[addr]
		if rc.Status != "FAILED" || rc.LastErrorClass != "template" {
			t.Errorf("%s: %s class %q (%s), want FAILED class template", addr, rc.Status, rc.LastErrorClass, rc.LastError)
		}
		if _, err := os.Stat(filepath.Join(e.Outbox, fmt.Sprintf("%s-%d.eml", id, rc.ID))); err == nil {
			t.Errorf("%s: a message was written although the recipient failed", addr)
		}
	}
	ok := rs["ok@example.com"]
	if ok.Status != "SENT" {
		t.Fatalf("ok@example.com: %+v", ok)
	}
	files, _ := filepath.Glob(filepath.Join(e.Outbox, "*.eml"))
	if want := filepath.Join(e.Outbox, fmt.Sprintf("%s-%d.eml", id, ok.ID)); len(files) != 1 || files[0] != want {
		t.Fatalf("outbox holds %v, want only %s", files, want)
	}
	msg, text, html := secParseEML(t, files[0])
	if n := len(msg.Header["To"]); n != 1 {
		t.Errorf("%d To fields", n)
	}
	for _, k := range []string{"Bcc", "Cc"} {
		if v, ok := msg.Header[k]; ok {
			t.Errorf("the message has a %s field: %q", k, v)
		}
	}
	if to, err := mail.ParseAddress(msg.Header.Get("To")); err != nil || to.Address != "ok@example.com" || to.Name != scriptName {
		t.Errorf("To %q reads as %+v (%v)", msg.Header.Get("To"), to, err)
	}
	if subj, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err != nil ||
		subj != "Hello "+scriptName+" from Oslo\"><script>x()</script>" {
		t.Errorf("Subject reads as %q (%v)", subj, err)
	}
	if !strings.Contains(text, scriptName) {
		t.Errorf("the text body is plain text and keeps the name as is; got %q", text)
	}
	if html == "" {
		t.Fatalf("no HTML part")
	}
	if c := strings.Count(strings.ToLower(html), "<script"); c != 0 {
		t.Errorf("the HTML body has %d unescaped <script from recipient data:\n%s", c, html)
	}
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(2)&gt; &amp; &lt;/p&gt;"} {
		if !strings.Contains(html, want) {
			t.Errorf("the HTML body does not contain %q:\n%s", want, html)
		}
	}
	if strings.Contains(html, `"><`) || strings.Contains(html, "<img") {
		t.Errorf("recipient data broke out of its HTML context:\n%s", html)
	}
}

// TestSecuritySMTPEnvelope: an address whose quoted local part holds '>'
// or spaces ("root>"@example.com is a valid RFC 5322 address) must reach
// the SMTP server as that one mailbox. Sent unquoted it would end the path
// early, RCPT TO:<root>@example.com>, and the server would deliver to its
// local "root" or read the rest as ESMTP parameters.
func TestSecuritySMTPEnvelope(t *testing.T) {
	t.Parallel()
	sink := NewSink(t)
	e := NewEnv(t, sinkTOML("mail", sink))
	evil := []string{`"root>"@example.com`, `"x> NOTIFY=SUCCESS ORCPT=rfc822;spy@example.net"@example.com`, `"a b"@example.com`}
	var adds [][]string
	for _, a := range evil {
		adds = append(adds, []string{a})
	}
	adds = append(adds, []string{"plain@example.com"})
	id := secCampaign(t, e, []string{"--name", "envelope", "--sender", "mail", "--from", "news@example.com",
		"--subject", "Hi", "--text", "Hello"}, adds...)
	secTick(t, e)
	want := map[string]bool{"plain@example.com": true}
	for _, a := range evil {
		addr, err := mail.ParseAddress(a)
		if err != nil {
			t.Fatal(err)
		}
		want[strings.ToLower(addr.Address)] = true // the server hands out the mailbox unquoted
	}
	for _, m := range sink.Messages() {
		if !want[strings.ToLower(m.To)] {
			t.Errorf("the SMTP server got RCPT TO for %q, which is no recipient's address", m.To)
		}
	}
	// Quoted properly, each is one valid path the server accepts.
	for _, rc := range secRecipients(t, e, id) {
		if rc.Status != "SENT" {
			t.Errorf("%s: %s (%s), want SENT: its path must reach the server intact", rc.Email, rc.Status, rc.LastError)
		}
	}
	if got := len(sink.Messages()); got != len(want) {
		t.Errorf("the server accepted %d messages, want %d", got, len(want))
	}
}

// ---- socket peer credentials ----

// TestSecuritySocketPeerUID: with socket_mode 0666 anyone can connect, but
// the daemon checks the caller's uid (SO_PEERCRED): the real campaignd run
// as uid 65534 is refused, and allowed once allow_uids names it. Needs
// root (to run the child as another uid).
func TestSecuritySocketPeerUID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as uid 65534")
	}
	t.Parallel()
	world, bin := otherUserDir(t, false)
	sock := filepath.Join(world, "c.sock")
	e := NewEnv(t, fmt.Sprintf("socket = %q\nsocket_mode = \"0666\"\n", sock))
	e.Socket = sock
	id := secID(t, e.MustRun("--json", "campaign", "create", "--name", "peer", "--from", "news@example.com",
		"--subject", "Hi", "--text", "Hello"))

	asNobody := func() Result {
		t.Helper()
		cmd := exec.Command(bin, "--socket", sock, "--db", filepath.Join(world, "nobody.db"), "--json", "campaign", "list")
		cmd.Dir = world
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + world}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, NoSetGroups: true}}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		r := Result{Stdout: stdout.String(), Stderr: stderr.String()}
		if ee, ok := err.(*exec.ExitError); ok {
			r.Code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("run as uid 65534: %v", err)
		}
		return r
	}

	d := e.StartDaemon()
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o666 {
		t.Fatalf("socket %s: %v %v, want mode 0666 for this test", sock, fi.Mode(), err)
	}
	r := asNobody()
	if r.Code != 1 || !strings.Contains(r.Stderr, "uid 65534") || !strings.Contains(r.Stderr, "not allowed") || r.Stdout != "" {
		t.Errorf("uid 65534 on a 0666 socket: want exit 1 saying uid 65534 is not allowed; got %s", r)
	}
	if _, err := os.Stat(filepath.Join(world, "nobody.db")); err == nil {
		t.Errorf("the refused client went on to open a database of its own")
	}
	if err := d.Stop(); err != nil {
		t.Fatalf("daemon: %v", err)
	}

	f, err := os.OpenFile(e.Config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("allow_uids = [65534]\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	e.StartDaemon()
	r = asNobody()
	if r.Code != 0 {
		t.Fatalf("uid 65534 with allow_uids = [65534]: %s", r)
	}
	var cs []core.Campaign
	if err := json.Unmarshal([]byte(r.Stdout), &cs); err != nil || len(cs) != 1 || strconv.FormatInt(cs[0].ID, 10) != id {
		t.Errorf("uid 65534 listed %q (%v), want campaign %s from the daemon", r.Stdout, err, id)
	}
}

// TestSecurityUnsignedWebhookRefused is issue 12 item 1: with [http]
// listen and a SendGrid sender but no sendgrid_public_key, an unsigned
// post (anyone's) is refused and nothing is suppressed; accepting
// unsigned posts takes sendgrid_webhook_unsigned = true, which config
// check and the daemon warn about; without a SendGrid sender the route
// does not exist.
func TestSecurityUnsignedWebhookRefused(t *testing.T) {
	t.Parallel()
	const sg = "[senders.sg]\nplugin = \"sendgrid\"\n[senders.sg.options]\napi_key = \"unused\"\n"
	bounce := `[{"event":"bounce","type":"bounce","status":"5.1.1","sg_event_id":"1","email":"ann@example.org","campaign_id":"1","recipient_id":"1"}]`
	ctype := map[string]string{"Content-Type": "application/json"}
	start := func(extraHTTP, senders string) (*Env, *Daemon, *publicClient) {
		t.Helper()
		port := freePort(t)
		e := NewEnv(t, fmt.Sprintf("tick_interval = \"0s\"\n[http]\nlisten = \"127.0.0.1:%d\"\n%s\n%s", port, extraHTTP, senders))
		d := e.StartDaemon()
		return e, d, &publicClient{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port), c: &http.Client{Timeout: 30 * time.Second}}
	}

	e, _, p := start("", sg)
	MustCreateCampaign(t, e, "--sender", "outbox", "--from", "news@example.com")
	e.MustRun("recipients", "import", "1", WriteFile(t, e.Dir, "r.csv", "email\nann@example.org\n"))
	if r := p.do("POST", "/webhooks/sendgrid", ctype, bounce); r.Status != http.StatusForbidden || !strings.Contains(r.Body, "sendgrid_public_key") {
		t.Errorf("unsigned bounce without a key: %d %s, want 403 naming sendgrid_public_key", r.Status, r.Body)
	}
	if out := e.MustRun("suppress", "list"); strings.Contains(out, "ann@example.org") {
		t.Errorf("a refused unsigned bounce suppressed the address:\n%s", out)
	}

	e, d, p := start("sendgrid_webhook_unsigned = true", sg)
	if out := e.MustRun("config", "check"); !strings.Contains(out, "warning: sendgrid_webhook_unsigned = true") {
		t.Errorf("config check with unsigned webhooks does not warn:\n%s", out)
	}
	if r := p.do("POST", "/webhooks/sendgrid", ctype, bounce); r.Status != http.StatusOK {
		t.Errorf("unsigned bounce with the opt-in: %d %s, want 200", r.Status, r.Body)
	}
	if !strings.Contains(d.Stderr(), "UNSIGNED") {
		t.Errorf("the daemon does not warn about unsigned webhooks:\n%s", d.Stderr())
	}

	_, _, p = start("", "")
	if r := p.do("POST", "/webhooks/sendgrid", ctype, bounce); r.Status != http.StatusNotFound {
		t.Errorf("webhook without a SendGrid sender: %d %s, want 404", r.Status, r.Body)
	}
}

// TestSecurityTerminalEscapes is issue 12 item 6: names and reasons from
// CSV files and operators (and so from webhooks and SMTP replies, which
// print the same way) reach the table output with control characters
// escaped, while --json keeps them exact.
func TestSecurityTerminalEscapes(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, "")
	const evilName = "Mallory \x1b]0;pwned\x07\x1b[2J\u202e"
	id := strconv.FormatInt(MustCreateCampaign(t, e, "--sender", "outbox", "--name", "camp\x1b[31m"), 10)
	e.MustRun("recipients", "import", id, WriteFile(t, e.Dir, "r.csv", "email,name\nmal@example.org,\""+evilName+"\"\n"))
	e.MustRun("suppress", "add", "--reason", "bounced\x1b[8m hidden\rreal", "sup@example.org")
	for _, args := range [][]string{{"recipients", "list", id}, {"suppress", "list"}, {"campaign", "list"}, {"campaign", "show", id}} {
		out := e.MustRun(args...)
		if strings.ContainsAny(out, "\x1b\x07\r\u202e") {
			t.Errorf("%s prints raw control characters: %q", strings.Join(args, " "), out)
		}
		if !strings.Contains(out, `\x1b`) {
			t.Errorf("%s: want the ESC shown escaped as \\x1b: %q", strings.Join(args, " "), out)
		}
	}
	var rs []core.Recipient
	e.MustJSON(&rs, "recipients", "list", id)
	if len(rs) != 1 || rs[0].Name != evilName {
		t.Errorf("--json recipients list: %+v, want the name exactly %q", rs, evilName)
	}
}

// TestSecurityPublicURLWithoutCredentials: a public_url with a user and
// password is refused (it would be printed in every List-Unsubscribe
// header), and the refusal does not print the password (issue 12 item 13).
func TestSecurityPublicURLWithoutCredentials(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, "[http]\npublic_url = \"https://admin:hunter2-secret@mail.example.com\"\nunsubscribe_secret = \"0123456789abcdef0123\"\n")
	r := e.Run("config", "check")
	if r.Code != 1 || !strings.Contains(r.Stderr, "http.public_url: must not carry a user or password") || strings.Contains(r.Stderr+r.Stdout, "hunter2") {
		t.Errorf("config check with user:password in public_url: want exit 1 refusing it without printing the password; got %s", r)
	}
}

// TestSecurityIDNSuppression is issue 12 item 11: an address suppressed
// with a Unicode domain is suppressed in its punycode spelling too (and
// the other way round), and one person is one recipient however the
// domain is spelt.
func TestSecurityIDNSuppression(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, "")
	e.MustRun("init")
	e.MustRun("suppress", "add", "user@bücher.example")
	e.MustRun("suppress", "add", "other@XN--BCHER-KVA.example")
	id := strconv.FormatInt(MustCreateCampaign(t, e, "--sender", "outbox"), 10)
	var res core.ImportResult
	e.MustJSON(&res, "recipients", "import", id, WriteFile(t, e.Dir, "r.csv",
		"email\nuser@xn--bcher-kva.example\nother@bücher.example\nnew@bücher.example\nnew@xn--bcher-kva.example\nnew@BÜCHER.example\n"))
	if res.Suppressed != 2 || res.Added != 1 || res.Duplicates != 2 {
		t.Fatalf("import %+v, want 2 suppressed, 1 added, 2 duplicates", res)
	}
	var rs []core.Recipient
	e.MustJSON(&rs, "recipients", "list", id)
	if len(rs) != 1 || rs[0].Email != "new@xn--bcher-kva.example" {
		t.Fatalf("recipients %+v, want new@xn--bcher-kva.example stored once", rs)
	}
}

// TestSecurityCLIRefusesForeignDaemon is issue 12 item 3: another user
// (uid 65534) runs a campaignd of their own on the socket path root's
// configuration names. Root's CLI checks who serves the socket and refuses
// it, naming the uid, before sending anything (it would otherwise hand over
// its recipient lists); it does not fall back to the database either.
// Listing that uid in allow_uids trusts it.
func TestSecurityCLIRefusesForeignDaemon(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a daemon as uid 65534")
	}
	t.Parallel()
	world, bin := otherUserDir(t, true)
	sock := filepath.Join(world, "c.sock")
	conf := filepath.Join(world, "c.toml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("database = %q\nsocket = %q\nsocket_mode = \"0666\"\nplugin_dir = %q\ntick_interval = \"0s\"\n",
		filepath.Join(world, "fake.db"), sock, world)), 0o644); err != nil {
		t.Fatal(err)
	}
	fake := exec.Command(bin, "--config", conf, "serve")
	fake.Dir = world
	fake.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + world}
	fake.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, NoSetGroups: true}}
	var fakeLog syncBuffer
	fake.Stdout, fake.Stderr = &fakeLog, &fakeLog
	if err := fake.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fake.Process.Signal(syscall.SIGTERM); _ = fake.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the uid 65534 daemon did not listen:\n%s", fakeLog.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	e := NewEnv(t, fmt.Sprintf("socket = %q\n", sock))
	csv := WriteFile(t, e.Dir, "r.csv", "email\nsecret@example.org\n")
	for _, args := range [][]string{{"init"}, {"campaign", "list"}, {"recipients", "import", "1", csv}} {
		r := e.Run(args...)
		if r.Code != 1 || !strings.Contains(r.Stderr, "served by uid 65534") || !strings.Contains(r.Stderr, "allow_uids") {
			t.Errorf("%s against a daemon of uid 65534: want exit 1 naming the uid; got %s", strings.Join(args, " "), r)
		}
	}

	f, err := os.OpenFile(e.Config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("allow_uids = [65534]\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if r := e.Run("--json", "campaign", "list"); r.Code != 0 || strings.TrimSpace(r.Stdout) != "[]" {
		t.Errorf("with allow_uids = [65534] the CLI should use that daemon (no campaigns); got %s", r)
	}
}

// TestSecurityHeaderAndPagingEdges pins two small items of issue 12: a
// campaign's --header 'Precedence: list' replaces the default rather than
// giving the message two Precedence headers; and paging after the largest
// id (the int64 maximum) is an empty page, not page one again.
func TestSecurityHeaderAndPagingEdges(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, "")
	id := secCampaign(t, e, []string{"--name", "edges", "--sender", "outbox", "--from", "news@example.com", "--subject", "Hi", "--text", "Hello",
		"--header", "Precedence: list"}, []string{"ann@example.org"})
	if res, r := secTick(t, e); res.Sent != 1 {
		t.Fatalf("tick: %s", r)
	}
	emls, _ := filepath.Glob(filepath.Join(e.Outbox, "*.eml"))
	if len(emls) != 1 {
		t.Fatalf("outbox holds %v, want one message", emls)
	}
	msg, _, _ := secParseEML(t, emls[0])
	if got := msg.Header["Precedence"]; len(got) != 1 || got[0] != "list" {
		t.Errorf("Precedence headers %q, want just \"list\"", got)
	}

	var rs []core.Recipient
	e.MustJSON(&rs, "recipients", "list", id, "--after", "9223372036854775807")
	if len(rs) != 0 {
		t.Errorf("recipients after the int64 maximum: %+v, want none", rs)
	}
}

// Issue 12 item 13: config check printed option values whose names
// slipped past its word list ("pw", "api"). Now only an option its plugin
// declares (sdk.Info.Options) and not secret (sdk.Info.SecretOptions) is
// printed: a plugin that declares nothing (sdk/example, or one built
// before the fields existed) has every value hidden, and the smtp plugin
// shows its host but never its password.
func TestSecurityConfigCheckRedactsUndeclaredOptions(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, `[senders.custom]
plugin = "`+examplePlugin(t)+`"

[senders.custom.options]
pw = "SECRET-pw"
api = "SECRET-api"
region = "eu-west"

[senders.mail]
plugin = "smtp"

[senders.mail.options]
host = "mail.example.com"
port = 587
tls = "starttls"
username = "mailer"
password = "SECRET-smtp-password"
`)
	out := e.MustRun("--json", "config", "check")
	human := e.MustRun("config", "check")
	for _, o := range []string{out, human} {
		if strings.Contains(o, "SECRET") {
			t.Errorf("config check printed a secret:\n%s", o)
		}
	}
	var cc struct {
		Senders map[string]struct {
			Options map[string]string `json:"options"`
		} `json:"senders"`
	}
	if err := json.Unmarshal([]byte(out), &cc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for sender, want := range map[string]map[string]string{
		"custom": {"pw": "(set, redacted)", "api": "(set, redacted)", "region": "(set, redacted)"},
		"mail":   {"host": "mail.example.com", "username": "mailer", "password": "(set, redacted)"},
	} {
		for k, w := range want {
			if got := cc.Senders[sender].Options[k]; got != w {
				t.Errorf("senders.%s.options.%s = %q, want %q", sender, k, got, w)
			}
		}
	}
}

// Issue 12 item 5: values accepted, then every recipient failed. Now each
// is refused where it is given, or pauses the campaign: a message_id_domain
// that cannot end a Message-ID fails config check naming the key; a header
// with a word too long for a legal line is refused at create and edit; a
// non-ASCII From to a server without SMTPUTF8 is a configuration error that
// pauses the campaign, its recipients still queued, nothing sent.
func TestSecurityValuesEveryMessageWouldFailOn(t *testing.T) {
	t.Parallel()
	bad := NewEnv(t, "[queue]\nmessage_id_domain = \"ex ample.com\"\n")
	if r := bad.Run("config", "check"); r.Code != 1 || !strings.Contains(r.Stderr, "queue.message_id_domain") {
		t.Errorf("config check with message_id_domain %q: want exit 1 naming the key; got %s", "ex ample.com", r)
	}

	sink := NewSink(t) // no SMTPUTF8
	e := NewEnv(t, sinkTOML("mail", sink))
	long := "X-Long: " + strings.Repeat("a", 1000)
	create := []string{"campaign", "create", "--name", "h", "--sender", "mail", "--from", "news@example.com", "--subject", "s", "--text", "t"}
	if r := e.Run(append(create, "--header", long)...); r.Code == 0 || !strings.Contains(r.Stderr, "X-Long") {
		t.Errorf("create with an unfoldable header: want refused naming it; got %s", r)
	}
	id := secID(t, e.MustRun(append([]string{"--json"}, create...)...))
	if r := e.Run("campaign", "edit", id, "--header", long); r.Code == 0 || !strings.Contains(r.Stderr, "X-Long") {
		t.Errorf("edit to an unfoldable header: want refused naming it; got %s", r)
	}

	id = secCampaign(t, e, []string{"--name", "utf8", "--sender", "mail", "--from", "Jörg <jörg@exämple.org>",
		"--subject", "Hi", "--text", "Hello"}, []string{"a@example.com"}, []string{"b@example.com"})
	e.Run("--json", "tick")
	var c core.Campaign
	e.MustJSON(&c, "campaign", "show", id)
	if c.Status != core.CampaignPaused {
		t.Errorf("campaign with a non-ASCII From, server without SMTPUTF8: %s, want PAUSED", c.Status)
	}
	for _, rc := range secRecipients(t, e, id) {
		if rc.Status != core.RecipientQueued {
			t.Errorf("%s: %s (%s), want QUEUED for when the From is fixed", rc.Email, rc.Status, rc.LastError)
		}
	}
	if n := len(sink.Messages()); n != 0 {
		t.Errorf("the server accepted %d messages", n)
	}
}

// TestSecurityServerTextEscaped: text a server chose (an SMTP reply in a
// tick's problem line and in a failed test send's error) and a campaign
// name in queue's paused section reach the terminal with control
// characters escaped.
func TestSecurityServerTextEscaped(t *testing.T) {
	t.Parallel()
	const evil = "busy \x1b]0;pwned\x07\x1b[2J"
	sink := NewSink(t, smtptest.Fault{Stage: smtptest.Rcpt, Code: 451, Enhanced: "4.3.0", Text: evil})
	e := NewEnv(t, fastRetry+sinkTOML("sink", sink))
	raw := func(what string, r Result) {
		t.Helper()
		if strings.ContainsAny(r.Stdout+r.Stderr, "\x1b\x07") || !strings.Contains(r.Stdout+r.Stderr, `\x1b`) {
			t.Errorf("%s: want the ESC shown escaped as \\x1b:\n%q", what, r.Stdout+r.Stderr)
		}
	}
	startSendingCampaign(t, e, mailRowsCSV(makeMailRows(2, "ok.example")), "--sender", "sink", "--concurrency", "1")
	r := e.Run("tick")
	if r.Code != 3 {
		t.Errorf("tick against a server answering 451 to all: want exit 3\n%s", r)
	}
	raw("tick problem line", r)

	id := MustCreateCampaign(t, e, "--sender", "sink")
	r = e.Run("campaign", "test", strconv.FormatInt(id, 10), "--to", "me@example.net")
	if r.Code != 1 {
		t.Errorf("campaign test against a 451: want exit 1\n%s", r)
	}
	raw("campaign test", r)

	p := startSendingCampaign(t, e, mailRowsCSV(makeMailRows(1, "p.example")), "--sender", "sink", "--name", "paused\x1b[31m")
	e.MustRun("campaign", "pause", strconv.FormatInt(p, 10))
	r = e.Run("queue")
	if r.Code != 0 || !strings.Contains(r.Stdout, "paused (") {
		t.Errorf("queue: want the paused section\n%s", r)
	}
	raw("queue", r)
}

// otherUserDir returns a temporary directory that uid 65534 can use (owned
// by it when own, else world-readable) holding a copy of the campaignd
// binary it can run, for the tests that run campaignd as another user. It
// skips the test when a parent directory is not searchable by others.
func otherUserDir(t *testing.T, own bool) (dir, bin string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "cdu")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if own {
		err = os.Chown(dir, 65534, 65534)
	} else {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			t.Skipf("%s is not searchable by other users; set TMPDIR to a directory that is", d)
		}
		if d == filepath.Dir(d) {
			break
		}
	}
	bin = filepath.Join(dir, "campaignd")
	data, err := os.ReadFile(Bin())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, bin
}
