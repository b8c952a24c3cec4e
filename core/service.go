package core

import (
	"context"
	"io"
)

// ImportFormat is the format of a recipients file.
type ImportFormat string

// Import formats.
const (
	FormatCSV   ImportFormat = "csv"
	FormatJSONL ImportFormat = "jsonl"
)

// ImportError is one rejected row of an import.
type ImportError struct {
	Line    int64  `json:"line"`
	Message string `json:"message"`
}

// ImportResult counts what an import did. Errors lists the first
// MaxImportErrors invalid rows; Invalid counts them all.
type ImportResult struct {
	Added      int64         `json:"added"`
	Duplicates int64         `json:"duplicates"`
	Suppressed int64         `json:"suppressed"`
	Invalid    int64         `json:"invalid"`
	Errors     []ImportError `json:"errors"`
}

// Service is everything the CLI and the control API can ask of campaignd.
// *Engine implements it on a local Store; control.Client implements it over
// the daemon's socket. Both return *Error values with the same codes.
type Service interface {
	CreateCampaign(ctx context.Context, spec CampaignSpec) (*Campaign, error)
	Campaign(ctx context.Context, id int64) (*Campaign, error)
	Campaigns(ctx context.Context) ([]*Campaign, error)
	// ChangeCampaign applies activate, pause, resume or cancel.
	ChangeCampaign(ctx context.Context, id int64, a Action) (*Campaign, error)
	Execute(ctx context.Context, id int64) (*ExecuteResult, error)
	Stats(ctx context.Context, id int64) (*Stats, error)
	Retry(ctx context.Context, id int64, errorClass string) (*RetryResult, error)

	ImportRecipients(ctx context.Context, id int64, format ImportFormat, r io.Reader) (*ImportResult, error)
	AddRecipient(ctx context.Context, id int64, in RecipientInput) (*ImportResult, error)
	Recipients(ctx context.Context, id int64, f RecipientFilter) ([]*Recipient, error)
	Executions(ctx context.Context, id int64) ([]*Execution, error)

	// Tick runs one tick, of the given campaigns only when any are given
	// (see Engine.Tick).
	Tick(ctx context.Context, trigger TickTrigger, campaigns ...int64) (*TickResult, error)
	Ticks(ctx context.Context, limit int) ([]*TickRecord, error)
	Queue(ctx context.Context) ([]*QueueSummary, error)

	// Verify audits the database's invariants (see Engine.Verify).
	Verify(ctx context.Context, id int64) (*VerifyReport, error)

	Suppress(ctx context.Context, s Suppression) error
	Unsuppress(ctx context.Context, email string) error
	Suppressions(ctx context.Context, limit int) ([]*Suppression, error)
}

// actorKey carries who asked, for execution records.
type actorKey struct{}

// WithActor returns a context naming the caller ("uid 1000 via socket",
// "root (standalone)") for the history records an operation writes.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// Actor returns the caller named by WithActor, or "unknown".
func Actor(ctx context.Context) string {
	if s, ok := ctx.Value(actorKey{}).(string); ok && s != "" {
		return s
	}
	return "unknown"
}
