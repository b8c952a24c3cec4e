package main_test

// End-to-end through SendGrid: the built campaignd and
// campaignd-sender-sendgrid run as separate processes against sgfake, an
// in-process fake of the v3 Mail Send API on a loopback port. The API key
// reaches the plugin only through ${VAR} expansion of the config, and
// every test checks it never shows up in what campaignd prints, logs or
// stores.

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/plugins/sendgrid/sgfake"
)

// sgKeyEnv is the environment variable the tests' configs read the
// SendGrid API key from (api_key = "${...}").
const sgKeyEnv = "CAMPAIGND_E2E_SENDGRID_KEY"

// sgTestKey returns a fresh random key shaped like a SendGrid API key.
func sgTestKey(t *testing.T) string {
	t.Helper()
	var a, b [16]byte
	if _, err := rand.Read(a[:]); err != nil {
		t.Fatal(err)
	}
	_, _ = rand.Read(b[:])
	return "SG." + hex.EncodeToString(a[:]) + "." + hex.EncodeToString(b[:])
}

// sgEnv starts a fake and an Env whose sender "sg" is the sendgrid plugin
// pointed at the fake, reading configuredKey from the environment. top is
// written first (top-level keys, then tables such as [queue] and [http]).
// sgPublicURL lets sgTextTpl's {{.UnsubscribeURL}} pass create; sgEnv
// adds it unless top sets a public_url of its own.
const sgPublicURL = "[http]\npublic_url = \"https://mail.example.com\"\nunsubscribe_secret = \"sendgrid-e2e-unsubscribe-secret\"\n"

func sgEnv(t *testing.T, top, configuredKey string) (*Env, *sgfake.Server) {
	t.Helper()
	fake := sgfake.New()
	t.Cleanup(fake.Close)
	if top != "" && !strings.HasSuffix(top, "\n") {
		top += "\n"
	}
	if !strings.Contains(top, "public_url") {
		top += sgPublicURL
	}
	e := NewEnv(t, top+fmt.Sprintf("[senders.sg]\nplugin = \"sendgrid\"\n[senders.sg.options]\napi_key = \"${%s}\"\napi_url = %q\ntimeout = \"10s\"\n",
		sgKeyEnv, fake.URL()))
	e.ExtraEnv = append(e.ExtraEnv, sgKeyEnv+"="+configuredKey)
	return e, fake
}

// sgCLI runs campaignd for one test and keeps everything the commands
// printed (stdout and stderr), so that the test can check a secret never
// appears in any of it.
type sgCLI struct {
	t   *testing.T
	e   *Env
	out strings.Builder
}

func (c *sgCLI) run(args ...string) Result {
	c.t.Helper()
	r := c.e.Run(args...)
	fmt.Fprintf(&c.out, "$ campaignd %s\n%s\n%s\n", strings.Join(args, " "), r.Stdout, r.Stderr)
	return r
}

// must runs the command, requires exit 0 and returns stdout.
func (c *sgCLI) must(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.Code != 0 {
		c.t.Fatalf("campaignd %s: %s", strings.Join(args, " "), r)
	}
	return r.Stdout
}

// json runs the command with --json, requires exit 0 and decodes stdout.
func (c *sgCLI) json(v any, args ...string) {
	c.t.Helper()
	out := c.must(append([]string{"--json"}, args...)...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("campaignd --json %s: decode %T: %v\nstdout:\n%s", strings.Join(args, " "), v, err, out)
	}
}

func (c *sgCLI) tick() core.TickResult {
	c.t.Helper()
	var r core.TickResult
	c.json(&r, "tick")
	return r
}

func (c *sgCLI) show(id int64) core.Campaign {
	c.t.Helper()
	var cp core.Campaign
	c.json(&cp, "campaign", "show", strconv.FormatInt(id, 10))
	return cp
}

func (c *sgCLI) recipients(id int64) map[string]core.Recipient {
	c.t.Helper()
	var rs []core.Recipient
	c.json(&rs, "recipients", "list", strconv.FormatInt(id, 10), "--limit", "1000")
	m := make(map[string]core.Recipient, len(rs))
	for _, r := range rs {
		m[r.Email] = r
	}
	return m
}

func (c *sgCLI) ticks() []core.TickRecord {
	c.t.Helper()
	var ts []core.TickRecord
	c.json(&ts, "ticks", "--limit", "1000")
	return ts
}

// tickUntilCompleted ticks, pausing between ticks, until the campaign is
// COMPLETED (at most maxTicks ticks).
func (c *sgCLI) tickUntilCompleted(id int64, maxTicks int, pause time.Duration) {
	c.t.Helper()
	var res []core.TickResult
	for range maxTicks {
		res = append(res, c.tick())
		if c.show(id).Status == "COMPLETED" {
			return
		}
		time.Sleep(pause)
	}
	cp := c.show(id)
	c.t.Fatalf("campaign %d not COMPLETED after %d ticks: %s %+v\nticks: %+v", id, maxTicks, cp.Status, cp.Stats, res)
}

// sgRow is one generated recipient.
type sgRow struct{ Email, Name, Code string }

// sgRows returns n recipients person00@example.org... with names (one
// non-ASCII) and a per-recipient code attribute.
func sgRows(n int) []sgRow {
	rows := make([]sgRow, n)
	for i := range rows {
		name := fmt.Sprintf("Person %02d", i)
		if i == 3 {
			name = "Zoë Ørsted"
		}
		rows[i] = sgRow{Email: fmt.Sprintf("person%02d@example.org", i), Name: name, Code: fmt.Sprintf("C-%03d", i*7)}
	}
	return rows
}

// The campaign's templates and what they render for a row and its
// unsubscribe URL.
const (
	sgSubjectTpl = "Hello {{.Name}}"
	sgTextTpl    = "Hi {{.Name}},\nyour code is {{.Attr.code}}.\nunsubscribe: {{.UnsubscribeURL}}\n"
	sgHTMLTpl    = "<p>Hi {{.Name}}, your code is <b>{{.Attr.code}}</b>.</p>\n"
)

func sgWantText(r sgRow, unsub string) string {
	return "Hi " + r.Name + ",\nyour code is " + r.Code + ".\nunsubscribe: " + unsub + "\n"
}

func sgWantHTML(r sgRow) string {
	return "<p>Hi " + r.Name + ", your code is <b>" + r.Code + "</b>.</p>\n"
}

// startCampaign creates a campaign on sender sg (extra create flags
// appended), imports rows, activates and executes it, and returns its id.
func (c *sgCLI) startCampaign(rows []sgRow, extra ...string) int64 {
	c.t.Helper()
	var created core.Campaign
	c.json(&created, append([]string{"campaign", "create", "--name", "SendGrid e2e", "--sender", "sg",
		"--from", "News <news@example.com>", "--subject", sgSubjectTpl, "--text", sgTextTpl, "--html", sgHTMLTpl}, extra...)...)
	if created.ID <= 0 {
		c.t.Fatalf("campaign create: id %d", created.ID)
	}
	ids := strconv.FormatInt(created.ID, 10)
	var csv strings.Builder
	csv.WriteString("email,name,code\n")
	for _, r := range rows {
		fmt.Fprintf(&csv, "%s,%q,%s\n", r.Email, r.Name, r.Code)
	}
	f := WriteFile(c.t, c.e.Dir, "recipients-"+ids+".csv", csv.String())
	var imp core.ImportResult
	c.json(&imp, "recipients", "import", ids, f)
	if imp.Added != int64(len(rows)) || imp.Invalid != 0 {
		c.t.Fatalf("import: added %d, invalid %d; want %d added", imp.Added, imp.Invalid, len(rows))
	}
	c.must("campaign", "activate", ids)
	var x core.ExecuteResult
	c.json(&x, "campaign", "execute", ids)
	if x.Queued != int64(len(rows)) {
		c.t.Fatalf("execute queued %d, want %d", x.Queued, len(rows))
	}
	return created.ID
}

// checkNoSecret fails the test if any secret appears in what the commands
// printed, in the named extra texts (daemon stderr), or in the database
// files: keys are configured from the environment and never stored.
func (c *sgCLI) checkNoSecret(secrets []string, extra map[string]string) {
	c.t.Helper()
	texts := map[string]string{"CLI output": c.out.String()}
	for k, v := range extra {
		texts[k] = v
	}
	for _, suffix := range []string{"", "-wal"} {
		if b, err := os.ReadFile(c.e.DB + suffix); err == nil {
			texts["database file "+filepath.Base(c.e.DB+suffix)] = string(b)
		}
	}
	for _, s := range secrets {
		// Also the key's distinctive middle part, in case something
		// printed it cut or re-quoted.
		mid := s[3:19]
		for what, text := range texts {
			if strings.Contains(text, s) || strings.Contains(text, mid) {
				c.t.Errorf("the API key appears in the %s", what)
			}
		}
	}
}

// unsubToken is the one-click unsubscribe token campaignd makes: the
// documented HMAC-SHA256 over "unsubscribe:<campaign>:<recipient>".
func unsubToken(secret string, cid, rid int64) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "unsubscribe:%d:%d", cid, rid)
	return fmt.Sprintf("%d.%d.%s", cid, rid, base64.RawURLEncoding.EncodeToString(mac.Sum(nil)))
}

// sgRejectBody is a 400 as SendGrid words it for an address it refuses.
const sgRejectBody = `{"errors":[{"message":"Does not contain a valid address.","field":"personalizations.0.to.0.email","help":"http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.personalizations.to"}]}`

// TestSendGridCampaign: a 31-recipient campaign through the SendGrid
// plugin, sent by standalone ticks. Every accepted recipient is SENT with
// the fake's X-Message-Id as provider id and reached the fake exactly
// once, rendered, with its custom args and headers; the one SendGrid
// refuses with 400 is FAILED with SendGrid's own text.
func TestSendGridCampaign(t *testing.T) {
	t.Parallel()
	key := sgTestKey(t)
	const unsubSecret = "sendgrid-e2e-unsubscribe-secret"
	e, fake := sgEnv(t, "log_level = \"trace\"\n[http]\npublic_url = \"https://mail.example.com\"\nunsubscribe_secret = \""+unsubSecret+"\"\n", key)
	fake.SetAPIKey(key)
	fake.SetVerifiedSenders("example.com")
	const reject = "rejected@example.org"
	fake.RespondTo(reject, sgfake.Response{Status: http.StatusBadRequest, Body: sgRejectBody})
	c := &sgCLI{t: t, e: e}

	rows := sgRows(30)
	all := append(append([]sgRow(nil), rows...), sgRow{Email: reject, Name: "Rejected One", Code: "R-1"})
	id := c.startCampaign(all, "--concurrency", "5")

	r := c.tick()
	if r.Processed != len(all) || r.Sent != len(rows) || r.Failed != 1 || r.Retried != 0 || r.Throttled != 0 || r.Skipped {
		t.Errorf("tick: %+v, want processed %d, sent %d, failed 1", r, len(all), len(rows))
	}
	cp := c.show(id)
	if want := (core.Stats{Total: int64(len(all)), Sent: int64(len(rows)), Failed: 1}); cp.Status != "COMPLETED" || cp.Stats != want {
		t.Errorf("campaign: %s %+v, want COMPLETED %+v", cp.Status, cp.Stats, want)
	}
	if ts := c.ticks(); len(ts) != 1 || ts[0].Processed != len(all) || ts[0].Sent != len(rows) || ts[0].Failed != 1 || ts[0].Error != "" || ts[0].Trigger != "cli" {
		t.Errorf("tick records: %+v, want one cli tick with %d sent, 1 failed", ts, len(rows))
	}

	// What the fake received: each accepted recipient exactly once.
	recips := c.recipients(id)
	msgs := fake.Messages()
	if len(msgs) != len(rows) {
		t.Errorf("the fake accepted %d messages, want %d", len(msgs), len(rows))
	}
	st := fake.Stats()
	if st.Requests != len(all) || st.Accepted != len(rows) || st.ByStatus[http.StatusBadRequest] != 1 || st.Sandboxed != 0 {
		t.Errorf("fake stats: %+v, want %d requests, %d accepted, one 400", st, len(all), len(rows))
	}
	byEmail := map[string]sgRow{}
	for _, row := range rows {
		byEmail[row.Email] = row
	}
	seen := map[string]int{}
	for _, m := range msgs {
		to := m.Recipients()
		if len(to) != 1 || len(m.Mail.Personalizations) != 1 || len(m.Mail.Personalizations[0].To) != 1 {
			t.Errorf("message %s: recipients %v, want exactly one", m.ID, to)
			continue
		}
		addr := to[0]
		seen[addr]++
		row, ok := byEmail[addr]
		if !ok {
			t.Errorf("message %s to unexpected %s", m.ID, addr)
			continue
		}
		rc := recips[addr]
		if rc.Status != "SENT" || rc.ProviderID != m.ID || m.ID == "" || rc.Attempts != 1 {
			t.Errorf("%s: %s, provider id %q after %d attempts; want SENT with the fake's X-Message-Id %q after 1",
				addr, rc.Status, rc.ProviderID, rc.Attempts, m.ID)
		}
		if got := m.Mail.Personalizations[0].To[0].Name; got != row.Name {
			t.Errorf("%s: to name %q, want %q", addr, got, row.Name)
		}
		if m.Mail.From.Email != "news@example.com" || m.Mail.From.Name != "News" {
			t.Errorf("%s: from %+v, want News <news@example.com>", addr, m.Mail.From)
		}
		if m.Mail.Subject != "Hello "+row.Name {
			t.Errorf("%s: subject %q, want %q", addr, m.Mail.Subject, "Hello "+row.Name)
		}
		unsub := "https://mail.example.com/unsubscribe/" + unsubToken(unsubSecret, id, rc.ID)
		if ct := m.Mail.Content; len(ct) != 2 || ct[0].Type != "text/plain" || ct[1].Type != "text/html" {
			t.Errorf("%s: content %+v, want text/plain then text/html", addr, ct)
		} else {
			if ct[0].Value != sgWantText(row, unsub) {
				t.Errorf("%s: text %q, want %q", addr, ct[0].Value, sgWantText(row, unsub))
			}
			if ct[1].Value != sgWantHTML(row) {
				t.Errorf("%s: html %q, want %q", addr, ct[1].Value, sgWantHTML(row))
			}
		}
		msgID := fmt.Sprintf("<c%d.r%d@example.com>", id, rc.ID)
		wantArgs := map[string]string{"campaign_id": strconv.FormatInt(id, 10), "recipient_id": strconv.FormatInt(rc.ID, 10), "message_id": msgID}
		if fmt.Sprint(m.Mail.CustomArgs) != fmt.Sprint(wantArgs) {
			t.Errorf("%s: custom_args %v, want %v", addr, m.Mail.CustomArgs, wantArgs)
		}
		for name, want := range map[string]string{
			"Message-ID":            msgID,
			"List-Unsubscribe":      "<" + unsub + ">",
			"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		} {
			if got := m.Mail.Headers[name]; got != want {
				t.Errorf("%s: header %s %q, want %q (headers %v)", addr, name, got, want, m.Mail.Headers)
			}
		}
		if m.Sandbox {
			t.Errorf("%s: sent in sandbox mode", addr)
		}
	}
	for _, row := range rows {
		if seen[row.Email] != 1 {
			t.Errorf("%s reached the fake %d times, want once", row.Email, seen[row.Email])
		}
	}

	// The refused recipient: FAILED with SendGrid's words and status.
	rj := recips[reject]
	if rj.Status != "FAILED" || rj.LastErrorCode != http.StatusBadRequest || rj.LastErrorClass != "permanent" ||
		!strings.Contains(rj.LastError, "Does not contain a valid address.") ||
		!strings.Contains(rj.LastError, "personalizations.0.to.0.email") || rj.Attempts != 1 || rj.ProviderID != "" {
		t.Errorf("%s: %+v, want FAILED permanent 400 with SendGrid's message, after 1 attempt", reject, rj)
	}

	// The key: printed by nothing (config check redacts it), stored nowhere.
	cfgOut := c.must("config", "check")
	if !strings.Contains(cfgOut, "api_key") {
		t.Errorf("config check does not show the api_key option (redacted):\n%s", cfgOut)
	}
	c.run("--json", "config", "check")
	c.run("campaign", "show", strconv.FormatInt(id, 10))
	c.run("queue")
	c.checkNoSecret([]string{key}, nil)
}

// TestSendGridThrottled: a 429 whose X-RateLimit-Reset lies two seconds
// ahead puts the message back in the queue until then without counting the
// attempt, and the sender gets no more work that tick; after the reset it
// is sent once.
func TestSendGridThrottled(t *testing.T) {
	t.Parallel()
	key := sgTestKey(t)
	e, fake := sgEnv(t, "[queue]\nthrottle_delay = \"1s\"\nretry_base = \"100ms\"\n", key)
	fake.SetAPIKey(key)
	fake.RateLimit(1, 2*time.Second)
	c := &sgCLI{t: t, e: e}
	rows := sgRows(3)
	id := c.startCampaign(rows, "--concurrency", "1")

	before := time.Now()
	r := c.tick()
	if want := (tickCounts{Processed: len(rows), Throttled: 1}); countsOf(r) != want {
		t.Errorf("throttled tick: %+v, want %+v", r, want)
	}
	ts := c.ticks()
	if len(ts) != 1 || ts[0].Throttled != 1 || ts[0].Sent != 0 || ts[0].Skipped != len(rows)-1 {
		t.Errorf("tick records: %+v, want one with 1 throttled and %d handed back", ts, len(rows)-1)
	}
	throttled := 0
	for _, row := range rows {
		rc := c.recipients(id)[row.Email]
		if rc.Status != "QUEUED" || rc.Attempts != 0 {
			t.Errorf("%s: %s after %d attempts, want QUEUED with no attempt counted", row.Email, rc.Status, rc.Attempts)
		}
		if rc.NextAttemptAt == nil || rc.NextAttemptAt.Before(before.Add(1500*time.Millisecond)) {
			t.Errorf("%s: next attempt %v, want about 2s after %v (X-RateLimit-Reset)", row.Email, rc.NextAttemptAt, before)
		}
		if rc.LastErrorClass != "" {
			throttled++
			if rc.LastErrorClass != "throttled" || rc.LastErrorCode != http.StatusTooManyRequests || !strings.Contains(rc.LastError, "too many requests") {
				t.Errorf("%s: %+v, want throttled 429 with SendGrid's text", row.Email, rc)
			}
		}
	}
	if throttled != 1 {
		t.Errorf("%d recipients carry an error, want the throttled one only", throttled)
	}
	if n := len(fake.Messages()); n != 0 {
		t.Errorf("the fake accepted %d messages during the throttled tick", n)
	}
	if st := fake.Stats(); st.Requests != 1 {
		t.Errorf("the fake saw %d requests in the throttled tick, want 1 (no more work for a throttled sender)", st.Requests)
	}
	// Nothing is due before the reset.
	if r := c.tick(); r.Processed != 0 {
		t.Errorf("tick right after the throttle: %+v, want nothing due", r)
	}

	time.Sleep(time.Until(before.Add(2200 * time.Millisecond)))
	c.tickUntilCompleted(id, 20, 100*time.Millisecond)
	cp := c.show(id)
	if want := (core.Stats{Total: int64(len(rows)), Sent: int64(len(rows))}); cp.Stats != want {
		t.Errorf("stats %+v, want %+v", cp.Stats, want)
	}
	recips := c.recipients(id)
	ids := map[string]string{}
	for _, m := range fake.Messages() {
		ids[m.Recipients()[0]] = m.ID
	}
	for _, row := range rows {
		rc := recips[row.Email]
		if rc.Status != "SENT" || rc.Attempts != 1 || rc.ProviderID == "" || rc.ProviderID != ids[row.Email] {
			t.Errorf("%s: %s after %d attempts, provider id %q; want SENT after 1 attempt (the throttle not counted) with %q",
				row.Email, rc.Status, rc.Attempts, rc.ProviderID, ids[row.Email])
		}
	}
	if n := len(fake.Messages()); n != len(rows) {
		t.Errorf("the fake accepted %d messages, want %d (each once)", n, len(rows))
	}
	if st := fake.Stats(); st.ByStatus[http.StatusTooManyRequests] != 1 || st.Accepted != len(rows) {
		t.Errorf("fake stats %+v, want one 429 and %d accepted", st, len(rows))
	}
	c.checkNoSecret([]string{key}, nil)
}

// TestSendGridBadAPIKey: SendGrid answering 401 to the configured key is a
// sender misconfiguration: the campaign is PAUSED instead of failing
// everyone, its recipients stay QUEUED with no attempt counted, and the
// tick record says why. Once the key works, resume sends everything. Runs
// through the daemon at log level trace: neither key appears in its log.
func TestSendGridBadAPIKey(t *testing.T) {
	t.Parallel()
	goodKey, badKey := sgTestKey(t), sgTestKey(t)
	e, fake := sgEnv(t, "log_level = \"trace\"\n[queue]\nretry_base = \"100ms\"\n", badKey)
	fake.SetAPIKey(goodKey)
	d := e.StartDaemon()
	c := &sgCLI{t: t, e: e}
	rows := sgRows(8)
	id := c.startCampaign(rows, "--concurrency", "3")

	r, _ := tickProblems(t, e, "paused") // exit 3: the campaign was paused
	refused := fake.Stats().ByStatus[http.StatusUnauthorized]
	// The refused sends go back to the queue (counted as retried); the
	// rest of the claim is handed back unsent.
	if r.Processed != len(rows) || r.Sent != 0 || r.Failed != 0 || r.Retried != refused || r.Throttled != 0 {
		t.Errorf("tick with a refused key: %+v, want %d processed, nothing sent or failed, %d (the refused ones) retried", r, len(rows), refused)
	}
	cp := c.show(id)
	if want := (core.Stats{Total: int64(len(rows)), Queued: int64(len(rows))}); cp.Status != "PAUSED" || cp.Stats != want {
		t.Errorf("campaign: %s %+v, want PAUSED %+v", cp.Status, cp.Stats, want)
	}
	for _, row := range rows {
		rc := c.recipients(id)[row.Email]
		if rc.Status != "QUEUED" || rc.Attempts != 0 || rc.ProviderID != "" {
			t.Errorf("%s: %s after %d attempts, want QUEUED with no attempt counted", row.Email, rc.Status, rc.Attempts)
		}
		if rc.LastErrorClass != "" && (rc.LastErrorClass != "config" || rc.LastErrorCode != http.StatusUnauthorized) {
			t.Errorf("%s: %+v, want a config error with status 401 if any", row.Email, rc)
		}
	}
	ts := c.ticks()
	if len(ts) != 1 || ts[0].Sent != 0 || !strings.Contains(ts[0].Error, "paused") ||
		!strings.Contains(ts[0].Error, "SendGrid refused the API key") ||
		!strings.Contains(ts[0].Error, "authorization grant is invalid") {
		t.Errorf("tick records %+v, want one whose error says the campaign was paused because SendGrid refused the key", ts)
	}
	if n := len(fake.Messages()); n != 0 {
		t.Errorf("the fake accepted %d messages with a wrong key", n)
	}
	if st := fake.Stats(); st.ByStatus[http.StatusUnauthorized] == 0 || st.ByStatus[http.StatusUnauthorized] > 3 {
		t.Errorf("fake stats %+v: want between 1 and concurrency (3) refused requests, then no more work", st)
	}
	// A paused campaign is left alone by further ticks.
	if r := c.tick(); r.Processed != 0 {
		t.Errorf("tick of a paused campaign: %+v, want nothing processed", r)
	}

	// The key gets its permission on the provider's side; resume sends all.
	fake.SetAPIKey(badKey)
	c.must("campaign", "resume", strconv.FormatInt(id, 10))
	time.Sleep(150 * time.Millisecond) // past retry_base
	c.tickUntilCompleted(id, 20, 100*time.Millisecond)
	recips := c.recipients(id)
	for _, row := range rows {
		if rc := recips[row.Email]; rc.Status != "SENT" || rc.Attempts != 1 || rc.ProviderID == "" {
			t.Errorf("%s after resume: %s after %d attempts (provider id %q), want SENT after 1", row.Email, rc.Status, rc.Attempts, rc.ProviderID)
		}
	}
	if n := len(fake.Messages()); n != len(rows) {
		t.Errorf("the fake accepted %d messages, want %d", n, len(rows))
	}
	c.run("ticks")
	c.run("config", "check")
	if err := d.Stop(); err != nil {
		t.Errorf("daemon stop: %v\n%s", err, d.Stderr())
	}
	stderr := d.Stderr()
	if !strings.Contains(stderr, "paused") {
		t.Errorf("the daemon's log does not mention the pause:\n%s", stderr)
	}
	c.checkNoSecret([]string{goodKey, badKey}, map[string]string{"daemon stderr": stderr})
	if bytes.Contains([]byte(stderr), []byte("Bearer ")) {
		t.Errorf("the daemon's log shows an Authorization header")
	}
}
