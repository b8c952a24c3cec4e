package control_test

import (
	"context"
	"io"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/sdk"
)

// t0 is the fixtures' time: UTC, whole seconds, so it survives JSON.
var t0 = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

// Fixtures the fake answers with.
var (
	fxSpec = core.CampaignSpec{
		Name: "spring", Sender: "smtp", From: "News <news@example.org>", ReplyTo: "help@example.org",
		Subject: "Hello {{.Name}}", Text: "Hi", HTML: "<p>Hi</p>",
		Headers:     []sdk.Header{{Name: "X-Campaign", Value: "spring"}},
		Concurrency: 3, BatchSize: 20,
	}
	fxCampaign = &core.Campaign{
		ID: 7, Name: "spring", Sender: "smtp", From: "News <news@example.org>", Subject: "Hello",
		Text: "Hi", Headers: []sdk.Header{{Name: "X-Campaign", Value: "spring"}},
		Concurrency: 3, BatchSize: 20, Status: core.CampaignPaused, PausedFrom: core.CampaignSending,
		CreatedAt: t0, UpdatedAt: t0.Add(time.Minute),
		Stats: core.Stats{Total: 10, Pending: 1, Queued: 2, Sending: 3, Sent: 2, Failed: 1, Bounced: 1},
	}
	fxExecute   = &core.ExecuteResult{ExecutionID: 3, CampaignID: 7, Queued: 1000, Message: "queued 1000 recipients"}
	fxRetry     = &core.RetryResult{CampaignID: 7, Requeued: 4, Message: "requeued 4"}
	fxImport    = &core.ImportResult{Added: 5, Duplicates: 1, Suppressed: 1, Invalid: 2, Errors: []core.ImportError{{Line: 3, Message: "bad address"}}}
	fxRecipient = &core.Recipient{
		ID: 11, CampaignID: 7, Email: "ann@example.org", Name: "Ann", Attrs: map[string]string{"city": "Oslo"},
		Status: core.RecipientFailed, Attempts: 2, LastErrorClass: "permanent", LastErrorCode: 550,
		LastEnhancedCode: "5.7.1", LastError: "rejected", CreatedAt: t0, QueuedAt: &t0, UpdatedAt: t0,
	}
	fxDetail = &core.RecipientDetail{Recipient: fxRecipient, Events: []*core.DeliveryEvent{{
		Provider: "bounce", EventID: "dsn:1", Type: core.EventDeferred, CampaignID: 7, RecipientID: 11,
		Email: "ann@example.org", Reason: "452 4.2.2 mailbox full", At: t0,
	}}}
	fxExecution = &core.Execution{ID: 3, CampaignID: 7, Queued: 1000, Status: core.ExecutionCompleted, By: "uid 0 via socket", At: t0}
	fxTick      = &core.TickResult{Processed: 50, Sent: 45, Failed: 2, Retried: 1, Throttled: 2, Recovered: 1, Completed: 1}
	fxTickRec   = &core.TickRecord{ID: 9, Trigger: core.TriggerSocket, Started: t0, Duration: 1500 * time.Millisecond, Processed: 50, Sent: 45, Failed: 5}
	fxQueue     = &core.QueueSummary{CampaignID: 7, CampaignName: "spring", Status: core.CampaignSending, DueNow: 10, Waiting: 3, InFlight: 5, NextAttempt: &t0}
	fxSupp      = &core.Suppression{Email: "gone@example.org", Reason: "550 5.1.1 no such user", Source: "bounce", CreatedAt: t0}
)

// fakeCall is one recorded Service call.
type fakeCall struct {
	Name  string
	Args  []any
	Actor string
}

// fakeService is a core.Service that records its calls and answers with
// the fixtures, or with err when set.
type fakeService struct {
	mu    sync.Mutex
	calls []fakeCall
	err   error

	// importFn, if set, handles ImportRecipients (after recording it);
	// otherwise the body is read whole and recorded as a string argument.
	importFn func(ctx context.Context, r io.Reader) (*core.ImportResult, error)
	// tickFn, if set, handles Tick.
	tickFn func(ctx context.Context) (*core.TickResult, error)
}

var _ core.Service = (*fakeService)(nil)

func (f *fakeService) record(ctx context.Context, name string, args ...any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fakeCall{Name: name, Args: args, Actor: core.Actor(ctx)})
	return f.err
}

func (f *fakeService) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// take returns the recorded calls and forgets them.
func (f *fakeService) take() []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

// expectCall checks that exactly one call, name(args...), was made since
// the last check.
func (f *fakeService) expectCall(t *testing.T, name string, args ...any) fakeCall {
	t.Helper()
	calls := f.take()
	if len(calls) != 1 {
		t.Fatalf("want one call to %s, got %d: %+v", name, len(calls), calls)
	}
	c := calls[0]
	if c.Name != name || !reflect.DeepEqual(c.Args, args) {
		t.Fatalf("call = %s%#v, want %s%#v", c.Name, c.Args, name, args)
	}
	return c
}

// expectNoCalls checks that nothing reached the service.
func (f *fakeService) expectNoCalls(t *testing.T) {
	t.Helper()
	if calls := f.take(); len(calls) != 0 {
		t.Fatalf("the service was called: %+v", calls)
	}
}

func (f *fakeService) CreateCampaign(ctx context.Context, spec core.CampaignSpec) (*core.Campaign, error) {
	if err := f.record(ctx, "CreateCampaign", spec); err != nil {
		return nil, err
	}
	return fxCampaign, nil
}

func (f *fakeService) Campaign(ctx context.Context, id int64) (*core.Campaign, error) {
	if err := f.record(ctx, "Campaign", id); err != nil {
		return nil, err
	}
	return fxCampaign, nil
}

func (f *fakeService) Campaigns(ctx context.Context) ([]*core.Campaign, error) {
	if err := f.record(ctx, "Campaigns"); err != nil {
		return nil, err
	}
	return []*core.Campaign{fxCampaign, fxCampaign}, nil
}

func (f *fakeService) ChangeCampaign(ctx context.Context, id int64, a core.Action) (*core.Campaign, error) {
	if err := f.record(ctx, "ChangeCampaign", id, a); err != nil {
		return nil, err
	}
	return fxCampaign, nil
}

func (f *fakeService) Execute(ctx context.Context, id int64) (*core.ExecuteResult, error) {
	if err := f.record(ctx, "Execute", id); err != nil {
		return nil, err
	}
	return fxExecute, nil
}

func (f *fakeService) Stats(ctx context.Context, id int64) (*core.Stats, error) {
	if err := f.record(ctx, "Stats", id); err != nil {
		return nil, err
	}
	return &fxCampaign.Stats, nil
}

func (f *fakeService) Progress(ctx context.Context, id int64) (*core.Progress, error) {
	if err := f.record(ctx, "Progress", id); err != nil {
		return nil, err
	}
	return &core.Progress{CampaignID: id, Status: fxCampaign.Status, Stats: fxCampaign.Stats, RecentFailures: []string{}}, nil
}

func (f *fakeService) Failures(ctx context.Context, id int64) (*core.FailureReport, error) {
	if err := f.record(ctx, "Failures", id); err != nil {
		return nil, err
	}
	return &core.FailureReport{CampaignID: id, Groups: []core.FailureGroup{}}, nil
}

func (f *fakeService) Retry(ctx context.Context, id int64, errorClass string, code int) (*core.RetryResult, error) {
	if err := f.record(ctx, "Retry", id, errorClass); err != nil {
		return nil, err
	}
	return fxRetry, nil
}

func (f *fakeService) ImportRecipients(ctx context.Context, id int64, format core.ImportFormat, r io.Reader) (*core.ImportResult, error) {
	f.mu.Lock()
	fn := f.importFn
	f.mu.Unlock()
	if fn != nil {
		if err := f.record(ctx, "ImportRecipients", id, format); err != nil {
			return nil, err
		}
		return fn(ctx, r)
	}
	b, rerr := io.ReadAll(r)
	if err := f.record(ctx, "ImportRecipients", id, format, string(b)); err != nil {
		return nil, err
	}
	if rerr != nil {
		return nil, rerr
	}
	return fxImport, nil
}

func (f *fakeService) AddRecipient(ctx context.Context, id int64, in core.RecipientInput) (*core.ImportResult, error) {
	if err := f.record(ctx, "AddRecipient", id, in); err != nil {
		return nil, err
	}
	return fxImport, nil
}

func (f *fakeService) Recipients(ctx context.Context, id int64, rf core.RecipientFilter) ([]*core.Recipient, error) {
	if err := f.record(ctx, "Recipients", id, rf); err != nil {
		return nil, err
	}
	return []*core.Recipient{fxRecipient}, nil
}

func (f *fakeService) RecipientDetail(ctx context.Context, id int64, email string) (*core.RecipientDetail, error) {
	if err := f.record(ctx, "RecipientDetail", id, email); err != nil {
		return nil, err
	}
	return fxDetail, nil
}

func (f *fakeService) Executions(ctx context.Context, id int64) ([]*core.Execution, error) {
	if err := f.record(ctx, "Executions", id); err != nil {
		return nil, err
	}
	return []*core.Execution{fxExecution}, nil
}

func (f *fakeService) Tick(ctx context.Context, trigger core.TickTrigger, campaigns ...int64) (*core.TickResult, error) {
	if err := f.record(ctx, "Tick", trigger); err != nil {
		return nil, err
	}
	f.mu.Lock()
	fn := f.tickFn
	f.mu.Unlock()
	if fn != nil {
		return fn(ctx)
	}
	return fxTick, nil
}

func (f *fakeService) Ticks(ctx context.Context, limit int) ([]*core.TickRecord, error) {
	if err := f.record(ctx, "Ticks", limit); err != nil {
		return nil, err
	}
	return []*core.TickRecord{fxTickRec}, nil
}

func (f *fakeService) Quotas(ctx context.Context) ([]*core.QuotaStatus, error) {
	if err := f.record(ctx, "Quotas"); err != nil {
		return nil, err
	}
	return []*core.QuotaStatus{{Sender: "gmail", Windows: []core.QuotaWindowStatus{{Rate: "500/day", Limit: 500, Used: 500, NextRefill: &t0}}}}, nil
}

func (f *fakeService) UnblockSender(ctx context.Context, sender string) (*core.SenderUnblock, error) {
	if err := f.record(ctx, "UnblockSender", sender); err != nil {
		return nil, err
	}
	return fxUnblock, nil
}

func (f *fakeService) Queue(ctx context.Context) ([]*core.QueueSummary, error) {
	if err := f.record(ctx, "Queue"); err != nil {
		return nil, err
	}
	return []*core.QueueSummary{fxQueue}, nil
}

func (f *fakeService) Verify(ctx context.Context, id int64) (*core.VerifyReport, error) {
	if err := f.record(ctx, "Verify", id); err != nil {
		return nil, err
	}
	return &core.VerifyReport{Campaigns: 1, Recipients: 3, Violations: []core.Violation{{CampaignID: id, Check: "counters", Message: "m"}}, Notes: []string{}}, nil
}

func (f *fakeService) Suppress(ctx context.Context, s core.Suppression) error {
	return f.record(ctx, "Suppress", s)
}

func (f *fakeService) Unsuppress(ctx context.Context, email string) error {
	return f.record(ctx, "Unsuppress", email)
}

func (f *fakeService) ImportSuppressions(ctx context.Context, format core.ImportFormat, r io.Reader, reason string) (*core.ImportResult, error) {
	b, rerr := io.ReadAll(r)
	if err := f.record(ctx, "ImportSuppressions", format, string(b), reason); err != nil {
		return nil, err
	}
	if rerr != nil {
		return nil, rerr
	}
	return fxImport, nil
}

func (f *fakeService) Suppressions(ctx context.Context, limit int) ([]*core.Suppression, error) {
	if err := f.record(ctx, "Suppressions", limit); err != nil {
		return nil, err
	}
	// nil: the server must still answer [] rather than null.
	if limit == 1 {
		return nil, nil
	}
	return []*core.Suppression{fxSupp}, nil
}

// Fixtures of the edit, clone, delete, preview and test-send routes.
var (
	fxDelete  = &core.DeleteResult{CampaignID: 7, Name: "spring", Status: core.CampaignCompleted, Recipients: 10, Executions: 2, Events: 1, Message: "deleted"}
	fxPreview = &core.Preview{CampaignID: 7, RecipientID: 11, Email: "ann@example.org", MessageID: "<c7.r11@example.org>",
		Subject: "Hello Ann", Text: "Hi", Headers: []sdk.Header{{Name: "Subject", Value: "Hello Ann"}}, Message: "Subject: Hello Ann\r\n\r\nHi\r\n"}
	fxUnblock = &core.SenderUnblock{Sender: "mail/eu west", WasBlocked: true, BlockedUntil: &t0,
		Reason: "550 5.4.5 Daily user sending limit exceeded"}
	fxTestSend = &core.TestSendResult{CampaignID: 7, Sender: "smtp", To: "me@example.org", MessageID: "<test-c7.1@example.org>",
		Error: &core.SendError{Class: sdk.ClassPermanent, SMTPCode: 550, EnhancedCode: "5.7.1", Message: "relay denied"}}
)

func (f *fakeService) EditCampaign(ctx context.Context, id int64, edit core.CampaignEdit) (*core.Campaign, error) {
	if err := f.record(ctx, "EditCampaign", id, edit); err != nil {
		return nil, err
	}
	return fxCampaign, nil
}

func (f *fakeService) CloneCampaign(ctx context.Context, id int64, req core.CloneRequest) (*core.Campaign, error) {
	if err := f.record(ctx, "CloneCampaign", id, req); err != nil {
		return nil, err
	}
	return fxCampaign, nil
}

func (f *fakeService) DeleteCampaign(ctx context.Context, id int64, dryRun bool) (*core.DeleteResult, error) {
	if err := f.record(ctx, "DeleteCampaign", id, dryRun); err != nil {
		return nil, err
	}
	return fxDelete, nil
}

func (f *fakeService) Preview(ctx context.Context, id int64, email string) (*core.Preview, error) {
	if err := f.record(ctx, "Preview", id, email); err != nil {
		return nil, err
	}
	return fxPreview, nil
}

func (f *fakeService) TestSend(ctx context.Context, id int64, req core.TestSendRequest) (*core.TestSendResult, error) {
	if err := f.record(ctx, "TestSend", id, req); err != nil {
		return nil, err
	}
	return fxTestSend, nil
}
