package core

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SendWindowExample is the example every send-window error shows.
const SendWindowExample = `"Mon-Fri 09:00-17:00 Europe/Berlin"`

// SendWindow is when a campaign may send: days of the week, a span of wall
// clock time on each of them, in one IANA time zone ("Mon-Fri 09:00-17:00
// Europe/Berlin"). A span that wraps midnight ("22:00-06:00") belongs to
// the day it starts on. Everything is computed on the zone's wall clock,
// so daylight saving time moves the window with the clocks: a span that
// starts in the hour a spring change skips opens when the clocks jump, and
// one that lies in the hour an autumn change repeats is open both times.
// The zero value is not a window; get one from ParseSendWindow.
type SendWindow struct {
	days       [7]bool // by time.Weekday
	start, end int     // minutes after midnight; end in 1..1440, end < start wraps
	loc        *time.Location
	text       string
}

var weekdays = [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

// locations caches time.LoadLocation, which reads and parses the zone's
// data on every call: a tick checks every due campaign's window.
var locations sync.Map // zone name -> *time.Location

func loadLocation(name string) (*time.Location, error) {
	if l, ok := locations.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	locations.Store(name, l)
	return l, nil
}

// ParseSendWindow parses "DAYS HH:MM-HH:MM ZONE": DAYS is `daily` (or `*`),
// or a comma-separated list of days (Mon, Tue, ... Sun, any case) and
// ranges of them (`Mon-Fri`, `Sat-Sun`, `Fri-Mon`); the times are 24-hour,
// the end may be 24:00, and an end before the start wraps midnight; ZONE
// is an IANA name (Europe/Berlin, UTC). It returns an EINVALID error that
// names the --send-window flag, the bad part and an example.
func ParseSendWindow(s string) (*SendWindow, error) {
	bad := func(format string, args ...any) error {
		return Errorf(EINVALID, "--send-window %q: %s (example: %s)", s, fmt.Sprintf(format, args...), SendWindowExample)
	}
	fields := strings.Fields(s)
	if len(fields) != 3 {
		return nil, bad("want three parts, DAYS HH:MM-HH:MM ZONE, got %d", len(fields))
	}
	w := &SendWindow{}
	if err := w.parseDays(fields[0]); err != nil {
		return nil, bad("days %q: %v", fields[0], err)
	}
	from, to, ok := strings.Cut(fields[1], "-")
	if !ok {
		return nil, bad("times %q: want HH:MM-HH:MM", fields[1])
	}
	var err error
	if w.start, err = clockMinutes(from, false); err != nil {
		return nil, bad("start %q: %v", from, err)
	}
	if w.end, err = clockMinutes(to, true); err != nil {
		return nil, bad("end %q: %v", to, err)
	}
	if w.start == w.end {
		return nil, bad("times %q: start and end are the same; for the whole day write 00:00-24:00", fields[1])
	}
	zone := fields[2]
	if zone == "Local" || strings.HasPrefix(zone, "/") || strings.Contains(zone, "..") {
		return nil, bad("zone %q: want an IANA name such as Europe/Berlin or UTC", zone)
	}
	if w.loc, err = loadLocation(zone); err != nil {
		return nil, bad("zone %q: not a known IANA time zone name (such as Europe/Berlin or UTC)", zone)
	}
	w.text = w.dayList() + " " + formatClock(w.start) + "-" + formatClock(w.end) + " " + w.loc.String()
	return w, nil
}

// parseDays fills w.days from "daily", "*" or a list of days and ranges.
func (w *SendWindow) parseDays(s string) error {
	if s == "*" || strings.EqualFold(s, "daily") {
		w.days = [7]bool{true, true, true, true, true, true, true}
		return nil
	}
	for _, part := range strings.Split(s, ",") {
		a, b, isRange := strings.Cut(part, "-")
		first, err := weekday(a)
		if err != nil {
			return err
		}
		last := first
		if isRange {
			if last, err = weekday(b); err != nil {
				return err
			}
		}
		for d := first; ; d = (d + 1) % 7 {
			w.days[d] = true
			if d == last {
				break
			}
		}
	}
	return nil
}

func weekday(s string) (int, error) {
	for i, d := range weekdays {
		if strings.EqualFold(s, d) {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%q is not a day: use Mon, Tue, Wed, Thu, Fri, Sat, Sun, ranges like Mon-Fri, or daily", s)
}

// clockMinutes parses HH:MM (24:00 only when end) into minutes after midnight.
func clockMinutes(s string, end bool) (int, error) {
	hh, mm, ok := strings.Cut(s, ":")
	if !ok || len(hh) != 2 || len(mm) != 2 {
		return 0, fmt.Errorf("want HH:MM, 24-hour")
	}
	h, err1 := strconv.Atoi(hh)
	m, err2 := strconv.Atoi(mm)
	if err1 != nil || err2 != nil || h < 0 || m < 0 || hh[0] == '+' || mm[0] == '+' {
		return 0, fmt.Errorf("want HH:MM, 24-hour")
	}
	if h == 24 && m == 0 {
		if !end {
			return 0, fmt.Errorf("24:00 can only end a window")
		}
		return 1440, nil
	}
	if h > 23 || m > 59 {
		return 0, fmt.Errorf("not a time of day (00:00..23:59, or 24:00 as the end)")
	}
	return h*60 + m, nil
}

func formatClock(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }

// dayList is the canonical form of the days: "daily", or runs from Monday on
// ("Mon-Fri", "Mon,Wed,Fri", "Sat-Sun").
func (w *SendWindow) dayList() string {
	if w.days == [7]bool{true, true, true, true, true, true, true} {
		return "daily"
	}
	order := []int{1, 2, 3, 4, 5, 6, 0} // Monday first
	var parts []string
	for i := 0; i < 7; {
		if !w.days[order[i]] {
			i++
			continue
		}
		j := i
		for j+1 < 7 && w.days[order[j+1]] {
			j++
		}
		if j == i {
			parts = append(parts, weekdays[order[i]])
		} else {
			parts = append(parts, weekdays[order[i]]+"-"+weekdays[order[j]])
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// String is the window in canonical form, which ParseSendWindow reads back
// as the same window.
func (w *SendWindow) String() string { return w.text }

// Location is the window's time zone.
func (w *SendWindow) Location() *time.Location { return w.loc }

// MarshalText is the canonical form (JSON carries a window as its string).
func (w *SendWindow) MarshalText() ([]byte, error) { return []byte(w.text), nil }

// UnmarshalText parses a window as ParseSendWindow does, with its errors.
func (w *SendWindow) UnmarshalText(b []byte) error {
	p, err := ParseSendWindow(string(b))
	if err != nil {
		return err
	}
	*w = *p
	return nil
}

// Open reports whether the window is open at t: its wall clock in the
// window's zone is inside the span on one of the days (for a span that
// wraps midnight, after the start on one of the days or before the end on
// the day after one). It allocates nothing: the tick asks it per campaign.
func (w *SendWindow) Open(t time.Time) bool {
	t = t.In(w.loc)
	h, m, _ := t.Clock()
	min := h*60 + m
	wd := int(t.Weekday())
	if w.start < w.end {
		return w.days[wd] && min >= w.start && min < w.end
	}
	return (w.days[wd] && min >= w.start) || (w.days[(wd+6)%7] && min < w.end)
}

// NextOpen returns now when the window is open at now, otherwise the first
// moment after now at which it opens; the zero time if it finds none.
// Every parsed window opens within a week, or two when a daylight saving
// change skips the only hour of a weekly one ("Sun 02:00-03:00
// Europe/Berlin" on the last Sunday of March): both are found.
func (w *SendWindow) NextOpen(now time.Time) time.Time { return w.next(now, true) }

// NextClose returns now when the window is closed at now, otherwise the
// first moment after now at which it closes; the zero time when it never
// closes (daily 00:00-24:00).
func (w *SendWindow) NextClose(now time.Time) time.Time { return w.next(now, false) }

// next finds the first moment from now at which Open is want. Open changes
// only where the wall clock crosses midnight, the start or the end, or
// where the zone's offset changes; between two changes of offset the wall
// clock runs with the real one, so the candidates of each such period are
// its wall-clock boundaries taken back to real time, then its end.
func (w *SendWindow) next(now time.Time, want bool) time.Time {
	if w.Open(now) == want {
		return now
	}
	minutes := slices.Compact(slices.Sorted(slices.Values([]int{0, w.start, w.end})))
	horizon := now.Add(9 * 24 * time.Hour)
	cursor := now.In(w.loc)
	for range 64 {
		_, periodEnd := cursor.ZoneBounds()
		_, offset := cursor.Zone()
		wall := time.Date(cursor.Year(), cursor.Month(), cursor.Day(), cursor.Hour(), cursor.Minute(),
			cursor.Second(), cursor.Nanosecond(), time.UTC)
		day := time.Date(cursor.Year(), cursor.Month(), cursor.Day(), 0, 0, 0, 0, time.UTC)
	days:
		for k := 0; k <= 9; k++ {
			for _, m := range minutes {
				b := day.AddDate(0, 0, k).Add(time.Duration(m) * time.Minute)
				if !b.After(wall) {
					continue
				}
				t := b.Add(-time.Duration(offset) * time.Second).In(w.loc)
				if !periodEnd.IsZero() && !t.Before(periodEnd) {
					break days
				}
				if w.Open(t) == want {
					return t
				}
			}
		}
		if periodEnd.IsZero() || periodEnd.After(horizon) {
			return time.Time{}
		}
		cursor = periodEnd.In(w.loc)
		if w.Open(cursor) == want {
			return cursor
		}
	}
	return time.Time{}
}

// Schedule is when a campaign may send: inside its SendWindow (always when
// nil), not before NotBefore, and before Expires (never, when nil). After
// Expires its unsent recipients fail with class expired.
type Schedule struct {
	SendWindow *SendWindow `json:"send_window,omitempty"`
	NotBefore  *time.Time  `json:"not_before,omitempty"`
	Expires    *time.Time  `json:"expires,omitempty"`
}

// Set reports whether any part of the schedule is set.
func (s Schedule) Set() bool { return s.SendWindow != nil || s.NotBefore != nil || s.Expires != nil }

// Expired reports whether the schedule's expiry has come at now.
func (s Schedule) Expired(now time.Time) bool { return s.Expires != nil && !now.Before(*s.Expires) }

// SendsAt reports whether a tick at now may claim the campaign's
// recipients: not expired, not before NotBefore, inside the window. It reads
// only the campaign row's fields and allocates nothing.
func (s Schedule) SendsAt(now time.Time) bool {
	if s.Expired(now) || (s.NotBefore != nil && now.Before(*s.NotBefore)) {
		return false
	}
	return s.SendWindow == nil || s.SendWindow.Open(now)
}

// ClosedBy says why SendsAt(now) is false: "expired", "not_before" or
// "send_window"; "" when it is true.
func (s Schedule) ClosedBy(now time.Time) string {
	switch {
	case s.Expired(now):
		return "expired"
	case s.NotBefore != nil && now.Before(*s.NotBefore):
		return "not_before"
	case s.SendWindow != nil && !s.SendWindow.Open(now):
		return "send_window"
	}
	return ""
}

// NextSend returns now when SendsAt(now), otherwise the first moment after
// now when it will; the zero time when that never comes (expired, or the
// window does not open again before the expiry).
func (s Schedule) NextSend(now time.Time) time.Time {
	if s.Expired(now) {
		return time.Time{}
	}
	t := now
	if s.NotBefore != nil && t.Before(*s.NotBefore) {
		t = *s.NotBefore
	}
	if s.SendWindow != nil {
		t = s.SendWindow.NextOpen(t)
	}
	if t.IsZero() || s.Expired(t) {
		return time.Time{}
	}
	return t
}

// zone is the schedule's time zone: the window's, else UTC.
func (s Schedule) zone() *time.Location {
	if s.SendWindow != nil {
		return s.SendWindow.loc
	}
	return time.UTC
}

// ParseSendTime parses a --not-before or --expires TIME: RFC 3339
// ("2026-12-24T09:00:00+01:00"), or "2026-12-24 09:00" (seconds optional)
// on the wall clock of loc (the send window's zone, else UTC). A wall time
// that the zone skips (a spring DST change) is refused rather than moved.
// EINVALID naming the flag.
func ParseSendTime(flag, s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02T15:04:05"} {
		t, err := time.ParseInLocation(layout, s, loc)
		if err != nil {
			continue
		}
		if t.Format(layout) != s {
			return time.Time{}, Errorf(EINVALID, "--%s %q: that wall-clock time does not exist in %s (the clocks skip it): give another time, or RFC 3339 with an offset", flag, s, loc)
		}
		return t, nil
	}
	return time.Time{}, Errorf(EINVALID, "--%s %q: want RFC 3339 (2026-12-24T09:00:00+01:00) or \"2026-12-24 09:00\" (in the send window's zone, else UTC)", flag, s)
}

// ScheduleText is the operator's form of a schedule: the window as text,
// the times as RFC 3339 in the schedule's zone; "" for a part not set.
type ScheduleText struct {
	SendWindow string `json:"send_window,omitempty"`
	NotBefore  string `json:"not_before,omitempty"`
	Expires    string `json:"expires,omitempty"`
}

// parse checks the text and returns the schedule it says: EINVALID naming
// the flag (--send-window, --not-before, --expires) for a bad part, or an
// expiry that is not after not-before.
func (st ScheduleText) parse() (Schedule, error) {
	var s Schedule
	if strings.TrimSpace(st.SendWindow) != "" {
		w, err := ParseSendWindow(st.SendWindow)
		if err != nil {
			return s, err
		}
		s.SendWindow = w
	}
	for _, p := range []struct {
		flag, text string
		dst        **time.Time
	}{{"not-before", st.NotBefore, &s.NotBefore}, {"expires", st.Expires, &s.Expires}} {
		if strings.TrimSpace(p.text) == "" {
			continue
		}
		t, err := ParseSendTime(p.flag, p.text, s.zone())
		if err != nil {
			return s, err
		}
		t = t.Truncate(time.Millisecond) // the store keeps milliseconds
		*p.dst = &t
	}
	if s.NotBefore != nil && s.Expires != nil && !s.Expires.After(*s.NotBefore) {
		return s, Errorf(EINVALID, "--expires %s is not after --not-before %s: a campaign would expire before it may send",
			s.Expires.In(s.zone()).Format(time.RFC3339), s.NotBefore.In(s.zone()).Format(time.RFC3339))
	}
	return s, nil
}

// text is the schedule in the operator's form (see ScheduleText).
func (s Schedule) text() ScheduleText {
	var st ScheduleText
	if s.SendWindow != nil {
		st.SendWindow = s.SendWindow.String()
	}
	if s.NotBefore != nil {
		st.NotBefore = s.NotBefore.In(s.zone()).Format(time.RFC3339Nano)
	}
	if s.Expires != nil {
		st.Expires = s.Expires.In(s.zone()).Format(time.RFC3339Nano)
	}
	return st
}

// checkNew refuses, for a new campaign, an expiry that has already come
// (EINVALID naming --expires), and a schedule that could send nothing
// (see checkOpens).
func (s Schedule) checkNew(now time.Time) error {
	if s.Expired(now) {
		return Errorf(EINVALID, "--expires %s is in the past (now %s): give a later time, or leave --expires out",
			s.Expires.In(s.zone()).Format(time.RFC3339), now.In(s.zone()).Format(time.RFC3339))
	}
	return s.checkOpens(now)
}

// checkOpens refuses a schedule whose window (from its not-before on) does
// not open again before its expiry, which has not come at now: every
// recipient would expire unsent. EINVALID naming --send-window and
// --expires. An expiry already past is not refused here: on an edit it
// expires the campaign on purpose.
func (s Schedule) checkOpens(now time.Time) error {
	if s.Expires == nil || s.SendWindow == nil || s.Expired(now) || !s.NextSend(now).IsZero() {
		return nil
	}
	return Errorf(EINVALID, "--send-window %q does not open before --expires %s: the campaign could send nothing; widen the window or give a later --expires",
		s.SendWindow.String(), s.Expires.In(s.zone()).Format(time.RFC3339))
}

// refuseExpired is the ECONFLICT for executing or retrying a campaign whose
// expiry has come, or whose send window does not open again before it (its
// recipients would only expire): it says to extend --expires (or change
// --send-window) first. nil when the campaign can still send.
func (c *Campaign) refuseExpired(a Action, now time.Time) error {
	if !c.Expired(now) {
		if c.checkOpens(now) == nil {
			return nil
		}
		return Errorf(ECONFLICT, "campaign %d: its --send-window %q does not open again before it expires at %s: change it or extend --expires first with `campaignd campaign edit %d`, then %s it",
			c.ID, c.SendWindow.String(), c.Expires.In(c.zone()).Format(time.RFC3339), c.ID, a)
	}
	return Errorf(ECONFLICT, "campaign %d expired at %s: extend it first with `campaignd campaign edit %d --expires TIME` (a later time, or \"\" for none), then %s it",
		c.ID, c.Expires.In(c.zone()).Format(time.RFC3339), c.ID, a)
}
