package control

import (
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/internal/httpx"
)

// Status is what GET /v1/status answers, and what `campaignd status`
// prints with or without a daemon: one type for both. PID and Started are
// the daemon's (zero standalone); the rest is filled, for
// GET /v1/status?detail=true, by ServerConfig.Status when the daemon sets
// it.
type Status struct {
	PID     int       `json:"pid,omitempty"`
	Version string    `json:"version"`
	Started time.Time `json:"started,omitzero"`
	// Daemon is true when a daemon answered.
	Daemon        bool   `json:"daemon"`
	Database      string `json:"database,omitempty"`
	SchemaVersion int    `json:"schema_version,omitempty"`
	// Senders are the configured senders, by name.
	Senders []SenderStatus `json:"senders,omitempty"`
	// LastTick is the most recent tick record; nil before the first.
	LastTick *core.TickRecord `json:"last_tick,omitempty"`
	// Queue is the queue depth, summed from the campaigns' counters.
	Queue *QueueDepth `json:"queue,omitempty"`
	// Quotas are the senders' quotas: those with a rate, and any blocked
	// by a provider's quota reply (core.Engine.Quotas).
	Quotas []*core.QuotaStatus `json:"quotas,omitempty"`
}

// SenderStatus is one configured sender in Status.
type SenderStatus struct {
	Name   string `json:"name"`
	Plugin string `json:"plugin"`
	// Path is the plugin executable; Found says whether it exists and
	// can be executed, Problem why not.
	Path    string `json:"path"`
	Found   bool   `json:"found"`
	Problem string `json:"problem,omitempty"`
	// Running is set through the daemon only: whether its plugin process
	// runs now (plugins start on first use), and its PID.
	Running *bool `json:"running,omitempty"`
	PID     int   `json:"pid,omitempty"`
}

// QueueDepth sums the recipients counters of every campaign.
type QueueDepth struct {
	Pending int64 `json:"pending"` // not yet executed
	Queued  int64 `json:"queued"`  // waiting for a tick (due or in backoff), paused campaigns included
	Sending int64 `json:"sending"` // claimed by a tick now
	// Paused is the part of Queued that belongs to paused campaigns.
	Paused int64 `json:"paused"`
	// Campaigns counts campaigns by status.
	Campaigns map[core.CampaignStatus]int `json:"campaigns"`
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

// LoginLink is the answer of POST /v1/dashboard/login-link: a URL on the
// admin listener that logs one browser in, once, until Expires.
type LoginLink struct {
	URL     string    `json:"url"`
	Expires time.Time `json:"expires"`
}

// ErrorResponse is the body of every error answer:
// {"error": {"code": "...", "message": "..."}}.
type ErrorResponse = httpx.ErrorResponse

// ErrorBody carries an error code and its operator-facing message.
type ErrorBody = httpx.ErrorBody
