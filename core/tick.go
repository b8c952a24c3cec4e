package core

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/campaignd/campaignd/sdk"
	"github.com/hashicorp/go-hclog"
)

// TickTrigger says what started a tick.
type TickTrigger string

// Tick triggers.
const (
	TriggerCLI       TickTrigger = "cli"       // campaignd tick, standalone
	TriggerSocket    TickTrigger = "socket"    // campaignd tick through the daemon
	TriggerScheduler TickTrigger = "scheduler" // the daemon's tick_interval
	TriggerHTTP      TickTrigger = "http"      // the cron HTTP endpoint
)

// TickResult is what a tick answers. Skipped is true when the tick found
// the campaigns it was to work on busy with other ticks (or, standalone,
// the database lock held by a daemon or a writing command); nothing was
// done then.
type TickResult struct {
	Processed int  `json:"processed"`
	Sent      int  `json:"sent"`
	Failed    int  `json:"failed"` // FAILED and BOUNCED this tick
	Retried   int  `json:"retried"`
	Throttled int  `json:"throttled"`
	Recovered int  `json:"recovered"` // expired leases handled
	Expired   int  `json:"expired"`   // unsent recipients of expired campaigns failed (class expired)
	Completed int  `json:"completed"` // campaigns marked COMPLETED
	Skipped   bool `json:"skipped"`
	// Remaining is how many recipients are still QUEUED or SENDING, after
	// the tick, in the campaigns it worked on (from their counters).
	Remaining int64 `json:"remaining"`
	// Problems are the sender-level problems the tick met, one line each
	// (see problem.go): cron must hear of them, and the CLI exits 3. Never
	// nil in a result the engine returns.
	Problems []string `json:"problems"`
}

// CampaignLocker keeps the ticks of other processes off the campaigns a
// tick works on: the standalone CLI's lock file (sqlite.FileLock). The
// engine keeps its own ticks apart in process whether or not it has one.
type CampaignLocker interface {
	// TryLockCampaign takes campaign id's lock without waiting and reports
	// whether it got it; an error means the lock could not be asked.
	TryLockCampaign(id int64) (bool, error)
	// UnlockCampaign releases campaign id's lock.
	UnlockCampaign(id int64) error
}

// TickRecord is the history a tick leaves. A tick that found nothing to do
// and recovered nothing leaves none: an idle cron tick only reads.
type TickRecord struct {
	ID        int64         `json:"id"`
	Trigger   TickTrigger   `json:"trigger"`
	Started   time.Time     `json:"started"`
	Duration  time.Duration `json:"duration_ns"`
	Processed int           `json:"processed"`
	Sent      int           `json:"sent"`
	Failed    int           `json:"failed"`
	Retried   int           `json:"retried"`
	Throttled int           `json:"throttled"`
	Recovered int           `json:"recovered"`
	Expired   int           `json:"expired"` // unsent recipients of expired campaigns failed
	Skipped   int           `json:"skipped"` // claimed but handed back unsent (throttle, shutdown)
	Error     string        `json:"error,omitempty"`
}

// QueueSummary is one campaign's queue as `campaignd queue` shows it.
type QueueSummary struct {
	CampaignID   int64          `json:"campaign_id"`
	CampaignName string         `json:"campaign_name"`
	Status       CampaignStatus `json:"status"`
	DueNow       int64          `json:"due_now"`
	Waiting      int64          `json:"waiting_retry"`
	InFlight     int64          `json:"in_flight"`
	// Held counts the queued recipients of a PAUSED campaign: never due
	// (DueNow and Waiting are 0) until the campaign is resumed.
	Held        int64      `json:"held_by_pause"`
	NextAttempt *time.Time `json:"next_attempt,omitempty"`
	// Closed says why a SENDING campaign's schedule keeps ticks from
	// claiming its recipients now ("send_window", "not_before" or
	// "expired"; see Schedule.ClosedBy), and OpensAt when it next lets
	// them (nil when it never will: expired, or its window does not open
	// again before its expiry). Both empty when it is open.
	Closed  string     `json:"closed,omitempty"`
	OpensAt *time.Time `json:"opens_at,omitempty"`
	// Sender is the campaign's sender; Quota its quota when it has a rate
	// or is blocked by a provider's quota reply (see Engine.Quotas).
	Sender string       `json:"sender"`
	Quota  *QuotaStatus `json:"quota,omitempty"`
}

// Tick runs one tick (the design's "tick"): recover expired leases, share
// the batch budget across due campaigns, claim, render, send with each
// campaign's concurrency, record every outcome as it arrives (those that
// arrive close together in one transaction, see outcomeCommitter; all
// committed before Tick returns), complete finished campaigns and leave a
// tick record.
//
// Ticks lock campaigns, not the engine: a tick holds each campaign it works
// on (in process, and through the CampaignLocker when there is one), so
// ticks of different campaigns run at once, each with its own budget. With
// campaigns given, the tick works on those only, and is Skipped when any of
// them is busy with another tick (all or nothing, so two cron lines of
// overlapping sets never split a set between them). Without, it works on
// every due campaign it can take and leaves the busy ones alone; it is
// Skipped when there were due campaigns and all were busy.
//
// Lease recovery, completion and the failing of cancelled campaigns'
// queues are not limited to the tick's campaigns, and need not be: each is
// a guarded statement that only touches rows no live tick holds. Recovery
// takes only leases that expired, and a live tick's leases outlive it
// (tick_timeout plus a margin); completion only completes a campaign whose
// counters say nothing is QUEUED or SENDING, which a tick working on it
// never leaves while it holds claimed rows; and the cancelled campaigns'
// rows it fails are QUEUED, never a tick's SENDING ones. Two ticks running
// them at once serialise on the database's write lock, and the second finds
// nothing left to do.
//
// A tick with nothing due only reads and starts no plugin. Sender-level
// problems (see problem.go) are in the result's Problems and the tick
// record's error; they are not errors. Tick returns EINVALID for a
// campaign id that is not positive, ENOTFOUND for one that does not exist,
// EUNAVAILABLE while draining, and an error when the tick itself could not
// run or the database failed under it (claims, outcomes or its record
// could not be written); send failures are outcomes.
func (e *Engine) Tick(ctx context.Context, trigger TickTrigger, campaigns ...int64) (*TickResult, error) {
	set, err := e.tickSet(ctx, campaigns)
	if err != nil {
		return nil, err
	}
	e.ticks.Add(1)
	defer e.ticks.Add(-1)
	if e.draining.Load() {
		return nil, Errorf(EUNAVAILABLE, "tick: campaignd is shutting down")
	}
	held := &heldCampaigns{e: e}
	defer held.release()
	if len(set) > 0 {
		for _, id := range set {
			ok, err := held.take(id)
			if err != nil {
				return nil, fmt.Errorf("tick: %w", err)
			}
			if !ok {
				return skippedTick(), nil
			}
		}
	}
	lim := e.Limits()
	start := e.now()
	ctx, cancel := context.WithTimeout(ctx, lim.TickTimeout)
	defer cancel()

	t := &tickRun{e: e, lim: lim, start: start, res: &TickResult{Problems: []string{}},
		senders: map[string]*senderState{}, sends: map[int64]*campaignSends{}}
	var stopRender context.CancelFunc
	t.renderCtx, stopRender = context.WithCancel(ctx)
	defer context.AfterFunc(e.drained, stopRender)()
	defer stopRender()
	rec, err := e.store.RecoverLeases(ctx, start, lim.InDoubt.ExpiredLeases(lim.MaxAttempts))
	if err != nil {
		return nil, fmt.Errorf("tick: %w", err)
	}
	t.res.Recovered = int(rec.Requeued + rec.Failed)
	if t.res.Recovered > 0 {
		e.log.Warn("recovered expired leases", "requeued", rec.Requeued, "failed_in_doubt", rec.Failed, "policy", lim.InDoubt)
	}
	expired, err := e.store.ExpireCampaigns(ctx, start)
	if err != nil {
		return nil, fmt.Errorf("tick: %w", err)
	}
	for id, n := range expired {
		t.res.Expired += int(n)
		e.log.Info("campaign expired: its unsent recipients failed as expired", "campaign", id, "count", n)
	}
	all, err := e.store.DueCampaigns(ctx, start)
	if err != nil {
		return nil, fmt.Errorf("tick: %w", err)
	}
	// Outside its send window, before its not-before or expired, a due
	// campaign claims nothing: the row the tick already read says so.
	all = slices.DeleteFunc(all, func(c *Campaign) bool { return !c.SendsAt(start) })
	due := all[:0:0]
	for _, c := range all {
		if len(set) > 0 {
			if slices.Contains(set, c.ID) {
				due = append(due, c)
			}
			continue
		}
		ok, err := held.take(c.ID)
		if err != nil {
			return nil, fmt.Errorf("tick: %w", err)
		}
		if ok {
			due = append(due, c)
		}
	}
	if len(set) == 0 && len(all) > 0 && len(due) == 0 && t.res.Recovered == 0 && t.res.Expired == 0 {
		return skippedTick(), nil // every due campaign is another tick's
	}
	if len(due) > 0 {
		// Every outcome is committed before the tick goes on: Close waits
		// for the last group.
		t.commits = startOutcomeCommitter(ctx, e.store, OutcomeGroupWait, OutcomeGroupSize, lim.BatchSize, t.recorded)
		err := t.run(ctx, due)
		t.commits.Close()
		if err != nil {
			t.addErr(err.Error())
			t.storeFailed(err)
		}
		t.settleQuotas(context.WithoutCancel(ctx))
	}
	done, err := e.store.CompleteCampaigns(context.WithoutCancel(ctx), e.now())
	if err != nil {
		t.errs = append(t.errs, err.Error())
		t.storeFailed(fmt.Errorf("complete campaigns: %w", err))
	}
	t.res.Completed = len(done)
	for _, id := range done {
		e.log.Info("campaign completed", "campaign", id)
	}
	// A send in flight when its campaign was cancelled may have come back
	// QUEUED (a retry, or lease recovery): it ends here.
	if n, err := e.store.FailCancelled(context.WithoutCancel(ctx), e.now()); err != nil {
		t.errs = append(t.errs, err.Error())
		t.storeFailed(fmt.Errorf("fail cancelled: %w", err))
	} else if n > 0 {
		e.log.Info("recipients of cancelled campaigns failed", "count", n)
	}
	t.finish(context.WithoutCancel(ctx), due, trigger)
	r := &TickRecord{
		Trigger: trigger, Started: start, Duration: e.now().Sub(start),
		Processed: t.res.Processed, Sent: t.res.Sent, Failed: t.res.Failed, Retried: t.res.Retried,
		Throttled: t.res.Throttled, Recovered: t.res.Recovered, Expired: t.res.Expired, Skipped: t.released,
		Error: strings.Join(append(slices.Clip(t.errs), t.res.Problems...), "; "),
	}
	e.obs().TickDone(r)
	if t.res.Processed > 0 || t.res.Recovered > 0 || t.res.Expired > 0 || t.res.Completed > 0 || len(t.errs) > 0 || len(t.res.Problems) > 0 {
		if err := e.store.InsertTick(context.WithoutCancel(ctx), r); err != nil {
			if t.storeErr != nil {
				e.log.Debug("record tick", "error", err) // the tick's error already says why
			}
			t.storeFailed(fmt.Errorf("record tick: %w", err))
		}
	}
	if t.storeErr != nil {
		// The database failed under the tick (read-only, full, busy):
		// what it did is only partly recorded, and cron must hear of it.
		// Outcomes not recorded stay SENDING under their lease and are
		// recovered by the in_doubt policy.
		return nil, fmt.Errorf("tick: %w", t.storeErr)
	}
	return t.res, nil
}

// skippedTick is the answer of a tick that found its campaigns busy.
func skippedTick() *TickResult { return &TickResult{Skipped: true, Problems: []string{}} }

// tickSet checks the campaign ids a tick is limited to and returns them
// sorted without repeats: EINVALID for an id that is not positive,
// ENOTFOUND for one that does not exist (a typo in a crontab must not
// make a cron line tick nothing, silently, forever).
func (e *Engine) tickSet(ctx context.Context, ids []int64) ([]int64, error) {
	set := slices.Clone(ids)
	slices.Sort(set)
	set = slices.Compact(set)
	for _, id := range set {
		if id <= 0 {
			return nil, Errorf(EINVALID, "tick: campaign id %d is not a positive integer", id)
		}
		if _, err := e.store.Campaign(ctx, id); err != nil {
			return nil, fmt.Errorf("tick: %w", err)
		}
	}
	return set, nil
}

// finish fills in what the tick leaves for its caller: the recipients
// remaining in its campaigns, and the problems it met, each logged once
// (loudly when no caller hears the result: the daemon's own schedule).
func (t *tickRun) finish(ctx context.Context, due []*Campaign, trigger TickTrigger) {
	for _, c := range due {
		if s := t.sends[c.ID]; s != nil {
			t.res.Problems = append(t.res.Problems, s.problems()...)
		}
		if t.storeErr != nil {
			continue
		}
		now, err := t.e.store.Campaign(ctx, c.ID)
		if err != nil {
			t.storeFailed(fmt.Errorf("campaign %d: %w", c.ID, err))
			continue
		}
		t.res.Remaining += now.Stats.Queued + now.Stats.Sending
	}
	for _, p := range t.res.Problems {
		if trigger == TriggerScheduler {
			t.e.log.Warn("tick problem", "problem", p)
		} else {
			t.e.log.Info("tick problem", "problem", p)
		}
	}
}

// heldCampaigns are the campaigns one tick holds.
type heldCampaigns struct {
	e   *Engine
	ids []int64
}

// take takes campaign id for the tick, without waiting; false when another
// tick has it.
func (h *heldCampaigns) take(id int64) (bool, error) {
	ok, err := h.e.lockCampaign(id)
	if ok {
		h.ids = append(h.ids, id)
	}
	return ok, err
}

func (h *heldCampaigns) release() {
	for _, id := range h.ids {
		h.e.unlockCampaign(id)
	}
	h.ids = nil
}

// lockCampaign takes campaign id for a tick of this engine, and through
// the CampaignLocker for this process; false when another tick (here or
// elsewhere) has it.
func (e *Engine) lockCampaign(id int64) (bool, error) {
	e.campaignMu.Lock()
	defer e.campaignMu.Unlock()
	if e.ticking[id] {
		return false, nil
	}
	if e.locker != nil {
		ok, err := e.locker.TryLockCampaign(id)
		if err != nil || !ok {
			return false, err
		}
	}
	e.ticking[id] = true
	return true, nil
}

func (e *Engine) unlockCampaign(id int64) {
	e.campaignMu.Lock()
	defer e.campaignMu.Unlock()
	delete(e.ticking, id)
	if e.locker != nil {
		if err := e.locker.UnlockCampaign(id); err != nil {
			// The lock goes with the process or its lock file anyway.
			e.log.Warn("unlock campaign", "campaign", id, "error", err)
		}
	}
}

// tickRun is the state of one tick.
type tickRun struct {
	e     *Engine
	lim   Limits
	start time.Time

	// renderCtx is the tick's context, ended by Drain too: a render
	// never holds a shutdown.
	renderCtx context.Context

	// commits writes the tick's outcomes in groups (group commit).
	commits *outcomeCommitter

	mu       sync.Mutex
	res      *TickResult
	released int
	errs     []string
	storeErr error                    // the first failure to read or write the database mid-tick
	senders  map[string]*senderState  // by sender name
	sends    map[int64]*campaignSends // by campaign id, what its sends came to
	quota    tickQuota                // sender quotas: claim times, refunds (quota.go)
}

// storeFailed remembers the first database failure of the tick; the tick
// then returns it as its error.
func (t *tickRun) storeFailed(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.storeErr == nil {
		t.storeErr = err
	}
}

// senderState is what one tick learned about a sender: once throttled or
// misconfigured it gets no more work this tick.
type senderState struct {
	holdUntil time.Time // throttled: hand back unsent work due at this time
	held      bool
	throttle  *Outcome // the first throttled outcome: blocks the sender's quota (quota.go)
}

// shareBudget splits budget across campaigns round-robin from offset rot,
// each capped by caps[i]: fair, and deterministic for a given rot.
func shareBudget(budget int, caps []int, rot int) []int {
	n := len(caps)
	alloc := make([]int, n)
	for budget > 0 {
		progressed := false
		for k := 0; k < n && budget > 0; k++ {
			i := (rot + k) % n
			if alloc[i] < caps[i] {
				alloc[i]++
				budget--
				progressed = true
			}
		}
		if !progressed {
			break
		}
	}
	return alloc
}

// run claims the tick's share for each due campaign and sends it.
func (t *tickRun) run(ctx context.Context, due []*Campaign) error {
	sortCampaigns(due)
	l := newLease(t.start, t.lim)
	claimed := make([][]*Recipient, len(due))
	caps := make([]int, len(due))
	for i, c := range due {
		caps[i] = min(c.BatchSize, t.lim.BatchSize)
	}
	rot := int(t.start.Unix() % int64(len(due)))
	if err := t.quotaCaps(ctx, due, caps, rot); err != nil {
		return err
	}
	budget := t.lim.BatchSize
	// Claim in rounds: a campaign with fewer due rows than its share leaves
	// budget that the others may take, up to their own batch size.
	for budget > 0 {
		alloc := shareBudget(budget, caps, rot)
		progressed := false
		for i, n := range alloc {
			if n == 0 {
				continue
			}
			rs, err := t.claim(ctx, due[i], n, l)
			if err != nil {
				t.sendAll(ctx, due, claimed)
				return fmt.Errorf("campaign %d: %w", due[i].ID, err)
			}
			claimed[i] = append(claimed[i], rs...)
			budget -= len(rs)
			caps[i] -= len(rs)
			if len(rs) < n {
				caps[i] = 0 // nothing more due
			}
			if len(rs) > 0 {
				progressed = true
			}
		}
		if !progressed {
			break
		}
	}
	t.sendAll(ctx, due, claimed)
	return nil
}

// sendAll sends each campaign's claimed recipients, campaigns in parallel.
func (t *tickRun) sendAll(ctx context.Context, due []*Campaign, claimed [][]*Recipient) {
	var wg sync.WaitGroup
	for i, rs := range claimed {
		if len(rs) == 0 {
			continue
		}
		t.mu.Lock()
		t.res.Processed += len(rs)
		t.mu.Unlock()
		wg.Add(1)
		go func(c *Campaign, rs []*Recipient) {
			defer wg.Done()
			t.sendCampaign(ctx, c, rs)
		}(due[i], rs)
	}
	wg.Wait()
}

// sendCampaign sends one campaign's batch with at most its concurrency in
// flight, recording each outcome as it arrives.
func (t *tickRun) sendCampaign(ctx context.Context, c *Campaign, rs []*Recipient) {
	log := t.e.log.With("campaign", c.ID, "sender", c.Sender)
	sends := &campaignSends{campaign: c}
	t.mu.Lock()
	t.sends[c.ID] = sends
	t.mu.Unlock()
	rs = t.dropSuppressed(ctx, c, rs)
	if len(rs) == 0 {
		return
	}
	sender, err := t.e.senders.Sender(ctx, c.Sender)
	if err != nil {
		se := sdk.AsError(err)
		// Info: the tick's problems say it, once (problem.go).
		log.Info("sender unavailable", "error", err)
		t.mu.Lock()
		sends.unavailable = err
		t.mu.Unlock()
		if se.Class == sdk.ClassConfig {
			t.pause(ctx, c, log, se)
		}
		for _, r := range rs {
			t.record(UnavailableOutcome(r, err, t.lim, t.e.now()))
		}
		return
	}
	renderer, err := t.e.newRenderer(c, t.lim)
	if err != nil {
		for _, r := range rs {
			t.record(TemplateOutcome(r, err, t.e.now()))
		}
		return
	}
	conc := c.Concurrency
	if info, err := sender.Info(ctx); err == nil && info.MaxConcurrency > 0 && info.MaxConcurrency < conc {
		conc = info.MaxConcurrency
	}
	// A window of conc workers, each taking the next recipient as its
	// send ends: at most conc in flight, without a goroutine and a
	// semaphore hand-off per message. A throttled or misconfigured sender,
	// a drain or the tick's end hands the rest back unsent.
	var next atomic.Int64
	work := func() {
		for {
			i := int(next.Add(1)) - 1
			if i >= len(rs) {
				return
			}
			r := rs[i]
			if until, held := t.held(c.Sender); held || t.e.draining.Load() || ctx.Err() != nil {
				now := t.e.now()
				if until.IsZero() {
					until = now
				}
				t.record(ReleaseOutcome(r, until, now))
				continue
			}
			t.sendOne(ctx, c, sends, sender, renderer, r, log)
		}
	}
	workers := min(max(conc, 1), len(rs))
	var wg sync.WaitGroup
	wg.Add(workers - 1)
	for range workers - 1 {
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
}

// dropSuppressed re-checks the claimed addresses against the suppression
// list (an address may have bounced or unsubscribed since it was imported):
// those fail with class suppressed and are not sent. If the check itself
// fails, nothing is sent: the whole batch goes back to the queue unsent
// (no attempt counted), since mailing someone who opted out is worse than
// mailing late.
func (t *tickRun) dropSuppressed(ctx context.Context, c *Campaign, rs []*Recipient) []*Recipient {
	emails := make([]string, len(rs))
	for i, r := range rs {
		emails[i] = r.Email
	}
	listed, err := t.e.store.SuppressedAmong(ctx, emails)
	if err != nil {
		t.e.log.Error("claim-time suppression check failed; batch handed back unsent", "campaign", c.ID, "error", err)
		// A database that cannot answer is a failed tick: cron must hear.
		t.storeFailed(fmt.Errorf("campaign %d: suppression check: %w", c.ID, err))
		t.addErr(fmt.Sprintf("campaign %d: suppression check: %v", c.ID, err))
		for _, r := range rs {
			now := t.e.now()
			t.record(ReleaseOutcome(r, now, now))
		}
		return nil
	}
	if len(listed) == 0 {
		return rs
	}
	keep := rs[:0:0]
	for _, r := range rs {
		if listed[r.Email] {
			t.record(SuppressedOutcome(r, t.e.now()))
			continue
		}
		keep = append(keep, r)
	}
	return keep
}

// sendOne renders, sends and records one recipient; DecideOutcome says
// what its result means. A throttled or misconfigured sender gets no more
// work this tick, and a misconfigured one pauses the campaign.
func (t *tickRun) sendOne(ctx context.Context, c *Campaign, sends *campaignSends, sender sdk.Sender, renderer *Renderer, r *Recipient, log hclog.Logger) {
	msg, err := renderer.RenderContext(t.renderCtx, r, t.e.now())
	if err != nil {
		if ErrorCode(err) == EUNAVAILABLE {
			// The tick ended mid-render (deadline, shutdown): not the
			// recipient's fault, it goes back unsent.
			now := t.e.now()
			t.record(ReleaseOutcome(r, now, now))
			return
		}
		t.record(TemplateOutcome(r, err, t.e.now()))
		return
	}
	receipt, err := sender.Send(ctx, msg)
	res := SendResult{Receipt: receipt, Err: err, MessageID: msg.MessageID, Left: timeLeft(ctx)}
	o := DecideOutcome(res, r, t.lim, t.e.now(), RandomJitter)
	if !o.Release {
		t.mu.Lock()
		sends.sent(o)
		t.mu.Unlock()
	}
	switch o.ErrorClass {
	case ClassThrottled:
		t.hold(c.Sender, o.NextAttemptAt)
		t.throttled(c.Sender, o)
		// Info, not Warn: a provider asking to slow down is routine, the
		// tick record counts it, and a cron tick must stay quiet.
		log.Info("sender throttled; no more work for it this tick", "retry_after", o.NextAttemptAt.Sub(o.At), "error", o.Error)
	case ClassConfig:
		t.hold(c.Sender, o.NextAttemptAt)
		t.pause(ctx, c, log, sdk.AsError(err))
	}
	t.record(o)
}

// record hands an outcome to the tick's committer, which writes it with
// the outcomes that arrive close to it (even after the tick's deadline: a
// send that happened must be recorded). It does not wait for the commit:
// the send's slot in the campaign's window is free again at once, and the
// tick waits for every commit before it returns.
func (t *tickRun) record(o Outcome) { t.commits.Add(o) }

// recorded takes a group's results from the committer: counts what was
// recorded, and remembers a failed transaction as the tick's store error
// (the group's rows stay SENDING under their leases, for recovery).
func (t *tickRun) recorded(group []Outcome, results []error, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.e.log.Error("record outcomes", "count", len(group), "error", err)
		t.errs = append(t.errs, fmt.Sprintf("record outcomes of %d recipients: %v", len(group), err))
		if t.storeErr == nil {
			t.storeErr = fmt.Errorf("record outcomes of %d recipients: %w", len(group), err)
		}
		return
	}
	for i, o := range group {
		t.recordedOne(o, results[i])
	}
}

// recordedOne counts one outcome of a committed group; under t.mu.
func (t *tickRun) recordedOne(o Outcome, err error) {
	if err != nil {
		if ErrorCode(err) == ECONFLICT {
			t.e.log.Warn("outcome not recorded: lease taken over", "recipient", o.RecipientID, "status", o.Status)
		} else {
			t.e.log.Error("record outcome", "recipient", o.RecipientID, "status", o.Status, "error", err)
			t.errs = append(t.errs, fmt.Sprintf("record outcome of recipient %d: %v", o.RecipientID, err))
			if t.storeErr == nil {
				t.storeErr = fmt.Errorf("record outcome of recipient %d: %w", o.RecipientID, err)
			}
		}
		return
	}
	if o.Unsent {
		t.quota.unsent(o.CampaignID)
	}
	var kind OutcomeKind
	switch {
	case o.Release:
		t.released++
		return
	case o.Status == RecipientSent:
		t.res.Sent++
		kind = OutcomeSent
	case o.Status == RecipientFailed:
		t.res.Failed++
		kind = OutcomeFailed
	case o.Status == RecipientBounced:
		t.res.Failed++
		kind = OutcomeBounced
	case o.ErrorClass == ClassThrottled:
		t.res.Throttled++
		kind = OutcomeThrottled
	default:
		t.res.Retried++
		kind = OutcomeRetried
	}
	var sender string
	if s := t.sends[o.CampaignID]; s != nil {
		sender = s.campaign.Sender
	}
	t.e.obs().Outcome(o.CampaignID, sender, kind)
}

// timeLeft is what remains of the tick's time: 0 once its context has
// ended (deadline or caller gone).
func timeLeft(ctx context.Context) time.Duration {
	if ctx.Err() != nil {
		return 0
	}
	dl, ok := ctx.Deadline()
	if !ok {
		return math.MaxInt64
	}
	return time.Until(dl)
}

func (t *tickRun) hold(sender string, until time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.senders[sender]
	if st == nil {
		st = &senderState{}
		t.senders[sender] = st
	}
	st.held = true
	if until.After(st.holdUntil) {
		st.holdUntil = until
	}
}

func (t *tickRun) held(sender string) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st := t.senders[sender]; st != nil && st.held {
		return st.holdUntil, true
	}
	return time.Time{}, false
}

func (t *tickRun) addErr(s string) {
	t.mu.Lock()
	t.errs = append(t.errs, s)
	t.mu.Unlock()
}

// pause stops a campaign whose sender is misconfigured, so its recipients
// are not failed one by one; the operator resumes it after the fix.
func (t *tickRun) pause(ctx context.Context, c *Campaign, log hclog.Logger, se *sdk.Error) {
	err := t.e.store.SetCampaignStatus(context.WithoutCancel(ctx), c.ID, CampaignSending, CampaignPaused, t.e.now())
	if err == nil {
		// Info: the tick's problems say it, once (problem.go).
		log.Info("campaign paused: its sender is misconfigured; fix it and run campaign resume", "error", se.Error())
		t.mu.Lock()
		if s := t.sends[c.ID]; s != nil {
			s.paused = se
		}
		t.mu.Unlock()
	} else if ErrorCode(err) != ECONFLICT {
		log.Error("pause campaign", "error", err)
	}
}
