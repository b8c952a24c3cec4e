package core

import (
	"context"
	"fmt"
	"math"
	"time"
)

// RateWindow is how far back the rate (and so the ETA) looks: five minutes
// of per-minute outcome counts.
const RateWindow = 5 * time.Minute

// MinuteCount is what ticks recorded for one campaign in one minute (see
// Store.Minutes): outcome events, not states, so a recipient that failed,
// was retried and was then sent counts once as failed and once as sent.
type MinuteCount struct {
	Minute  time.Time `json:"minute"` // the minute's start, UTC
	Sent    int64     `json:"sent"`
	Failed  int64     `json:"failed"`
	Bounced int64     `json:"bounced"`
	// Retried counts transient failures sent back to the queue.
	Retried int64 `json:"retried"`
	// LastFailure is the minute's most recent failure, "address: class
	// code text"; empty when the minute had none.
	LastFailure string `json:"last_failure,omitempty"`
}

// Progress is how far a campaign is and how fast it goes, computed from its
// counters and at most RateWindow of minute counts: O(1) in its recipients.
type Progress struct {
	CampaignID int64          `json:"campaign_id"`
	Status     CampaignStatus `json:"status"`
	// Stats is embedded: the JSON of a Progress is the counters' with the
	// fields below beside them (`campaign stats --json`).
	Stats
	// PercentDone is the share of recipients in a final state (SENT,
	// FAILED, BOUNCED), 0..100; 100 for a campaign without recipients.
	PercentDone float64 `json:"percent_done"`
	// SentLast5m counts SENT outcomes in the rate window.
	SentLast5m int64 `json:"sent_last_5m"`
	// RatePerMin is outcomes (sent, failed, bounced) per minute over the
	// rate window, or over the time since started_at when that is shorter.
	RatePerMin float64 `json:"rate_per_min"`
	// ETASeconds is null unless the campaign is SENDING with recipients
	// left. It divides what is left by RatePerMin; before any outcome in
	// the window it assumes the tick cadence times the campaign's share of
	// a batch (ETABasis says which).
	ETASeconds *int64     `json:"eta_seconds"`
	ETABasis   string     `json:"eta_basis,omitempty"` // "rate" or "cadence"
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	LastTickAt *time.Time `json:"last_tick_at"`
	// RecentFailures are the last failures of the rate window's minutes,
	// newest first.
	RecentFailures []string  `json:"recent_failures"`
	At             time.Time `json:"at"`
}

// Finished reports whether a watch of the campaign can end: it is
// COMPLETED, PAUSED or CANCELLED.
func (p *Progress) Finished() bool {
	switch p.Status {
	case CampaignCompleted, CampaignPaused, CampaignCancelled:
		return true
	}
	return false
}

// Cadence is what the ETA assumes when no outcome has been seen yet: a tick
// every Interval, of which the campaign gets Share recipients.
type Cadence struct {
	Interval time.Duration
	Share    int
}

// ComputeProgress derives a campaign's Progress from its counters and its
// minute counts of the rate window at now. It reads nothing.
func ComputeProgress(c *Campaign, minutes []MinuteCount, cad Cadence, now time.Time) *Progress {
	st := c.Stats
	p := &Progress{CampaignID: c.ID, Status: c.Status, Stats: st, StartedAt: c.StartedAt,
		FinishedAt: c.FinishedAt, LastTickAt: c.LastTickAt, At: now.UTC(), RecentFailures: []string{}, PercentDone: 100}
	if st.Total > 0 {
		p.PercentDone = math.Floor(float64(st.Sent+st.Failed+st.Bounced)*1000/float64(st.Total)) / 10
	}
	from := windowStart(now)
	var outcomes int64
	for i := len(minutes) - 1; i >= 0; i-- {
		m := minutes[i]
		if m.Minute.Before(from) {
			continue
		}
		p.SentLast5m += m.Sent
		outcomes += m.Sent + m.Failed + m.Bounced
		if m.LastFailure != "" {
			p.RecentFailures = append(p.RecentFailures, m.LastFailure)
		}
	}
	if c.StartedAt != nil && c.StartedAt.After(from) {
		from = *c.StartedAt
	}
	if span := now.Sub(from); outcomes > 0 && span > 0 {
		// At least one minute: a burst in the first seconds is not a rate.
		p.RatePerMin = math.Round(float64(outcomes)/math.Max(span.Minutes(), 1)*10) / 10
	}
	left := st.Unfinished()
	if c.Status != CampaignSending || left == 0 {
		return p
	}
	var eta float64
	switch {
	case p.RatePerMin > 0:
		eta, p.ETABasis = float64(left)/p.RatePerMin*60, "rate"
	case cad.Interval > 0 && cad.Share > 0:
		ticks := math.Ceil(float64(left) / float64(cad.Share))
		eta, p.ETABasis = ticks*cad.Interval.Seconds(), "cadence"
	default:
		return p
	}
	if !c.Schedule.SendsAt(now) {
		// Closed now (send window, not-before): nothing is sent until it
		// opens. Later closings of the window are not counted.
		next := c.Schedule.NextSend(now)
		if next.IsZero() {
			return p // it will not send again: expiry comes first
		}
		eta += next.Sub(now).Seconds()
	}
	s := int64(math.Ceil(eta))
	p.ETASeconds = &s
	return p
}

// windowStart is the first minute the rate window counts: the current
// minute and the four before it.
func windowStart(now time.Time) time.Time {
	return now.Truncate(time.Minute).Add(-RateWindow + time.Minute)
}

// SetTickInterval tells the engine how often the daemon ticks by itself
// (tick_interval), for the ETA of a campaign that has not sent yet; 0, the
// default (cron), makes the ETA assume a tick a minute.
func (e *Engine) SetTickInterval(d time.Duration) {
	e.mu.Lock()
	e.tickInterval = d
	e.mu.Unlock()
}

// Progress returns campaign id's Progress: its counters, at most five
// minute rows and, for a SENDING campaign, which campaigns are due (the
// batch share of the cadence ETA), so O(log n) in its recipients.
// ENOTFOUND for an unknown campaign.
func (e *Engine) Progress(ctx context.Context, id int64) (*Progress, error) {
	c, err := e.store.Campaign(ctx, id)
	if err != nil {
		return nil, err
	}
	now := e.now()
	minutes, err := e.store.Minutes(ctx, id, windowStart(now), now)
	if err != nil {
		return nil, fmt.Errorf("progress of campaign %d: %w", id, err)
	}
	e.mu.RLock()
	cad := Cadence{Interval: e.tickInterval, Share: c.BatchSize}
	e.mu.RUnlock()
	if cad.Interval <= 0 {
		cad.Interval = time.Minute
	}
	if c.Status == CampaignSending {
		// The tick shares its budget among the campaigns due: the
		// cadence ETA assumes an equal share (one index probe per
		// SENDING campaign).
		due, err := e.store.DueCampaigns(ctx, now)
		if err != nil {
			return nil, fmt.Errorf("progress of campaign %d: %w", id, err)
		}
		budget := e.Limits().BatchSize
		if len(due) > 1 {
			budget = max(budget/len(due), 1)
		}
		cad.Share = min(cad.Share, budget)
	}
	return ComputeProgress(c, minutes, cad, now), nil
}

// MaxChartMinutes bounds Minutes: a chart of two hours, one bar a minute.
const MaxChartMinutes = 120

// Minutes returns campaign id's outcome counts for the n minutes (1 to
// MaxChartMinutes) that end with its latest activity: the current minute
// while it is SENDING, else the minute of its last tick (or now, before
// any). Every minute of the span is present, oldest first, those without
// outcomes as zeros, so a chart can draw them as they come. It reads the
// campaign and at most n rows of campaign_minutes through their primary
// key (Store.Minutes): O(n), whatever the campaign's size. ENOTFOUND for
// an unknown campaign, EINVALID for n out of range.
func (e *Engine) Minutes(ctx context.Context, id int64, n int) ([]MinuteCount, error) {
	if n < 1 || n > MaxChartMinutes {
		return nil, Errorf(EINVALID, "minutes: %d is out of range 1..%d", n, MaxChartMinutes)
	}
	c, err := e.store.Campaign(ctx, id)
	if err != nil {
		return nil, err
	}
	end := e.now().UTC().Truncate(time.Minute)
	if c.Status != CampaignSending && c.LastTickAt != nil && c.LastTickAt.Before(end) {
		end = c.LastTickAt.UTC().Truncate(time.Minute)
	}
	from := end.Add(-time.Duration(n-1) * time.Minute)
	rows, err := e.store.Minutes(ctx, id, from, end)
	if err != nil {
		return nil, fmt.Errorf("minutes of campaign %d: %w", id, err)
	}
	out := make([]MinuteCount, n)
	for i := range out {
		out[i].Minute = from.Add(time.Duration(i) * time.Minute)
	}
	for _, m := range rows {
		if i := int(m.Minute.Sub(from) / time.Minute); i >= 0 && i < n {
			out[i] = m
		}
	}
	return out, nil
}
