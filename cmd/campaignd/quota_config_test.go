package main

import (
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
)

// [senders.NAME] rate: parsed into the engine's limits; a bad entry is an
// error naming senders.NAME.rate and the entry.
func TestConfigSenderRate(t *testing.T) {
	cfg, err := loadConfigText(t, "[senders.gmail]\nplugin = \"smtp\"\nrate = [\"30/minute\", \"500/day\"]\n\n[senders.one]\nplugin = \"smtp\"\nrate = \"2/second\"\n")
	if err != nil {
		t.Fatal(err)
	}
	lim := cfg.limits()
	if got := lim.Rates.For("gmail"); len(got) != 2 || got[0] != (core.Rate{Limit: 30, Per: time.Minute}) || got[1] != (core.Rate{Limit: 500, Per: 24 * time.Hour}) {
		t.Fatalf("gmail rates %+v", got)
	}
	if got := lim.Rates.For("one"); len(got) != 1 || got[0] != (core.Rate{Limit: 2, Per: time.Second}) {
		t.Fatalf("one rates %+v", got)
	}
	if lim.Rates.For("outbox") != nil {
		t.Fatalf("outbox has rates")
	}
	for rate, want := range map[string]string{
		`["30/minute", "500/week"]`:  `"500/week"`,
		`["30/minutes"]`:             `"30/minutes"`,
		`["0/day"]`:                  `"0/day"`,
		`["30/minute", "60/minute"]`: `a second rate per minute`,
		`[30]`:                       `30 is not a string`,
		`30`:                         `must be a list of strings`,
	} {
		_, err := loadConfigText(t, "[senders.gmail]\nplugin = \"smtp\"\nrate = "+rate+"\n")
		if core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), "senders.gmail.rate") || !strings.Contains(err.Error(), want) {
			t.Errorf("rate = %s: %v, want EINVALID naming senders.gmail.rate and %s", rate, err, want)
		}
	}
}
