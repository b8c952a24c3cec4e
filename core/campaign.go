package core

import (
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/campaignd/campaignd/sdk"
)

// MaxBatchSize is the hard ceiling on emails sent per tick, across all
// campaigns. Configuration above it is an error, never silently clamped.
const MaxBatchSize = 50

// DefaultConcurrency is the number of sends in flight per campaign when
// neither the campaign nor the configuration says otherwise.
const DefaultConcurrency = 5

// MaxConcurrency bounds a campaign's concurrency; it cannot usefully exceed
// the batch ceiling.
const MaxConcurrency = MaxBatchSize

// CampaignStatus is a campaign's lifecycle state.
type CampaignStatus string

// Campaign states. See Transition for the legal moves.
const (
	CampaignDraft     CampaignStatus = "DRAFT"
	CampaignActive    CampaignStatus = "ACTIVE"
	CampaignSending   CampaignStatus = "SENDING"
	CampaignPaused    CampaignStatus = "PAUSED"
	CampaignCompleted CampaignStatus = "COMPLETED"
	CampaignCancelled CampaignStatus = "CANCELLED"
)

// Action is an operator's request to move a campaign.
type Action string

// Operator actions on a campaign.
const (
	ActionActivate Action = "activate"
	ActionExecute  Action = "execute"
	ActionPause    Action = "pause"
	ActionResume   Action = "resume"
	ActionCancel   Action = "cancel"
	ActionRetry    Action = "retry"
	// ActionEdit changes a campaign's content and settings; the status
	// stays as it is.
	ActionEdit Action = "edit"
	// ActionDelete removes a campaign with its recipients and history.
	ActionDelete Action = "delete"
	// ActionSchedule changes only a campaign's send window, not-before or
	// expiry; the status stays as it is. It changes no message, so unlike
	// edit it is allowed while SENDING and once COMPLETED (to extend an
	// expiry before a retry).
	ActionSchedule Action = "schedule"
)

// Transition is the campaign state machine: the one place that says which
// change is legal. It returns the state an action moves a campaign to;
// pausedFrom is the state a PAUSED campaign returns to on resume. An
// illegal move returns an ECONFLICT error naming both states; an unknown
// action EINVALID. The engine asks it before every operator action, and the
// store asks it again for retry in the transaction that requeues.
//
//	DRAFT -activate-> ACTIVE -execute-> SENDING -(engine)-> COMPLETED
//	ACTIVE|SENDING -pause-> PAUSED -resume-> the state it was paused from
//	any but COMPLETED (and CANCELLED) -cancel-> CANCELLED
//	SENDING|COMPLETED -retry-> SENDING (failed recipients requeued)
//	PAUSED -retry-> PAUSED (requeued, sent after resume)
//	DRAFT|ACTIVE|PAUSED -edit-> the same state (content changed)
//	any but CANCELLED -schedule-> the same state (window, not-before, expiry)
//	DRAFT|CANCELLED|COMPLETED -delete-> gone ("" is returned)
//
// Edit and delete are refused where they could change or lose mail a tick
// is sending: SENDING must be paused before an edit and cancelled before a
// delete. Refused says so to the operator.
func Transition(from CampaignStatus, pausedFrom CampaignStatus, a Action) (CampaignStatus, error) {
	var to CampaignStatus
	switch a {
	case ActionActivate:
		to = CampaignActive
		if from == CampaignDraft {
			return to, nil
		}
	case ActionExecute:
		to = CampaignSending
		if from == CampaignActive {
			return to, nil
		}
	case ActionPause:
		to = CampaignPaused
		if from == CampaignActive || from == CampaignSending {
			return to, nil
		}
	case ActionResume:
		to = pausedFrom
		if to == "" {
			to = CampaignActive
		}
		if from == CampaignPaused {
			return to, nil
		}
		to = CampaignActive
	case ActionCancel:
		to = CampaignCancelled
		if from != CampaignCompleted && from != CampaignCancelled {
			return to, nil
		}
	case ActionRetry:
		to = CampaignSending
		switch from {
		case CampaignSending, CampaignCompleted:
			return to, nil
		case CampaignPaused:
			// Requeued rows wait for the resume: a paused campaign
			// stays paused whatever its operator retries.
			return CampaignPaused, nil
		}
	case ActionEdit:
		switch from {
		case CampaignDraft, CampaignActive, CampaignPaused:
			return from, nil
		}
		return "", Errorf(ECONFLICT, "cannot edit a %s campaign", from)
	case ActionDelete:
		switch from {
		case CampaignDraft, CampaignCancelled, CampaignCompleted:
			return "", nil
		}
		return "", Errorf(ECONFLICT, "cannot delete a %s campaign", from)
	case ActionSchedule:
		if from != CampaignCancelled {
			return from, nil
		}
		return "", Errorf(ECONFLICT, "cannot reschedule a %s campaign", from)
	default:
		return "", Errorf(EINVALID, "unknown campaign action %q", a)
	}
	return "", Errorf(ECONFLICT, "cannot %s a campaign from %s to %s", a, from, to)
}

// Refused returns the ECONFLICT error for an action Transition refuses on
// campaign c: it names the campaign's id and state, says the command that
// gets the operator where they want to be, and keeps Transition's words
// (both states) after it, e.g. "campaign 3 is DRAFT: run `campaignd
// campaign activate 3` first (cannot execute a campaign from DRAFT to
// SENDING)". Executing a campaign already SENDING says how many it has
// queued and which commands send or show them. It returns Transition's
// other errors as they are, and nil when Transition allows the action.
func Refused(c *Campaign, a Action) error {
	_, err := Transition(c.Status, c.PausedFrom, a)
	if err == nil || ErrorCode(err) != ECONFLICT {
		return err
	}
	if hint := nextStep(c, a); hint != "" {
		return Errorf(ECONFLICT, "campaign %d is %s: %s (%s)", c.ID, c.Status, hint, ErrorMessage(err))
	}
	return fmt.Errorf("campaign %d: %w", c.ID, err)
}

// nextStep says what to run instead of a refused action a on c; "" when
// there is nothing better to say than Transition's refusal.
func nextStep(c *Campaign, a Action) string {
	id := c.ID
	cmd := func(sub string) string { return fmt.Sprintf("`campaignd campaign %s %d`", sub, id) }
	switch c.Status {
	case CampaignDraft:
		switch a {
		case ActionExecute, ActionRetry:
			return "run " + cmd("activate") + " first, then " + cmd("execute")
		case ActionPause, ActionResume:
			return "nothing is being sent: " + cmd("activate") + " then " + cmd("execute") + " start it"
		}
	case CampaignActive:
		switch a {
		case ActionActivate:
			return "already active: " + cmd("execute") + " queues its recipients"
		case ActionRetry:
			return "nothing was sent yet: " + cmd("execute") + " queues its recipients"
		case ActionResume:
			return "not paused: " + cmd("execute") + " queues its recipients"
		}
	case CampaignSending:
		switch a {
		case ActionExecute:
			return fmt.Sprintf("already SENDING with %s queued: `campaignd tick` sends them, or see `campaignd queue`",
				Thousands(c.Stats.Queued+c.Stats.Sending))
		case ActionActivate:
			return "already executed: `campaignd tick` sends its queue, or see `campaignd queue`"
		case ActionResume:
			return "not paused: `campaignd tick` sends its queue"
		}
	case CampaignPaused:
		switch a {
		case ActionPause:
			return "already paused: " + cmd("resume") + " resumes it"
		case ActionExecute, ActionActivate:
			return "run " + cmd("resume") + " first"
		}
	case CampaignCompleted:
		switch a {
		case ActionExecute, ActionActivate:
			return "it has sent to every recipient: " + cmd("retry") + " queues the failed ones again, " + cmd("clone") + " copies it for a new send"
		case ActionPause, ActionResume, ActionCancel:
			return "nothing is left to send; " + cmd("delete") + " --yes removes it"
		}
	case CampaignCancelled:
		return "a cancelled campaign stays cancelled: " + cmd("clone") + " --with-recipients copies it into a new DRAFT"
	}
	switch a {
	case ActionEdit:
		if c.Status == CampaignSending {
			return "it cannot be edited while sending: run " + cmd("pause") + " first, then edit it and " + cmd("resume") +
				" (--send-window, --not-before and --expires alone can change now)"
		}
		if c.Status == CampaignCompleted {
			return "its content is final: " + cmd("clone") + " copies it into a new DRAFT you can edit (--expires alone can change, before a retry)"
		}
		return "its content is final: " + cmd("clone") + " copies it into a new DRAFT you can edit"
	case ActionDelete:
		return "it cannot be deleted: run " + cmd("cancel") + " first (its unsent recipients fail as cancelled), then delete it"
	}
	return ""
}

// Thousands formats n with commas between groups of three digits
// ("1,200"), as counts appear in messages.
func Thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// Stats are a campaign's per-status recipient counters. They are kept in the
// same transaction as every status change, so reading them is O(1).
type Stats struct {
	Total   int64 `json:"total"`
	Pending int64 `json:"pending"`
	Queued  int64 `json:"queued"`
	Sending int64 `json:"sending"`
	Sent    int64 `json:"sent"`
	Failed  int64 `json:"failed"`
	Bounced int64 `json:"bounced"`
}

// Unfinished reports how many recipients still have to reach a final state.
func (s Stats) Unfinished() int64 { return s.Pending + s.Queued + s.Sending }

// Campaign is one email campaign and its counters.
type Campaign struct {
	ID          int64          `json:"id"`
	Name        string         `json:"name"`
	Sender      string         `json:"sender"`
	From        string         `json:"from"`
	ReplyTo     string         `json:"reply_to,omitempty"`
	Subject     string         `json:"subject"`
	Text        string         `json:"text,omitempty"`
	HTML        string         `json:"html,omitempty"`
	Headers     []sdk.Header   `json:"headers,omitempty"`
	Concurrency int            `json:"concurrency"`
	BatchSize   int            `json:"batch_size"`
	Status      CampaignStatus `json:"status"`
	PausedFrom  CampaignStatus `json:"paused_from,omitempty"`
	CreatedAt   time.Time      `json:"created_at"`
	UpdatedAt   time.Time      `json:"updated_at"`
	Stats       Stats          `json:"stats"`
	// TemplateAttrs are the recipient attributes the templates reference
	// (see CheckTemplates), sorted; set at create.
	TemplateAttrs []string `json:"template_attrs"`
	// StartedAt is the first execute, FinishedAt when the campaign last
	// became COMPLETED (cleared when a retry reopens it), LastTickAt when a
	// tick last claimed its recipients; nil until they happen.
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	LastTickAt *time.Time `json:"last_tick_at"`
	// Schedule is when the campaign may send (send_window, not_before,
	// expires); all unset by default: always.
	Schedule
}

// CampaignSpec is what an operator supplies to create a campaign.
type CampaignSpec struct {
	Name        string       `json:"name"`
	Sender      string       `json:"sender"`
	From        string       `json:"from"`
	ReplyTo     string       `json:"reply_to,omitempty"`
	Subject     string       `json:"subject"`
	Text        string       `json:"text,omitempty"`
	HTML        string       `json:"html,omitempty"`
	Headers     []sdk.Header `json:"headers,omitempty"`
	Concurrency int          `json:"concurrency,omitempty"` // 0: the configured default
	BatchSize   int          `json:"batch_size,omitempty"`  // 0: MaxBatchSize
	// SendWindow, NotBefore and Expires are the schedule as the operator
	// writes it (see ParseSendWindow and ParseSendTime); "" leaves a part
	// unset. Validate parses them.
	SendWindow string `json:"send_window,omitempty"`
	NotBefore  string `json:"not_before,omitempty"`
	Expires    string `json:"expires,omitempty"`

	schedule Schedule // parsed by Validate
}

// reservedHeaders are set by campaignd itself; a campaign may not override
// them through extra headers.
var reservedHeaders = map[string]bool{
	"from": true, "to": true, "cc": true, "bcc": true, "reply-to": true, "subject": true,
	"date": true, "message-id": true, "mime-version": true, "content-type": true,
	"content-transfer-encoding": true, "list-unsubscribe": true, "list-unsubscribe-post": true,
}

// Validate checks every field of the spec and fills defaults. It returns an
// EINVALID error naming the first bad field: CR, LF or NUL in any
// header-bound field, non-UTF-8, an unparsable address or template, batch
// size outside 1..50, concurrency outside 1..50, a send window, not-before
// or expiry that does not parse, or an expiry not after not-before (those
// name their flag: --send-window, --not-before, --expires).
func (s *CampaignSpec) Validate(defaultConcurrency int) error {
	s.Name = strings.TrimSpace(s.Name)
	if s.Name == "" {
		return Errorf(EINVALID, "name: required")
	}
	if s.Sender == "" {
		return Errorf(EINVALID, "sender: required")
	}
	for field, v := range map[string]string{"name": s.Name, "sender": s.Sender, "from": s.From,
		"reply_to": s.ReplyTo, "subject": s.Subject, "text": s.Text, "html": s.HTML} {
		if !utf8.ValidString(v) {
			return Errorf(EINVALID, "%s: not valid UTF-8", field)
		}
		if strings.ContainsRune(v, 0) {
			return Errorf(EINVALID, "%s: contains a NUL byte", field)
		}
	}
	for field, v := range map[string]string{"name": s.Name, "sender": s.Sender, "from": s.From,
		"reply_to": s.ReplyTo, "subject": s.Subject} {
		if strings.ContainsAny(v, "\r\n") {
			return Errorf(EINVALID, "%s: contains CR or LF", field)
		}
	}
	if _, err := mail.ParseAddress(s.From); err != nil {
		return Errorf(EINVALID, "from: invalid address %q: %v", s.From, err)
	}
	if s.ReplyTo != "" {
		if _, err := mail.ParseAddress(s.ReplyTo); err != nil {
			return Errorf(EINVALID, "reply_to: invalid address %q: %v", s.ReplyTo, err)
		}
	}
	if s.Subject == "" {
		return Errorf(EINVALID, "subject: required")
	}
	if s.Text == "" && s.HTML == "" {
		return Errorf(EINVALID, "text/html: a campaign needs a text or an HTML body")
	}
	// Parsed here; executed against a sample by CheckTemplates.
	if _, _, err := parseTemplates(s.Subject, s.Text, s.HTML); err != nil {
		return err
	}
	for i, h := range s.Headers {
		if err := sdk.ValidateHeader(h.Name, h.Value); err != nil {
			return Errorf(EINVALID, "header %d (%q): %v", i+1, h.Name, err)
		}
		if reservedHeaders[strings.ToLower(h.Name)] {
			return Errorf(EINVALID, "header %d: %s is set by campaignd and cannot be overridden", i+1, h.Name)
		}
	}
	if s.Concurrency == 0 {
		s.Concurrency = defaultConcurrency
	}
	if s.Concurrency < 1 || s.Concurrency > MaxConcurrency {
		return Errorf(EINVALID, "concurrency: %d is outside 1..%d", s.Concurrency, MaxConcurrency)
	}
	if s.BatchSize == 0 {
		s.BatchSize = MaxBatchSize
	}
	if s.BatchSize < 1 || s.BatchSize > MaxBatchSize {
		return Errorf(EINVALID, "batch_size: %d is outside 1..%d (50 per tick is the hard ceiling)", s.BatchSize, MaxBatchSize)
	}
	sched, err := ScheduleText{SendWindow: s.SendWindow, NotBefore: s.NotBefore, Expires: s.Expires}.parse()
	if err != nil {
		return err
	}
	s.schedule = sched
	return nil
}
