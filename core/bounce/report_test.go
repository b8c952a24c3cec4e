package bounce_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/bounce"
)

// parser is configured as campaignd would be: Message-IDs of
// mail.example.com, VERP through bounces+{campaign}.{recipient}@example.com.
var parser = bounce.Parser{MessageIDDomain: "mail.example.com", ReturnPath: "bounces+{campaign}.{recipient}@example.com"}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseFixtures parses real-shaped reports of several providers: each
// maps to its recipient with the right event type.
func TestParseFixtures(t *testing.T) {
	for _, tc := range []struct {
		file   string
		kind   bounce.Kind
		typ    core.EventType
		rid    int64
		email  string
		reason string // a part of the event's reason
		id     string // the report's own Message-ID in the event id
	}{
		{"postfix.eml", bounce.KindDSN, core.EventBounce, 101, "ann@example.net", "5.1.1 smtp; 550 5.1.1 <ann@example.net>: Recipient address rejected", "20261202100005.4Q1abc2XyzZ9@mx.example.com"},
		{"exim.eml", bounce.KindDSN, core.EventBounce, 102, "bob@example.org", "5.0.0 smtp; 550 No such user here", "E1tGxyz-000abc-2F@mx.example.com"},
		{"gmail.eml", bounce.KindDSN, core.EventBounce, 103, "carol@gmail.com", "550-5.1.1 The email account that you tried to reach does not exist", "674d8a25.050a0220.1c2a3b.9f01.GMR@mx.google.com"},
		{"exchange.eml", bounce.KindDSN, core.EventBounce, 104, "dave@contoso.com", "5.1.10 smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound", "a1b2c3d4-e5f6-7890-abcd-ef1234567890@PH0PR12MB1234.namprd12.prod.outlook.com"},
		{"yahoo-arf.eml", bounce.KindARF, core.EventSpamReport, 105, "erin@yahoo.com", "abuse complaint (Yahoo!-Mail-Feedback/2.0)", "1796211000000.301894.fbl@arf.mail.yahoo.com"},
		{"arf.eml", bounce.KindARF, core.EventSpamReport, 106, "heidi@example.net", "abuse complaint", "abuse-20261202-174036-1@example.net"},
		{"delayed.eml", bounce.KindDSN, core.EventDeferred, 107, "frank@example.org", "4.4.1 X-Postfix; connect to mx.example.org", "20261202140005.4Q2def7Uvw@mx.example.com"},
		{"verp.eml", bounce.KindDSN, core.EventBounce, 108, "grace@example.org", "5.2.1 SMTP; 550 5.2.1 Mailbox disabled", "202612021004.4B2A5000012345@mx.example.org"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			rep, err := parser.Parse(fixture(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if rep.Kind != tc.kind || rep.NotOurs || len(rep.Events) != 1 {
				t.Fatalf("report = %+v, want one %s event", rep, tc.kind)
			}
			ev := rep.Events[0]
			if ev.Provider != "mailbox" || ev.Type != tc.typ || ev.CampaignID != 3 || ev.RecipientID != tc.rid || ev.Email != tc.email {
				t.Errorf("event = %+v, want %s for c3.r%d <%s>", ev, tc.typ, tc.rid, tc.email)
			}
			if !strings.Contains(ev.Reason, tc.reason) || strings.ContainsAny(ev.Reason, "\r\n") {
				t.Errorf("reason = %q, want it to contain %q on one line", ev.Reason, tc.reason)
			}
			if want := "mailbox:" + tc.id + ":c3.r" + strconv.FormatInt(tc.rid, 10); ev.EventID != want {
				t.Errorf("event id = %q, want %q", ev.EventID, want)
			}
			if ev.At.IsZero() || ev.At.Year() != 2026 {
				t.Errorf("at = %v, want the report's Date", ev.At)
			}
		})
	}
}

// TestParseNotReports: a person's reply is not a report, a report about
// someone else's message is not ours, and a broken one is an error; none
// of them yields an event.
func TestParseNotReports(t *testing.T) {
	if _, err := parser.Parse(fixture(t, "nonbounce.eml")); !errors.Is(err, bounce.ErrNotReport) {
		t.Errorf("out-of-office reply: %v, want ErrNotReport", err)
	}
	rep, err := parser.Parse(fixture(t, "notours.eml"))
	if err != nil || !rep.NotOurs || len(rep.Events) != 0 {
		t.Errorf("someone else's bounce: %+v, %v; want NotOurs without events", rep, err)
	}
	if rep, err := parser.Parse(fixture(t, "unparseable.eml")); err == nil {
		t.Errorf("multipart without a boundary: %+v, want an error", rep)
	}
	if rep, err := parser.Parse(fixture(t, "truncated.eml")); err == nil || !strings.Contains(err.Error(), "no per-recipient fields") {
		t.Errorf("DSN cut off after its per-message fields: %+v, %v; want an error", rep, err)
	}
	if _, err := parser.Parse([]byte("not a message at all")); err == nil {
		t.Error("garbage: want an error")
	}
}

// TestParseDomain: a campaignd-shaped Message-ID of another domain is not
// ours; without message_id_domain the campaign's own domain decides.
func TestParseDomain(t *testing.T) {
	raw := fixture(t, "postfix.eml")
	other := bounce.Parser{MessageIDDomain: "news.example.org"}
	if rep, err := other.Parse(raw); err != nil || !rep.NotOurs {
		t.Errorf("other domain: %+v, %v; want NotOurs", rep, err)
	}
	byCampaign := bounce.Parser{CampaignDomain: func(cid int64) (string, error) {
		if cid == 3 {
			return "MAIL.example.com", nil
		}
		return "", nil
	}}
	if rep, err := byCampaign.Parse(raw); err != nil || len(rep.Events) != 1 || rep.Events[0].RecipientID != 101 {
		t.Errorf("campaign's domain: %+v, %v; want the event", rep, err)
	}
	noCampaign := bounce.Parser{CampaignDomain: func(int64) (string, error) { return "", nil }}
	if rep, err := noCampaign.Parse(raw); err != nil || !rep.NotOurs {
		t.Errorf("unknown campaign: %+v, %v; want NotOurs", rep, err)
	}
	broken := bounce.Parser{CampaignDomain: func(int64) (string, error) { return "", errors.New("database is locked") }}
	if rep, err := broken.Parse(raw); err == nil || !strings.Contains(err.Error(), "database is locked") {
		t.Errorf("store failing: %+v, %v; want the error (the message is kept)", rep, err)
	}
}

// TestParseVERPNeeded: the VERP-only bounce names its recipient only by
// the address it was sent to; without a return_path it cannot be mapped,
// and is left for a person rather than deleted.
func TestParseVERPNeeded(t *testing.T) {
	noVERP := bounce.Parser{MessageIDDomain: "mail.example.com"}
	if rep, err := noVERP.Parse(fixture(t, "verp.eml")); !errors.Is(err, bounce.ErrNoOriginal) {
		t.Errorf("VERP bounce without return_path: %+v, %v; want ErrNoOriginal", rep, err)
	}
	// An address of the VERP shape with other ids is not read loosely.
	raw := strings.ReplaceAll(string(fixture(t, "verp.eml")), "bounces+3.108@", "bounces+3.x108@")
	if rep, err := parser.Parse([]byte(raw)); !errors.Is(err, bounce.ErrNoOriginal) {
		t.Errorf("malformed VERP address: %+v, %v; want ErrNoOriginal", rep, err)
	}
}

// TestParseWithoutMessageID: a report without its own Message-ID gets an
// event id from a hash of its content, stable across reads.
func TestParseWithoutMessageID(t *testing.T) {
	raw := strings.Replace(string(fixture(t, "exim.eml")), "Message-Id: <E1tGxyz-000abc-2F@mx.example.com>\n", "", 1)
	a, err := parser.Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := parser.Parse([]byte(raw))
	if id := a.Events[0].EventID; !strings.HasPrefix(id, "mailbox:sha256:") || !strings.HasSuffix(id, ":c3.r102") || id != b.Events[0].EventID {
		t.Errorf("event ids %q, %q", id, b.Events[0].EventID)
	}
}

// TestParseMostSevere: a DSN listing a delay and then a failure for the
// message counts as the failure; a relayed one needs nothing.
func TestParseMostSevere(t *testing.T) {
	raw := string(fixture(t, "delayed.eml"))
	both := strings.Replace(raw, "Will-Retry-Until: Mon,  7 Dec 2026 10:00:01 +0000 (UTC)\n",
		"Will-Retry-Until: Mon,  7 Dec 2026 10:00:01 +0000 (UTC)\n\nFinal-Recipient: rfc822; frank@example.org\nAction: failed\nStatus: 5.4.7\n", 1)
	rep, err := parser.Parse([]byte(both))
	if err != nil || len(rep.Events) != 1 || rep.Events[0].Type != core.EventBounce {
		t.Errorf("delay + failure: %+v, %v; want one bounce", rep, err)
	}
	relayed := strings.Replace(raw, "Action: delayed", "Action: relayed", 1)
	if rep, err := parser.Parse([]byte(relayed)); err != nil || rep.NotOurs || len(rep.Events) != 0 {
		t.Errorf("relayed: %+v, %v; want a report of ours with no event", rep, err)
	}
	gaveUp := strings.Replace(raw, "Action: delayed", "Action: failed", 1)
	if rep, err := parser.Parse([]byte(gaveUp)); err != nil || len(rep.Events) != 1 || rep.Events[0].Type != core.EventDeferred {
		t.Errorf("failed with 4.4.1: %+v, %v; want a deferral (the address may be fine)", rep, err)
	}
}

// TestParseBase64Report: a report whose parts are base64-encoded (against
// RFC 2046, but seen in the wild) still parses.
func TestParseBase64Report(t *testing.T) {
	raw := "From: a@mx.example.org\r\nTo: bounces@example.com\r\nMessage-ID: <b64@mx.example.org>\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n" +
		"--B\r\nContent-Type: message/delivery-status\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		"UmVwb3J0aW5nLU1UQTogZG5zOyBteAoKRmluYWwtUmVjaXBpZW50OiByZmM4MjI7IGxAZXhhbXBs\r\n" +
		"ZS5vcmcKQWN0aW9uOiBmYWlsZWQKU3RhdHVzOiA1LjEuMQo=\r\n" +
		"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <c9.r7@mail.example.com>\r\n\r\n--B--\r\n"
	rep, err := parser.Parse([]byte(raw))
	if err != nil || len(rep.Events) != 1 || rep.Events[0].RecipientID != 7 || rep.Events[0].Email != "l@example.org" {
		t.Errorf("base64 report: %+v, %v", rep, err)
	}
}

// TestParsePolicyBlockIsSoft: a failure whose status is a security or
// policy one (x.7.x: a listed sending IP, a spam or DMARC rejection) says
// nothing about the address, so it is a soft bounce, recorded only, like
// the same 5.7.1 refused during the send (FAILED, not suppressed). A
// generic 5.0.0 (Exim) takes the enhanced code of its Diagnostic-Code; an
// address failure beside it still counts as the bounce.
func TestParsePolicyBlockIsSoft(t *testing.T) {
	raw := string(fixture(t, "postfix.eml"))
	withStatus := func(status, diag string) string {
		s := strings.Replace(raw, "Status: 5.1.1\n", "Status: "+status+"\n", 1)
		return strings.Replace(s, "Diagnostic-Code: smtp; 550 5.1.1 <ann@example.net>: Recipient address\n    rejected: User unknown in virtual mailbox table\n",
			"Diagnostic-Code: smtp; "+diag+"\n", 1)
	}
	for _, tc := range []struct {
		name, status, diag string
		want               core.EventType
	}{
		{"listed IP", "5.7.1", "550 5.7.1 Service unavailable; client host [192.0.2.1] blocked using zen.spamhaus.org", core.EventDeferred},
		{"DMARC", "5.7.26", "550-5.7.26 Unauthenticated email from example.com is not accepted due to domain's DMARC policy", core.EventDeferred},
		{"generic status, policy diagnostic", "5.0.0", "550 5.7.1 Message rejected as spam by Content Filtering", core.EventDeferred},
		{"generic status, unknown user", "5.0.0", "550 No such user here", core.EventBounce},
		{"generic status, address diagnostic", "5.0.0", "550 5.1.1 User unknown", core.EventBounce},
		{"bad mailbox", "5.1.1", "550 5.1.1 User unknown", core.EventBounce},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := parser.Parse([]byte(withStatus(tc.status, tc.diag)))
			if err != nil || len(rep.Events) != 1 {
				t.Fatalf("%+v, %v; want one event", rep, err)
			}
			if ev := rep.Events[0]; ev.Type != tc.want || !strings.Contains(ev.Reason, tc.status) {
				t.Errorf("event %s (%q), want %s with the status in the reason", ev.Type, ev.Reason, tc.want)
			}
		})
	}
	both := strings.Replace(withStatus("5.7.1", "550 5.7.1 blocked"), "Remote-MTA: dns; mx1.example.net\n",
		"Remote-MTA: dns; mx1.example.net\n\nFinal-Recipient: rfc822; ann@example.net\nAction: failed\nStatus: 5.1.1\n", 1)
	if rep, err := parser.Parse([]byte(both)); err != nil || len(rep.Events) != 1 || rep.Events[0].Type != core.EventBounce {
		t.Errorf("block + unknown user: %+v, %v; want the bounce", rep, err)
	}
}
