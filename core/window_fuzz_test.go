package core_test

import (
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
)

// FuzzSendWindow puts arbitrary text through ParseSendWindow. Invariants:
//   - it either refuses with EINVALID naming --send-window, or accepts;
//   - an accepted window's canonical form parses back to the same form;
//   - NextOpen(now) is now when Open(now), otherwise a later moment at
//     which the window is open (or zero: never), and the window is closed
//     just before it; NextClose mirrors it.
func FuzzSendWindow(f *testing.F) {
	for _, s := range []string{
		"Mon-Fri 09:00-17:00 Europe/Berlin", "daily 22:00-06:00 UTC", "* 00:00-24:00 Asia/Tokyo",
		"Sat-Sun 10:00-14:00 America/New_York", "Mon,Wed,Fri 02:30-03:30 Europe/Berlin",
		"Fri-Mon 23:59-00:01 Australia/Lord_Howe", "Sun 02:00-02:30 Europe/London", "mon 9:00-17:00 UTC",
		"Mon-Fri 09:00-17:00 ../etc", "Tue 24:00-01:00 UTC", "", "  ", "daily 00:00-00:00 UTC",
	} {
		f.Add(s, int64(1_796_000_000))
	}
	f.Fuzz(func(t *testing.T, s string, unix int64) {
		w, err := core.ParseSendWindow(s)
		if err != nil {
			if core.ErrorCode(err) != core.EINVALID {
				t.Fatalf("%q: %v is not EINVALID", s, err)
			}
			return
		}
		again, err := core.ParseSendWindow(w.String())
		if err != nil || again.String() != w.String() {
			t.Fatalf("%q: canonical %q reads back as %v, %v", s, w, again, err)
		}
		// A moment between 1970 and 2100, to the second.
		now := time.Unix(((unix%4_102_444_800)+4_102_444_800)%4_102_444_800, 0)
		for _, want := range []bool{true, false} {
			next := w.NextOpen(now)
			if !want {
				next = w.NextClose(now)
			}
			switch {
			case next.IsZero():
				if want {
					t.Fatalf("%q never opens after %s", w, now)
				}
			case next.Before(now):
				t.Fatalf("%q from %s: %v at %s, before now", w, now, want, next)
			case w.Open(next) != want:
				t.Fatalf("%q from %s: next open=%v at %s, but Open says %v", w, now, want, next, w.Open(next))
			case next.After(now) && w.Open(next.Add(-time.Second)) == want:
				t.Fatalf("%q from %s: already open=%v a second before %s", w, now, want, next)
			}
		}
	})
}
