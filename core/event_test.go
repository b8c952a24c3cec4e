package core_test

import (
	"database/sql"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
)

// eventAt is the time the tests' provider events carry.
var eventAt = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

// sentCampaign is a campaign whose n (at most 50) recipients are all SENT.
func (h *harness) sentCampaign(n int) (int64, []*core.Recipient) {
	h.t.Helper()
	id := h.campaign(n, nil)
	if res := h.tick(); res.Sent != n {
		h.t.Fatalf("tick %+v, want %d sent", res, n)
	}
	rs := h.recipients(id, core.RecipientSent)
	if len(rs) != n {
		h.t.Fatalf("%d sent recipients, want %d", len(rs), n)
	}
	return id, rs
}

// suppressions returns the suppression list by address.
func (h *harness) suppressions() map[string]*core.Suppression {
	h.t.Helper()
	list, err := h.eng.Suppressions(ctx, 1000)
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]*core.Suppression{}
	for _, s := range list {
		out[s.Email] = s
	}
	return out
}

// events returns the events recorded on a recipient.
func (h *harness) events(rid int64) []*core.DeliveryEvent {
	h.t.Helper()
	evs, err := h.db.Events(ctx, rid)
	if err != nil {
		h.t.Fatal(err)
	}
	return evs
}

// snapshot is the state an event without effect must leave alone.
type snapshot struct {
	stats        core.Stats
	recipients   []*core.Recipient
	suppressions map[string]*core.Suppression
}

func (h *harness) snap(id int64) snapshot {
	h.t.Helper()
	return snapshot{stats: h.stats(id), recipients: h.recipients(id, ""), suppressions: h.suppressions()}
}

func (h *harness) unchanged(id int64, before snapshot) {
	h.t.Helper()
	if now := h.snap(id); !reflect.DeepEqual(now, before) {
		h.t.Fatalf("state changed:\nbefore %+v\nafter  %+v", before, now)
	}
}

// applyEvents applies events and checks the result.
func (h *harness) applyEvents(want core.EventsResult, evs ...core.DeliveryEvent) {
	h.t.Helper()
	res, err := h.eng.ApplyEvents(ctx, evs)
	if err != nil || *res != want {
		h.t.Fatalf("apply events: %+v %v, want %+v", res, err, want)
	}
}

// sgEvent is a SendGrid event about r, as the webhook hands it on.
func sgEvent(typ core.EventType, id string, r *core.Recipient, reason string) core.DeliveryEvent {
	return core.DeliveryEvent{Provider: "sendgrid", EventID: id, Type: typ, CampaignID: r.CampaignID,
		RecipientID: r.ID, Email: r.Email, Reason: reason, At: eventAt}
}

func TestApplyEventsBouncesAndSuppresses(t *testing.T) {
	h := newHarness(t, nil)
	id, rs := h.sentCampaign(5)
	stranger := &core.Recipient{ID: 99999, CampaignID: id, Email: "nobody@example.org"}
	evs := []core.DeliveryEvent{
		sgEvent(core.EventBounce, "ev-1", rs[0], "550 5.1.1 no such user"),
		sgEvent(core.EventSpamReport, "ev-2", rs[1], ""),
		sgEvent(core.EventUnsubscribe, "ev-3", rs[2], ""),
		sgEvent(core.EventDelivered, "ev-4", rs[3], "250 OK"),
		sgEvent(core.EventBounce, "ev-5", stranger, ""),
	}
	h.applyEvents(core.EventsResult{Applied: 4, Unknown: 1}, evs...)

	// The bounce moved a counter from sent to bounced.
	if st := h.stats(id); st != (core.Stats{Total: 5, Sent: 4, Bounced: 1}) {
		t.Fatalf("stats %+v", st)
	}
	b := h.recipients(id, core.RecipientBounced)
	if len(b) != 1 || b[0].ID != rs[0].ID || b[0].LastError != "bounce: 550 5.1.1 no such user" || b[0].LastErrorClass != "bounced" {
		t.Fatalf("bounced %+v", b)
	}
	// Bounces, complaints and unsubscribes suppress; deliveries do not.
	got := map[string]string{}
	for email, s := range h.suppressions() {
		got[email] = string(s.Source) + " / " + s.Reason
		if !s.CreatedAt.Equal(eventAt) {
			t.Errorf("%s suppressed at %v, want the event's time", email, s.CreatedAt)
		}
	}
	want := map[string]string{
		rs[0].Email: "bounce / bounce: 550 5.1.1 no such user",
		rs[1].Email: "complaint / spamreport",
		rs[2].Email: "unsubscribe / unsubscribe",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("suppressions %v, want %v", got, want)
	}
	// Every applied event is recorded on its recipient.
	for i, r := range rs[:4] {
		if rec := h.events(r.ID); len(rec) != 1 || !reflect.DeepEqual(*rec[0], evs[i]) {
			t.Fatalf("events of %s: %+v, want %+v", r.Email, rec, evs[i])
		}
	}

	// SendGrid retrying the batch changes nothing, even if a replayed
	// event now claims another type.
	before := h.snap(id)
	h.applyEvents(core.EventsResult{Duplicates: 4, Unknown: 1}, evs...)
	h.applyEvents(core.EventsResult{Duplicates: 1}, sgEvent(core.EventBounce, "ev-4", rs[3], "late"))
	h.unchanged(id, before)
	if n := len(h.events(rs[3].ID)); n != 1 {
		t.Fatalf("%d events on %s after the replay", n, rs[3].Email)
	}
	// The same id from another provider is another event.
	other := sgEvent(core.EventBounce, "ev-4", rs[3], "")
	other.Provider = "other"
	h.applyEvents(core.EventsResult{Applied: 1}, other)
	if st := h.stats(id); st.Bounced != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestApplyEventsDropped(t *testing.T) {
	h := newHarness(t, nil)
	id, rs := h.sentCampaign(1)
	h.applyEvents(core.EventsResult{Applied: 1}, sgEvent(core.EventDropped, "ev-1", rs[0], "Bounced Address"))
	if st := h.stats(id); st.Bounced != 1 || st.Sent != 0 {
		t.Fatalf("stats %+v", st)
	}
	if b := h.recipients(id, core.RecipientBounced); len(b) != 1 || b[0].LastError != "dropped: Bounced Address" {
		t.Fatalf("bounced %+v", b)
	}
	s := h.suppressions()[rs[0].Email]
	if s == nil || s.Source != "dropped" || s.Reason != "dropped: Bounced Address" {
		t.Fatalf("suppression %+v", s)
	}
}

func TestApplyEventsFindsTheRecipient(t *testing.T) {
	h := newHarness(t, nil)
	id, rs := h.sentCampaign(2)
	other, others := h.sentCampaign(1)
	// What the webhook hands on for SendGrid's "blocked" bounce type.
	blocked := sgEvent(core.EventBounce, "ev-1", rs[0], "IP blocklisted")
	// Without a recipient id, the address within the campaign finds it,
	// however its domain is spelled.
	byEmail := sgEvent(core.EventSpamReport, "ev-2", rs[1], "")
	byEmail.RecipientID = 0
	at := strings.LastIndexByte(rs[1].Email, '@')
	byEmail.Email = "  " + rs[1].Email[:at] + strings.ToUpper(rs[1].Email[at:]) + " "
	// Ids of another application sharing the account, or ids and
	// addresses that do not belong together, find no one.
	foreign := []core.DeliveryEvent{
		{CampaignID: 0, RecipientID: 0, Email: "z@example.org"},
		{CampaignID: id, RecipientID: 0, Email: "z@example.org"},
		{CampaignID: id, RecipientID: 0, Email: "not an address"},
		{CampaignID: 0, RecipientID: 0, Email: rs[0].Email},      // an address needs its campaign
		{CampaignID: other, RecipientID: rs[0].ID},               // a recipient of another campaign
		{CampaignID: id, RecipientID: others[0].ID},              // likewise
		{CampaignID: id, RecipientID: 0, Email: others[0].Email}, // an address of another campaign
		{CampaignID: -1, RecipientID: -1, Email: "\x00"},         // garbage
	}
	evs := []core.DeliveryEvent{blocked, byEmail}
	for i, f := range foreign {
		f.Provider, f.EventID, f.Type, f.At = "sendgrid", fmt.Sprint("foreign-", i), core.EventBounce, eventAt
		evs = append(evs, f)
	}
	beforeOther := h.snap(other)
	h.applyEvents(core.EventsResult{Applied: 2, Unknown: len(foreign)}, evs...)
	if st := h.stats(id); st.Bounced != 1 || st.Sent != 1 {
		t.Fatalf("stats %+v", st)
	}
	if b := h.recipients(id, core.RecipientBounced); len(b) != 1 || b[0].ID != rs[0].ID || b[0].LastError != "bounce: IP blocklisted" {
		t.Fatalf("bounced %+v", b)
	}
	sup := h.suppressions()
	if len(sup) != 2 || sup[rs[0].Email] == nil || sup[rs[0].Email].Source != "bounce" ||
		sup[rs[1].Email] == nil || sup[rs[1].Email].Source != "complaint" {
		t.Fatalf("suppressions %+v", sup)
	}
	if evs := h.events(rs[1].ID); len(evs) != 1 || evs[0].RecipientID != rs[1].ID || evs[0].Email != rs[1].Email {
		t.Fatalf("event found by address recorded as %+v", evs)
	}
	// The other campaign is untouched (the list, checked above, is global).
	beforeOther.suppressions = sup
	h.unchanged(other, beforeOther)
}

func TestApplyEventsThatOnlyRecord(t *testing.T) {
	h := newHarness(t, nil)
	id, rs := h.sentCampaign(2)
	before := h.snap(id)
	var evs []core.DeliveryEvent
	for i, typ := range []core.EventType{core.EventDelivered, core.EventDeferred, core.EventOpen, core.EventClick} {
		evs = append(evs, sgEvent(typ, fmt.Sprint("ev-", i), rs[0], ""))
	}
	h.applyEvents(core.EventsResult{Applied: 4}, evs...)
	h.unchanged(id, before)
	if rec := h.events(rs[0].ID); len(rec) != 4 {
		t.Fatalf("%d events recorded, want 4", len(rec))
	}

	// An event without a time gets the engine's clock.
	later := eventAt.Add(time.Hour)
	clocked, err := core.NewEngine(h.db, nil, core.DefaultLimits(), nil, core.WithClock(func() time.Time { return later }))
	if err != nil {
		t.Fatal(err)
	}
	untimed := sgEvent(core.EventSpamReport, "ev-untimed", rs[1], "")
	untimed.At = time.Time{}
	if res, err := clocked.ApplyEvents(ctx, []core.DeliveryEvent{untimed}); err != nil || res.Applied != 1 {
		t.Fatalf("untimed event: %+v %v", res, err)
	}
	if rec := h.events(rs[1].ID); len(rec) != 1 || !rec[0].At.Equal(later) {
		t.Fatalf("untimed event recorded as %+v, want at %v", rec, later)
	}
	if s := h.suppressions()[rs[1].Email]; s == nil || !s.CreatedAt.Equal(later) {
		t.Fatalf("suppression %+v, want created at %v", s, later)
	}

	// A bounce for a recipient that was never sent suppresses the address
	// but leaves the recipient where it is.
	id2 := h.campaign(1, nil)
	q := h.recipients(id2, core.RecipientQueued)
	before2 := h.snap(id2)
	h.applyEvents(core.EventsResult{Applied: 1}, sgEvent(core.EventBounce, "ev-q", q[0], "early"))
	after := h.snap(id2)
	if !reflect.DeepEqual(after.stats, before2.stats) || !reflect.DeepEqual(after.recipients, before2.recipients) {
		t.Fatalf("a bounce changed an unsent recipient: %+v -> %+v", before2, after)
	}
	if s := after.suppressions[q[0].Email]; s == nil || s.Source != "bounce" {
		t.Fatalf("suppressions %+v", after.suppressions)
	}
}

// RecipientDetail shows what ApplyEvents recorded, oldest first, with the
// recipient it changed; a recipient without events has an empty list.
func TestRecipientDetailShowsEvents(t *testing.T) {
	h := newHarness(t, nil)
	id, rs := h.sentCampaign(2)
	d, err := h.eng.RecipientDetail(ctx, id, rs[0].Email)
	if err != nil {
		t.Fatal(err)
	}
	if d.Events == nil || len(d.Events) != 0 || d.Recipient.ID != rs[0].ID {
		t.Fatalf("detail before any event: %+v", d)
	}
	deferred := sgEvent(core.EventDeferred, "ev-1", rs[0], "452 4.2.2 mailbox full")
	bounce := sgEvent(core.EventBounce, "ev-2", rs[0], "550 5.1.1 no such user")
	bounce.At = eventAt.Add(time.Hour)
	h.applyEvents(core.EventsResult{Applied: 2}, deferred, bounce)
	// The address is looked up as imports normalise it (the domain's case
	// does not matter, surrounding space neither).
	local, domain, _ := strings.Cut(rs[0].Email, "@")
	d, err = h.eng.RecipientDetail(ctx, id, "  "+local+"@"+strings.ToUpper(domain)+" ")
	if err != nil {
		t.Fatal(err)
	}
	if d.Recipient.ID != rs[0].ID || d.Recipient.Status != core.RecipientBounced {
		t.Fatalf("recipient %+v, want %d BOUNCED", d.Recipient, rs[0].ID)
	}
	if len(d.Events) != 2 {
		t.Fatalf("%d events, want 2: %+v", len(d.Events), d.Events)
	}
	for i, want := range []core.DeliveryEvent{deferred, bounce} {
		if got := *d.Events[i]; !reflect.DeepEqual(got, want) {
			t.Errorf("event %d = %+v, want %+v", i, got, want)
		}
	}
	if d, err := h.eng.RecipientDetail(ctx, id, rs[1].Email); err != nil || len(d.Events) != 0 {
		t.Fatalf("other recipient: %+v %v, want no events", d, err)
	}

	for _, c := range []struct {
		id    int64
		email string
		code  string
	}{
		{id, "nobody@example.org", core.ENOTFOUND},
		{id + 100, rs[0].Email, core.ENOTFOUND},
		{id, "not an address", core.EINVALID},
	} {
		if _, err := h.eng.RecipientDetail(ctx, c.id, c.email); core.ErrorCode(err) != c.code {
			t.Errorf("RecipientDetail(%d, %q) = %v, want %s", c.id, c.email, err, c.code)
		}
	}
}

func TestApplyEventsRefusesIncompleteEvents(t *testing.T) {
	h := newHarness(t, nil)
	id, rs := h.sentCampaign(3)
	good := sgEvent(core.EventBounce, "ev-1", rs[0], "")
	for name, spoil := range map[string]func(*core.DeliveryEvent){
		"no provider": func(ev *core.DeliveryEvent) { ev.Provider = "" },
		"no id":       func(ev *core.DeliveryEvent) { ev.EventID = "" },
		"no type":     func(ev *core.DeliveryEvent) { ev.Type = "" },
	} {
		bad := sgEvent(core.EventBounce, "ev-bad", rs[1], "")
		spoil(&bad)
		before := h.snap(id)
		res, err := h.eng.ApplyEvents(ctx, []core.DeliveryEvent{bad, sgEvent(core.EventBounce, "ev-2", rs[2], "")})
		if core.ErrorCode(err) != core.EINVALID || res == nil || *res != (core.EventsResult{}) {
			t.Fatalf("%s: %+v %v", name, res, err)
		}
		h.unchanged(id, before)
	}
	// Events before the bad one are kept: each is its own transaction.
	bad := sgEvent(core.EventBounce, "", rs[1], "")
	res, err := h.eng.ApplyEvents(ctx, []core.DeliveryEvent{good, bad})
	if core.ErrorCode(err) != core.EINVALID || res == nil || *res != (core.EventsResult{Applied: 1}) {
		t.Fatalf("%+v %v", res, err)
	}
	if st := h.stats(id); st.Bounced != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestUnsubscribe(t *testing.T) {
	h := newHarness(t, nil)
	u, err := core.NewUnsubscriber("unsubscribe-secret-0123456789", "https://mail.example.org")
	if err != nil {
		t.Fatal(err)
	}
	// The engine puts each recipient's one-click URL on the message.
	mailer, err := core.NewEngine(h.db, h.prov, h.eng.Limits(), nil, core.WithUnsubscribeURL(u.URL))
	if err != nil {
		t.Fatal(err)
	}
	id := h.campaign(3, nil)
	if res, err := mailer.Tick(ctx, core.TriggerCLI); err != nil || res.Sent != 3 {
		t.Fatalf("tick %+v %v", res, err)
	}
	rs := h.recipients(id, core.RecipientSent)
	token := u.Token(id, rs[0].ID)
	headers := map[string]string{}
	for _, m := range h.sender.sent {
		if m.RecipientID == rs[0].ID {
			for _, hd := range m.Headers {
				headers[hd.Name] = hd.Value
			}
		}
	}
	if headers["List-Unsubscribe"] != "<https://mail.example.org/unsubscribe/"+token+">" ||
		headers["List-Unsubscribe-Post"] != "List-Unsubscribe=One-Click" {
		t.Fatalf("headers of the message to %s: %v", rs[0].Email, headers)
	}
	other, others := h.sentCampaign(1)
	before := h.snap(id)

	// A valid token suppresses the address and changes nothing else.
	for i := 0; i < 2; i++ { // again: harmless
		r, err := h.eng.Unsubscribe(ctx, u, token)
		if err != nil || r.ID != rs[0].ID || r.CampaignID != id || r.Email != rs[0].Email {
			t.Fatalf("unsubscribe #%d: %+v %v", i+1, r, err)
		}
		sup := h.suppressions()
		if s := sup[rs[0].Email]; len(sup) != 1 || s == nil || s.Source != "unsubscribe" || s.Reason != "unsubscribe: one-click unsubscribe" {
			t.Fatalf("suppressions after #%d: %+v", i+1, sup)
		}
		if st := h.stats(id); st != before.stats {
			t.Fatalf("unsubscribe changed stats: %+v, was %+v", st, before.stats)
		}
		if !reflect.DeepEqual(h.recipients(id, ""), before.recipients) {
			t.Fatal("unsubscribe changed a recipient")
		}
		evs := h.events(rs[0].ID)
		if len(evs) != 1 || evs[0].Provider != "campaignd" || evs[0].Type != core.EventUnsubscribe ||
			evs[0].EventID != fmt.Sprintf("unsubscribe:%d:%d", id, rs[0].ID) {
			t.Fatalf("events %+v", evs)
		}
	}

	// Forged tokens, and genuine ones whose campaign is not their
	// recipient's, are invalid and change nothing.
	before = h.snap(id)
	sig := []byte(token)
	if sig[len(sig)-2] == 'A' {
		sig[len(sig)-2] = 'B'
	} else {
		sig[len(sig)-2] = 'A'
	}
	otherSecret, err := core.NewUnsubscriber("another-secret-0123456789", "https://mail.example.org")
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{
		"forged":            string(sig),
		"other secret":      otherSecret.Token(id, rs[1].ID),
		"garbage":           "x",
		"unknown campaign":  u.Token(id+100, rs[1].ID),
		"other campaign":    u.Token(other, rs[1].ID),
		"other's recipient": u.Token(id, others[0].ID),
	} {
		if r, err := h.eng.Unsubscribe(ctx, u, tok); core.ErrorCode(err) != core.EINVALID || r != nil {
			t.Fatalf("%s: %+v %v", name, r, err)
		}
		h.unchanged(id, before)
	}

	// A recipient that no longer exists is not found.
	raw, err := sql.Open("sqlite3", h.db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`DELETE FROM recipients WHERE id = ?`, rs[2].ID); err != nil {
		t.Fatal(err)
	}
	before = h.snap(id)
	for name, tok := range map[string]string{
		"deleted":       u.Token(id, rs[2].ID),
		"never existed": u.Token(id, 99999),
	} {
		if r, err := h.eng.Unsubscribe(ctx, u, tok); core.ErrorCode(err) != core.ENOTFOUND || r != nil {
			t.Fatalf("%s: %+v %v", name, r, err)
		}
		h.unchanged(id, before)
	}
}

// A one-click unsubscribe clicked again after the address was taken off
// the suppression list suppresses it again: the same event id must not
// make the second click a no-op.
func TestUnsubscribeAgainAfterUnsuppress(t *testing.T) {
	h := newHarness(t, nil)
	u, err := core.NewUnsubscriber("unsubscribe-secret-0123456789", "https://mail.example.org")
	if err != nil {
		t.Fatal(err)
	}
	id := h.campaign(1, nil)
	h.tick()
	r := h.recipients(id, core.RecipientSent)[0]
	token := u.Token(id, r.ID)
	if _, err := h.eng.Unsubscribe(ctx, u, token); err != nil {
		t.Fatal(err)
	}
	if err := h.eng.Unsuppress(ctx, r.Email); err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.Unsubscribe(ctx, u, token); err != nil {
		t.Fatal(err)
	}
	s := h.suppressions()[r.Email]
	if s == nil || s.Source != "unsubscribe" || s.Reason != "unsubscribe: one-click unsubscribe" {
		t.Fatalf("after the second click: %+v, want an unsubscribe suppression", s)
	}
}
