package core

import (
	"context"
	"time"
)

// InsertResult counts what one InsertRecipients call did with its rows.
type InsertResult struct {
	Added      int64
	Duplicates int64 // already in the campaign, or repeated within the input
	Suppressed int64 // on the suppression list: skipped
}

// Store is campaignd's persistent state. Every method is safe for concurrent
// use. Every recipient status change updates the campaign's Stats counters
// in the same transaction. Methods return *Error values: ENOTFOUND for an
// unknown id, ECONFLICT for a lost compare-and-set, EINVALID for bad input,
// anything else wrapped with the operation.
type Store interface {
	// CreateCampaign stores a validated campaign in DRAFT and sets its ID,
	// Status, CreatedAt and UpdatedAt.
	CreateCampaign(ctx context.Context, c *Campaign) error
	// Campaign returns one campaign with its Stats.
	Campaign(ctx context.Context, id int64) (*Campaign, error)
	// Campaigns returns all campaigns, newest first.
	Campaigns(ctx context.Context) ([]*Campaign, error)
	// SetCampaignStatus moves a campaign from one status to another only if
	// it is still in `from` (ECONFLICT naming the actual status otherwise).
	// Moving to PAUSED records `from` as PausedFrom; leaving PAUSED clears it.
	SetCampaignStatus(ctx context.Context, id int64, from, to CampaignStatus, now time.Time) error
	// UpdateCampaign replaces a campaign's content and settings (name,
	// sender, from, reply-to, subject, bodies, headers, concurrency, batch
	// size: validated by the caller) with c's and sets c.UpdatedAt. In the
	// same transaction it reads the campaign's status and asks Transition
	// whether ActionEdit is legal from it (the ECONFLICT of Refused when
	// not), so an edit never races an execute.
	UpdateCampaign(ctx context.Context, c *Campaign, now time.Time) error
	// UpdateSchedule replaces a campaign's send window, not-before and
	// expiry (validated by the caller) and nothing else, asking Transition
	// in the same transaction whether ActionSchedule is legal from its
	// status (the ECONFLICT of Refused when not).
	UpdateSchedule(ctx context.Context, id int64, s Schedule, now time.Time) error
	// CloneCampaign stores c (validated by the caller) as a new DRAFT and
	// sets its ID, Status, CreatedAt and UpdatedAt. With withRecipients it
	// copies the recipients of campaign srcID (address, name, attributes)
	// as PENDING, but not those on the suppression list, with one INSERT
	// ... SELECT and sets the counters, all in one transaction.
	CloneCampaign(ctx context.Context, c *Campaign, srcID int64, withRecipients bool, now time.Time) (CloneResult, error)
	// DeleteCampaign removes a campaign, its recipients, executions and
	// events, and writes its DeletedCampaign record, in one transaction,
	// asking Transition whether ActionDelete is legal in it (the ECONFLICT
	// of Refused when not). Campaign ids are never given again. With
	// dryRun it only counts. ENOTFOUND for an unknown campaign.
	DeleteCampaign(ctx context.Context, id int64, by string, dryRun bool, now time.Time) (*DeleteResult, error)

	// InsertRecipients adds validated recipients to a campaign in one
	// transaction, as PENDING (or QUEUED with next_attempt_at=now when the
	// campaign is SENDING, so a late addition is still sent). Rows whose
	// address is already in the campaign count as Duplicates; suppressed
	// addresses count as Suppressed and are not added.
	InsertRecipients(ctx context.Context, campaignID int64, rs []RecipientInput, now time.Time) (InsertResult, error)
	// Recipients lists a campaign's recipients by id.
	Recipients(ctx context.Context, campaignID int64, f RecipientFilter) ([]*Recipient, error)
	// Recipient returns one recipient.
	Recipient(ctx context.Context, id int64) (*Recipient, error)
	// RecipientByEmail returns a campaign's recipient by its normalised
	// address; ENOTFOUND when the campaign has none.
	RecipientByEmail(ctx context.Context, campaignID int64, email string) (*Recipient, error)
	// MissingAttrs counts a campaign's recipients in one of statuses that
	// lack at least one of attrs, with the first such recipient as the
	// example: a scan of the campaign's rows, for activate, execute and
	// edit only.
	MissingAttrs(ctx context.Context, campaignID int64, attrs []string, statuses []RecipientStatus) (*MissingAttrs, error)

	// Execute, in one transaction, moves every PENDING recipient of an ACTIVE
	// campaign to QUEUED (queued_at = next_attempt_at = now) in one
	// statement, moves the campaign to SENDING and writes a COMPLETED
	// execution record. ECONFLICT if the campaign is not ACTIVE.
	Execute(ctx context.Context, campaignID int64, by string, now time.Time) (*Execution, error)
	// RecordFailedExecution writes a FAILED execution record with the error.
	RecordFailedExecution(ctx context.Context, campaignID int64, by string, cause string, now time.Time) (*Execution, error)
	// Executions returns execution records, newest first; campaignID 0 means all.
	Executions(ctx context.Context, campaignID int64, limit int) ([]*Execution, error)

	// RecoverLeases applies rule (the in-doubt policy, see
	// InDoubtPolicy.ExpiredLeases) to every SENDING recipient whose lease
	// ended before now, in one transaction, clearing lease and token.
	RecoverLeases(ctx context.Context, now time.Time, rule ExpiredLeases) (LeaseRecovery, error)
	// DueCampaigns returns the SENDING campaigns that have QUEUED recipients
	// due at now, read-only.
	DueCampaigns(ctx context.Context, now time.Time) ([]*Campaign, error)
	// Claim moves at most n due QUEUED recipients of a campaign (oldest due
	// first: ORDER BY next_attempt_at, id) to SENDING with the lease and
	// token, attempts+1, in one statement, and returns them.
	Claim(ctx context.Context, campaignID int64, n int, token string, leaseUntil, now time.Time) ([]*Recipient, error)
	// ClaimQuota is Claim under sender quota q: in the same transaction it
	// reads the sender's quota row, claims at most the smaller of n and the
	// budget left in every window of q.Rates (nothing while a quota reply
	// blocks the sender), and counts what it claimed in those windows. Two
	// claimers sharing a sender, in one process or several, never together
	// exceed a window (SQLite serialises the writers).
	ClaimQuota(ctx context.Context, q Quota, campaignID int64, n int, token string, leaseUntil, now time.Time) ([]*Recipient, error)
	// SenderQuota reads one sender's quota state (the zero SenderQuota,
	// named, when it has none), read-only: one row.
	SenderQuota(ctx context.Context, sender string) (*SenderQuota, error)
	// SenderQuotas reads every sender's quota state, by name.
	SenderQuotas(ctx context.Context) ([]*SenderQuota, error)
	// RefundQuota gives back n sends claimed at claimedAt under q (the
	// quota the claim was made under) that never started, to q's windows
	// only (see SenderQuota.Refund).
	RefundQuota(ctx context.Context, q Quota, n int, claimedAt, now time.Time) error
	// BlockSender blocks sender until until (kept when a later block is
	// already set) for reason, a provider's quota reply: ClaimQuota
	// claims nothing for it meanwhile.
	BlockSender(ctx context.Context, sender string, until time.Time, reason string, now time.Time) error
	// UnblockSender lifts sender's block by hand (see Engine.UnblockSender)
	// and returns what it lifted: the block's end and the reply that set
	// it (WasBlocked false when none held at now), and, when one held, how
	// many QUEUED messages of the sender's campaigns waiting past now it
	// made due at now, in the same transaction. The windows' counts stay: the quota
	// still binds. A sender without a block changes nothing.
	UnblockSender(ctx context.Context, sender string, now time.Time) (*SenderUnblock, error)
	// RecordOutcomes applies a group of outcomes in one transaction (one
	// commit: the tick's group commit). Each applies only if its row is
	// still SENDING under the outcome's claim token; otherwise it changes
	// nothing and its result is ECONFLICT (the lease was taken over) while
	// the others apply. The results are one per outcome, in order (nil:
	// recorded; EINVALID: not an outcome a store can apply). A non-nil
	// error means the transaction failed and nothing of the group was
	// recorded: its rows stay SENDING under their leases.
	RecordOutcomes(ctx context.Context, os []Outcome) ([]error, error)
	// CompleteCampaigns marks COMPLETED every SENDING campaign with no
	// PENDING, QUEUED or SENDING recipient left, and returns their ids.
	CompleteCampaigns(ctx context.Context, now time.Time) ([]int64, error)
	// FailCancelled moves every PENDING or QUEUED recipient of a CANCELLED
	// campaign to FAILED with class ClassCancelled (a send in flight when
	// the campaign was cancelled can come back QUEUED), and returns how
	// many moved. When there are none it only reads.
	FailCancelled(ctx context.Context, now time.Time) (int64, error)
	// ExpireCampaigns moves every PENDING or QUEUED recipient of a SENDING
	// campaign whose Expires is at or before now to FAILED with class
	// ClassExpired (SENDING ones, in flight, are left to finish), and
	// returns how many moved per campaign. When there are none it only
	// reads.
	ExpireCampaigns(ctx context.Context, now time.Time) (map[int64]int64, error)
	// Retry moves a campaign's FAILED recipients (only those of errorClass
	// when it is not empty) back to QUEUED due now with attempts reset, and
	// returns how many moved. In the same transaction it reads the
	// campaign's status and asks Transition whether ActionRetry is legal
	// from it (ECONFLICT when not), and moves the campaign to the state
	// Transition names when rows came back (a COMPLETED campaign reopens).
	// A code other than 0 also requires last_error_code = code.
	Retry(ctx context.Context, campaignID int64, errorClass ErrorClass, code int, now time.Time) (int64, error)
	// Minutes returns a campaign's per-minute outcome counts from the
	// minute of from to the minute of to, both included, oldest first:
	// one range read of a small table kept in the transactions that
	// record outcomes, bounded at both ends by its primary key.
	Minutes(ctx context.Context, campaignID int64, from, to time.Time) ([]MinuteCount, error)
	// EachFailure calls fn with every FAILED and BOUNCED recipient of a
	// campaign (id, email, status and last error; other fields zero), from
	// one read transaction, stopping at fn's first error. It costs one
	// walk of those rows, not of the campaign. ENOTFOUND for an unknown
	// campaign.
	EachFailure(ctx context.Context, campaignID int64, fn func(*Recipient) error) error
	// InsertTick writes a tick record and sets its ID.
	InsertTick(ctx context.Context, t *TickRecord) error
	// Ticks returns the most recent tick records, newest first.
	Ticks(ctx context.Context, limit int) ([]*TickRecord, error)
	// Queue summarises, per SENDING or PAUSED campaign, what is due now,
	// waiting for a retry, and in flight.
	Queue(ctx context.Context, now time.Time) ([]*QueueSummary, error)

	// Suppress adds or updates addresses on the suppression list, all in
	// one transaction.
	Suppress(ctx context.Context, ss ...Suppression) error
	// Unsuppress removes an address; ENOTFOUND if it was not listed.
	Unsuppress(ctx context.Context, email string) error
	// Suppressions lists the suppression list, newest first.
	Suppressions(ctx context.Context, limit int) ([]*Suppression, error)

	// SuppressedAmong returns which of the given normalised addresses are
	// on the suppression list (the claim-time re-check); InsertRecipients
	// asks the same question of its rows.
	SuppressedAmong(ctx context.Context, emails []string) (map[string]bool, error)
	// ApplyEvent records a provider event in one transaction, deduplicated
	// on (provider, event id). When the recipient (matched by id and
	// campaign, or else by campaign and email) exists: effect.Bounce moves
	// a SENT recipient to BOUNCED with the reason, effect.Suppress adds the
	// address to the suppression list (source from the event type), and the
	// event is stored on the recipient. An unknown recipient changes
	// nothing and returns EventUnknown.
	ApplyEvent(ctx context.Context, ev DeliveryEvent, effect EventEffect) (EventOutcome, error)
	// Events lists a recipient's recorded events, oldest first.
	Events(ctx context.Context, recipientID int64) ([]*DeliveryEvent, error)

	// Audit reads one campaign (campaignID > 0) or all, with their
	// counters, and scans their recipients for per (campaign, status) real
	// counts and the rows breaking each rule of StatusAudit, all in one
	// read transaction: the counters and the counts are of one moment,
	// whatever commits meanwhile. ENOTFOUND for an unknown campaign.
	Audit(ctx context.Context, campaignID int64, now time.Time, maxAttempts int) (*AuditSnapshot, error)

	// Close releases the database.
	Close() error
}
