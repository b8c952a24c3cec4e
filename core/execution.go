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
type Execution struct {
	ID         int64           `json:"id"`
	CampaignID int64           `json:"campaign_id"`
	Queued     int64           `json:"queued"`
	Status     ExecutionStatus `json:"status"`
	Error      string          `json:"error,omitempty"`
	By         string          `json:"by"`
	At         time.Time       `json:"at"`
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
