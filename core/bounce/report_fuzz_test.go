package bounce_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/campaignd/campaignd/core/bounce"
)

// FuzzParse: whatever a mailbox holds, Parse returns without panicking,
// and every event it returns is complete and names a recipient.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.eml"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		rep, err := parser.Parse(raw)
		if err != nil {
			if rep != nil {
				t.Fatalf("report %+v with error %v", rep, err)
			}
			return
		}
		if rep.NotOurs && len(rep.Events) > 0 {
			t.Fatalf("not ours, yet events: %+v", rep)
		}
		if len(rep.Events) > 1 {
			t.Fatalf("%d events from one message", len(rep.Events))
		}
		for _, ev := range rep.Events {
			if ev.Provider != bounce.Provider || ev.EventID == "" || ev.Type == "" || ev.CampaignID <= 0 || ev.RecipientID <= 0 {
				t.Fatalf("incomplete event %+v", ev)
			}
			if len(ev.EventID) > 200 {
				t.Fatalf("event id of %d bytes", len(ev.EventID))
			}
			if len(ev.Reason) > 310 {
				t.Fatalf("reason of %d bytes", len(ev.Reason))
			}
		}
	})
}
