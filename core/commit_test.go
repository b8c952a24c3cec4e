package core_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
)

// groupFaults is a store whose RecordOutcomes can spoil one outcome's
// claim token (as if its lease had been taken over) or fail a group's
// transaction, and counts the groups.
type groupFaults struct {
	core.Store
	mu        sync.Mutex
	groups    []int
	stale     int64                // recipient whose outcome carries a stale token
	failGroup func(group int) bool // the groups whose transaction fails
}

func (s *groupFaults) RecordOutcomes(ctx context.Context, os []core.Outcome) ([]error, error) {
	s.mu.Lock()
	g := len(s.groups)
	s.groups = append(s.groups, len(os))
	s.mu.Unlock()
	if s.failGroup != nil && s.failGroup(g) {
		return nil, errors.New("disk I/O error")
	}
	os = append([]core.Outcome(nil), os...)
	for i := range os {
		if os[i].RecipientID == s.stale {
			os[i].ClaimToken = "a-dead-tick"
		}
	}
	return s.Store.RecordOutcomes(ctx, os)
}

// Outcomes that arrive close together share a transaction: a tick of 20
// with concurrency 10 writes far fewer groups than outcomes.
func TestTickGroupsOutcomes(t *testing.T) {
	h := newHarness(t, nil)
	id := h.campaign(20, func(s *core.CampaignSpec) { s.Concurrency = 10 })
	store := &groupFaults{Store: h.db}
	res, err := h.engineOver(store).Tick(ctx, core.TriggerCLI)
	if err != nil || res.Sent != 20 {
		t.Fatalf("tick: %+v, %v", res, err)
	}
	if len(store.groups) >= 20 {
		t.Fatalf("groups %v: one transaction per outcome", store.groups)
	}
	if st := h.stats(id); st.Sent != 20 || st.Sending != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// A stale claim inside a group is skipped alone: the others in its group
// are recorded, the stale row stays SENDING for lease recovery, and the
// tick succeeds.
func TestTickStaleClaimInGroup(t *testing.T) {
	h := newHarness(t, nil)
	id := h.campaign(5, func(s *core.CampaignSpec) { s.Concurrency = 5 })
	stale := h.recipients(id, core.RecipientQueued)[2].ID
	store := &groupFaults{Store: h.db, stale: stale}
	res, err := h.engineOver(store).Tick(ctx, core.TriggerCLI)
	if err != nil || res.Sent != 4 {
		t.Fatalf("tick: %+v, %v; want 4 sent and the stale outcome skipped", res, err)
	}
	for _, r := range h.recipients(id, "") {
		want := core.RecipientSent
		if r.ID == stale {
			want = core.RecipientSending
		}
		if r.Status != want {
			t.Errorf("recipient %d: %s, want %s", r.ID, r.Status, want)
		}
	}
}

// A group whose transaction fails fails the tick (cron hears of it); its
// outcomes stay SENDING under their leases and the in_doubt policy brings
// them back once the leases expire. The other groups are recorded.
func TestTickFailedGroupStaysSending(t *testing.T) {
	var skew time.Duration
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().Add(skew) }
	h := newHarness(t, nil)
	id := h.campaign(6, func(s *core.CampaignSpec) { s.Concurrency = 1 })
	h.sender.delay = 5 * time.Millisecond // each outcome its own group
	store := &groupFaults{Store: h.db, failGroup: func(g int) bool { return g == 1 }}
	eng, err := core.NewEngine(store, h.prov, h.eng.Limits(), nil, core.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	_, err = eng.Tick(ctx, core.TriggerCLI)
	if err == nil || !strings.Contains(err.Error(), "record outcomes") || !strings.Contains(err.Error(), "disk I/O error") {
		t.Fatalf("tick: %v, want the failed group reported", err)
	}
	failed := store.groups[1]
	st := h.stats(id)
	if st.Sending != int64(failed) || st.Sent != int64(6-failed) {
		t.Fatalf("stats %+v: want the failed group's %d outcomes SENDING, the rest SENT", st, failed)
	}
	ts, _ := h.eng.Ticks(ctx, 1)
	if len(ts) != 1 || !strings.Contains(ts[0].Error, "record outcomes") {
		t.Fatalf("tick records %+v, want one naming the failed group", ts)
	}
	// Past the leases, the in_doubt policy (resend) queues them again.
	mu.Lock()
	skew = h.eng.Limits().TickTimeout + h.eng.Limits().LeaseMargin + time.Minute
	mu.Unlock()
	res, err := eng.Tick(ctx, core.TriggerCLI)
	if err != nil || res.Recovered != failed {
		t.Fatalf("tick after the leases: %+v, %v; want %d recovered", res, err, failed)
	}
}
