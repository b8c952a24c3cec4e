package core_test

import (
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
)

// BenchmarkSendWindowOpen is the per-campaign cost the window adds to a
// tick: one Schedule.SendsAt on the row the tick already read.
func BenchmarkSendWindowOpen(b *testing.B) {
	w, err := core.ParseSendWindow("Mon-Fri 09:00-17:00 Europe/Berlin")
	if err != nil {
		b.Fatal(err)
	}
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	exp := nb.AddDate(1, 0, 0)
	s := core.Schedule{SendWindow: w, NotBefore: &nb, Expires: &exp}
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		if !s.SendsAt(now) {
			b.Fatal("closed")
		}
	}
}

// BenchmarkParseSendWindow is what reading a campaign row with a window
// costs on top of the row: the window is parsed from its stored text.
func BenchmarkParseSendWindow(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := core.ParseSendWindow("Mon-Fri 09:00-17:00 Europe/Berlin"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSendWindowNextOpen is the cost `queue` pays per closed campaign.
func BenchmarkSendWindowNextOpen(b *testing.B) {
	w, err := core.ParseSendWindow("Mon-Fri 09:00-17:00 Europe/Berlin")
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 12, 11, 17, 0, 0, 0, time.UTC) // Friday evening
	b.ReportAllocs()
	for b.Loop() {
		if w.NextOpen(now).IsZero() {
			b.Fatal("never")
		}
	}
}
