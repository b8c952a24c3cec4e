package core_test

import (
	"testing"

	"github.com/campaignd/campaignd/core"
)

// BenchmarkTick50 times the core's part of a 50-email tick (claim, render,
// send to an instant in-process sender, record), on a real SQLite file:
// the path a profile of the send path looks at first. Metrics per tick;
// allocs/op are the whole tick's.
func BenchmarkTick50(b *testing.B) {
	h := newHarness(b, nil)
	h.campaign(50*2000, func(s *core.CampaignSpec) {
		s.Concurrency = 10
		s.HTML = "<p>Hello {{.Name}}, this is <b>{{.Campaign.Name}}</b>.</p>"
	})
	b.ReportAllocs()
	for b.Loop() {
		res, err := h.eng.Tick(ctx, core.TriggerCLI)
		if err != nil || res.Sent != 50 {
			b.Fatalf("tick: %+v, %v", res, err)
		}
	}
}
