package core

import (
	"context"
	"io"
)

// Service is everything the CLI and the control API can ask of campaignd.
// *Engine implements it on a local Store; control.Client implements it over
// the daemon's socket. Both return *Error values with the same codes.
type Service interface {
	CreateCampaign(ctx context.Context, spec CampaignSpec) (*Campaign, error)
	Campaign(ctx context.Context, id int64) (*Campaign, error)
	Campaigns(ctx context.Context) ([]*Campaign, error)
	// ChangeCampaign applies activate, pause, resume or cancel.
	ChangeCampaign(ctx context.Context, id int64, a Action) (*Campaign, error)
	// EditCampaign changes a DRAFT, ACTIVE or PAUSED campaign (see
	// Engine.EditCampaign).
	EditCampaign(ctx context.Context, id int64, edit CampaignEdit) (*Campaign, error)
	// CloneCampaign copies a campaign into a new DRAFT (see
	// Engine.CloneCampaign).
	CloneCampaign(ctx context.Context, id int64, req CloneRequest) (*Campaign, error)
	// DeleteCampaign removes a DRAFT, CANCELLED or COMPLETED campaign, or
	// with dryRun counts what it would remove (see Engine.DeleteCampaign).
	DeleteCampaign(ctx context.Context, id int64, dryRun bool) (*DeleteResult, error)
	// Preview renders the message one recipient would get (see
	// Engine.Preview).
	Preview(ctx context.Context, id int64, email string) (*Preview, error)
	// TestSend sends one message through the campaign's sender, outside
	// its queue (see Engine.TestSend).
	TestSend(ctx context.Context, id int64, req TestSendRequest) (*TestSendResult, error)
	Execute(ctx context.Context, id int64) (*ExecuteResult, error)
	Stats(ctx context.Context, id int64) (*Stats, error)
	// Retry requeues FAILED recipients, of one class and reply code when
	// they are given (see Engine.Retry).
	Retry(ctx context.Context, id int64, errorClass string, code int) (*RetryResult, error)
	// Progress is a campaign's percent done, rate and ETA (see
	// Engine.Progress).
	Progress(ctx context.Context, id int64) (*Progress, error)
	// Failures groups a campaign's FAILED and BOUNCED recipients (see
	// Engine.Failures).
	Failures(ctx context.Context, id int64) (*FailureReport, error)

	ImportRecipients(ctx context.Context, id int64, format ImportFormat, r io.Reader) (*ImportResult, error)
	AddRecipient(ctx context.Context, id int64, in RecipientInput) (*ImportResult, error)
	Recipients(ctx context.Context, id int64, f RecipientFilter) ([]*Recipient, error)
	// RecipientDetail is one recipient by address with its recorded
	// delivery events (see Engine.RecipientDetail).
	RecipientDetail(ctx context.Context, id int64, email string) (*RecipientDetail, error)
	Executions(ctx context.Context, id int64) ([]*Execution, error)

	// Tick runs one tick, of the given campaigns only when any are given
	// (see Engine.Tick).
	Tick(ctx context.Context, trigger TickTrigger, campaigns ...int64) (*TickResult, error)
	Ticks(ctx context.Context, limit int) ([]*TickRecord, error)
	Queue(ctx context.Context) ([]*QueueSummary, error)
	// Quotas are the senders' quotas: budget left per window, next
	// refill, blocks (see Engine.Quotas).
	Quotas(ctx context.Context) ([]*QuotaStatus, error)
	// UnblockSender lifts the block a provider's quota reply set on a
	// sender (see Engine.UnblockSender).
	UnblockSender(ctx context.Context, sender string) (*SenderUnblock, error)

	// Verify audits the database's invariants (see Engine.Verify).
	Verify(ctx context.Context, id int64) (*VerifyReport, error)

	Suppress(ctx context.Context, s Suppression) error
	Unsuppress(ctx context.Context, email string) error
	Suppressions(ctx context.Context, limit int) ([]*Suppression, error)
	// ImportSuppressions streams a list of addresses onto the suppression
	// list (see Engine.ImportSuppressions).
	ImportSuppressions(ctx context.Context, format ImportFormat, r io.Reader, reason string) (*ImportResult, error)
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
