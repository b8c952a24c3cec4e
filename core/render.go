package core

import (
	"bytes"
	"context"
	htmltemplate "html/template"
	"io"
	"maps"
	"mime"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/template"
	"time"

	"github.com/campaignd/campaignd/sdk"
)

// RenderData is what a campaign's templates see for one recipient:
// {{.Email}}, {{.Name}}, {{.Attr.city}}, {{.Campaign.Name}}, {{.UnsubscribeURL}}.
type RenderData struct {
	Email          string
	Name           string
	Attr           map[string]string
	Campaign       RenderCampaign
	UnsubscribeURL string
}

// RenderCampaign is the campaign as templates see it.
type RenderCampaign struct {
	ID   int64
	Name string
}

// Renderer turns a campaign and a recipient into a Message. Build one per
// campaign with NewRenderer; it is safe for concurrent use.
type Renderer struct {
	c           *Campaign
	tmpl        *parsedTemplates
	budget      RenderBudget
	domain      string
	returnPath  string // VERP template; "" leaves the envelope sender to the plugin
	unsubscribe func(c *Campaign, r *Recipient) string
}

// parsedTemplates are a campaign's templates parsed once, with the pool of
// executable copies its renders take turns on. They depend on the three
// template sources alone (the budget, the campaign's other fields and the
// unsubscribe URL are the Renderer's), so Renderers of the same sources
// may share them: the engine keeps them across ticks (see
// Engine.campaignTemplates) instead of parsing, cloning and escaping the
// templates again for every batch. Safe for concurrent use.
type parsedTemplates struct {
	subject, text, html string       // the sources parsed
	master              *templateSet // parsed and instrumented, never executed
	refs                TemplateRefs

	mu   sync.Mutex
	free []*pooledSet // executable copies not in use
}

// parseCampaignTemplates parses subject, text and HTML (see
// parseTemplates); EINVALID names the template that does not parse.
func parseCampaignTemplates(subject, text, html string) (*parsedTemplates, error) {
	master, refs, err := parseTemplates(subject, text, html)
	if err != nil {
		return nil, err
	}
	return &parsedTemplates{subject: subject, text: text, html: html, master: master, refs: refs}, nil
}

// parses reports whether p holds exactly these sources.
func (p *parsedTemplates) parses(subject, text, html string) bool {
	return p.subject == subject && p.text == text && p.html == html
}

// pooledSet is an executable copy of the master set whose budget
// checkpoints ask cur: one render at a time uses it.
type pooledSet struct {
	templateSet
	cur *renderRun
	w   budgetWriter // reused by the set's renders: its buffer keeps its size
}

// maxPooledBuffer is the largest render buffer a pooled set keeps: one
// unusually large message must not pin its size for the daemon's life.
const maxPooledBuffer = 64 << 10

// RenderOption customises a Renderer.
type RenderOption func(*Renderer)

// WithRenderBudget sets the render budget; a zero field keeps its default
// (DefaultRenderBudget).
func WithRenderBudget(b RenderBudget) RenderOption {
	return func(r *Renderer) {
		if b.Timeout > 0 {
			r.budget.Timeout = b.Timeout
		}
		if b.MaxBytes > 0 {
			r.budget.MaxBytes = b.MaxBytes
		}
	}
}

// WithReturnPath sets the VERP envelope-sender template (see
// RenderReturnPath) that each rendered message carries as its ReturnPath;
// "" (the default) leaves the envelope sender to the plugin. The template
// must have passed ValidateReturnPath.
func WithReturnPath(tmpl string) RenderOption {
	return func(r *Renderer) { r.returnPath = tmpl }
}

// NewRenderer parses the campaign's templates. messageIDDomain names the
// right-hand side of Message-IDs ("" uses the From address's domain);
// unsubscribe, when not nil, returns the recipient's unsubscribe URL. It
// returns an EINVALID error when a template does not parse or asks for a
// literal range over MaxRangeCount.
func NewRenderer(c *Campaign, messageIDDomain string, unsubscribe func(*Campaign, *Recipient) string, opts ...RenderOption) (*Renderer, error) {
	tmpl, err := parseCampaignTemplates(c.Subject, c.Text, c.HTML)
	if err != nil {
		return nil, err
	}
	return newRendererOf(c, tmpl, messageIDDomain, unsubscribe, opts...), nil
}

// newRendererOf is NewRenderer on templates already parsed from c's
// sources.
func newRendererOf(c *Campaign, tmpl *parsedTemplates, messageIDDomain string, unsubscribe func(*Campaign, *Recipient) string, opts ...RenderOption) *Renderer {
	r := &Renderer{c: c, tmpl: tmpl, unsubscribe: unsubscribe, budget: DefaultRenderBudget()}
	for _, o := range opts {
		o(r)
	}
	r.domain = MessageIDDomain(c, messageIDDomain)
	return r
}

// MessageIDDomain returns the right-hand side of a campaign's Message-IDs:
// configured ([queue] message_id_domain) when set, else the domain of the
// campaign's From address, else "campaignd.invalid".
func MessageIDDomain(c *Campaign, configured string) string {
	if configured != "" {
		return configured
	}
	if a, err := mail.ParseAddress(c.From); err == nil {
		if d := a.Address[strings.LastIndexByte(a.Address, '@')+1:]; d != "" {
			return d
		}
	}
	return "campaignd.invalid"
}

// Refs returns what the campaign's templates reference.
func (r *Renderer) Refs() TemplateRefs { return r.tmpl.refs }

// MessageID returns the deterministic Message-ID of a recipient of the
// campaign: the same on every retry and resend, so a duplicate delivery is
// recognisable.
func (r *Renderer) MessageID(recipientID int64) string {
	// Built by hand: it is called once per message on the send path.
	b := make([]byte, 0, 48+len(r.domain))
	b = append(b, "<c"...)
	b = strconv.AppendInt(b, r.c.ID, 10)
	b = append(b, ".r"...)
	b = strconv.AppendInt(b, recipientID, 10)
	b = append(b, '@')
	b = append(b, r.domain...)
	b = append(b, '>')
	return string(b)
}

// Render is RenderContext without a context.
func (r *Renderer) Render(rc *Recipient, now time.Time) (*sdk.Message, error) {
	return r.RenderContext(context.Background(), rc, now)
}

// RenderContext builds the message for one recipient. A template that
// fails on the recipient's data, a rendered subject containing CR or LF,
// or a message over the render budget returns an EINVALID error (the
// recipient fails with class template); a ctx that ends first returns an
// EUNAVAILABLE error (the recipient is not at fault). An attribute the
// templates reference that the recipient lacks renders empty (activate
// and execute are where missing attributes are refused).
//
// The budget guarantees:
//   - RenderContext returns within the budget's Timeout (plus scheduling)
//     or as soon as ctx ends, whatever the templates do: execution runs in
//     its own goroutine, which is abandoned when the budget is spent.
//   - An abandoned execution stops by itself: every write and every
//     budget checkpoint (at the start of each template and of each
//     {{range}} iteration) fails once the deadline has passed or the
//     caller gave up, so a loop, writing or not, ends within one
//     iteration. Between checkpoints a template does straight-line work
//     bounded by its own size (builtins are bounded: printf refuses widths
//     over 10^6).
//   - At most MaxBytes are rendered (subject, text and HTML together): the
//     writer refuses the write that would pass the limit.
func (r *Renderer) RenderContext(ctx context.Context, rc *Recipient, now time.Time) (*sdk.Message, error) {
	data := RenderData{
		Email:    rc.Email,
		Name:     rc.Name,
		Attr:     rc.Attrs,
		Campaign: RenderCampaign{ID: r.c.ID, Name: r.c.Name},
	}
	if refs := r.tmpl.refs; len(refs.Attrs) > 0 {
		data.Attr = make(map[string]string, len(rc.Attrs)+len(refs.Attrs))
		for _, k := range refs.Attrs {
			data.Attr[k] = ""
		}
		maps.Copy(data.Attr, rc.Attrs)
	}
	if data.Attr == nil {
		// Shared: templates only read their data, they cannot write a map.
		data.Attr = noAttrs
	}
	if r.unsubscribe != nil {
		data.UnsubscribeURL = r.unsubscribe(r.c, rc)
	}
	parts, err := r.execute(ctx, &data)
	if err != nil {
		return nil, err
	}
	subject, text, html := parts[0], parts[1], parts[2]
	if strings.ContainsAny(subject, "\r\n\x00") {
		return nil, Errorf(EINVALID, "subject: rendered subject contains CR, LF or NUL")
	}
	// Stored addresses are addr-specs, quoted where needed ("a b"@x.org);
	// mail.Address wants the unquoted form and quotes it again itself.
	toAddr := rc.Email
	if !plainAddrSpec(rc.Email) {
		if a, perr := mail.ParseAddress(rc.Email); perr == nil {
			toAddr = a.Address
		}
	}
	to := (&mail.Address{Name: rc.Name, Address: toAddr}).String()
	_, perr := mail.ParseAddress(to)
	if perr != nil && rc.Name != "" {
		// net/mail Q-encodes a name with a backslash into a word it cannot
		// read back; B-encoding always reads back.
		to = mime.BEncoding.Encode("utf-8", rc.Name) + " " + (&mail.Address{Address: toAddr}).String()
		_, perr = mail.ParseAddress(to)
	}
	if perr != nil {
		return nil, Errorf(EINVALID, "to: %q cannot be rendered as an address: %v", rc.Email, perr)
	}
	headers := make([]sdk.Header, 0, len(r.c.Headers)+3)
	headers = append(headers, r.c.Headers...)
	// A campaign's own Precedence (say "list") replaces the default rather
	// than joining it: two Precedence headers leave receivers to guess.
	if !slices.ContainsFunc(r.c.Headers, func(h sdk.Header) bool { return strings.EqualFold(h.Name, "Precedence") }) {
		headers = append(headers, sdk.Header{Name: "Precedence", Value: "bulk"})
	}
	if data.UnsubscribeURL != "" {
		if strings.ContainsAny(data.UnsubscribeURL, "\r\n\x00<>") {
			return nil, Errorf(EINVALID, "unsubscribe URL contains forbidden characters")
		}
		headers = append(headers,
			sdk.Header{Name: "List-Unsubscribe", Value: "<" + data.UnsubscribeURL + ">"},
			sdk.Header{Name: "List-Unsubscribe-Post", Value: "List-Unsubscribe=One-Click"})
	}
	return &sdk.Message{
		CampaignID:  r.c.ID,
		RecipientID: rc.ID,
		MessageID:   r.MessageID(rc.ID),
		From:        r.c.From,
		To:          to,
		ReplyTo:     r.c.ReplyTo,
		Subject:     subject,
		Text:        text,
		HTML:        html,
		Date:        now,
		Headers:     headers,
		ReturnPath:  r.ReturnPath(rc.ID),
	}, nil
}

// ReturnPath returns the envelope sender of a recipient's message: the
// VERP template rendered for it, or "" without one.
func (r *Renderer) ReturnPath(recipientID int64) string {
	if r.returnPath == "" {
		return ""
	}
	return RenderReturnPath(r.returnPath, r.c.ID, recipientID)
}

// The placeholders of a VERP return-path template.
const (
	ReturnPathCampaign  = "{campaign}"
	ReturnPathRecipient = "{recipient}"
)

// RenderReturnPath renders a VERP return-path template for one message:
// {campaign} and {recipient} become the ids, so a bounce sent to the
// address names the recipient even when it quotes none of the message.
func RenderReturnPath(tmpl string, campaignID, recipientID int64) string {
	return strings.NewReplacer(ReturnPathCampaign, strconv.FormatInt(campaignID, 10),
		ReturnPathRecipient, strconv.FormatInt(recipientID, 10)).Replace(tmpl)
}

// ValidateReturnPath checks a VERP return-path template: {campaign} and
// {recipient} each exactly once, in the local part, each next to a
// character that is not a digit (or the start), so the address reads back
// unambiguously; rendered with the largest ids, a bare address (no display
// name, no angle brackets) whose local part fits 64 octets. It returns an
// EINVALID error saying which rule failed.
func ValidateReturnPath(tmpl string) error {
	at := strings.LastIndexByte(tmpl, '@')
	if at < 0 {
		return Errorf(EINVALID, "%q must be an address such as \"bounces+{campaign}.{recipient}@example.com\"", tmpl)
	}
	for _, ph := range []string{ReturnPathCampaign, ReturnPathRecipient} {
		i := strings.Index(tmpl, ph)
		switch {
		case i < 0 || strings.Count(tmpl, ph) != 1:
			return Errorf(EINVALID, "%q must contain %s exactly once, e.g. \"bounces+{campaign}.{recipient}@example.com\"", tmpl, ph)
		case i > at:
			return Errorf(EINVALID, "%q: %s must be in the local part, before the @", tmpl, ph)
		case i > 0 && isDigit(tmpl[i-1]), i+len(ph) < len(tmpl) && isDigit(tmpl[i+len(ph)]),
			strings.Contains(tmpl, ReturnPathCampaign+ReturnPathRecipient), strings.Contains(tmpl, ReturnPathRecipient+ReturnPathCampaign):
			return Errorf(EINVALID, "%q: %s must be separated from digits and the other placeholder by a non-digit, e.g. \".\"", tmpl, ph)
		}
	}
	const maxID = 1<<63 - 1
	addr := RenderReturnPath(tmpl, maxID, maxID)
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Name != "" || a.Address != addr || !plainAddrSpec(addr) {
		return Errorf(EINVALID, "%q does not render to a bare address (e.g. %q is not one)", tmpl, addr)
	}
	if local := addr[:strings.LastIndexByte(addr, '@')]; len(local) > 64 {
		return Errorf(EINVALID, "%q: the local part is over 64 octets with the largest ids", tmpl)
	}
	return nil
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// noAttrs is the Attr of every recipient without attributes when the
// templates reference none; never written.
var noAttrs = map[string]string{}

// plainAddrSpec reports whether s holds none of the characters with which
// an address can mean something other than its own text (quotes, escapes,
// comments, angle brackets, domain literals, groups, white space): for
// such an s, mail.ParseAddress either fails or returns s unchanged, so
// it need not be called.
func plainAddrSpec(s string) bool {
	return !strings.ContainsAny(s, "\"\\()<>[],;: \t\r\n")
}

// renderGrace is how long past its deadline a render may take to report
// where it stopped before it is abandoned.
const renderGrace = 50 * time.Millisecond

// renderRun is one render's budget, which its set's checkpoints and its
// writer ask.
type renderRun struct {
	deadline time.Time
	gaveUp   atomic.Bool // the caller stopped waiting
}

func (b *renderRun) check() error {
	if b.gaveUp.Load() {
		return errRenderAbandon
	}
	if time.Now().After(b.deadline) {
		return errRenderTimeout
	}
	return nil
}

// budgetWriter refuses a write once its run is over budget in time or
// the next write would pass max bytes in all.
type budgetWriter struct {
	buf bytes.Buffer
	run *renderRun
	n   int64
	max int64
}

func (w *budgetWriter) Write(p []byte) (int, error) {
	if err := w.run.check(); err != nil {
		return 0, err
	}
	if w.n+int64(len(p)) > w.max {
		return 0, errRenderTooLarge
	}
	w.n += int64(len(p))
	return w.buf.Write(p)
}

// execute renders subject, text and HTML under the budget (see
// RenderContext).
func (r *Renderer) execute(ctx context.Context, data *RenderData) ([3]string, error) {
	run := &renderRun{deadline: time.Now().Add(r.budget.Timeout)}
	type result struct {
		parts [3]string
		err   error
	}
	done := make(chan result, 1) // the abandoned goroutine must not block
	goRender(func() {
		var res result
		res.parts, res.err = r.executeSet(run, data)
		done <- res
	})
	timer := time.NewTimer(r.budget.Timeout)
	defer timer.Stop()
	select {
	case res := <-done:
		return res.parts, res.err
	case <-timer.C:
		// The execution fails at its next checkpoint or write: give it a
		// moment to say in which template.
		grace := time.NewTimer(renderGrace)
		defer grace.Stop()
		select {
		case res := <-done:
			return res.parts, res.err
		case <-grace.C:
		case <-ctx.Done():
		}
		run.gaveUp.Store(true)
		return [3]string{}, renderError("message", errRenderTimeout, r.budget)
	case <-ctx.Done():
		run.gaveUp.Store(true)
		return [3]string{}, Errorf(EUNAVAILABLE, "render: %v", ctx.Err())
	}
}

// renderJobs hands a render to an idle render worker.
var renderJobs = make(chan func())

// renderWorkerIdle is how long a render worker waits for its next render
// before it ends.
const renderWorkerIdle = 10 * time.Second

// goRender runs f in a goroutine of its own, as `go f()` would: an idle
// render worker's when there is one, else a new worker's. A worker's
// stack has grown to what executing templates needs (reflective calls
// want a deep one), so renders do not each start a goroutine and copy its
// stack as it grows. An abandoned render keeps its worker until it ends,
// as it kept its goroutine.
func goRender(f func()) {
	select {
	case renderJobs <- f:
	default:
		go renderWorker(f)
	}
}

func renderWorker(f func()) {
	f()
	idle := time.NewTimer(renderWorkerIdle)
	defer idle.Stop()
	for {
		select {
		case f := <-renderJobs:
			f()
			idle.Reset(renderWorkerIdle)
		case <-idle.C:
			return
		}
	}
}

// executeSet runs the three templates on a pooled set; the set goes back
// to the pool only when its execution has ended.
func (r *Renderer) executeSet(run *renderRun, data *RenderData) ([3]string, error) {
	var parts [3]string
	set, err := r.tmpl.take()
	if err != nil {
		return parts, err
	}
	defer r.tmpl.give(set)
	set.cur = run
	w := &set.w
	w.buf.Reset()
	w.run, w.n, w.max = run, 0, r.budget.MaxBytes
	defer func() {
		w.run = nil
		if w.buf.Cap() > maxPooledBuffer {
			w.buf = bytes.Buffer{}
		}
	}()
	// Boxed once for the three templates, not once for each.
	var d any = *data
	type executor interface {
		Execute(io.Writer, any) error
	}
	for i, t := range []struct {
		name string
		src  string
		ex   executor
	}{{"subject", r.c.Subject, set.subject}, {"text", r.c.Text, set.text}, {"html", r.c.HTML, set.html}} {
		if t.src == "" {
			continue
		}
		if err := t.ex.Execute(w, d); err != nil {
			return parts, renderError(t.name, err, r.budget)
		}
		parts[i] = w.buf.String()
		w.buf.Reset()
	}
	return parts, nil
}

// take returns an executable copy of the master set: a free one, or a
// new clone whose checkpoints ask its own current run.
func (p *parsedTemplates) take() (*pooledSet, error) {
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		s := p.free[n-1]
		p.free = p.free[:n-1]
		p.mu.Unlock()
		return s, nil
	}
	p.mu.Unlock()
	s := &pooledSet{}
	check := func() (string, error) { return "", s.cur.check() }
	var err error
	if s.subject, err = p.master.subject.Clone(); err != nil {
		return nil, Errorf(EINTERNAL, "subject: clone template: %v", err)
	}
	if s.text, err = p.master.text.Clone(); err != nil {
		return nil, Errorf(EINTERNAL, "text: clone template: %v", err)
	}
	if s.html, err = p.master.html.Clone(); err != nil {
		return nil, Errorf(EINTERNAL, "html: clone template: %v", err)
	}
	s.subject.Funcs(template.FuncMap{budgetFunc: check})
	s.text.Funcs(template.FuncMap{budgetFunc: check})
	s.html.Funcs(htmltemplate.FuncMap{budgetFunc: check})
	return s, nil
}

func (p *parsedTemplates) give(s *pooledSet) {
	s.cur = nil
	p.mu.Lock()
	p.free = append(p.free, s)
	p.mu.Unlock()
}
