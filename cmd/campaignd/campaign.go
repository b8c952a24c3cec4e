package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/sdk"
)

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ", ") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func (a *app) cmdCampaign(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("campaign: missing subcommand (create, list, show, activate, execute, pause, resume, cancel, stats, retry)")
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "create":
		return a.campaignCreate(ctx, args)
	case "list":
		return a.campaignList(ctx, args)
	case "show", "stats":
		return a.campaignShow(ctx, sub, args)
	case "activate", "pause", "resume", "cancel":
		return a.campaignChange(ctx, core.Action(sub), args)
	case "execute":
		return a.campaignExecute(ctx, args)
	case "retry":
		return a.campaignRetry(ctx, args)
	}
	return usagef("campaign: unknown subcommand %q", sub)
}

func (a *app) campaignCreate(ctx context.Context, args []string) error {
	fs := a.flags("campaign create")
	var spec core.CampaignSpec
	var textFile, htmlFile string
	var headers stringList
	fs.StringVar(&spec.Name, "name", "", "campaign name")
	fs.StringVar(&spec.Sender, "sender", "outbox", "sender name ([senders.NAME])")
	fs.StringVar(&spec.From, "from", "", "From address (default: default_from / $SUPPORT_EMAIL)")
	fs.StringVar(&spec.ReplyTo, "reply-to", "", "Reply-To address")
	fs.StringVar(&spec.Subject, "subject", "", "subject template")
	fs.StringVar(&spec.Text, "text", "", "text body template (inline)")
	fs.StringVar(&spec.HTML, "html", "", "HTML body template (inline)")
	fs.StringVar(&textFile, "text-file", "", "text body template file")
	fs.StringVar(&htmlFile, "html-file", "", "HTML body template file")
	fs.IntVar(&spec.Concurrency, "concurrency", 0, "sends in flight (default: queue.default_concurrency)")
	fs.IntVar(&spec.BatchSize, "batch-size", 0, "most sends per tick for this campaign (<= 50)")
	fs.Var(&headers, "header", "extra header 'Name: value' (repeatable)")
	const usage = "campaign create --name N --sender S --from ADDR --subject TPL [--text-file F] [--html-file F] ..."
	if _, err := a.parse(fs, args, 0, 0, usage); err != nil {
		return err
	}
	// 0 means "the default" only when the flag is not given: an explicit
	// --concurrency 0 or --batch-size 0 is out of range, not a default.
	var zeroErr error
	fs.Visit(func(f *flag.Flag) {
		switch {
		case zeroErr != nil:
		case f.Name == "concurrency" && spec.Concurrency == 0:
			zeroErr = core.Errorf(core.EINVALID, "concurrency: 0 is outside 1..%d", core.MaxConcurrency)
		case f.Name == "batch-size" && spec.BatchSize == 0:
			zeroErr = core.Errorf(core.EINVALID, "batch_size: 0 is outside 1..%d (50 per tick is the hard ceiling)", core.MaxBatchSize)
		}
	})
	if zeroErr != nil {
		return zeroErr
	}
	for _, f := range []struct {
		path string
		dst  *string
		flag string
	}{{textFile, &spec.Text, "text-file"}, {htmlFile, &spec.HTML, "html-file"}} {
		if f.path == "" {
			continue
		}
		b, err := os.ReadFile(f.path)
		if err != nil {
			return core.Errorf(core.EINVALID, "--%s: %v", f.flag, err)
		}
		*f.dst = string(b)
	}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			return usagef("--header %q: want 'Name: value'", h)
		}
		spec.Headers = append(spec.Headers, sdk.Header{Name: strings.TrimSpace(name), Value: strings.TrimSpace(value)})
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	if spec.From == "" {
		spec.From = cfg.DefaultFrom
	}
	if spec.From == "" {
		return core.Errorf(core.EINVALID, "from: required (--from, or default_from / $SUPPORT_EMAIL)")
	}
	s, err := a.open(ctx, writeAccess, "campaign create")
	if err != nil {
		return err
	}
	defer s.Close()
	c, err := s.CreateCampaign(actorContext(ctx), spec)
	if err != nil {
		return err
	}
	return a.print(c, func(w io.Writer) {
		fprintf(w, "created campaign %d (%s) in %s\n", c.ID, c.Name, c.Status)
	})
}

func (a *app) campaignList(ctx context.Context, args []string) error {
	if _, err := a.parse(a.flags("campaign list"), args, 0, 0, "campaign list"); err != nil {
		return err
	}
	s, err := a.open(ctx, readAccess, "")
	if err != nil {
		return err
	}
	defer s.Close()
	cs, err := s.Campaigns(ctx)
	if err != nil {
		return err
	}
	if cs == nil {
		cs = []*core.Campaign{}
	}
	return a.print(cs, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tSENDER\tTOTAL\tQUEUED\tSENT\tFAILED\tBOUNCED")
		for _, c := range cs {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n", c.ID, c.Name, c.Status, c.Sender,
				c.Stats.Total, c.Stats.Queued+c.Stats.Sending, c.Stats.Sent, c.Stats.Failed, c.Stats.Bounced)
		}
		tw.Flush()
	})
}

func (a *app) campaignShow(ctx context.Context, sub string, args []string) error {
	pos, err := a.parse(a.flags("campaign "+sub), args, 1, 1, "campaign "+sub+" ID")
	if err != nil {
		return err
	}
	id, err := parseID(pos[0])
	if err != nil {
		return err
	}
	s, err := a.open(ctx, readAccess, "")
	if err != nil {
		return err
	}
	defer s.Close()
	if sub == "stats" {
		st, err := s.Stats(ctx, id)
		if err != nil {
			return err
		}
		return a.print(st, func(w io.Writer) { printStats(w, st) })
	}
	c, err := s.Campaign(ctx, id)
	if err != nil {
		return err
	}
	return a.print(c, func(w io.Writer) {
		fprintf(w, "campaign %d: %s\nstatus:      %s\nsender:      %s\nfrom:        %s\n", c.ID, c.Name, c.Status, c.Sender, c.From)
		if c.ReplyTo != "" {
			fprintf(w, "reply-to:    %s\n", c.ReplyTo)
		}
		fprintf(w, "subject:     %s\n", c.Subject)
		if len(c.TemplateAttrs) > 0 {
			fprintf(w, "attributes:  %s (used by the templates)\n", strings.Join(c.TemplateAttrs, ", "))
		}
		fprintf(w, "concurrency: %d\nbatch size:  %d\ncreated:     %s\n", c.Concurrency, c.BatchSize, c.CreatedAt.Format("2006-01-02 15:04:05Z07:00"))
		printStats(w, &c.Stats)
	})
}

func printStats(w io.Writer, st *core.Stats) {
	fprintf(w, "total %d: pending %d, queued %d, sending %d, sent %d, failed %d, bounced %d\n",
		st.Total, st.Pending, st.Queued, st.Sending, st.Sent, st.Failed, st.Bounced)
}

func (a *app) campaignChange(ctx context.Context, act core.Action, args []string) error {
	fs := a.flags("campaign " + string(act))
	usage := "campaign " + string(act) + " ID"
	var allowMissing *bool
	if act == core.ActionActivate {
		allowMissing = allowMissingAttrsFlag(fs)
		usage += " [--allow-missing-attrs]"
	}
	pos, err := a.parse(fs, args, 1, 1, usage)
	if err != nil {
		return err
	}
	if allowMissing != nil && *allowMissing {
		ctx = core.WithAllowMissingAttrs(ctx)
	}
	id, err := parseID(pos[0])
	if err != nil {
		return err
	}
	s, err := a.open(ctx, writeAccess, "campaign "+string(act))
	if err != nil {
		return err
	}
	defer s.Close()
	c, err := s.ChangeCampaign(actorContext(ctx), id, act)
	if err != nil {
		return err
	}
	return a.print(c, func(w io.Writer) { fprintf(w, "campaign %d: %s\n", c.ID, c.Status) })
}

func (a *app) campaignExecute(ctx context.Context, args []string) error {
	fs := a.flags("campaign execute")
	allowMissing := allowMissingAttrsFlag(fs)
	pos, err := a.parse(fs, args, 1, 1, "campaign execute ID [--allow-missing-attrs]")
	if err != nil {
		return err
	}
	if *allowMissing {
		ctx = core.WithAllowMissingAttrs(ctx)
	}
	id, err := parseID(pos[0])
	if err != nil {
		return err
	}
	s, err := a.open(ctx, writeAccess, "campaign execute")
	if err != nil {
		return err
	}
	defer s.Close()
	res, err := s.Execute(actorContext(ctx), id)
	if err != nil {
		return err
	}
	return a.print(res, func(w io.Writer) { fprintf(w, "%s\n", res.Message) })
}

func (a *app) campaignRetry(ctx context.Context, args []string) error {
	fs := a.flags("campaign retry")
	class := fs.String("class", "", "only FAILED recipients of this error class")
	pos, err := a.parse(fs, args, 1, 1, "campaign retry ID [--class CLASS]")
	if err != nil {
		return err
	}
	id, err := parseID(pos[0])
	if err != nil {
		return err
	}
	s, err := a.open(ctx, writeAccess, "campaign retry")
	if err != nil {
		return err
	}
	defer s.Close()
	res, err := s.Retry(actorContext(ctx), id, *class)
	if err != nil {
		return err
	}
	return a.print(res, func(w io.Writer) { fprintf(w, "%s\n", res.Message) })
}

// allowMissingAttrsFlag is activate's and execute's --allow-missing-attrs.
func allowMissingAttrsFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("allow-missing-attrs", false,
		"proceed although recipients lack attributes the templates use: they render empty")
}

// printMissingAttrs says which imported rows lack attributes the
// templates use, and what that means.
func printMissingAttrs(w io.Writer, m *core.ImportMissingAttrs) {
	if m == nil || m.Rows == 0 {
		return
	}
	lines := make([]string, len(m.Lines))
	for i, l := range m.Lines {
		lines[i] = fmt.Sprint(l)
	}
	more := ""
	if int64(len(m.Lines)) < m.Rows {
		more = ", ..."
	}
	fprintf(w, "missing attributes: %d rows lack %s, used by the templates (lines %s%s); "+
		"activate and execute refuse until they are imported, or run them with --allow-missing-attrs to render them empty\n",
		m.Rows, strings.Join(m.Attrs, ", "), strings.Join(lines, ", "), more)
}
