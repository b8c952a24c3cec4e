package core

import "time"

// MaxTickTimeout bounds tick_timeout: a tick sends at most 50 messages, and
// the HTTP cron endpoint must be able to answer before its 90 s write timeout.
const MaxTickTimeout = 80 * time.Second

// MaxAttemptsCeiling bounds max_attempts under any configuration, so no
// recipient can ever have had more attempts (verify flags those as
// impossible).
const MaxAttemptsCeiling = 100

// Limits are the engine's tunables, from the [queue] table. SIGHUP reloads
// them through Engine.SetLimits.
type Limits struct {
	// BatchSize is the most emails one tick sends across all campaigns,
	// 1..MaxBatchSize.
	BatchSize int
	// DefaultConcurrency applies to campaigns created without one.
	DefaultConcurrency int
	// MaxAttempts is how many transient failures a recipient gets before it
	// is FAILED. Throttling and configuration errors do not count.
	MaxAttempts int
	// InDoubt is the policy for sends whose outcome is unknown: expired
	// leases and sends cut off by TickTimeout alike (see lease.go).
	InDoubt InDoubtPolicy
	// TickTimeout bounds one tick; keep it below the cron interval.
	TickTimeout time.Duration
	// LeaseMargin is added to TickTimeout to make a claim's lease (see
	// newLease): a live tick always finishes before its lease expires.
	LeaseMargin time.Duration
	// RetryBase and RetryMax bound the exponential backoff (with jitter)
	// after a transient failure.
	RetryBase time.Duration
	RetryMax  time.Duration
	// ThrottleDelay is the wait after a throttled send when the provider
	// named none.
	ThrottleDelay time.Duration
	// MessageIDDomain is the right-hand side of Message-IDs; "" uses the
	// campaign's From domain.
	MessageIDDomain string
	// ReturnPath is the VERP envelope-sender template ([bounces]
	// return_path), e.g. "bounces+{campaign}.{recipient}@example.com",
	// rendered per message into sdk.Message.ReturnPath (see
	// RenderReturnPath); "" leaves the envelope sender to the plugin.
	ReturnPath string
	// RenderTimeout and RenderMaxBytes are the render budget of one
	// message (see RenderBudget and Renderer.RenderContext); 0 takes the
	// default. A tick's deadline also ends a render, whichever comes first.
	RenderTimeout  time.Duration
	RenderMaxBytes int64
	// Rates are the sender quotas ([senders.NAME] rate; see quota.go);
	// nil: none. A pointer, so Limits stay comparable.
	Rates *RateTable
}

// RenderBudget returns the render budget in force, defaults filled in.
func (l Limits) RenderBudget() RenderBudget {
	b := DefaultRenderBudget()
	if l.RenderTimeout > 0 {
		b.Timeout = l.RenderTimeout
	}
	if l.RenderMaxBytes > 0 {
		b.MaxBytes = l.RenderMaxBytes
	}
	return b
}

// DefaultLimits returns the documented defaults.
func DefaultLimits() Limits {
	return Limits{
		BatchSize:          MaxBatchSize,
		DefaultConcurrency: DefaultConcurrency,
		MaxAttempts:        5,
		InDoubt:            InDoubtResend,
		TickTimeout:        50 * time.Second,
		LeaseMargin:        30 * time.Second,
		RetryBase:          time.Minute,
		RetryMax:           time.Hour,
		ThrottleDelay:      time.Minute,
		RenderTimeout:      DefaultRenderTimeout,
		RenderMaxBytes:     DefaultRenderMaxBytes,
	}
}

// Validate returns an EINVALID error naming the first out-of-range field by
// its configuration key.
func (l Limits) Validate() error {
	switch {
	case l.BatchSize < 1 || l.BatchSize > MaxBatchSize:
		return Errorf(EINVALID, "queue.batch_size: %d is outside 1..%d (50 per tick is the hard ceiling)", l.BatchSize, MaxBatchSize)
	case l.DefaultConcurrency < 1 || l.DefaultConcurrency > MaxConcurrency:
		return Errorf(EINVALID, "queue.default_concurrency: %d is outside 1..%d", l.DefaultConcurrency, MaxConcurrency)
	case l.MaxAttempts < 1 || l.MaxAttempts > MaxAttemptsCeiling:
		return Errorf(EINVALID, "queue.max_attempts: %d is outside 1..%d", l.MaxAttempts, MaxAttemptsCeiling)
	case l.InDoubt != InDoubtResend && l.InDoubt != InDoubtHold:
		return Errorf(EINVALID, "queue.in_doubt: %q must be \"resend\" or \"hold\"", l.InDoubt)
	case l.TickTimeout <= 0 || l.TickTimeout > MaxTickTimeout:
		return Errorf(EINVALID, "queue.tick_timeout: %s is outside (0, %s]", l.TickTimeout, MaxTickTimeout)
	case l.LeaseMargin < 0:
		return Errorf(EINVALID, "queue.lease_margin: must not be negative")
	case l.RetryBase < 0 || l.RetryMax < l.RetryBase:
		return Errorf(EINVALID, "queue.retry_base/retry_max: need 0 <= retry_base <= retry_max")
	case l.ThrottleDelay < 0:
		return Errorf(EINVALID, "queue.throttle_delay: must not be negative")
	case l.RenderTimeout < 0 || l.RenderTimeout > MaxRenderTimeout:
		return Errorf(EINVALID, "queue.render_timeout: %s is outside (0, %s]", l.RenderTimeout, MaxRenderTimeout)
	case l.RenderMaxBytes < 0 || l.RenderMaxBytes > MaxRenderMaxBytes:
		return Errorf(EINVALID, "queue.render_max_bytes: %d is outside 1..%d", l.RenderMaxBytes, int64(MaxRenderMaxBytes))
	}
	for name, rs := range l.Rates.all() {
		for _, r := range rs {
			if r.Limit < 1 || rateUnitOf(r.Per) == "" {
				return Errorf(EINVALID, "senders.%s.rate: %d per %s: need a positive limit per second, minute, hour or day", name, r.Limit, r.Per)
			}
		}
	}
	if l.ReturnPath != "" {
		if err := ValidateReturnPath(l.ReturnPath); err != nil {
			return Errorf(EINVALID, "bounces.return_path: %s", ErrorMessage(err))
		}
	}
	return nil
}
