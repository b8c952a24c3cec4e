package core

import "time"

// ExecutionStatus is the outcome of one execute.
type ExecutionStatus string

// Execution outcomes.
const (
	ExecutionCompleted ExecutionStatus = "COMPLETED"
	ExecutionFailed    ExecutionStatus = "FAILED"
)

// Execution is the history record every execute leaves, successful or not.
//
// Sent, Failed and Bounced are how many of the campaign's recipients are in
// those states now, and SuccessRate is Sent over their sum (null before
// any outcome). They are the campaign's counters, read with the record:
// only ACTIVE can be executed and a campaign never returns to ACTIVE once
// executed, so a campaign has at most one COMPLETED execution and it
// queued every recipient the campaign had. What is sent later belongs to
// it: a retry re-queues that execution's failures, and the few recipients
// added while SENDING (queued at once, with no execute) count with it too,
// so Sent+Failed+Bounced may exceed Queued by those. A FAILED execution
// queued nothing and has no outcomes. Reading them costs nothing per
// recipient, and nothing per outcome is written to keep them.
type Execution struct {
	ID          int64           `json:"id"`
	CampaignID  int64           `json:"campaign_id"`
	Queued      int64           `json:"queued"`
	Status      ExecutionStatus `json:"status"`
	Error       string          `json:"error,omitempty"`
	By          string          `json:"by"`
	At          time.Time       `json:"at"`
	Sent        int64           `json:"sent"`
	Failed      int64           `json:"failed"`
	Bounced     int64           `json:"bounced"`
	SuccessRate *float64        `json:"success_rate"`
}

// SetOutcomes fills Sent, Failed, Bounced and SuccessRate of a COMPLETED
// execution from its campaign's counters (see Execution).
func (x *Execution) SetOutcomes(st Stats) {
	if x.Status != ExecutionCompleted {
		return
	}
	x.Sent, x.Failed, x.Bounced = st.Sent, st.Failed, st.Bounced
	if done := st.Sent + st.Failed + st.Bounced; done > 0 {
		r := float64(int64(float64(st.Sent)*1000/float64(done))) / 10
		x.SuccessRate = &r
	}
}

// ExecuteResult is what execute answers: how many recipients were queued.
type ExecuteResult struct {
	ExecutionID int64  `json:"execution_id"`
	CampaignID  int64  `json:"campaign_id"`
	Queued      int64  `json:"queued"`
	Message     string `json:"message"`
}

// RetryResult is what retry answers: how many FAILED recipients were requeued.
type RetryResult struct {
	CampaignID int64  `json:"campaign_id"`
	Requeued   int64  `json:"requeued"`
	Message    string `json:"message"`
}
