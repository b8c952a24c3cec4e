package control

import (
	"time"

	"github.com/campaignd/campaignd/core"
)

// Status is what GET /v1/status answers: which daemon is listening.
type Status struct {
	PID     int       `json:"pid"`
	Version string    `json:"version"`
	Started time.Time `json:"started"`
}

// RetryRequest is the body of POST /v1/campaigns/{id}/retry. An empty
// ErrorClass retries every FAILED recipient of the campaign.
type RetryRequest struct {
	ErrorClass string `json:"error_class,omitempty"`
}

// TickRequest is the body of POST /v1/tick. An empty Trigger means
// core.TriggerSocket.
type TickRequest struct {
	Trigger core.TickTrigger `json:"trigger,omitempty"`
}

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody carries a core error code and its operator-facing message.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}
