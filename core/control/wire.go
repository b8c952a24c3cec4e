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
// ErrorClass retries every FAILED recipient of the campaign; a Code other
// than 0 only those whose last reply code it is.
type RetryRequest struct {
	ErrorClass string `json:"error_class,omitempty"`
	Code       int    `json:"code,omitempty"`
}

// TickRequest is the body of POST /v1/tick. An empty Trigger means
// core.TriggerSocket; Campaigns, when set, limits the tick to those
// campaigns (see core.Engine.Tick).
type TickRequest struct {
	Trigger   core.TickTrigger `json:"trigger,omitempty"`
	Campaigns []int64          `json:"campaigns,omitempty"`
}

// BackupRequest is the body of POST /v1/backup: where the daemon writes
// the copy (an absolute path the daemon's user may write) and whether an
// existing file there may be replaced.
type BackupRequest struct {
	Dest  string `json:"dest"`
	Force bool   `json:"force,omitempty"`
}

// BackupResult is what a backup made: the copy's path, size and schema
// version, and the verify report of the copy.
type BackupResult struct {
	Path          string             `json:"path"`
	Bytes         int64              `json:"bytes"`
	SchemaVersion int                `json:"schema_version"`
	Duration      time.Duration      `json:"duration_ns"`
	Verify        *core.VerifyReport `json:"verify"`
}

// ErrorResponse is the body of every error answer:
// {"error": {"code": "...", "message": "..."}}.
type ErrorResponse = httpx.ErrorResponse

// ErrorBody carries an error code and its operator-facing message.
type ErrorBody = httpx.ErrorBody
