package core

import (
	"context"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
)

// What a campaign's templates may do, and what is checked where:
//
//   - At create (and edit) CheckTemplates parses every template (subject,
//     text, html; header values are literal, never templates), refuses a
//     {{range}} over an integer literal (or nested literals) above
//     MaxRangeCount, refuses {{.UnsubscribeURL}} while no public URL is
//     configured, and executes each template against a sample recipient
//     under the render budget: an unknown field, a failing function or a
//     template over budget is refused with its template name, line and
//     column.
//   - The attributes the templates reference literally ({{.Attr.city}},
//     {{index .Attr "city"}}, {{with .Attr}}{{.city}}{{end}}, $.Attr.city)
//     are stored with the campaign (Campaign.TemplateAttrs); import counts
//     the rows lacking one, and activate and execute refuse while a
//     recipient lacks one unless WithAllowMissingAttrs is given. At send
//     time a referenced attribute a recipient lacks renders empty: the
//     operator decided at activate/execute.
//   - Every message renders under a RenderBudget (see Renderer.RenderContext
//     for exactly what it guarantees).

// MaxRangeCount bounds the iterations a {{range N}} over integer literals
// may ask for (nested literal ranges multiply): no mail needs more, and a
// template that asks for more is refused when it is parsed, at create and
// at send time alike.
const MaxRangeCount = 100_000

// RenderBudget bounds the rendering of one message ([queue] render_timeout
// and render_max_bytes).
type RenderBudget struct {
	// Timeout bounds the time to render subject, text and HTML together.
	Timeout time.Duration
	// MaxBytes bounds the rendered subject, text and HTML together.
	MaxBytes int64
}

// Defaults and ceilings of the render budget: no sane template comes near
// the defaults.
const (
	DefaultRenderTimeout  = 2 * time.Second
	DefaultRenderMaxBytes = 10 << 20
	MaxRenderTimeout      = 30 * time.Second
	MaxRenderMaxBytes     = 100 << 20
)

// DefaultRenderBudget returns the documented defaults.
func DefaultRenderBudget() RenderBudget {
	return RenderBudget{Timeout: DefaultRenderTimeout, MaxBytes: DefaultRenderMaxBytes}
}

// TemplateRefs is what a campaign's templates reference.
type TemplateRefs struct {
	// Attrs are the attribute keys referenced literally, sorted. Keys
	// computed at render time ({{index .Attr $k}}) cannot be known.
	Attrs []string
	// UnsubscribeURL is where {{.UnsubscribeURL}} is first used
	// ("text:3:9"), "" when it is not.
	UnsubscribeURL string
}

// TemplateCheckOptions say what CheckTemplates checks against.
type TemplateCheckOptions struct {
	// Budget is the render budget the sample must render within; a zero
	// field takes its default.
	Budget RenderBudget
	// HasUnsubscribeURL is true when recipients get an unsubscribe URL
	// (http.public_url is set); without it {{.UnsubscribeURL}} is refused.
	HasUnsubscribeURL bool
}

// SampleRecipient is the recipient CheckTemplates renders: every
// referenced attribute is set to "sample".
func SampleRecipient(refs TemplateRefs) *Recipient {
	attrs := make(map[string]string, len(refs.Attrs))
	for _, k := range refs.Attrs {
		attrs[k] = "sample"
	}
	return &Recipient{Email: "sample@example.com", Name: "Sample Recipient", Attrs: attrs}
}

// CheckTemplates checks a campaign's templates for real: it parses them
// (see MaxRangeCount), refuses {{.UnsubscribeURL}} when
// !opts.HasUnsubscribeURL, and renders a message for SampleRecipient
// under opts.Budget. It returns what the templates reference, or an
// EINVALID error whose message names the template, line and column, e.g.
// "subject:1:5: unknown field Nmae (fields: .Email .Name ...)". The
// campaign's other fields are not checked (see CampaignSpec.Validate).
func CheckTemplates(spec CampaignSpec, opts TemplateCheckOptions) (TemplateRefs, error) {
	c := &Campaign{ID: 1, Name: spec.Name, From: spec.From, ReplyTo: spec.ReplyTo,
		Subject: spec.Subject, Text: spec.Text, HTML: spec.HTML, Headers: spec.Headers}
	var unsub func(*Campaign, *Recipient) string
	if opts.HasUnsubscribeURL {
		unsub = func(*Campaign, *Recipient) string { return "https://campaignd.invalid/unsubscribe/sample" }
	}
	r, err := NewRenderer(c, "", unsub, WithRenderBudget(opts.Budget))
	if err != nil {
		return TemplateRefs{}, err
	}
	refs := r.Refs()
	if refs.UnsubscribeURL != "" && !opts.HasUnsubscribeURL {
		return refs, Errorf(EINVALID, "%s: {{.UnsubscribeURL}} would render empty: set [http] public_url "+
			"(and unsubscribe_secret) in the configuration, or remove it from the template", refs.UnsubscribeURL)
	}
	for _, k := range refs.Attrs {
		if strings.ContainsAny(k, `"\`) {
			return refs, Errorf(EINVALID, "attribute %q: a name with a quote or backslash cannot be checked against recipients", k)
		}
	}
	if _, err := r.RenderContext(context.Background(), SampleRecipient(refs), time.Now()); err != nil {
		return refs, Errorf(EINVALID, "%s (rendering a sample recipient)", ErrorMessage(err))
	}
	return refs, nil
}

// allowMissingAttrsKey carries an operator's --allow-missing-attrs.
type allowMissingAttrsKey struct{}

// WithAllowMissingAttrs returns a context that lets activate, execute and
// edit proceed while recipients lack attributes the templates reference
// (they render empty). It is the operator's explicit choice for one request;
// the control client carries it as the allow_missing_attrs parameter.
func WithAllowMissingAttrs(ctx context.Context) context.Context {
	return context.WithValue(ctx, allowMissingAttrsKey{}, true)
}

// AllowMissingAttrs reports whether ctx carries WithAllowMissingAttrs.
func AllowMissingAttrs(ctx context.Context) bool {
	v, _ := ctx.Value(allowMissingAttrsKey{}).(bool)
	return v
}

// MissingAttrs is how many recipients of a campaign lack an attribute its
// templates reference, with one example.
type MissingAttrs struct {
	Count   int64  `json:"count"`
	Example string `json:"example,omitempty"` // one such address
	// Attrs are the attributes the example lacks.
	Attrs []string `json:"attrs,omitempty"`
}

// templateSet is one parsed copy of a campaign's templates.
type templateSet struct {
	subject, text *template.Template
	html          *htmltemplate.Template
}

// budgetFunc is the function every checkpoint calls (see instrument). Its
// name cannot clash with a builtin; a template calling it gains nothing.
const budgetFunc = "campaigndBudget"

// noBudget is the checkpoint of the parsed master set, never executed.
func noBudget() (string, error) { return "", nil }

// parseTemplates parses a campaign's templates, checks the literal range
// bounds, finds what they reference and instruments them with budget
// checkpoints. EINVALID names the template.
func parseTemplates(subject, text, html string) (*templateSet, TemplateRefs, error) {
	funcs := template.FuncMap{budgetFunc: noBudget}
	s := &templateSet{}
	var err error
	if s.subject, err = template.New("subject").Option("missingkey=error").Funcs(funcs).Parse(subject); err != nil {
		return nil, TemplateRefs{}, Errorf(EINVALID, "subject: template: %v", err)
	}
	if s.text, err = template.New("text").Option("missingkey=error").Funcs(funcs).Parse(text); err != nil {
		return nil, TemplateRefs{}, Errorf(EINVALID, "text: template: %v", err)
	}
	if s.html, err = htmltemplate.New("html").Option("missingkey=error").Funcs(htmltemplate.FuncMap(funcs)).Parse(html); err != nil {
		return nil, TemplateRefs{}, Errorf(EINVALID, "html: template: %v", err)
	}
	w := &refWalker{attrs: map[string]bool{}, done: map[string]bool{}}
	for _, t := range []*template.Template{s.subject, s.text} {
		if err := w.walkSet(t.Name(), textTrees(t)); err != nil {
			return nil, TemplateRefs{}, err
		}
	}
	htmlSet := htmlTrees(s.html)
	if err := w.walkSet("html", htmlSet); err != nil {
		return nil, TemplateRefs{}, err
	}
	for _, trees := range []map[string]*parse.Tree{textTrees(s.subject), textTrees(s.text), htmlSet} {
		for _, tr := range trees {
			instrument(tr.Root)
		}
	}
	refs := TemplateRefs{Attrs: slices.Sorted(func(yield func(string) bool) {
		for k := range w.attrs {
			if !yield(k) {
				return
			}
		}
	}), UnsubscribeURL: w.unsub}
	return s, refs, nil
}

func textTrees(t *template.Template) map[string]*parse.Tree {
	m := map[string]*parse.Tree{}
	for _, x := range t.Templates() {
		if x.Tree != nil && x.Tree.Root != nil {
			m[x.Name()] = x.Tree
		}
	}
	return m
}

func htmlTrees(t *htmltemplate.Template) map[string]*parse.Tree {
	m := map[string]*parse.Tree{}
	for _, x := range t.Templates() {
		if x.Tree != nil && x.Tree.Root != nil {
			m[x.Name()] = x.Tree
		}
	}
	return m
}

// instrument puts a budget checkpoint first in a template's body and in
// the body of every {{range}} in it: every iteration and every template
// call then asks the render budget whether to go on, so a loop stops
// within one iteration of the deadline even when it writes nothing. The
// checkpoint declares a variable, so it writes nothing and html/template
// leaves it alone.
func instrument(l *parse.ListNode) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		switch n := n.(type) {
		case *parse.IfNode:
			instrument(n.List)
			instrument(n.ElseList)
		case *parse.WithNode:
			instrument(n.List)
			instrument(n.ElseList)
		case *parse.RangeNode:
			instrument(n.List)
			n.List.Nodes = slices.Insert(n.List.Nodes, 0, parse.Node(checkpoint(n.Position())))
			instrument(n.ElseList)
		}
	}
	l.Nodes = slices.Insert(l.Nodes, 0, parse.Node(checkpoint(l.Position())))
}

func checkpoint(pos parse.Pos) *parse.ActionNode {
	return &parse.ActionNode{NodeType: parse.NodeAction, Pos: pos, Pipe: &parse.PipeNode{
		NodeType: parse.NodePipe, Pos: pos,
		Decl: []*parse.VariableNode{{NodeType: parse.NodeVariable, Pos: pos, Ident: []string{"$" + budgetFunc}}},
		Cmds: []*parse.CommandNode{{NodeType: parse.NodeCommand, Pos: pos,
			Args: []parse.Node{parse.NewIdentifier(budgetFunc).SetPos(pos)}}},
	}}
}

// dotKind is what dot (or a variable) holds, as far as refWalker knows.
type dotKind int

const (
	dotOther dotKind = iota
	dotRoot          // RenderData
	dotAttr          // RenderData.Attr
)

// refWalker walks one template set's parse trees to find the attributes
// and {{.UnsubscribeURL}} it references, and refuses literal ranges over
// MaxRangeCount.
type refWalker struct {
	attrs map[string]bool
	unsub string
	done  map[string]bool // template name and dot kind already walked

	set  map[string]*parse.Tree
	tree *parse.Tree
	vars map[string]dotKind
}

func (w *refWalker) walkSet(root string, set map[string]*parse.Tree) error {
	w.set = set
	return w.walkTemplate(root, dotRoot)
}

func (w *refWalker) walkTemplate(name string, dot dotKind) error {
	key := fmt.Sprintf("%p/%s/%d", w.set, name, dot)
	tr := w.set[name]
	if tr == nil || w.done[key] {
		return nil
	}
	w.done[key] = true
	saveTree, saveVars := w.tree, w.vars
	w.tree, w.vars = tr, map[string]dotKind{"$": dot}
	defer func() { w.tree, w.vars = saveTree, saveVars }()
	return w.list(tr.Root, dot, 1)
}

// list walks a list of nodes with dot holding kind dot, inside literal
// ranges asking for mult iterations in all.
func (w *refWalker) list(l *parse.ListNode, dot dotKind, mult int64) error {
	if l == nil {
		return nil
	}
	for _, n := range l.Nodes {
		if err := w.node(n, dot, mult); err != nil {
			return err
		}
	}
	return nil
}

func (w *refWalker) node(n parse.Node, dot dotKind, mult int64) error {
	switch n := n.(type) {
	case *parse.ActionNode:
		w.pipe(n.Pipe, dot)
	case *parse.IfNode:
		w.pipe(n.Pipe, dot)
		if err := w.list(n.List, dot, mult); err != nil {
			return err
		}
		return w.list(n.ElseList, dot, mult)
	case *parse.WithNode:
		w.pipe(n.Pipe, dot)
		if err := w.list(n.List, w.kind(n.Pipe, dot), mult); err != nil {
			return err
		}
		return w.list(n.ElseList, dot, mult)
	case *parse.RangeNode:
		w.pipe(n.Pipe, dot)
		for _, v := range n.Pipe.Decl {
			w.vars[v.Ident[0]] = dotOther
		}
		inner := mult
		if c := rangeLiteral(n.Pipe); c > 0 {
			inner = mult * c
			if c > MaxRangeCount || inner > MaxRangeCount {
				loc := location(w.tree, n)
				return Errorf(EINVALID, "%s: {{range %d}} asks for %d iterations in all: at most %d per message", loc, c, inner, MaxRangeCount)
			}
		}
		if err := w.list(n.List, dotOther, inner); err != nil {
			return err
		}
		return w.list(n.ElseList, dot, mult)
	case *parse.TemplateNode:
		kind := dotOther
		if n.Pipe != nil {
			w.pipe(n.Pipe, dot)
			kind = w.kind(n.Pipe, dot)
		}
		return w.walkTemplate(n.Name, kind)
	}
	return nil
}

// rangeLiteral is the count of a {{range N}} over an integer literal, 0
// for any other range.
func rangeLiteral(p *parse.PipeNode) int64 {
	if len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return 0
	}
	num, ok := p.Cmds[0].Args[0].(*parse.NumberNode)
	if !ok {
		return 0
	}
	switch {
	case num.IsInt:
		return max(num.Int64, 0)
	case num.IsUint:
		return int64(min(num.Uint64, 1<<62))
	}
	return 0
}

// pipe records the references of a pipeline and the kinds of the
// variables it declares.
func (w *refWalker) pipe(p *parse.PipeNode, dot dotKind) {
	if p == nil {
		return
	}
	for _, c := range p.Cmds {
		for i, a := range c.Args {
			w.arg(a, dot)
			// {{index .Attr "city"}}
			if id, ok := a.(*parse.IdentifierNode); ok && id.Ident == "index" && i == 0 && len(c.Args) >= 3 {
				if w.argKind(c.Args[1], dot) == dotAttr {
					if s, ok := c.Args[2].(*parse.StringNode); ok {
						w.attrs[s.Text] = true
					}
				}
			}
		}
	}
	if len(p.Decl) > 0 {
		k := w.kind(p, dot)
		for _, v := range p.Decl {
			w.vars[v.Ident[0]] = k
		}
	}
}

func (w *refWalker) arg(a parse.Node, dot dotKind) {
	switch a := a.(type) {
	case *parse.FieldNode:
		w.fields(a, dot, a.Ident)
	case *parse.VariableNode:
		w.fields(a, w.vars[a.Ident[0]], a.Ident[1:])
	case *parse.ChainNode:
		if base := w.argKind(a.Node, dot); base != dotOther {
			w.fields(a, base, a.Field)
		}
		w.arg(a.Node, dot)
	case *parse.PipeNode:
		w.pipe(a, dot)
	}
}

// fields records the reference of a field chain idents applied to a value
// of kind base.
func (w *refWalker) fields(n parse.Node, base dotKind, idents []string) {
	switch {
	case base == dotRoot && len(idents) >= 2 && idents[0] == "Attr":
		w.attrs[idents[1]] = true
	case base == dotRoot && len(idents) >= 1 && idents[0] == "UnsubscribeURL":
		if w.unsub == "" {
			w.unsub = location(w.tree, n)
		}
	case base == dotAttr && len(idents) >= 1:
		w.attrs[idents[0]] = true
	}
}

// kind is what a pipeline yields, when it is a plain reference to the
// data or its Attr map.
func (w *refWalker) kind(p *parse.PipeNode, dot dotKind) dotKind {
	if p == nil || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return dotOther
	}
	return w.argKind(p.Cmds[0].Args[0], dot)
}

func (w *refWalker) argKind(a parse.Node, dot dotKind) dotKind {
	var base dotKind
	var idents []string
	switch a := a.(type) {
	case *parse.DotNode:
		return dot
	case *parse.FieldNode:
		base, idents = dot, a.Ident
	case *parse.VariableNode:
		base, idents = w.vars[a.Ident[0]], a.Ident[1:]
	case *parse.PipeNode:
		return w.kind(a, dot)
	default:
		return dotOther
	}
	switch {
	case len(idents) == 0:
		return base
	case base == dotRoot && len(idents) == 1 && idents[0] == "Attr":
		return dotAttr
	}
	return dotOther
}

// Errors of the render budget; rendering returns them wrapped in an
// EINVALID error naming the template.
var (
	errRenderTimeout  = errors.New("render budget exceeded")
	errRenderTooLarge = errors.New("render size budget exceeded")
	errRenderAbandon  = errors.New("rendering abandoned")
)

// execErrRE splits text/template's execution errors:
// `template: subject:1:5: executing "subject" at <.Nmae>: can't ...`.
var execErrRE = regexp.MustCompile(`^template: ([^:]+:\d+:\d+): executing "[^"]*" at <[^>]*>: (.*)$`)

// fieldErrRE is text/template's unknown-field message.
var fieldErrRE = regexp.MustCompile(`^can't evaluate field (\S+) in type core\.(RenderData|RenderCampaign)$`)

const (
	renderFields   = ".Email .Name .Attr.<key> .Campaign.Name .Campaign.ID .UnsubscribeURL"
	campaignFields = ".Campaign.Name .Campaign.ID"
)

// renderError turns an error of executing template name into an EINVALID
// error an operator can act on: "subject:1:5: unknown field Nmae (fields:
// ...)", "text: over the render budget ...".
func renderError(name string, err error, b RenderBudget) error {
	switch {
	case errors.Is(err, errRenderTimeout):
		return Errorf(EINVALID, "%s: rendering took longer than render_timeout (%s): a loop too long for one message?", name, b.Timeout)
	case errors.Is(err, errRenderTooLarge):
		return Errorf(EINVALID, "%s: the rendered message is larger than render_max_bytes (%d bytes)", name, b.MaxBytes)
	case errors.Is(err, errRenderAbandon):
		return Errorf(EUNAVAILABLE, "%s: rendering abandoned: %v", name, err)
	}
	msg := err.Error()
	m := execErrRE.FindStringSubmatch(msg)
	if m == nil {
		return Errorf(EINVALID, "%s: %s", name, strings.TrimPrefix(msg, "template: "))
	}
	loc, what := oneBased(m[1]), m[2]
	if f := fieldErrRE.FindStringSubmatch(what); f != nil {
		if f[2] == "RenderCampaign" {
			return Errorf(EINVALID, "%s: unknown field %s of .Campaign (fields: %s)", loc, f[1], campaignFields)
		}
		return Errorf(EINVALID, "%s: unknown field %s (fields: %s)", loc, f[1], renderFields)
	}
	if k, ok := strings.CutPrefix(what, "map has no entry for key "); ok {
		if uq, err := strconv.Unquote(k); err == nil {
			k = uq
		}
		return Errorf(EINVALID, "%s: recipient has no attribute %q", loc, k)
	}
	return Errorf(EINVALID, "%s: %s", loc, what)
}

// checkTemplates is CheckTemplates with the engine's render budget and
// unsubscribe configuration: what create (and edit) call.
func (e *Engine) checkTemplates(spec CampaignSpec) (TemplateRefs, error) {
	return CheckTemplates(spec, TemplateCheckOptions{Budget: e.Limits().RenderBudget(), HasUnsubscribeURL: e.unsubscribe != nil})
}

// templateAttrs returns the attributes c's templates reference: as stored
// at create, or, for a campaign stored before they were, from its
// templates.
func (e *Engine) templateAttrs(c *Campaign) []string {
	if c.TemplateAttrs != nil {
		return c.TemplateAttrs
	}
	if r, err := NewRenderer(c, "", nil); err == nil {
		return r.Refs().Attrs
	}
	return nil
}

// checkMissingAttrs refuses action a (activate, execute) with ECONFLICT
// while a PENDING recipient of c lacks an attribute its templates
// reference: the request is well formed, the campaign's data is not ready
// for it. The operator imports the attributes, or passes
// --allow-missing-attrs (WithAllowMissingAttrs) to render them empty.
func (e *Engine) checkMissingAttrs(ctx context.Context, c *Campaign, a Action) error {
	return e.refuseMissingAttrs(ctx, c.ID, a, e.templateAttrs(c), []RecipientStatus{RecipientPending},
		fmt.Sprintf("run `campaignd campaign %s %d --allow-missing-attrs`", a, c.ID))
}

// refuseMissingAttrs is the missing-attribute check of action a on
// campaign id: ECONFLICT while a recipient in one of statuses lacks one of
// attrs, saying to import them or to do as escape says (the action again
// with --allow-missing-attrs) to render them empty. Nothing to check, or
// WithAllowMissingAttrs in ctx, passes.
func (e *Engine) refuseMissingAttrs(ctx context.Context, id int64, a Action, attrs []string, statuses []RecipientStatus, escape string) error {
	if len(attrs) == 0 || AllowMissingAttrs(ctx) {
		return nil
	}
	m, err := e.store.MissingAttrs(ctx, id, attrs, statuses)
	if err != nil {
		return fmt.Errorf("%s campaign %d: %w", a, id, err)
	}
	if m.Count == 0 {
		return nil
	}
	who := fmt.Sprintf("%d recipients lack", m.Count)
	if m.Count == 1 {
		who = "1 recipient lacks"
	}
	return Errorf(ECONFLICT, "cannot %s campaign %d: %s attributes its templates use (%s), e.g. %s lacks %s: "+
		"import them again with those columns, or %s to render them empty",
		a, id, who, strings.Join(attrs, ", "), m.Example, strings.Join(m.Attrs, ", "), escape)
}

// location is "name:line:column" of node n of tr, the column counted
// from 1 as editors do (text/template counts bytes from 0).
func location(tr *parse.Tree, n parse.Node) string {
	loc, _ := tr.ErrorContext(n)
	return oneBased(loc)
}

// oneBased turns text/template's "name:line:col" (col from 0) into one
// whose column counts from 1.
func oneBased(loc string) string {
	i := strings.LastIndexByte(loc, ':')
	col, err := strconv.Atoi(loc[i+1:])
	if i < 0 || err != nil {
		return loc
	}
	return loc[:i+1] + strconv.Itoa(col+1)
}
