package core

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file is a sender's quota: `rate = ["30/minute", "500/day"]` in its
// [senders.NAME] table. Each entry is a sliding window over the sends
// actually started through that sender, shared by every campaign using it
// and by every process ticking the database (the counts live in one row per
// sender, see Store.ClaimQuota). A window is QuotaBuckets buckets plus the
// partly overlapping oldest one, which is counted in full: the window is
// never exceeded, only a little under-used (by at most one bucket, 1/60 of
// it).

// QuotaBuckets is how many buckets one window is cut into: a "500/day"
// window counts in 24-minute buckets, a "30/minute" one in seconds.
const QuotaBuckets = 60

// DailyLimitBlock is how long a sender is blocked after a provider's
// daily-limit reply when no configured window matches it: the smtp plugin
// classifies such replies (Gmail's 550 5.4.5 "Daily user sending limit
// exceeded", ...) as throttled with this retry-after.
const DailyLimitBlock = 24 * time.Hour

// rateUnits are the units a rate may name, per one.
var rateUnits = map[string]time.Duration{
	"second": time.Second, "minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour,
}

// Rate is one quota window: at most Limit sends started in any Per.
type Rate struct {
	Limit int
	Per   time.Duration
}

// ParseRate reads "N/unit" with N a positive integer and unit second,
// minute, hour or day (e.g. "30/minute", "500/day"). Anything else is an
// EINVALID error quoting s and saying what is allowed.
func ParseRate(s string) (Rate, error) {
	n, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	per, known := rateUnits[strings.TrimSpace(unit)]
	limit, err := strconv.Atoi(strings.TrimSpace(n))
	if !ok || !known || err != nil || limit < 1 {
		return Rate{}, Errorf(EINVALID, "%q: a rate is N/unit with N a positive integer and unit second, minute, hour or day (e.g. \"30/minute\", \"500/day\")", s)
	}
	return Rate{Limit: limit, Per: per}, nil
}

// ParseRates reads a sender's rate list; EINVALID naming the first bad
// entry, or two entries over the same unit.
func ParseRates(ss []string) ([]Rate, error) {
	out := make([]Rate, 0, len(ss))
	for _, s := range ss {
		r, err := ParseRate(s)
		if err != nil {
			return nil, err
		}
		for _, o := range out {
			if o.Per == r.Per {
				return nil, Errorf(EINVALID, "%q: a second rate per %s (keep one)", s, r.unit())
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// String is the rate as configured, e.g. "30/minute".
func (r Rate) String() string { return fmt.Sprintf("%d/%s", r.Limit, r.unit()) }

func (r Rate) unit() string {
	if u := rateUnitOf(r.Per); u != "" {
		return u
	}
	return r.Per.String()
}

// rateUnitOf names the unit of per; "" when it is not one.
func rateUnitOf(per time.Duration) string {
	for u, d := range rateUnits {
		if d == per {
			return u
		}
	}
	return ""
}

// bucketMS is the width of one of the window's buckets in milliseconds,
// rounded up: QuotaBuckets of them span at least Per.
func bucketMS(per time.Duration) int64 {
	p := per.Milliseconds()
	return max((p+QuotaBuckets-1)/QuotaBuckets, 1)
}

// QuotaWindow is the stored counts of one window: Counts[b % len] is the
// number of sends started in bucket b (unix ms / bucket width), for the
// QuotaBuckets+1 buckets up to Head, the newest one written.
type QuotaWindow struct {
	PerMS  int64   `json:"per_ms"`
	Head   int64   `json:"head"`
	Counts []int64 `json:"counts"`
}

// SenderQuota is one sender's stored quota state: its windows' counts and
// the block a provider's quota reply set (zero: none). The zero value is a
// sender that has sent nothing.
type SenderQuota struct {
	Sender        string
	Windows       []QuotaWindow
	BlockedUntil  time.Time
	BlockedReason string
}

// window returns the counts of the window of per, made empty when absent
// (a rate added to the configuration starts with an empty window).
func (q *SenderQuota) window(per time.Duration) *QuotaWindow {
	for i := range q.Windows {
		if q.Windows[i].PerMS == per.Milliseconds() {
			return &q.Windows[i]
		}
	}
	q.Windows = append(q.Windows, QuotaWindow{PerMS: per.Milliseconds(), Counts: make([]int64, QuotaBuckets+1)})
	return &q.Windows[len(q.Windows)-1]
}

// advance moves the window to now's bucket, emptying the buckets that left
// it. A clock that went back counts into the newest bucket (later, so on
// the safe side).
func (w *QuotaWindow) advance(now time.Time) {
	if len(w.Counts) != QuotaBuckets+1 {
		w.Counts = make([]int64, QuotaBuckets+1)
	}
	b := now.UnixMilli() / bucketMS(time.Duration(w.PerMS)*time.Millisecond)
	if b <= w.Head {
		return
	}
	n := int64(len(w.Counts))
	for i := w.Head + 1; i <= b && i <= w.Head+n; i++ {
		w.Counts[i%n] = 0
	}
	w.Head = b
}

// used is the number of sends in the window at now (after advance).
func (w *QuotaWindow) used() int64 {
	var s int64
	for _, c := range w.Counts {
		s += c
	}
	return s
}

// nextRefill is when the oldest counted send leaves the window (after
// advance); zero when the window is empty.
func (w *QuotaWindow) nextRefill() time.Time {
	n := int64(len(w.Counts))
	width := bucketMS(time.Duration(w.PerMS) * time.Millisecond)
	for b := w.Head - n + 1; b <= w.Head; b++ {
		if b >= 0 && w.Counts[b%n] > 0 {
			return time.UnixMilli((b + n) * width).UTC()
		}
	}
	return time.Time{}
}

// Blocked reports whether a provider's quota reply blocks the sender at now.
func (q *SenderQuota) Blocked(now time.Time) bool { return now.Before(q.BlockedUntil) }

// Remaining is how many sends the sender may start at now under rates: the
// least budget left in any window, 0 while blocked, and max when rates is
// empty (no quota).
func (q *SenderQuota) Remaining(rates []Rate, now time.Time, maxN int) int {
	if q.Blocked(now) {
		return 0
	}
	left := maxN
	for _, r := range rates {
		w := q.window(r.Per)
		w.advance(now)
		left = min(left, int(max(int64(r.Limit)-w.used(), 0)))
	}
	return left
}

// Take counts n sends started at now in every window of rates.
func (q *SenderQuota) Take(rates []Rate, n int, now time.Time) {
	for _, r := range rates {
		w := q.window(r.Per)
		w.advance(now)
		w.Counts[w.Head%int64(len(w.Counts))] += int64(n)
	}
}

// Refund gives back n sends counted at claimedAt under rates (the rates
// the claim was made under) that never started: from claimedAt's bucket,
// else from older ones (which only keeps the rest counted longer, never
// shorter). Only the windows of rates are touched: a window added since,
// by another process or a reload, never counted these sends, and taking
// them from it would let it be exceeded. Sends whose bucket already left a
// window are not in it any more.
func (q *SenderQuota) Refund(rates []Rate, n int, claimedAt, now time.Time) {
	for _, r := range rates {
		w := q.window(r.Per)
		w.advance(now)
		size := int64(len(w.Counts))
		left := int64(n)
		b := min(claimedAt.UnixMilli()/bucketMS(time.Duration(w.PerMS)*time.Millisecond), w.Head)
		for ; left > 0 && b > w.Head-size && b >= 0; b-- {
			take := min(left, w.Counts[b%size])
			w.Counts[b%size] -= take
			left -= take
		}
	}
}

// BlockUntil is when a sender throttled at now with retryAfter may send
// again: the next refill of the shortest configured window at least as
// long as retryAfter that has sends in it (a daily-limit reply, 24h,
// waits for the day window's oldest send to leave it), else
// now+retryAfter; never later than now+retryAfter, so a short delay met
// with only a longer window (5 minutes; the day's) is not stretched to
// that window's refill.
func (q *SenderQuota) BlockUntil(rates []Rate, retryAfter time.Duration, now time.Time) time.Time {
	var match *Rate
	for i, r := range rates {
		if r.Per >= retryAfter && (match == nil || r.Per < match.Per) {
			match = &rates[i]
		}
	}
	if match != nil {
		w := q.window(match.Per)
		w.advance(now)
		if t := w.nextRefill(); !t.IsZero() && t.After(now) && t.Before(now.Add(retryAfter)) {
			return t
		}
	}
	return now.Add(retryAfter)
}

// QuotaStatus is one sender's quota as `queue`, `status` and the dashboard
// show it: each configured window's budget left and when it next refills,
// and the block a provider's quota reply set. The control API's one wire
// type for it.
type QuotaStatus struct {
	Sender        string              `json:"sender"`
	Windows       []QuotaWindowStatus `json:"windows"`
	BlockedUntil  *time.Time          `json:"blocked_until,omitempty"`
	BlockedReason string              `json:"blocked_reason,omitempty"`
}

// QuotaWindowStatus is one window of a QuotaStatus. NextRefill is when the
// oldest send counted leaves the window (nil while it is empty).
type QuotaWindowStatus struct {
	Rate       string     `json:"rate"`
	Limit      int        `json:"limit"`
	Used       int        `json:"used"`
	Remaining  int        `json:"remaining"`
	NextRefill *time.Time `json:"next_refill,omitempty"`
}

// Status reads q at now under rates (q is not changed).
func (q SenderQuota) Status(rates []Rate, now time.Time) QuotaStatus {
	c := SenderQuota{Sender: q.Sender}
	for _, w := range q.Windows {
		w.Counts = append([]int64(nil), w.Counts...)
		c.Windows = append(c.Windows, w)
	}
	st := QuotaStatus{Sender: q.Sender, Windows: []QuotaWindowStatus{}}
	for _, r := range rates {
		w := c.window(r.Per)
		w.advance(now)
		used := int(w.used())
		ws := QuotaWindowStatus{Rate: r.String(), Limit: r.Limit, Used: used, Remaining: max(r.Limit-used, 0)}
		if t := w.nextRefill(); !t.IsZero() {
			ws.NextRefill = &t
		}
		st.Windows = append(st.Windows, ws)
	}
	if q.Blocked(now) {
		t := q.BlockedUntil
		st.BlockedUntil, st.BlockedReason = &t, q.BlockedReason
	}
	return st
}

// RateTable holds each sender's rates, by sender name. The nil table has
// none.
type RateTable struct{ bySender map[string][]Rate }

// NewRateTable returns a table of the given rates (copied), leaving out
// senders without any.
func NewRateTable(bySender map[string][]Rate) *RateTable {
	t := &RateTable{bySender: map[string][]Rate{}}
	for name, rs := range bySender {
		if len(rs) > 0 {
			t.bySender[name] = append([]Rate(nil), rs...)
		}
	}
	return t
}

// For returns sender's rates; nil when it has none.
func (t *RateTable) For(sender string) []Rate {
	if t == nil {
		return nil
	}
	return t.bySender[sender]
}

// all returns the table's senders and rates; nil for the nil table.
func (t *RateTable) all() map[string][]Rate {
	if t == nil {
		return nil
	}
	return t.bySender
}

// Quota is what a claim under a sender's quota needs: the sender's name
// and its configured rates.
type Quota struct {
	Sender string
	Rates  []Rate
}

// tickQuota is what one tick remembers for its senders' quotas: when it
// first claimed for each campaign, and how many of those claims came back
// unsent (refunded when the tick ends). Under tickRun.mu once sends run.
type tickQuota struct {
	claimedAt map[int64]time.Time
	unsentN   map[int64]int
}

func (q *tickQuota) claimed(campaignID int64, now time.Time) {
	if q.claimedAt == nil {
		q.claimedAt = map[int64]time.Time{}
	}
	if _, ok := q.claimedAt[campaignID]; !ok {
		q.claimedAt[campaignID] = now
	}
}

func (q *tickQuota) unsent(campaignID int64) {
	if q.unsentN == nil {
		q.unsentN = map[int64]int{}
	}
	q.unsentN[campaignID]++
}

// quotaCaps reads each due campaign's sender quota once (one row per
// sender) and gives nothing to the campaigns of a sender that is blocked
// or has no budget left: they are not claimed, so no attempt is counted.
// A sender with rates whose budget left is below what its campaigns could
// claim this tick has that budget shared among them like the tick's
// (shareBudget from rot): claimed in campaign order, the first would
// otherwise take the whole window every tick and starve the others.
// Pacing, not a problem: the tick stays quiet about it.
func (t *tickRun) quotaCaps(ctx context.Context, due []*Campaign, caps []int, rot int) error {
	now := t.e.now()
	bySender := map[string][]int{}
	var senders []string
	for i, c := range due {
		if _, ok := bySender[c.Sender]; !ok {
			senders = append(senders, c.Sender)
		}
		bySender[c.Sender] = append(bySender[c.Sender], i)
	}
	for _, name := range senders {
		idx := bySender[name]
		sq, err := t.e.store.SenderQuota(ctx, name)
		if err != nil {
			return fmt.Errorf("sender %s: %w", name, err)
		}
		rates := t.lim.Rates.For(name)
		n := sq.Remaining(rates, now, MaxBatchSize)
		if n == 0 {
			t.e.log.Debug("sender quota: nothing to claim", "sender", name, "blocked_until", sq.BlockedUntil)
		}
		want := make([]int, len(idx))
		total := 0
		for k, i := range idx {
			want[k] = caps[i]
			total += caps[i]
		}
		if n >= total || (n > 0 && (len(rates) == 0 || n >= t.lim.BatchSize)) {
			continue // the tick's own budget binds first
		}
		for k, share := range shareBudget(n, want, rot%len(idx)) {
			caps[idx[k]] = share
		}
	}
	return nil
}

// claim claims at most n of campaign c's due recipients under lease l,
// within its sender's quota when it has rates (Store.ClaimQuota).
func (t *tickRun) claim(ctx context.Context, c *Campaign, n int, l lease) ([]*Recipient, error) {
	now := t.e.now()
	var rs []*Recipient
	var err error
	if rates := t.lim.Rates.For(c.Sender); len(rates) > 0 {
		rs, err = t.e.store.ClaimQuota(ctx, Quota{Sender: c.Sender, Rates: rates}, c.ID, n, l.token, l.until, now)
	} else {
		rs, err = t.e.store.Claim(ctx, c.ID, n, l.token, l.until, now)
	}
	if len(rs) > 0 {
		t.quota.claimed(c.ID, now)
	}
	return rs, err
}

// throttled remembers sender's first throttled outcome of the tick.
func (t *tickRun) throttled(sender string, o Outcome) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st := t.senders[sender]; st != nil && st.throttle == nil {
		st.throttle = &o
	}
}

// settleQuotas runs when the tick's outcomes are committed: it gives back
// the quota of claims that came back unsent, and blocks each throttled
// sender until its matching window refills (SenderQuota.BlockUntil), so
// no tick, here or in another process, sends through it before then.
// Failures are logged, not the tick's: a refund not made only leaves a
// window under-used, a block not made is met again at the next send.
func (t *tickRun) settleQuotas(ctx context.Context) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.e.now()
	for id, n := range t.quota.unsentN {
		s := t.sends[id]
		if s == nil || len(t.lim.Rates.For(s.campaign.Sender)) == 0 {
			continue
		}
		q := Quota{Sender: s.campaign.Sender, Rates: t.lim.Rates.For(s.campaign.Sender)}
		if err := t.e.store.RefundQuota(ctx, q, n, t.quota.claimedAt[id], now); err != nil {
			t.e.log.Warn("refund sender quota", "sender", s.campaign.Sender, "count", n, "error", err)
		}
	}
	for name, st := range t.senders {
		o := st.throttle
		if o == nil {
			continue
		}
		sq, err := t.e.store.SenderQuota(ctx, name)
		if err == nil {
			wait := o.NextAttemptAt.Sub(o.At)
			// A window about to refill is no reason to ask again at once:
			// never sooner than throttle_delay (or the reply's own delay).
			until := later(sq.BlockUntil(t.lim.Rates.For(name), wait, now), now.Add(min(wait, t.lim.ThrottleDelay)))
			if err = t.e.store.BlockSender(ctx, name, until, quotaReason(o), now); err == nil {
				t.e.log.Info("sender throttled: no sends through it until then", "sender", name, "until", until.UTC().Format(time.RFC3339), "reply", quotaReason(o))
				continue
			}
		}
		t.e.log.Warn("block throttled sender", "sender", name, "error", err)
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// quotaReason is a throttled outcome's reply as the block records it,
// e.g. "550 5.4.5 MAIL FROM: Daily user sending limit exceeded".
func quotaReason(o *Outcome) string {
	var b strings.Builder
	if o.ErrorCode != 0 {
		fmt.Fprintf(&b, "%d ", o.ErrorCode)
	}
	if o.EnhancedCode != "" {
		b.WriteString(o.EnhancedCode + " ")
	}
	b.WriteString(o.Error)
	return strings.TrimSpace(b.String())
}

// Quotas returns, by sender name, the quota of every sender with rates
// configured (each window's budget left at now and next refill) and of
// every sender a provider's quota reply blocks now. Errors are the
// store's.
func (e *Engine) Quotas(ctx context.Context) ([]*QuotaStatus, error) {
	stored, err := e.store.SenderQuotas(ctx)
	if err != nil {
		return nil, fmt.Errorf("quotas: %w", err)
	}
	rates, now := e.Limits().Rates, e.now()
	byName := map[string]*SenderQuota{}
	for _, q := range stored {
		byName[q.Sender] = q
	}
	var names []string
	for name := range rates.all() {
		names = append(names, name)
	}
	for _, q := range stored {
		if rates.For(q.Sender) == nil && q.Blocked(now) {
			names = append(names, q.Sender)
		}
	}
	slices.Sort(names)
	out := make([]*QuotaStatus, 0, len(names))
	for _, name := range names {
		q := byName[name]
		if q == nil {
			q = &SenderQuota{Sender: name}
		}
		st := q.Status(rates.For(name), now)
		out = append(out, &st)
	}
	return out, nil
}

// SenderUnblock is what lifting a sender's block did: whether a block
// held, and if so until when and the reply that set it (BlockedUntil nil
// and Reason "" otherwise), and how many of the sender's QUEUED messages
// waiting for a later attempt were made due at once. The control API's
// one wire type for it.
type SenderUnblock struct {
	Sender       string     `json:"sender"`
	WasBlocked   bool       `json:"was_blocked"`
	BlockedUntil *time.Time `json:"blocked_until"`
	Reason       string     `json:"reason"`
	DueNow       int64      `json:"due_now"`
}

// UnblockSender lifts the block a provider's quota reply set on sender
// (after its account's limit was raised, or a false alarm): the next tick
// claims for it again, and its campaigns' QUEUED messages waiting for a
// later attempt are due at once: those the throttled replies held back
// would otherwise wait as long as the block (a day), and those in a
// transient backoff cannot be told from them. Its windows keep their
// counts, so its rates still bind. Lifting a block that does not hold is
// no error, only WasBlocked false and nothing changed: the call is
// idempotent. An empty name is EINVALID; a sender that is not configured
// ENOTFOUND naming those that are. A lifted block is logged at info with
// the caller (see WithActor).
func (e *Engine) UnblockSender(ctx context.Context, sender string) (*SenderUnblock, error) {
	if sender == "" {
		return nil, Errorf(EINVALID, "sender: required")
	}
	if e.senders != nil && !e.senders.Has(sender) {
		return nil, Errorf(ENOTFOUND, "sender %q is not configured (configured: %s)", sender, namesOrNone(e.senders.Names()))
	}
	u, err := e.store.UnblockSender(ctx, sender, e.now())
	if err != nil {
		return nil, fmt.Errorf("unblock sender %s: %w", sender, err)
	}
	if u.WasBlocked {
		e.log.Info("sender unblocked by hand: ticks send through it again", "sender", sender, "was_until", u.BlockedUntil.UTC().Format(time.RFC3339),
			"reply", u.Reason, "due_now", u.DueNow, "actor", Actor(ctx))
	}
	return u, nil
}

// namesOrNone lists names for a message, "none" when there are none.
func namesOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
