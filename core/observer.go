package core

// OutcomeKind names what happened to one send, for an Observer:
// OutcomeSent, OutcomeFailed, OutcomeBounced, OutcomeRetried (a transient
// failure back in the queue) or OutcomeThrottled (the provider asked to
// slow down; the attempt is not counted).
type OutcomeKind string

// Outcome kinds, the values of the outcome label of
// campaignd_emails_total.
const (
	OutcomeSent      OutcomeKind = "sent"
	OutcomeFailed    OutcomeKind = "failed"
	OutcomeBounced   OutcomeKind = "bounced"
	OutcomeRetried   OutcomeKind = "retried"
	OutcomeThrottled OutcomeKind = "throttled"
)

// Observer hears what the engine does, for metrics. The engine calls it
// after the fact is committed, from the tick's goroutines: implementations
// must be safe for concurrent use and must not block (they count).
type Observer interface {
	// Outcome is called once per recorded send outcome (a claim handed
	// back unsent is not one).
	Outcome(campaignID int64, sender string, kind OutcomeKind)
	// TickDone is called at the end of every tick that ran, idle ones
	// included (then rec counts nothing), whether or not it was recorded.
	TickDone(rec *TickRecord)
}

// SetObserver makes the engine report to o (nil: to nobody). Set it before
// the first tick, as the daemon does when it opens its admin listener: a
// tick running meanwhile may report to either.
func (e *Engine) SetObserver(o Observer) {
	if o == nil {
		o = noObserver{}
	}
	e.mu.Lock()
	e.observer = o
	e.mu.Unlock()
}

// obs is the observer in force.
func (e *Engine) obs() Observer {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.observer
}

// noObserver is the Observer of an engine nobody watches.
type noObserver struct{}

func (noObserver) Outcome(int64, string, OutcomeKind) {}
func (noObserver) TickDone(*TickRecord)               {}
