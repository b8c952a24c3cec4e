package main_test

import (
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/bounce"
)

// fetchJSON is `campaignd --json bounces fetch` as the test reads it.
type fetchJSON struct {
	bounce.PassResult
	Skipped bool   `json:"skipped"`
	Reason  string `json:"reason"`
}

// bounceFixture is a report of core/bounce/testdata rewritten for this
// test's campaign: the fixture's Message-ID (c3.rN), VERP address
// (bounces+3.N) and recipient address become the real recipient's.
func bounceFixture(t *testing.T, name string, fixtureRID int64, fixtureEmail string, cid int64, r core.Recipient) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "core", "bounce", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for old, new := range map[string]string{
		fmt.Sprintf("<c3.r%d@mail.example.com>", fixtureRID): fmt.Sprintf("<c%d.r%d@mail.example.com>", cid, r.ID),
		fmt.Sprintf("bounces+3.%d@example.com", fixtureRID):  fmt.Sprintf("bounces+%d.%d@example.com", cid, r.ID),
	} {
		s = strings.ReplaceAll(s, old, new)
	}
	if fixtureEmail != "" {
		s = strings.ReplaceAll(s, fixtureEmail, r.Email)
	}
	return s
}

// deliverReport sends a report into mailpit over SMTP as an MTA would:
// from the null sender (MAIL FROM:<>), to the bounce address.
func deliverReport(t *testing.T, mp *Mailpit, rcpt, msg string) {
	t.Helper()
	if err := smtp.SendMail(fmt.Sprintf("127.0.0.1:%d", mp.SMTPPort), nil, "", []string{rcpt}, []byte(msg)); err != nil {
		t.Fatalf("deliver report to mailpit: %v", err)
	}
}

// TestBounceMailboxPOP3 sends a campaign through the smtp plugin with a
// VERP return path, delivers DSNs and complaints of several providers'
// shapes for its messages into mailpit, and reads them with `campaignd
// bounces fetch` over mailpit's POP3 server: hard bounces turn BOUNCED and
// suppress (by Message-ID, and by the VERP address alone), the delay is
// only recorded, the complaint suppresses; a second run changes nothing;
// what cannot be read stays in the mailbox and is counted. Then the
// daemon reads the mailbox itself.
func TestBounceMailboxPOP3(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	authFile := WriteFile(t, dir, "pop3-auth", "bounces:s3cret-pop\n")
	pop3Port := freePort(t)
	mp := StartMailpit(t, "--pop3", fmt.Sprintf("127.0.0.1:%d", pop3Port), "--pop3-auth-file", authFile)
	waitPort(t, pop3Port)
	adminPort := freePort(t)
	e := NewEnv(t, fmt.Sprintf(`
[admin]
listen = "127.0.0.1:%d"

[queue]
message_id_domain = "mail.example.com"

[bounces]
protocol = "pop3"
host = "127.0.0.1"
port = %d
tls = "none"
username = "bounces"
password = "${TEST_BOUNCES_PASSWORD}"
interval = "200ms"
return_path = "bounces+{campaign}.{recipient}@example.com"
`, adminPort, pop3Port)+mp.SenderTOML("mp"))
	e.ExtraEnv = []string{"TEST_BOUNCES_PASSWORD=s3cret-pop"}

	var chk struct {
		Bounces struct {
			Password string `json:"password"`
			Connect  string `json:"connect"`
		} `json:"bounces"`
	}
	e.MustJSON(&chk, "config", "check", "--connect")
	if chk.Bounces.Connect != "ok" || chk.Bounces.Password != "${TEST_BOUNCES_PASSWORD}" {
		t.Errorf("config check --connect: bounces %+v, want connect ok and the password as its variable", chk.Bounces)
	}

	names := []string{"ann", "bob", "cay", "dan", "eve", "fay"}
	csv := "email,name\n"
	for _, n := range names {
		csv += n + "@example.net," + n + "\n"
	}
	id := startSendingCampaign(t, e, csv, "--sender", "mp", "--from", "News <news@example.com>")
	tickUntilCompleted(t, e, id, 5, 0)
	rs := dlvRecipients(t, e, id)
	rcpt := func(n string) core.Recipient { return rs[n+"@example.net"] }

	// Every message went out with its own VERP envelope sender.
	sent := mp.Messages()
	if len(sent) != len(names) {
		t.Fatalf("mailpit received %d messages, want %d", len(sent), len(names))
	}
	for _, s := range sent {
		var raw struct {
			ReturnPath string `json:"ReturnPath"`
			To         []MPAddress
		}
		mp.getJSON("/api/v1/message/"+s.ID, &raw)
		r := rs[raw.To[0].Address]
		if want := fmt.Sprintf("bounces+%d.%d@example.com", id, r.ID); raw.ReturnPath != want {
			t.Errorf("%s: envelope sender %q, want %q", r.Email, raw.ReturnPath, want)
		}
	}
	req, _ := http.NewRequest(http.MethodDelete, mp.base+"/api/v1/messages", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("empty mailpit: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	const box = "bounces@example.com"
	deliverReport(t, mp, box, bounceFixture(t, "postfix.eml", 101, "ann@example.net", id, rcpt("ann")))
	deliverReport(t, mp, box, bounceFixture(t, "gmail.eml", 103, "carol@gmail.com", id, rcpt("bob")))
	deliverReport(t, mp, box, bounceFixture(t, "delayed.eml", 107, "frank@example.org", id, rcpt("cay")))
	deliverReport(t, mp, box, bounceFixture(t, "yahoo-arf.eml", 105, "erin@yahoo.com", id, rcpt("dan")))
	verp := fmt.Sprintf("bounces+%d.%d@example.com", id, rcpt("eve").ID)
	deliverReport(t, mp, verp, bounceFixture(t, "verp.eml", 108, "grace@example.org", id, rcpt("eve")))
	// A policy block (the sending IP listed) is a soft bounce: fay stays
	// SENT and is not suppressed.
	block := strings.Replace(bounceFixture(t, "postfix.eml", 101, "ann@example.net", id, rcpt("fay")), "Status: 5.1.1\n", "Status: 5.7.1\n", 1)
	block = strings.Replace(block, "Message-Id: <20261202100005.4Q1abc2XyzZ9@", "Message-Id: <block@", 1)
	deliverReport(t, mp, box, block)
	deliverReport(t, mp, box, bounceFixture(t, "notours.eml", 0, "", id, core.Recipient{}))
	deliverReport(t, mp, box, bounceFixture(t, "nonbounce.eml", 0, "", id, core.Recipient{}))
	deliverReport(t, mp, box, bounceFixture(t, "truncated.eml", 0, "", id, core.Recipient{}))
	if n := mp.WaitCount(9, 10*time.Second); n != 9 {
		t.Fatalf("mailpit holds %d reports, want 9", n)
	}

	var res fetchJSON
	e.MustJSON(&res, "bounces", "fetch")
	want := bounce.PassResult{Messages: 9, Applied: 6, Deferred: 2, NotOurs: 1, Deleted: 7, Left: 2}
	if len(res.Problems) != 2 {
		t.Errorf("problems = %q, want the 2 left messages'", res.Problems)
	}
	res.Problems = nil
	if !reflect.DeepEqual(res.PassResult, want) {
		t.Errorf("bounces fetch = %+v, want %+v", res.PassResult, want)
	}
	if n := mp.Count(); n != 2 {
		t.Errorf("mailpit holds %d messages after the fetch, want the 2 it could not read", n)
	}
	checkBounced := func(when string) {
		t.Helper()
		rs := dlvRecipients(t, e, id)
		for n, st := range map[string]string{"ann": "BOUNCED", "bob": "BOUNCED", "eve": "BOUNCED", "cay": "SENT", "dan": "SENT", "fay": "SENT"} {
			if got := rs[n+"@example.net"].Status; string(got) != st {
				t.Errorf("%s: %s is %s, want %s", when, n, got, st)
			}
		}
		var sup []core.Suppression
		e.MustJSON(&sup, "suppress", "list")
		got := map[string]string{}
		for _, s := range sup {
			got[strings.TrimSuffix(s.Email, "@example.net")] = string(s.Source)
		}
		wantSup := map[string]string{"ann": "bounce", "bob": "bounce", "eve": "bounce", "dan": "complaint"}
		if fmt.Sprint(got) != fmt.Sprint(wantSup) {
			t.Errorf("%s: suppressed %v, want %v (the delayed cay only recorded)", when, got, wantSup)
		}
		if c := dlvShow(t, e, id); c.Stats.Bounced != 3 || c.Stats.Sent != 3 {
			t.Errorf("%s: stats %+v, want 3 bounced, 3 sent", when, c.Stats)
		}
	}
	checkBounced("after the fetch")
	if evs := mailboxEvents(t, e.DB); evs[rcpt("cay").ID] != "deferred" || evs[rcpt("fay").ID] != "deferred" || evs[rcpt("dan").ID] != "spamreport" || len(evs) != 6 {
		t.Errorf("mailbox events by recipient: %v, want cay and fay deferred, dan spamreport, 6 in all", evs)
	}

	// The recorded events show where the operator looks a recipient up:
	// fay's policy block, which changed nothing else, included.
	ids := strconv.FormatInt(id, 10)
	if out := e.MustRun("recipients", "show", ids, "cay@example.net"); !strings.Contains(out, "status:     SENT") ||
		!regexp.MustCompile(`(?m)^  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d +deferred +mailbox +4\.`).MatchString(out) {
		t.Errorf("recipients show cay:\n%s\nwant SENT and a deferred row from the mailbox", out)
	}
	var detail core.RecipientDetail
	e.MustJSON(&detail, "recipients", "show", ids, "fay@example.net")
	if detail.Recipient == nil || detail.Recipient.Status != core.RecipientSent || len(detail.Events) != 1 ||
		detail.Events[0].Type != core.EventDeferred || !strings.HasPrefix(detail.Events[0].Reason, "5.7.1") {
		t.Errorf("recipients show fay --json = %+v, want SENT with one deferred 5.7.1 event", detail)
	}
	if r := e.Run("recipients", "show", ids, "nobody@example.net"); r.Code != 1 || !strings.Contains(r.Stderr, "nobody@example.net") {
		t.Errorf("recipients show of an unknown address: %s, want exit 1 naming it", r)
	}

	// Cron's second run: only the unreadable two are there, and stay.
	r := e.Run("bounces", "fetch")
	if r.Code != 0 || r.Stdout != "" || r.Stderr != "" {
		t.Errorf("second fetch: %s, want silent success", r)
	}
	e.MustJSON(&res, "bounces", "fetch")
	if res.Messages != 2 || res.Left != 2 || res.Deleted != 0 || len(res.Problems) != 2 {
		t.Errorf("third fetch = %+v, want the 2 unreadable left", res.PassResult)
	}
	if out := e.MustRun("bounces", "fetch", "-v"); !strings.Contains(out, "left 2 unreadable") ||
		!strings.Contains(out, "not a delivery status notification") || !strings.Contains(out, "no per-recipient fields") {
		t.Errorf("fetch -v:\n%s", out)
	}
	// The same report delivered again is a duplicate: deleted, no change.
	deliverReport(t, mp, box, bounceFixture(t, "postfix.eml", 101, "ann@example.net", id, rcpt("ann")))
	mp.WaitCount(3, 10*time.Second)
	e.MustJSON(&res, "bounces", "fetch")
	if res.Duplicates != 1 || res.Applied != 0 || res.Deleted != 1 {
		t.Errorf("fetch of a report seen before = %+v, want 1 duplicate, deleted", res.PassResult)
	}
	checkBounced("after the duplicate")

	// A mailbox that refuses the login is a failure cron hears of.
	r = e.RunWith(RunOpts{Env: []string{"TEST_BOUNCES_PASSWORD=wr0ng-pw-xyz"}}, "bounces", "fetch")
	if r.Code != 1 || !strings.Contains(r.Stderr, "PASS") || strings.Contains(r.Stderr, "wr0ng-pw-xyz") || r.Stdout != "" {
		t.Errorf("fetch with a wrong password: %s, want exit 1 naming the failed PASS (not the password)", r)
	}

	// The daemon reads the mailbox every interval; fetch then stands aside.
	d := e.StartDaemon()
	defer d.Stop()
	deliverReport(t, mp, box, bounceFixture(t, "exim.eml", 102, "bob@example.org", id, rcpt("fay")))
	deadline := time.Now().Add(15 * time.Second)
	for dlvRecipients(t, e, id)["fay@example.net"].Status != "BOUNCED" {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not apply the bounce for fay within 15s\n%s", d.Stderr())
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.MustJSON(&res, "bounces", "fetch")
	if !res.Skipped || !strings.Contains(res.Reason, "daemon") {
		t.Errorf("fetch beside the daemon = %+v, want skipped", res)
	}
	// Through the daemon, fay's events are the block and then the bounce.
	detail = core.RecipientDetail{}
	e.MustJSON(&detail, "recipients", "show", ids, "fay@example.net")
	if detail.Recipient == nil || detail.Recipient.Status != core.RecipientBounced || len(detail.Events) != 2 ||
		detail.Events[0].Type != core.EventDeferred || detail.Events[1].Type != core.EventBounce {
		t.Errorf("recipients show fay through the daemon = %+v, want BOUNCED after a deferred and a bounce event", detail)
	}
	// The daemon's passes show on /metrics: fay's bounce, the 2 left.
	var metrics string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", adminPort))
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if metrics = string(b); strings.Contains(metrics, `campaignd_bounce_messages_total{result="applied"} 1`) {
			break
		}
	}
	for _, want := range []string{`campaignd_bounce_messages_total{result="applied"} 1`, "campaignd_bounce_mailbox_left 2",
		"campaignd_bounce_mailbox_errors_total 0"} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics lacks %q:\n%s", want, grepLines(metrics, "campaignd_bounce"))
		}
	}
}

// grepLines returns the lines of s containing sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// mailboxEvents reads the events the mailbox recorded, type by recipient.
func mailboxEvents(t *testing.T, path string) map[int64]string {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT recipient_id, type FROM events WHERE provider = 'mailbox'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]string{}
	for rows.Next() {
		var id int64
		var typ string
		if err := rows.Scan(&id, &typ); err != nil {
			t.Fatal(err)
		}
		out[id] = typ
	}
	return out
}

// waitPort waits until something listens on the loopback port.
func waitPort(t *testing.T, port int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on port %d: %v", port, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// stalledPOP3 is a POP3 server that logs anyone in and then holds its
// answer to STAT until release is closed (an empty mailbox after that):
// a slow or stuck mailbox. stalled is closed once STAT has arrived.
func stalledPOP3(t *testing.T) (port int, stalled, release chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	stalled, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(time.Minute))
				fmt.Fprint(c, "+OK ready\r\n")
				buf := make([]byte, 512)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					switch cmd := strings.ToUpper(strings.Fields(string(buf[:n]) + " x")[0]); cmd {
					case "STAT":
						once.Do(func() { close(stalled) })
						<-release
						fmt.Fprint(c, "+OK 0 0\r\n")
					case "QUIT":
						fmt.Fprint(c, "+OK bye\r\n")
						return
					default:
						fmt.Fprint(c, "+OK\r\n")
					}
				}
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, stalled, release
}

// TestBounceFetchBesideTick: a `bounces fetch` from cron waiting on a slow
// mailbox holds no lock that stops the standalone ticks (nor do they stop
// it): sending goes on while the mailbox is read, as with a slow import
// pipe.
func TestBounceFetchBesideTick(t *testing.T) {
	t.Parallel()
	port, stalled, release := stalledPOP3(t)
	e := NewEnv(t, fmt.Sprintf("[bounces]\nhost = \"127.0.0.1\"\nport = %d\ntls = \"none\"\nusername = \"u\"\npassword = \"p\"\n", port))
	id := MustCreateCampaign(t, e)
	e.MustRun("recipients", "add", strconv.FormatInt(id, 10), "ann@example.net")
	e.MustRun("campaign", "activate", strconv.FormatInt(id, 10))
	e.MustRun("campaign", "execute", strconv.FormatInt(id, 10))

	fetched := make(chan Result, 1)
	go func() { fetched <- e.Run("--json", "bounces", "fetch") }()
	select {
	case <-stalled:
	case r := <-fetched:
		t.Fatalf("bounces fetch ended before the mailbox answered: %s", r)
	case <-time.After(30 * time.Second):
		t.Fatal("bounces fetch never asked the mailbox for STAT")
	}
	var tick core.TickResult
	e.MustJSON(&tick, "tick")
	close(release)
	if tick.Skipped || tick.Sent != 1 {
		t.Errorf("tick beside a fetch waiting on the mailbox: %+v, want it to send the one message", tick)
	}
	if r := <-fetched; r.Code != 0 || !strings.Contains(r.Stdout, `"messages": 0`) {
		t.Errorf("bounces fetch: %s", r)
	}
}

// TestBouncesPasswordOnlyWhereTheMailboxIsRead: with the mailbox's password
// left to a variable that is not set (an operator's shell, a cron line
// without it), the commands that never read the mailbox run; bounces
// fetch, config check and serve refuse, naming the key.
func TestBouncesPasswordOnlyWhereTheMailboxIsRead(t *testing.T) {
	e := NewEnv(t, "[bounces]\nhost = \"pop.example.com\"\nusername = \"bounces\"\npassword = \"${CD_TEST_UNSET_BOUNCES_PW:-}\"\n")
	for _, args := range [][]string{{"init"}, {"campaign", "list"}, {"tick"}, {"queue"}} {
		if r := e.Run(args...); r.Code != 0 {
			t.Errorf("%s without the mailbox password: %s", strings.Join(args, " "), r)
		}
	}
	for _, args := range [][]string{{"bounces", "fetch"}, {"config", "check"}, {"serve"}} {
		r := e.RunWith(RunOpts{Timeout: 20 * time.Second}, args...)
		if r.Code != 1 || !strings.Contains(r.Stderr, "bounces.password: required to read the mailbox") {
			t.Errorf("%s without the mailbox password: %s", strings.Join(args, " "), r)
		}
	}
}
