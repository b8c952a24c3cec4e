package core

import (
	"context"
	"time"
)

// Group commit of outcomes (the design's tick, step 7): the outcomes of a
// tick's sends that arrive close together are written in one transaction,
// so a group costs one fsync instead of one per email.
const (
	// OutcomeGroupWait is how long a group stays open for more outcomes
	// after its first one arrived: short, so an outcome is never held
	// long, and bounded, so it is durable soon after its send.
	OutcomeGroupWait = 2 * time.Millisecond
	// OutcomeGroupSize is the most outcomes one group holds: a tick's
	// hard batch ceiling, so a tick's outcomes never need more than one
	// full group.
	OutcomeGroupSize = MaxBatchSize
	// outcomeCommitTimeout bounds one group's transaction, even after the
	// tick's deadline: a send that happened must be recorded.
	outcomeCommitTimeout = 15 * time.Second
)

// outcomeCommitter writes the outcomes handed to it in groups through
// Store.RecordOutcomes, from one goroutine. A group closes when it holds
// size outcomes, when wait has passed since its first one, or at close;
// whatever is already queued when a group opens joins it without waiting.
// Each group's results go to report, in the committer's goroutine, before
// the next group is written.
//
// An outcome handed over but not yet committed when the process dies is
// in doubt like any SENDING row: its lease expires and the in_doubt policy
// decides. So a crash can leave in doubt at most what the tick claimed.
type outcomeCommitter struct {
	store  Store
	ctx    context.Context // the tick's, without its cancel: commits outlive its deadline
	wait   time.Duration
	size   int
	report func(group []Outcome, results []error, err error)

	in   chan Outcome
	done chan struct{}
}

// startOutcomeCommitter starts a committer for one tick. Add never blocks
// while at most capacity outcomes are waiting; report is called once per
// group with the store's answer (results, one per outcome, or the
// transaction's error).
func startOutcomeCommitter(ctx context.Context, store Store, wait time.Duration, size, capacity int,
	report func(group []Outcome, results []error, err error)) *outcomeCommitter {
	c := &outcomeCommitter{store: store, ctx: context.WithoutCancel(ctx), wait: wait, size: max(size, 1),
		report: report, in: make(chan Outcome, max(capacity, 1)), done: make(chan struct{})}
	go c.loop()
	return c
}

// Add hands o over to be committed with its group. Not after Close.
func (c *outcomeCommitter) Add(o Outcome) { c.in <- o }

// Close commits what was handed over and returns once every group is
// committed (or failed) and reported.
func (c *outcomeCommitter) Close() {
	close(c.in)
	<-c.done
}

func (c *outcomeCommitter) loop() {
	defer close(c.done)
	group := make([]Outcome, 0, c.size)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		o, ok := <-c.in
		if !ok {
			return
		}
		group = append(group[:0], o)
		open := c.fill(&group, timer)
		c.commit(group)
		if !open {
			return
		}
	}
}

// fill adds to group what is queued, waiting up to c.wait for more while
// it is not full; false when the input is closed (the tick is done: no
// reason to wait).
func (c *outcomeCommitter) fill(group *[]Outcome, timer *time.Timer) bool {
	var expired <-chan time.Time
	for len(*group) < c.size {
		select {
		case o, ok := <-c.in:
			if !ok {
				return false
			}
			*group = append(*group, o)
			continue
		default:
		}
		if c.wait <= 0 {
			return true
		}
		if expired == nil {
			timer.Reset(c.wait)
			defer timer.Stop()
			expired = timer.C
		}
		select {
		case o, ok := <-c.in:
			if !ok {
				return false
			}
			*group = append(*group, o)
		case <-expired:
			return true
		}
	}
	return true
}

func (c *outcomeCommitter) commit(group []Outcome) {
	ctx, cancel := context.WithTimeout(c.ctx, outcomeCommitTimeout)
	results, err := c.store.RecordOutcomes(ctx, group)
	cancel()
	c.report(group, results, err)
}
