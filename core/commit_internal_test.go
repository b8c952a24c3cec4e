package core

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// groupStore records the groups RecordOutcomes is given; conflict names
// recipients whose claim was taken over, fail makes a transaction fail.
type groupStore struct {
	Store
	mu       sync.Mutex
	groups   [][]int64
	conflict map[int64]bool
	fail     func(group int) bool
}

func (s *groupStore) RecordOutcomes(_ context.Context, os []Outcome) ([]error, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int64, len(os))
	for i, o := range os {
		ids[i] = o.RecipientID
	}
	s.groups = append(s.groups, ids)
	if s.fail != nil && s.fail(len(s.groups)-1) {
		return nil, errors.New("disk I/O error")
	}
	res := make([]error, len(os))
	for i, o := range os {
		if s.conflict[o.RecipientID] {
			res[i] = Errorf(ECONFLICT, "recipient %d: lease taken over", o.RecipientID)
		}
	}
	return res, nil
}

func (s *groupStore) sizes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n []int
	for _, g := range s.groups {
		n = append(n, len(g))
	}
	return n
}

// reports collects what a committer reports.
type reports struct {
	mu       sync.Mutex
	recorded []int64
	refused  []int64
	failed   []int64
	errs     int
}

func (r *reports) report(group []Outcome, results []error, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.errs++
		for _, o := range group {
			r.failed = append(r.failed, o.RecipientID)
		}
		return
	}
	for i, o := range group {
		if results[i] != nil {
			r.refused = append(r.refused, o.RecipientID)
		} else {
			r.recorded = append(r.recorded, o.RecipientID)
		}
	}
}

func (r *reports) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.recorded) + len(r.refused) + len(r.failed)
}

func outcome(id int64) Outcome {
	return Outcome{RecipientID: id, CampaignID: 1, ClaimToken: "tok", Status: RecipientSent}
}

// A group closes at its size: with a wait far longer than the test, seven
// outcomes go as 3, 3 and, at Close, the last 1.
func TestOutcomeCommitterGroupsBySize(t *testing.T) {
	s, r := &groupStore{}, &reports{}
	c := startOutcomeCommitter(context.Background(), s, time.Hour, 3, 50, r.report)
	for id := range int64(7) {
		c.Add(outcome(id + 1))
	}
	deadline := time.Now().Add(5 * time.Second)
	for r.count() < 6 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := r.count(); n != 6 {
		t.Fatalf("%d outcomes committed before Close, want the two full groups (6)", n)
	}
	c.Close()
	if got := s.sizes(); len(got) != 3 || got[0] != 3 || got[1] != 3 || got[2] != 1 {
		t.Fatalf("groups %v, want [3 3 1]", got)
	}
	if len(r.recorded) != 7 {
		t.Fatalf("recorded %v", r.recorded)
	}
}

// A group closes after its bounded wait, not at the end of the tick: an
// outcome handed over alone is committed while the committer stays open,
// and outcomes close together share a group.
func TestOutcomeCommitterGroupsByTime(t *testing.T) {
	s, r := &groupStore{}, &reports{}
	c := startOutcomeCommitter(context.Background(), s, 100*time.Millisecond, 50, 50, r.report)
	defer c.Close()
	c.Add(outcome(1))
	c.Add(outcome(2))
	deadline := time.Now().Add(5 * time.Second)
	for r.count() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	c.Add(outcome(3))
	for r.count() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := s.sizes(); len(got) != 2 || got[0] != 2 || got[1] != 1 {
		t.Fatalf("groups %v, want [2 1]: the first two together, the third after their group closed", got)
	}
}

// A stale claim in a group is refused alone; the others are recorded.
func TestOutcomeCommitterStaleClaimInGroup(t *testing.T) {
	s, r := &groupStore{conflict: map[int64]bool{2: true}}, &reports{}
	c := startOutcomeCommitter(context.Background(), s, time.Hour, 3, 50, r.report)
	for id := range int64(3) {
		c.Add(outcome(id + 1))
	}
	c.Close()
	if len(s.groups) != 1 || len(r.refused) != 1 || r.refused[0] != 2 || len(r.recorded) != 2 {
		t.Fatalf("groups %v: recorded %v, refused %v; want 1 and 3 recorded, 2 refused, one group", s.groups, r.recorded, r.refused)
	}
}

// A failed transaction fails its group only, reported once; the next
// group is written.
func TestOutcomeCommitterFailedGroup(t *testing.T) {
	s := &groupStore{fail: func(g int) bool { return g == 1 }}
	r := &reports{}
	c := startOutcomeCommitter(context.Background(), s, time.Hour, 2, 50, r.report)
	for id := range int64(6) {
		c.Add(outcome(id + 1))
	}
	c.Close()
	if r.errs != 1 || len(r.failed) != 2 || r.failed[0] != 3 || r.failed[1] != 4 || len(r.recorded) != 4 {
		t.Fatalf("errs %d, failed %v, recorded %v: want the second group (3, 4) failed alone", r.errs, r.failed, r.recorded)
	}
}

// The tick's context ending does not stop a commit: a send that happened
// must be recorded.
func TestOutcomeCommitterOutlivesTickContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, r := &ctxStore{}, &reports{}
	c := startOutcomeCommitter(ctx, s, time.Millisecond, 50, 50, r.report)
	cancel()
	c.Add(outcome(1))
	c.Close()
	if s.err != nil || len(r.recorded) != 1 {
		t.Fatalf("commit after the tick's context ended: %v, recorded %v", s.err, r.recorded)
	}
}

type ctxStore struct {
	Store
	err error
}

func (s *ctxStore) RecordOutcomes(ctx context.Context, os []Outcome) ([]error, error) {
	s.err = ctx.Err()
	return make([]error, len(os)), s.err
}
