package core

import (
	"context"
	"sync"
	"time"
)

// Group commit of outcomes (the design's tick, step 7): the outcomes of a
// tick's sends that arrive close together are written in one transaction,
// so a group costs one fsync instead of one per email.
const (
	// OutcomeGroupWait is how long a group stays open for more outcomes
	// after it opened: short, so an outcome is never held long, and
	// bounded, so it is durable soon after its send.
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
// Store.RecordOutcomes, from one goroutine. A group opens when an outcome
// waits (or when outcomes arrived while the previous group was being
// written) and closes when it holds size outcomes, when wait has passed
// since it opened, or at Close. Each group's results go to report, in the
// committer's goroutine, before the next group is written.
//
// Outcomes wait in a queue under a mutex rather than in a channel: the
// committer is woken when a group opens, fills or must close, not once per
// outcome (one hand-off per group, not per message).
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

	mu     sync.Mutex
	queue  []Outcome
	closed bool
	wake   chan struct{} // one pending signal at most
	done   chan struct{}
}

// startOutcomeCommitter starts a committer for one tick; capacity is how
// many outcomes it expects at most (the tick's batch), to size its queue.
// report is called once per group with the store's answer (results, one
// per outcome, or the transaction's error).
func startOutcomeCommitter(ctx context.Context, store Store, wait time.Duration, size, capacity int,
	report func(group []Outcome, results []error, err error)) *outcomeCommitter {
	c := &outcomeCommitter{store: store, ctx: context.WithoutCancel(ctx), wait: wait, size: max(size, 1),
		report: report, queue: make([]Outcome, 0, max(capacity, 1)), wake: make(chan struct{}, 1), done: make(chan struct{})}
	go c.loop()
	return c
}

// Add hands o over to be committed with its group; it never blocks. Not
// after Close.
func (c *outcomeCommitter) Add(o Outcome) {
	c.mu.Lock()
	c.queue = append(c.queue, o)
	n := len(c.queue)
	c.mu.Unlock()
	if n == 1 || n >= c.size {
		c.signal()
	}
}

// Close commits what was handed over and returns once every group is
// committed (or failed) and reported.
func (c *outcomeCommitter) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.signal()
	<-c.done
}

func (c *outcomeCommitter) signal() {
	select {
	case c.wake <- struct{}{}:
	default: // a signal is pending: the committer looks at the queue anyway
	}
}

// state returns how many outcomes wait and whether the committer is closed.
func (c *outcomeCommitter) state() (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue), c.closed
}

func (c *outcomeCommitter) loop() {
	defer close(c.done)
	group := make([]Outcome, 0, c.size)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		n, closed := c.state()
		if n == 0 {
			if closed {
				return
			}
			<-c.wake
			continue
		}
		// A group is open: let it fill for at most c.wait.
		if n < c.size && !closed && c.wait > 0 {
			timer.Reset(c.wait)
		fill:
			for {
				select {
				case <-timer.C:
					break fill
				case <-c.wake:
					if n, closed := c.state(); n >= c.size || closed {
						timer.Stop()
						break fill
					}
				}
			}
		}
		c.mu.Lock()
		k := min(len(c.queue), c.size)
		group = append(group[:0], c.queue[:k]...)
		c.queue = c.queue[:copy(c.queue, c.queue[k:])]
		c.mu.Unlock()
		c.commit(group)
	}
}

func (c *outcomeCommitter) commit(group []Outcome) {
	ctx, cancel := context.WithTimeout(c.ctx, outcomeCommitTimeout)
	results, err := c.store.RecordOutcomes(ctx, group)
	cancel()
	c.report(group, results, err)
}
