package core

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/campaignd/campaignd/sdk"
	"github.com/hashicorp/go-hclog"
)

// SenderProvider hands the engine a ready sender by its configured name.
// plugin.Pool (sdk/plugin), behind a small adapter in cmd, is the production one.
type SenderProvider interface {
	// Sender returns the named sender, starting its plugin if needed. An
	// *sdk.Error of ClassConfig means the sender cannot work until the
	// operator fixes its configuration.
	Sender(ctx context.Context, name string) (sdk.Sender, error)
	// Has reports whether a sender of that name is configured.
	Has(name string) bool
	// Names returns the configured senders' names, sorted.
	Names() []string
}

// Engine implements Service on a Store: campaign lifecycle, import, execute
// and the tick. One Engine per process; its ticks lock the campaigns they
// work on (see Tick), so no two of them send the same campaign at once.
type Engine struct {
	store        Store
	senders      SenderProvider
	log          hclog.Logger
	now          func() time.Time
	unsubscribe  func(*Campaign, *Recipient) string
	observer     Observer      // under mu; never nil: noObserver by default
	tickInterval time.Duration // under mu; the daemon's own cadence, for the ETA; 0: cron

	mu     sync.RWMutex
	limits Limits

	campaignMu sync.Mutex
	ticking    map[int64]bool // campaigns a tick of this engine holds
	locker     CampaignLocker // other processes' ticks; nil: none
	ticks      atomic.Int64   // ticks running
	draining   atomic.Bool
	// drained ends at Drain: renders in progress stop at once (see
	// tickRun.renderCtx), whatever their templates do.
	drained     context.Context
	stopDrained context.CancelFunc

	// templates are the parsed templates of the campaigns recently sent,
	// kept between ticks (see campaignTemplates).
	templates templateCache
}

var _ Service = (*Engine)(nil)

// EngineOption customises an Engine.
type EngineOption func(*Engine)

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) EngineOption { return func(e *Engine) { e.now = now } }

// SetCampaignLocker makes every later tick also take its campaigns through
// l, which keeps them apart from the ticks of other processes (the
// standalone CLI's lock file). Set it before the first tick: a tick
// running meanwhile releases its campaigns through the new locker.
func (e *Engine) SetCampaignLocker(l CampaignLocker) {
	e.campaignMu.Lock()
	defer e.campaignMu.Unlock()
	e.locker = l
}

// WithUnsubscribeURL sets the function that renders a recipient's
// unsubscribe URL; without it messages carry no List-Unsubscribe header.
func WithUnsubscribeURL(fn func(*Campaign, *Recipient) string) EngineOption {
	return func(e *Engine) { e.unsubscribe = fn }
}

// NewEngine returns an engine over store. senders may be nil for processes
// that never tick (then any sender name is accepted at create). It returns
// an EINVALID error when limits are out of range.
func NewEngine(store Store, senders SenderProvider, limits Limits, logger hclog.Logger, opts ...EngineOption) (*Engine, error) {
	if err := limits.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	e := &Engine{store: store, senders: senders, log: logger, now: time.Now, limits: limits, ticking: map[int64]bool{},
		observer: noObserver{}}
	e.drained, e.stopDrained = context.WithCancel(context.Background())
	for _, o := range opts {
		o(e)
	}
	return e, nil
}

// Limits returns the limits in force.
func (e *Engine) Limits() Limits {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.limits
}

// SetLimits replaces the limits for the next tick (SIGHUP); a tick in
// progress keeps the limits it started with. It returns an EINVALID error
// and changes nothing when l is out of range.
func (e *Engine) SetLimits(l Limits) error {
	if err := l.Validate(); err != nil {
		return err
	}
	e.mu.Lock()
	e.limits = l
	e.mu.Unlock()
	return nil
}

// Drain makes the engine stop claiming: a running tick finishes the sends in
// flight, hands back what it claimed but did not start (and what it was
// still rendering), and later ticks return EUNAVAILABLE. Used on SIGTERM.
func (e *Engine) Drain() {
	e.draining.Store(true)
	e.stopDrained()
}

// WaitIdle waits until no tick runs or ctx ends; it reports whether the
// engine is idle.
func (e *Engine) WaitIdle(ctx context.Context) bool {
	for {
		if e.ticks.Load() == 0 {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// CreateCampaign validates spec (see CampaignSpec.Validate), checks its
// templates for real (see CheckTemplates) and stores the campaign in DRAFT
// with the attributes its templates reference. An unknown sender, a
// template that fails on the sample recipient, an expiry already past or
// a send window that does not open before the expiry is EINVALID.
func (e *Engine) CreateCampaign(ctx context.Context, spec CampaignSpec) (*Campaign, error) {
	refs, err := e.checkSpec(&spec)
	if err != nil {
		return nil, err
	}
	if err := spec.schedule.checkNew(e.now()); err != nil {
		return nil, err
	}
	c := &Campaign{Status: CampaignDraft}
	c.setSpec(spec)
	c.TemplateAttrs = refs.Attrs
	if err := e.store.CreateCampaign(ctx, c); err != nil {
		return nil, fmt.Errorf("create campaign: %w", err)
	}
	return c, nil
}

// Campaign returns one campaign; ENOTFOUND if there is none.
func (e *Engine) Campaign(ctx context.Context, id int64) (*Campaign, error) {
	return e.store.Campaign(ctx, id)
}

// Campaigns returns every campaign, newest first.
func (e *Engine) Campaigns(ctx context.Context) ([]*Campaign, error) {
	return e.store.Campaigns(ctx)
}

// ChangeCampaign applies activate, pause, resume or cancel. An illegal move
// is ECONFLICT naming both states; a concurrent change is ECONFLICT too.
// Activate is ECONFLICT while a recipient lacks an attribute the templates
// reference, unless ctx carries WithAllowMissingAttrs (see
// checkMissingAttrs).
func (e *Engine) ChangeCampaign(ctx context.Context, id int64, a Action) (*Campaign, error) {
	switch a {
	case ActionActivate, ActionPause, ActionResume, ActionCancel:
	default:
		return nil, Errorf(EINVALID, "action %q: must be activate, pause, resume or cancel", a)
	}
	c, err := e.store.Campaign(ctx, id)
	if err != nil {
		return nil, err
	}
	to, err := Transition(c.Status, c.PausedFrom, a)
	if err != nil {
		return nil, Refused(c, a)
	}
	if a == ActionActivate {
		if err := e.checkMissingAttrs(ctx, c, a); err != nil {
			return nil, err
		}
	}
	if err := e.store.SetCampaignStatus(ctx, id, c.Status, to, e.now()); err != nil {
		return nil, fmt.Errorf("%s campaign %d: %w", a, id, err)
	}
	return e.store.Campaign(ctx, id)
}

// Execute queues every PENDING recipient of an ACTIVE campaign and moves it
// to SENDING, in one transaction; nothing is sent. Every call leaves an
// execution record: a refused or failed execute leaves a FAILED one and the
// campaign as it was. Like activate, it is ECONFLICT while a PENDING
// recipient lacks an attribute the templates reference, unless ctx carries
// WithAllowMissingAttrs.
func (e *Engine) Execute(ctx context.Context, id int64) (*ExecuteResult, error) {
	c, err := e.store.Campaign(ctx, id)
	if err != nil {
		return nil, err
	}
	actor := Actor(ctx)
	fail := func(cause error) (*ExecuteResult, error) {
		if _, rerr := e.store.RecordFailedExecution(context.WithoutCancel(ctx), id, actor, ErrorMessage(cause), e.now()); rerr != nil {
			if ErrorCode(rerr) == EUNAVAILABLE && ErrorCode(cause) == EUNAVAILABLE {
				// The database cannot be written (read-only, full): the
				// cause already says so, in one line.
				e.log.Debug("record failed execution", "campaign", id, "error", rerr)
			} else {
				e.log.Error("record failed execution", "campaign", id, "error", rerr)
			}
		}
		return nil, cause
	}
	if err := Refused(c, ActionExecute); err != nil {
		return fail(err)
	}
	if err := c.refuseExpired(ActionExecute, e.now()); err != nil {
		return fail(err)
	}
	if err := e.checkMissingAttrs(ctx, c, ActionExecute); err != nil {
		return fail(err)
	}
	x, err := e.store.Execute(ctx, id, actor, e.now())
	if err != nil {
		return fail(fmt.Errorf("execute campaign %d: %w", id, err))
	}
	return &ExecuteResult{
		ExecutionID: x.ID,
		CampaignID:  id,
		Queued:      x.Queued,
		Message: fmt.Sprintf("queued %d recipients of campaign %d (%s); ticks send at most %d per tick",
			x.Queued, id, c.Name, MaxBatchSize),
	}, nil
}

// Stats returns a campaign's counters in O(1); ENOTFOUND if there is none.
func (e *Engine) Stats(ctx context.Context, id int64) (*Stats, error) {
	c, err := e.store.Campaign(ctx, id)
	if err != nil {
		return nil, err
	}
	return &c.Stats, nil
}

// Retry requeues a campaign's FAILED recipients (only errorClass when it is
// set, see ParseRetryClass, and only those whose last reply code is code
// when it is not 0: one group of Failures) with fresh attempts, where Transition allows
// ActionRetry: a COMPLETED campaign reopens to SENDING, a SENDING or PAUSED
// one keeps its status. EINVALID for a class that cannot be retried by
// name; ECONFLICT naming both states from any other status.
func (e *Engine) Retry(ctx context.Context, id int64, errorClass string, code int) (*RetryResult, error) {
	class, err := ParseRetryClass(errorClass)
	if err != nil {
		return nil, err
	}
	if code < 0 || code > 999 {
		return nil, Errorf(EINVALID, "code %d: must be an SMTP reply code or HTTP status, 1..999 (0: any)", code)
	}
	c, err := e.store.Campaign(ctx, id)
	if err != nil {
		return nil, err
	}
	// Refused here with the states named for the operator; the store asks
	// Transition again, and reopens a COMPLETED campaign, in the
	// transaction that requeues.
	if err := Refused(c, ActionRetry); err != nil {
		return nil, err
	}
	if err := c.refuseExpired(ActionRetry, e.now()); err != nil {
		return nil, err
	}
	n, err := e.store.Retry(ctx, id, class, code, e.now())
	if err != nil {
		return nil, fmt.Errorf("retry campaign %d: %w", id, err)
	}
	what := "failed"
	switch {
	case errorClass != "" && code != 0:
		what = fmt.Sprintf("failed (%s, code %d)", errorClass, code)
	case errorClass != "":
		what = "failed (" + errorClass + ")"
	case code != 0:
		what = fmt.Sprintf("failed (code %d)", code)
	}
	return &RetryResult{CampaignID: id, Requeued: n, Message: fmt.Sprintf("requeued %d %s recipients of campaign %d", n, what, id)}, nil
}

// ImportRecipients streams a CSV or JSON-lines file into a campaign (see
// the README for the columns). Invalid rows are reported with their line
// and skipped; valid rows are kept. ECONFLICT for a COMPLETED or CANCELLED
// campaign; EINVALID for an unreadable header or stream, with the counts of
// what was already committed.
func (e *Engine) ImportRecipients(ctx context.Context, id int64, format ImportFormat, r io.Reader) (*ImportResult, error) {
	c, err := e.checkOpen(ctx, id)
	if err != nil {
		return nil, err
	}
	return importRecipients(ctx, e.store, id, format, r, e.now, e.templateAttrs(c))
}

// AddRecipient adds one recipient; an invalid address or name is EINVALID.
func (e *Engine) AddRecipient(ctx context.Context, id int64, in RecipientInput) (*ImportResult, error) {
	if _, err := e.checkOpen(ctx, id); err != nil {
		return nil, err
	}
	if err := in.Validate(); err != nil {
		return nil, err
	}
	ir, err := e.store.InsertRecipients(ctx, id, []RecipientInput{in}, e.now())
	if err != nil {
		return nil, fmt.Errorf("add recipient: %w", err)
	}
	return &ImportResult{Added: ir.Added, Duplicates: ir.Duplicates, Suppressed: ir.Suppressed, Errors: []ImportError{}}, nil
}

func (e *Engine) checkOpen(ctx context.Context, id int64) (*Campaign, error) {
	c, err := e.store.Campaign(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.Status == CampaignCompleted || c.Status == CampaignCancelled {
		return nil, Errorf(ECONFLICT, "campaign %d is %s: recipients can no longer be added", id, c.Status)
	}
	return c, nil
}

// Recipients lists a campaign's recipients, a page of f.Limit (see
// ListLimit); ENOTFOUND for an unknown campaign, EINVALID for a limit out
// of range.
func (e *Engine) Recipients(ctx context.Context, id int64, f RecipientFilter) ([]*Recipient, error) {
	if _, err := e.store.Campaign(ctx, id); err != nil {
		return nil, err
	}
	limit, err := ListLimit("limit", f.Limit)
	if err != nil {
		return nil, err
	}
	f.Limit = limit
	return e.store.Recipients(ctx, id, f)
}

// Executions returns execution history, newest first; id 0 means all
// campaigns.
func (e *Engine) Executions(ctx context.Context, id int64) ([]*Execution, error) {
	if id != 0 {
		if _, err := e.store.Campaign(ctx, id); err != nil {
			return nil, err
		}
	}
	return e.store.Executions(ctx, id, 1000)
}

// Ticks returns the most recent tick records, newest first, at most limit
// of them (see ListLimit); EINVALID for a limit out of range.
func (e *Engine) Ticks(ctx context.Context, limit int) ([]*TickRecord, error) {
	limit, err := ListLimit("limit", limit)
	if err != nil {
		return nil, err
	}
	return e.store.Ticks(ctx, limit)
}

// Queue summarises what is due, waiting and in flight per campaign, with
// its sender's quota when it has one (see Engine.Quotas).
func (e *Engine) Queue(ctx context.Context) ([]*QueueSummary, error) {
	qs, err := e.store.Queue(ctx, e.now())
	if err != nil || len(qs) == 0 {
		return qs, err
	}
	quotas, err := e.Quotas(ctx)
	if err != nil {
		return nil, err
	}
	for _, q := range qs {
		for _, st := range quotas {
			if st.Sender == q.Sender {
				q.Quota = st
			}
		}
	}
	return qs, nil
}

// Suppress puts an address on the suppression list; EINVALID for a bad address.
func (e *Engine) Suppress(ctx context.Context, s Suppression) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if s.Source == "" {
		s.Source = SourceOperator
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = e.now()
	}
	return e.store.Suppress(ctx, s)
}

// Unsuppress removes an address from the suppression list; ENOTFOUND if absent.
func (e *Engine) Unsuppress(ctx context.Context, email string) error {
	addr, _, err := NormalizeAddress(email)
	if err != nil {
		return err
	}
	return e.store.Unsuppress(ctx, addr)
}

// ImportSuppressions streams a suppression list onto the suppression list,
// as source "import": a CSV file with an "email" column and optionally a
// "reason" one (format csv), one address per line (list), or either, told
// apart by the first line (""). reason is recorded for rows without one.
// Invalid rows are reported with their line and skipped; valid ones are
// committed 10,000 per transaction. EINVALID for a CSV file without an
// email column (naming its columns) or an unreadable stream, with the
// counts of what was already committed.
func (e *Engine) ImportSuppressions(ctx context.Context, format ImportFormat, r io.Reader, reason string) (*ImportResult, error) {
	return importSuppressions(ctx, e.store, format, r, reason, e.now)
}

// Suppressions lists the suppression list, newest first, at most limit
// entries (see ListLimit); EINVALID for a limit out of range.
func (e *Engine) Suppressions(ctx context.Context, limit int) ([]*Suppression, error) {
	limit, err := ListLimit("limit", limit)
	if err != nil {
		return nil, err
	}
	return e.store.Suppressions(ctx, limit)
}

// sortCampaigns orders campaigns by id so budget sharing is deterministic.
func sortCampaigns(cs []*Campaign) {
	sort.Slice(cs, func(i, j int) bool { return cs[i].ID < cs[j].ID })
}
