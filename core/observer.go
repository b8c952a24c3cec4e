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

// WithObserver makes the engine report to o; without it nothing listens.
func WithObserver(o Observer) EngineOption {
	return func(e *Engine) {
		if o != nil {
			e.observer = o
		}
	}
}

// noObserver is the Observer of an engine nobody watches.
type noObserver struct{}

func (noObserver) Outcome(int64, string, OutcomeKind) {}
func (noObserver) TickDone(*TickRecord)               {}
