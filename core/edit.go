package core

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/campaignd/campaignd/sdk"
)

// CampaignEdit is an operator's change to a campaign: every field that is
// not nil replaces the campaign's, the others stay as they are. An empty
// string clears an optional field (reply_to, text or html, as long as one
// body is left); an empty headers list removes the extra headers.
type CampaignEdit struct {
	Name        *string       `json:"name,omitempty"`
	Sender      *string       `json:"sender,omitempty"`
	From        *string       `json:"from,omitempty"`
	ReplyTo     *string       `json:"reply_to,omitempty"`
	Subject     *string       `json:"subject,omitempty"`
	Text        *string       `json:"text,omitempty"`
	HTML        *string       `json:"html,omitempty"`
	Headers     *[]sdk.Header `json:"headers,omitempty"`
	Concurrency *int          `json:"concurrency,omitempty"` // 0: the configured default
	BatchSize   *int          `json:"batch_size,omitempty"`  // 0: MaxBatchSize
	// SendWindow, NotBefore and Expires change the schedule ("" clears
	// that part; see CampaignSpec). An edit of only these is a schedule
	// change (ActionSchedule), allowed while SENDING and once COMPLETED.
	SendWindow *string `json:"send_window,omitempty"`
	NotBefore  *string `json:"not_before,omitempty"`
	Expires    *string `json:"expires,omitempty"`
}

// empty reports whether the edit changes nothing.
func (e CampaignEdit) empty() bool {
	return e.Name == nil && e.Sender == nil && e.From == nil && e.ReplyTo == nil && e.Subject == nil &&
		e.Text == nil && e.HTML == nil && e.Headers == nil && e.Concurrency == nil && e.BatchSize == nil &&
		!e.schedules()
}

// schedules reports whether the edit changes the schedule.
func (e CampaignEdit) schedules() bool {
	return e.SendWindow != nil || e.NotBefore != nil || e.Expires != nil
}

// onlySchedule reports whether the edit changes the schedule and nothing else.
func (e CampaignEdit) onlySchedule() bool {
	return e.schedules() && (CampaignEdit{SendWindow: e.SendWindow, NotBefore: e.NotBefore, Expires: e.Expires}) == e
}

// apply writes the edit's fields over spec.
func (e CampaignEdit) apply(spec *CampaignSpec) {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&spec.Name, e.Name)
	set(&spec.Sender, e.Sender)
	set(&spec.From, e.From)
	set(&spec.ReplyTo, e.ReplyTo)
	set(&spec.Subject, e.Subject)
	set(&spec.Text, e.Text)
	set(&spec.HTML, e.HTML)
	if e.Headers != nil {
		spec.Headers = *e.Headers
	}
	if e.Concurrency != nil {
		spec.Concurrency = *e.Concurrency
	}
	if e.BatchSize != nil {
		spec.BatchSize = *e.BatchSize
	}
	set(&spec.SendWindow, e.SendWindow)
	set(&spec.NotBefore, e.NotBefore)
	set(&spec.Expires, e.Expires)
}

// Spec returns the campaign's content and settings as the spec that would
// create it.
func (c *Campaign) Spec() CampaignSpec {
	st := c.Schedule.text()
	return CampaignSpec{
		Name: c.Name, Sender: c.Sender, From: c.From, ReplyTo: c.ReplyTo,
		Subject: c.Subject, Text: c.Text, HTML: c.HTML, Headers: c.Headers,
		Concurrency: c.Concurrency, BatchSize: c.BatchSize,
		SendWindow: st.SendWindow, NotBefore: st.NotBefore, Expires: st.Expires,
		schedule: c.Schedule,
	}
}

// setSpec writes a validated spec's content and settings into c.
func (c *Campaign) setSpec(s CampaignSpec) {
	c.Name, c.Sender, c.From, c.ReplyTo = s.Name, s.Sender, s.From, s.ReplyTo
	c.Subject, c.Text, c.HTML, c.Headers = s.Subject, s.Text, s.HTML, s.Headers
	c.Concurrency, c.BatchSize = s.Concurrency, s.BatchSize
	c.Schedule = s.schedule
}

// CloneRequest says how to clone a campaign. An empty Name names the copy
// after the original ("NAME (copy)"). WithRecipients copies the original's
// addresses, names and attributes as PENDING, whatever their status there
// (suppressed addresses are left out).
type CloneRequest struct {
	Name           string `json:"name,omitempty"`
	WithRecipients bool   `json:"with_recipients,omitempty"`
}

// CloneResult counts what CloneCampaign copied.
type CloneResult struct {
	Copied     int64 // recipients copied as PENDING
	Suppressed int64 // recipients left out: their address is on the suppression list
}

// DeleteResult says what DeleteCampaign removed, or with DryRun what it
// would remove.
type DeleteResult struct {
	CampaignID int64          `json:"campaign_id"`
	Name       string         `json:"name"`
	Status     CampaignStatus `json:"status"`
	Recipients int64          `json:"recipients"`
	Executions int64          `json:"executions"`
	Events     int64          `json:"events"`
	DryRun     bool           `json:"dry_run"`
	Message    string         `json:"message"`
}

// DeletedCampaign is the record a deleted campaign leaves: who deleted it
// and when, with its final counters. It keeps the campaign's id from being
// given to a new campaign, so Message-IDs (<cID.rN@domain>) of mail already
// sent are never repeated.
type DeletedCampaign struct {
	ID        int64          `json:"id"`
	Name      string         `json:"name"`
	Status    CampaignStatus `json:"status"`
	Stats     Stats          `json:"stats"`
	DeletedBy string         `json:"deleted_by"`
	DeletedAt time.Time      `json:"deleted_at"`
}

// checkSpec is the one validation of a campaign's content and settings,
// shared by create, edit and clone: the spec's own checks (see
// CampaignSpec.Validate, which fills defaults), that its sender is
// configured, and its templates executed for real (see CheckTemplates). It
// returns what the templates reference; EINVALID naming the first bad
// field, or the template, line and column.
func (e *Engine) checkSpec(spec *CampaignSpec) (TemplateRefs, error) {
	if err := spec.Validate(e.Limits().DefaultConcurrency); err != nil {
		return TemplateRefs{}, err
	}
	if err := checkHeaderLines(spec.Headers); err != nil {
		return TemplateRefs{}, err
	}
	if e.senders != nil && !e.senders.Has(spec.Sender) {
		return TemplateRefs{}, Errorf(EINVALID, "sender: %q is not configured (add a [senders.%s] table)", spec.Sender, spec.Sender)
	}
	return e.checkTemplates(*spec)
}

// checkHeaderLines refuses an extra header every message would fail on: one
// with a word too long to fold into a legal (998-octet) line. It renders a
// probe message holding each header alone, so the rule is the renderer's
// own. EINVALID naming the header.
func checkHeaderLines(headers []sdk.Header) error {
	for i, h := range headers {
		probe := sdk.Message{From: "probe@example.com", To: "probe@example.com", Subject: "probe", Text: "probe",
			Headers: []sdk.Header{h}}
		if _, err := probe.WriteTo(io.Discard); err != nil {
			return Errorf(EINVALID, "header %d (%q): a value every message would fail on: %v", i+1, h.Name, err)
		}
	}
	return nil
}

// EditCampaign changes a DRAFT, ACTIVE or PAUSED campaign's content and
// settings (only the fields edit sets), validated as at create, and returns
// the campaign after it. An edit of the schedule alone (send window,
// not-before, expiry) is allowed in every state but CANCELLED, see
// reschedule. The change applies to every message rendered after
// it, including retries of recipients that failed before it. EINVALID for
// an empty edit or a bad field; ECONFLICT from any other state, naming it
// and what to do (see Refused); ENOTFOUND for an unknown campaign.
//
// An edit whose templates reference attributes they did not before is
// ECONFLICT while a PENDING or QUEUED recipient lacks one of the new ones,
// unless ctx carries WithAllowMissingAttrs: activate and execute check
// PENDING rows only, so a campaign paused while SENDING would otherwise
// render the new attribute empty for every queued recipient after resume.
func (e *Engine) EditCampaign(ctx context.Context, id int64, edit CampaignEdit) (*Campaign, error) {
	c, err := e.store.Campaign(ctx, id)
	if err != nil {
		return nil, err
	}
	if edit.onlySchedule() {
		return e.reschedule(ctx, c, edit)
	}
	if err := Refused(c, ActionEdit); err != nil {
		return nil, err
	}
	if edit.empty() {
		return nil, Errorf(EINVALID, "edit campaign %d: nothing to change", id)
	}
	spec := c.Spec()
	edit.apply(&spec)
	refs, err := e.checkSpec(&spec)
	if err != nil {
		return nil, err
	}
	if edit.schedules() {
		if err := spec.schedule.checkOpens(e.now()); err != nil {
			return nil, err
		}
	}
	var added []string
	before := e.templateAttrs(c)
	for _, a := range refs.Attrs {
		if !slices.Contains(before, a) {
			added = append(added, a)
		}
	}
	if err := e.refuseMissingAttrs(ctx, id, ActionEdit, added, []RecipientStatus{RecipientPending, RecipientQueued},
		fmt.Sprintf("repeat the edit with --allow-missing-attrs (`campaignd campaign edit %d ... --allow-missing-attrs`)", id)); err != nil {
		return nil, err
	}
	c.setSpec(spec)
	c.TemplateAttrs = refs.Attrs
	if err := e.store.UpdateCampaign(ctx, c, e.now()); err != nil {
		return nil, fmt.Errorf("edit campaign %d: %w", id, err)
	}
	return e.store.Campaign(ctx, id)
}

// reschedule applies an edit of only the schedule: parsed as at create
// (but an expiry in the past is allowed: it expires the campaign at the
// next tick) and written without touching the content, in any state but
// CANCELLED. EINVALID for a part that does not parse or a window that
// does not open before a future expiry (see checkOpens), ECONFLICT for a
// CANCELLED campaign.
func (e *Engine) reschedule(ctx context.Context, c *Campaign, edit CampaignEdit) (*Campaign, error) {
	if err := Refused(c, ActionSchedule); err != nil {
		return nil, err
	}
	st := c.Schedule.text()
	spec := CampaignSpec{SendWindow: st.SendWindow, NotBefore: st.NotBefore, Expires: st.Expires}
	edit.apply(&spec)
	sched, err := ScheduleText{SendWindow: spec.SendWindow, NotBefore: spec.NotBefore, Expires: spec.Expires}.parse()
	if err != nil {
		return nil, err
	}
	if err := sched.checkOpens(e.now()); err != nil {
		return nil, err
	}
	if err := e.store.UpdateSchedule(ctx, c.ID, sched, e.now()); err != nil {
		return nil, fmt.Errorf("edit campaign %d: %w", c.ID, err)
	}
	return e.store.Campaign(ctx, c.ID)
}

// CloneCampaign copies a campaign's content and settings, in any state,
// into a new DRAFT campaign (validated as at create) and returns it; with
// req.WithRecipients its recipients come along as PENDING, in the same
// transaction. EINVALID for a bad name or a spec that no longer validates
// (a sender since removed from the configuration); ENOTFOUND for an
// unknown campaign.
func (e *Engine) CloneCampaign(ctx context.Context, id int64, req CloneRequest) (*Campaign, error) {
	src, err := e.store.Campaign(ctx, id)
	if err != nil {
		return nil, err
	}
	spec := src.Spec()
	spec.Name = req.Name
	if spec.Name == "" {
		spec.Name = src.Name + " (copy)"
	}
	refs, err := e.checkSpec(&spec)
	if err != nil {
		return nil, err
	}
	c := &Campaign{}
	c.setSpec(spec)
	c.TemplateAttrs = refs.Attrs
	if _, err := e.store.CloneCampaign(ctx, c, id, req.WithRecipients, e.now()); err != nil {
		return nil, fmt.Errorf("clone campaign %d: %w", id, err)
	}
	return e.store.Campaign(ctx, c.ID)
}

// DeleteCampaign removes a DRAFT, CANCELLED or COMPLETED campaign with its
// recipients, execution records and provider events, in one transaction,
// and leaves a DeletedCampaign record; tick records are global and stay.
// With dryRun it only counts what it would remove. ECONFLICT from any
// other state, naming it and what to do (see Refused); ENOTFOUND for an
// unknown campaign.
func (e *Engine) DeleteCampaign(ctx context.Context, id int64, dryRun bool) (*DeleteResult, error) {
	c, err := e.store.Campaign(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := Refused(c, ActionDelete); err != nil {
		return nil, err
	}
	res, err := e.store.DeleteCampaign(ctx, id, Actor(ctx), dryRun, e.now())
	if err != nil {
		return nil, fmt.Errorf("delete campaign %d: %w", id, err)
	}
	what := fmt.Sprintf("campaign %d (%s, %s) with %d recipients, %d executions and %d events",
		res.CampaignID, res.Name, res.Status, res.Recipients, res.Executions, res.Events)
	if dryRun {
		res.Message = "would delete " + what
	} else {
		res.Message = "deleted " + what
	}
	return res, nil
}
