package control

import (
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/internal/httpx"
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
// core.TriggerSocket; Campaigns, when set, limits the tick to those
// campaigns (see core.Engine.Tick).
type TickRequest struct {
	Trigger   core.TickTrigger `json:"trigger,omitempty"`
	Campaigns []int64          `json:"campaigns,omitempty"`
}

// ErrorResponse is the body of every error answer:
// {"error": {"code": "...", "message": "..."}}.
type ErrorResponse = httpx.ErrorResponse

// ErrorBody carries an error code and its operator-facing message.
type ErrorBody = httpx.ErrorBody
