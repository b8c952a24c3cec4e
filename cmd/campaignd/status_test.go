package main_test

import (
	"strings"
	"testing"
)

// TestStatusChecksSenderLikeLaunch: status makes the check every launch
// makes, so a sha256 left stale by an upgrade shows as a problem rather
// than the sender found while every launch is refused.
func TestStatusChecksSenderLikeLaunch(t *testing.T) {
	e := NewEnv(t, "[senders.mail]\nplugin = \"outbox\"\nsha256 = \""+strings.Repeat("0", 64)+"\"\n")
	var st struct {
		Senders []struct {
			Name    string `json:"name"`
			Found   bool   `json:"found"`
			Problem string `json:"problem"`
		} `json:"senders"`
	}
	e.MustRun("init")
	e.MustJSON(&st, "status", "--json")
	seen := false
	for _, s := range st.Senders {
		if s.Name == "mail" {
			seen = true
			if s.Found || !strings.Contains(s.Problem, "checksum mismatch") {
				t.Errorf("status with a stale sha256: %+v", s)
			}
		}
	}
	if !seen {
		t.Errorf("status lists no sender mail: %+v", st)
	}
	if out := e.MustRun("status"); !strings.Contains(out, "NOT FOUND") || !strings.Contains(out, "expected "+strings.Repeat("0", 64)) {
		t.Errorf("status:\n%s", out)
	}
}
