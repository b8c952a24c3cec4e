package core_test

import (
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/sdk"
)

func mustWindow(t *testing.T, s string) *core.SendWindow {
	t.Helper()
	w, err := core.ParseSendWindow(s)
	if err != nil {
		t.Fatalf("ParseSendWindow(%q): %v", s, err)
	}
	return w
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func TestParseSendWindow(t *testing.T) {
	for in, want := range map[string]string{
		"Mon-Fri 09:00-17:00 Europe/Berlin":    "Mon-Fri 09:00-17:00 Europe/Berlin",
		"mon,wed,FRI 08:30-12:00 UTC":          "Mon,Wed,Fri 08:30-12:00 UTC",
		"Sat-Sun 10:00-24:00 America/New_York": "Sat-Sun 10:00-24:00 America/New_York",
		"daily 22:00-06:00 Asia/Tokyo":         "daily 22:00-06:00 Asia/Tokyo",
		"*  00:00-24:00   UTC":                 "daily 00:00-24:00 UTC",
		"Fri-Mon 09:00-17:00 UTC":              "Mon,Fri-Sun 09:00-17:00 UTC",
		"Mon-Sun 09:00-17:00 UTC":              "daily 09:00-17:00 UTC",
	} {
		w := mustWindow(t, in)
		if w.String() != want {
			t.Errorf("%q: canonical %q, want %q", in, w.String(), want)
		}
		if again := mustWindow(t, w.String()); again.String() != want {
			t.Errorf("%q: canonical form does not read back: %q", in, again)
		}
	}
	for in, part := range map[string]string{
		"":                                     "three parts",
		"Mon-Fri 09:00-17:00":                  "three parts",
		"Mon-Fry 09:00-17:00 UTC":              `"Fry" is not a day`,
		"Mon-Fri 9:00-17:00 UTC":               `start "9:00"`,
		"Mon-Fri 09:00 UTC":                    "HH:MM-HH:MM",
		"Mon-Fri 09:00-24:01 UTC":              `end "24:01"`,
		"Mon-Fri 24:00-17:00 UTC":              "24:00 can only end",
		"Mon-Fri 09:60-17:00 UTC":              `start "09:60"`,
		"Mon-Fri 09:00-09:00 UTC":              "start and end are the same",
		"Mon-Fri 09:00-17:00 Europe/Berlinn":   `zone "Europe/Berlinn"`,
		"Mon-Fri 09:00-17:00 Local":            `zone "Local"`,
		"Mon-Fri 09:00-17:00 ../../etc/passwd": "IANA",
		"Mon,,Fri 09:00-17:00 UTC":             `"" is not a day`,
	} {
		_, err := core.ParseSendWindow(in)
		if err == nil {
			t.Errorf("%q: accepted", in)
			continue
		}
		msg := err.Error()
		if core.ErrorCode(err) != core.EINVALID || !strings.Contains(msg, "--send-window") ||
			!strings.Contains(msg, part) || !strings.Contains(msg, core.SendWindowExample) {
			t.Errorf("%q: %v (want EINVALID naming --send-window, %q and the example)", in, err, part)
		}
	}
}

func TestSendWindowOpen(t *testing.T) {
	office := mustWindow(t, "Mon-Fri 09:00-17:00 Europe/Berlin")
	night := mustWindow(t, "Fri 22:00-06:00 UTC")
	allDay := mustWindow(t, "Sat-Sun 00:00-24:00 UTC")
	for _, c := range []struct {
		w    *core.SendWindow
		at   string
		open bool
	}{
		// 2026-12-07 is a Monday; Berlin is UTC+1 in winter.
		{office, "2026-12-07T07:59:59Z", false},
		{office, "2026-12-07T08:00:00Z", true},
		{office, "2026-12-07T15:59:59Z", true},
		{office, "2026-12-07T16:00:00Z", false},
		{office, "2026-12-12T10:00:00Z", false}, // Saturday
		// In summer Berlin is UTC+2: the window follows the clocks.
		{office, "2026-07-06T07:30:00Z", true},
		{office, "2026-07-06T15:30:00Z", false},
		// A wrap belongs to the day it starts: Friday night into Saturday.
		{night, "2026-12-11T21:59:00Z", false},
		{night, "2026-12-11T22:00:00Z", true},
		{night, "2026-12-12T05:59:00Z", true},
		{night, "2026-12-12T06:00:00Z", false},
		{night, "2026-12-10T23:00:00Z", false}, // Thursday night
		{night, "2026-12-11T03:00:00Z", false}, // Friday morning: Thursday's wrap
		{allDay, "2026-12-12T00:00:00Z", true},
		{allDay, "2026-12-13T23:59:59Z", true},
		{allDay, "2026-12-14T00:00:00Z", false},
	} {
		if got := c.w.Open(mustTime(t, c.at)); got != c.open {
			t.Errorf("%s at %s: open %v, want %v", c.w, c.at, got, c.open)
		}
	}
}

func TestSendWindowNextOpenAcrossDST(t *testing.T) {
	for _, c := range []struct {
		window, now, open, close string
	}{
		// Closed on a Friday evening: opens Monday 09:00 Berlin.
		{"Mon-Fri 09:00-17:00 Europe/Berlin", "2026-12-11T17:00:00Z", "2026-12-14T08:00:00Z", "2026-12-11T17:00:00Z"},
		// Open: now, and it closes at 17:00 Berlin.
		{"Mon-Fri 09:00-17:00 Europe/Berlin", "2026-12-07T10:00:00Z", "2026-12-07T10:00:00Z", "2026-12-07T16:00:00Z"},
		// Across the spring change (Sunday 2026-03-29, 02:00 CET -> 03:00
		// CEST): Saturday evening in winter time, Monday morning in summer.
		{"Mon-Fri 09:00-17:00 Europe/Berlin", "2026-03-28T18:00:00Z", "2026-03-30T07:00:00Z", "2026-03-28T18:00:00Z"},
		// A window that starts in the skipped hour opens when the clocks jump.
		{"Sun 02:30-04:00 Europe/Berlin", "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z", "2026-03-28T12:00:00Z"},
		// Across the autumn change (Sunday 2026-10-25, 03:00 CEST -> 02:00 CET).
		{"daily 09:00-17:00 Europe/Berlin", "2026-10-24T16:00:00Z", "2026-10-25T08:00:00Z", "2026-10-24T16:00:00Z"},
		// The repeated hour is open both times: closed between them.
		{"Sun 02:00-02:30 Europe/Berlin", "2026-10-25T00:30:00Z", "2026-10-25T01:00:00Z", "2026-10-25T00:30:00Z"},
		// A midnight wrap, across the US spring change (2026-03-08).
		{"Sat 22:00-06:00 America/New_York", "2026-03-07T12:00:00Z", "2026-03-08T03:00:00Z", "2026-03-07T12:00:00Z"},
		{"Sat 22:00-06:00 America/New_York", "2026-03-08T04:00:00Z", "2026-03-08T04:00:00Z", "2026-03-08T10:00:00Z"},
		// Lord Howe moves by 30 minutes.
		{"daily 02:00-03:00 Australia/Lord_Howe", "2026-04-04T16:00:00Z", "2026-04-04T16:00:00Z", "2026-04-04T16:30:00Z"},
	} {
		w := mustWindow(t, c.window)
		now := mustTime(t, c.now)
		if got := w.NextOpen(now); !got.Equal(mustTime(t, c.open)) {
			t.Errorf("%s from %s: opens %s, want %s", c.window, c.now, got.UTC().Format(time.RFC3339), c.open)
		}
		if got := w.NextClose(now); !got.Equal(mustTime(t, c.close)) {
			t.Errorf("%s from %s: closes %s, want %s", c.window, c.now, got.UTC().Format(time.RFC3339), c.close)
		}
	}
	// The autumn case, step by step: the first 02:00-02:30 (CEST) is
	// open, then the clocks go back and it opens again at 02:00 CET.
	w := mustWindow(t, "Sun 02:00-02:30 Europe/Berlin")
	first := mustTime(t, "2026-10-25T00:00:00Z") // 02:00 CEST
	if !w.Open(first) {
		t.Fatalf("closed at 02:00 CEST")
	}
	if got := w.NextClose(first); !got.Equal(mustTime(t, "2026-10-25T00:30:00Z")) {
		t.Errorf("closes %s", got)
	}
	// Never closes.
	if got := mustWindow(t, "daily 00:00-24:00 UTC").NextClose(first); !got.IsZero() {
		t.Errorf("an always-open window closes at %s", got)
	}
}

func TestParseSendTime(t *testing.T) {
	berlin := mustWindow(t, "daily 09:00-17:00 Europe/Berlin").Location()
	for _, c := range []struct {
		in   string
		loc  *time.Location
		want string
	}{
		{"2026-12-24T09:00:00+01:00", time.UTC, "2026-12-24T08:00:00Z"},
		{"2026-12-24 09:00", time.UTC, "2026-12-24T09:00:00Z"},
		{"2026-12-24 09:00", berlin, "2026-12-24T08:00:00Z"},
		{"2026-07-01 09:00:30", berlin, "2026-07-01T07:00:30Z"},
	} {
		got, err := core.ParseSendTime("expires", c.in, c.loc)
		if err != nil || !got.Equal(mustTime(t, c.want)) {
			t.Errorf("%q in %s: %s %v, want %s", c.in, c.loc, got, err, c.want)
		}
	}
	for _, in := range []string{"tomorrow", "2026-12-24", "24.12.2026 09:00", "2026-03-29 02:30"} {
		_, err := core.ParseSendTime("not-before", in, berlin)
		if err == nil || core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), "--not-before") {
			t.Errorf("%q: %v, want EINVALID naming --not-before", in, err)
		}
	}
}

func TestCampaignSpecSchedule(t *testing.T) {
	spec := func(window, notBefore, expires string) *core.CampaignSpec {
		return &core.CampaignSpec{Name: "c", Sender: "fake", From: "a@example.org", Subject: "s", Text: "t",
			SendWindow: window, NotBefore: notBefore, Expires: expires}
	}
	if err := spec("Mon-Fri 09:00-17:00 Europe/Berlin", "2026-12-01 09:00", "2026-12-24 12:00").Validate(5); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		s    *core.CampaignSpec
		want string
	}{
		{spec("", "2026-12-24 09:00", "2026-12-24 09:00"), "--expires 2026-12-24T09:00:00Z is not after --not-before"},
		{spec("", "2026-12-24 10:00", "2026-12-24T09:00:00Z"), "is not after --not-before"},
		{spec("weekdays 09:00-17:00 UTC", "", ""), "--send-window"},
		{spec("", "soon", ""), "--not-before"},
		{spec("", "", "later"), "--expires"},
	} {
		err := c.s.Validate(5)
		if err == nil || core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want EINVALID with %q", c.s, err, c.want)
		}
	}
}

func TestScheduleNextSend(t *testing.T) {
	nb := mustTime(t, "2026-12-14T12:00:00Z") // a Monday, 13:00 Berlin
	exp := mustTime(t, "2026-12-15T12:00:00Z")
	s := core.Schedule{SendWindow: mustWindow(t, "Mon-Fri 14:00-15:00 Europe/Berlin"), NotBefore: &nb, Expires: &exp}
	now := mustTime(t, "2026-12-12T12:00:00Z")
	if s.SendsAt(now) || s.ClosedBy(now) != "not_before" {
		t.Fatalf("sends at %s (%q)", now, s.ClosedBy(now))
	}
	if got := s.NextSend(now); !got.Equal(mustTime(t, "2026-12-14T13:00:00Z")) {
		t.Errorf("next send %s", got)
	}
	late := mustTime(t, "2026-12-14T15:00:00Z")
	if s.ClosedBy(late) != "send_window" {
		t.Errorf("closed by %q", s.ClosedBy(late))
	}
	// The next opening (Tuesday 14:00 Berlin) is after the expiry: never.
	if got := s.NextSend(late); !got.IsZero() {
		t.Errorf("next send %s after the expiry", got)
	}
	if !s.Expired(exp) || s.ClosedBy(exp) != "expired" || s.SendsAt(exp) {
		t.Errorf("not expired at its expiry")
	}
}

// clockedHarness is a harness whose engine reads the time from *now.
func clockedHarness(t *testing.T, now *time.Time, mut func(*core.Limits)) *harness {
	t.Helper()
	h := newHarness(t, mut)
	eng, err := core.NewEngine(h.db, h.prov, h.eng.Limits(), nil, core.WithClock(func() time.Time { return *now }))
	if err != nil {
		t.Fatal(err)
	}
	h.eng = eng
	return h
}

// A tick outside a campaign's send window (or before its not-before)
// claims nothing from it, starts no plugin and leaves no record; the queue
// says when it opens; once it is open the tick sends.
func TestTickSendWindow(t *testing.T) {
	now := mustTime(t, "2026-12-12T10:00:00Z") // a Saturday
	h := clockedHarness(t, &now, nil)
	win := h.campaign(3, func(s *core.CampaignSpec) { s.SendWindow = "Mon-Fri 09:00-17:00 Europe/Berlin" })
	nb := h.campaign(2, func(s *core.CampaignSpec) { s.NotBefore = "2026-12-13 12:00" })
	if res := h.tick(); res.Processed != 0 || res.Skipped || h.prov.calls.Load() != 0 {
		t.Fatalf("closed tick: %+v, %d plugin starts", res, h.prov.calls.Load())
	}
	if ts, _ := h.eng.Ticks(ctx, 10); len(ts) != 0 {
		t.Fatalf("a tick that did nothing left %d records", len(ts))
	}
	qs, err := h.eng.Queue(ctx)
	if err != nil || len(qs) != 2 {
		t.Fatalf("queue %v %v", qs, err)
	}
	for _, q := range qs {
		want := map[int64]struct{ closed, opens string }{
			win: {"send_window", "2026-12-14T08:00:00Z"},
			nb:  {"not_before", "2026-12-13T12:00:00Z"},
		}[q.CampaignID]
		if q.Closed != want.closed || q.OpensAt == nil || !q.OpensAt.Equal(mustTime(t, want.opens)) {
			t.Errorf("campaign %d: closed %q opens %v, want %+v", q.CampaignID, q.Closed, q.OpensAt, want)
		}
	}
	// A clone carries the schedule.
	if cl, err := h.eng.CloneCampaign(ctx, nb, core.CloneRequest{}); err != nil || cl.NotBefore == nil ||
		!cl.NotBefore.Equal(mustTime(t, "2026-12-13T12:00:00Z")) || cl.SendWindow != nil {
		t.Fatalf("clone: %+v %v", cl, err)
	}
	now = mustTime(t, "2026-12-13T12:00:00Z") // Sunday noon: not-before reached
	if res := h.tick(); res.Sent != 2 || h.stats(nb).Sent != 2 || h.stats(win).Sent != 0 {
		t.Fatalf("not-before reached: %+v", res)
	}
	// Moving the window of a SENDING campaign is a schedule edit: allowed,
	// and the next tick follows it.
	c, err := h.eng.EditCampaign(ctx, win, core.CampaignEdit{SendWindow: ptr("daily 09:00-17:00 Europe/Berlin")})
	if err != nil || c.Status != core.CampaignSending || c.SendWindow.String() != "daily 09:00-17:00 Europe/Berlin" {
		t.Fatalf("schedule edit of a SENDING campaign: %+v %v", c, err)
	}
	if _, err := h.eng.EditCampaign(ctx, win, core.CampaignEdit{Subject: ptr("x")}); core.ErrorCode(err) != core.ECONFLICT {
		t.Fatalf("content edit of a SENDING campaign: %v", err)
	}
	if res := h.tick(); res.Sent != 3 || h.stats(win).Sent != 3 {
		t.Fatalf("window open: %+v", res)
	}
}

// After --expires, a tick fails the unsent recipients (due, waiting for a
// retry) with class expired, leaves those in flight to finish, records it,
// and the campaign completes; retry refuses until --expires is extended,
// then sends them.
func TestTickExpiresCampaign(t *testing.T) {
	now := mustTime(t, "2026-12-14T09:00:00Z")
	h := clockedHarness(t, &now, func(l *core.Limits) { l.RetryBase, l.RetryMax = time.Hour, time.Hour })
	if _, err := h.eng.CreateCampaign(ctx, core.CampaignSpec{Name: "old", Sender: "fake", From: "a@example.org",
		Subject: "s", Text: "t", Expires: "2026-12-14 08:59"}); err == nil || !strings.Contains(err.Error(), "--expires") ||
		!strings.Contains(err.Error(), "in the past") {
		t.Fatalf("create with a past expiry: %v", err)
	}
	h.sender.fn = func(m *sdk.Message, attempt int) error {
		if strings.Contains(m.To, "<u0@") {
			return sdk.Transient("try later")
		}
		return nil
	}
	id := h.campaign(120, func(s *core.CampaignSpec) { s.Expires = "2026-12-14 10:00" })
	if res := h.tick(); res.Sent != 49 || res.Retried != 1 {
		t.Fatalf("first tick: %+v", res)
	}
	// Five in flight when the campaign expires: a tick that died holding them.
	inFlight, err := h.db.Claim(ctx, id, 5, "dead-tick", now.Add(2*time.Hour), now)
	if err != nil || len(inFlight) != 5 {
		t.Fatalf("claim: %d %v", len(inFlight), err)
	}
	now = mustTime(t, "2026-12-14T10:00:00Z")
	res := h.tick()
	if res.Expired != 66 || res.Processed != 0 { // 120 - 49 sent - 5 in flight (u0 waiting included)
		t.Fatalf("expiry tick: %+v", res)
	}
	st := h.stats(id)
	if st.Failed != 66 || st.Sending != 5 || st.Queued != 0 || st.Pending != 0 {
		t.Fatalf("after expiry: %+v", st)
	}
	failed := h.recipients(id, core.RecipientFailed)
	for _, r := range failed {
		if r.LastErrorClass != core.ClassExpired || !strings.Contains(r.LastError, "--expires") {
			t.Fatalf("failed %s as %q: %s", r.Email, r.LastErrorClass, r.LastError)
		}
	}
	ts, _ := h.eng.Ticks(ctx, 1)
	if len(ts) != 1 || ts[0].Expired != 66 {
		t.Fatalf("tick record %+v", ts)
	}
	// The five in flight finish; the campaign completes.
	var os []core.Outcome
	for _, r := range inFlight {
		os = append(os, core.Outcome{RecipientID: r.ID, CampaignID: id, ClaimToken: "dead-tick", Status: core.RecipientSent, At: now})
	}
	if _, err := h.db.RecordOutcomes(ctx, os); err != nil {
		t.Fatal(err)
	}
	if res := h.tick(); res.Completed != 1 || res.Expired != 0 {
		t.Fatalf("completion tick: %+v", res)
	}
	_, err = h.eng.Retry(ctx, id, "expired", 0)
	if core.ErrorCode(err) != core.ECONFLICT || !strings.Contains(err.Error(), "--expires") {
		t.Fatalf("retry of an expired campaign: %v", err)
	}
	// A content edit of a COMPLETED campaign is still refused; the expiry
	// alone can move.
	if _, err := h.eng.EditCampaign(ctx, id, core.CampaignEdit{Subject: ptr("x"), Expires: ptr("2026-12-15 10:00")}); core.ErrorCode(err) != core.ECONFLICT {
		t.Fatalf("content edit of a COMPLETED campaign: %v", err)
	}
	c, err := h.eng.EditCampaign(ctx, id, core.CampaignEdit{Expires: ptr("2026-12-15 10:00")})
	if err != nil || c.Expires == nil || !c.Expires.Equal(mustTime(t, "2026-12-15T10:00:00Z")) || c.Status != core.CampaignCompleted {
		t.Fatalf("extend: %+v %v", c, err)
	}
	h.sender.fn = nil
	rr, err := h.eng.Retry(ctx, id, "expired", 0)
	if err != nil || rr.Requeued != 66 {
		t.Fatalf("retry: %+v %v", rr, err)
	}
	h.tick()
	h.tick()
	if st := h.stats(id); st.Sent != 120 || st.Failed != 0 {
		t.Fatalf("after retry: %+v", st)
	}
}

// Execute refuses a campaign whose expiry has come, saying to extend it,
// and leaves a FAILED execution record; a CANCELLED campaign cannot be
// rescheduled.
func TestExecuteRefusesExpired(t *testing.T) {
	now := mustTime(t, "2026-12-14T09:00:00Z")
	h := clockedHarness(t, &now, nil)
	c, err := h.eng.CreateCampaign(ctx, core.CampaignSpec{Name: "c", Sender: "fake", From: "a@example.org",
		Subject: "s", Text: "t", Expires: "2026-12-14T09:30:00Z"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.AddRecipient(ctx, c.ID, core.RecipientInput{Email: "a@example.net"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.ChangeCampaign(ctx, c.ID, core.ActionActivate); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour)
	_, err = h.eng.Execute(ctx, c.ID)
	if core.ErrorCode(err) != core.ECONFLICT || !strings.Contains(err.Error(), "--expires") {
		t.Fatalf("execute: %v", err)
	}
	xs, _ := h.eng.Executions(ctx, c.ID)
	if len(xs) != 1 || xs[0].Status != core.ExecutionFailed {
		t.Fatalf("executions %+v", xs)
	}
	if _, err := h.eng.EditCampaign(ctx, c.ID, core.CampaignEdit{Expires: ptr("")}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.Execute(ctx, c.ID); err != nil {
		t.Fatalf("execute without an expiry: %v", err)
	}
	if _, err := h.eng.ChangeCampaign(ctx, c.ID, core.ActionCancel); err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.EditCampaign(ctx, c.ID, core.CampaignEdit{NotBefore: ptr("2027-01-01 00:00")}); core.ErrorCode(err) != core.ECONFLICT {
		t.Fatalf("reschedule of a CANCELLED campaign: %v", err)
	}
}

// A schedule whose window does not open before its expiry could send
// nothing: create and edit refuse it, naming both flags, rather than let
// every recipient expire unsent. An expiry already past stays allowed on
// edit (it expires the campaign now, on purpose).
func TestScheduleThatNeverOpensRefused(t *testing.T) {
	now := mustTime(t, "2026-12-14T09:00:00Z") // a Monday
	h := clockedHarness(t, &now, nil)
	spec := core.CampaignSpec{Name: "c", Sender: "fake", From: "a@example.org", Subject: "s", Text: "t",
		SendWindow: "Sat-Sun 09:00-17:00 UTC", Expires: "2026-12-18 17:00"}
	_, err := h.eng.CreateCampaign(ctx, spec)
	if core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), "--send-window") || !strings.Contains(err.Error(), "--expires") {
		t.Fatalf("create with a window that never opens before the expiry: %v", err)
	}
	spec.Expires = "2026-12-19 10:00" // Saturday 10:00: it opens first
	c, err := h.eng.CreateCampaign(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.eng.EditCampaign(ctx, c.ID, core.CampaignEdit{Expires: ptr("2026-12-19 08:00")})
	if core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), "--expires") {
		t.Fatalf("schedule edit to an expiry before the window opens: %v", err)
	}
	_, err = h.eng.EditCampaign(ctx, c.ID, core.CampaignEdit{Subject: ptr("x"), SendWindow: ptr("Sun 09:00-17:00 UTC")})
	if core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), "--send-window") {
		t.Fatalf("edit to a window that opens after the expiry: %v", err)
	}
	if _, err := h.eng.EditCampaign(ctx, c.ID, core.CampaignEdit{Expires: ptr("2026-12-14 08:00")}); err != nil {
		t.Fatalf("an expiry in the past (expire it now): %v", err)
	}
}

// Once a window's last opening before the expiry has passed, execute and
// retry are refused like after the expiry itself: the recipients they
// would queue could only expire unsent.
func TestExecuteRefusesWindowClosedUntilExpiry(t *testing.T) {
	now := mustTime(t, "2026-12-14T08:00:00Z") // a Monday
	h := clockedHarness(t, &now, nil)
	c, err := h.eng.CreateCampaign(ctx, core.CampaignSpec{Name: "c", Sender: "fake", From: "a@example.org",
		Subject: "s", Text: "t", SendWindow: "Mon 09:00-17:00 UTC", Expires: "2026-12-16 12:00"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.AddRecipient(ctx, c.ID, core.RecipientInput{Email: "a@example.net"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.ChangeCampaign(ctx, c.ID, core.ActionActivate); err != nil {
		t.Fatal(err)
	}
	now = mustTime(t, "2026-12-15T10:00:00Z") // Tuesday: the window opens next on Monday, after the expiry
	_, err = h.eng.Execute(ctx, c.ID)
	if core.ErrorCode(err) != core.ECONFLICT || !strings.Contains(err.Error(), "--expires") || !strings.Contains(err.Error(), "--send-window") {
		t.Fatalf("execute: %v", err)
	}
	if _, err := h.eng.EditCampaign(ctx, c.ID, core.CampaignEdit{SendWindow: ptr("daily 09:00-17:00 UTC")}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.Execute(ctx, c.ID); err != nil {
		t.Fatalf("execute once the window opens before the expiry: %v", err)
	}
}

// A weekly window whose only hour a spring change skips opens a week
// later, two weeks after a moment just past the week before's.
func TestSendWindowSkippedByDST(t *testing.T) {
	w := mustWindow(t, "Sun 02:00-03:00 Europe/Berlin")
	got := w.NextOpen(mustTime(t, "2026-03-22T03:00:00Z"))
	if want := mustTime(t, "2026-04-05T00:00:00Z"); !got.Equal(want) {
		t.Fatalf("next open %s, want %s (29 March's 02:00-03:00 does not exist)", got, want)
	}
}
