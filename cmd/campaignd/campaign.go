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
	fs.StringVar(&spec.Sender, "sender", "", "sender name ([senders.NAME]; default: default_sender, or outbox when it is the only sender)")
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
	if spec.Sender == "" {
		if spec.Sender, err = cfg.defaultSender(); err != nil {
			return err
		}
	}
	s, err := a.open(ctx, createAccess, "campaign create")
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
		if dir, ok := cfg.dryRunDir(c.Sender); ok {
			fprintf(w, "sender:      %s\n", dryRunLine(c.Sender, dir))
		}
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
			fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n", c.ID, c.Name, c.Status, c.Sender,
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
	c, err := s.Campaign(ctx, id)
	if err != nil {
		return err
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	var dry *dryRun
	if dir, ok := cfg.dryRunDir(c.Sender); ok {
		dry = &dryRun{Sender: c.Sender, Dir: dir}
	}
	if sub == "stats" {
		st, err := s.Stats(ctx, id)
		if err != nil {
			return err
		}
		// The JSON stays the bare counters; the human form says when
		// they count files, not mail.
		return a.print(st, func(w io.Writer) {
			if dry != nil {
				fprintf(w, "sender: %s\n", dryRunLine(dry.Sender, dry.Dir))
			}
			printStats(w, st)
		})
	}
	out := struct {
		*core.Campaign
		DryRun *dryRun `json:"dry_run,omitempty"`
	}{c, dry}
	return a.print(out, func(w io.Writer) {
		sender := c.Sender
		if dry != nil {
			sender = dryRunLine(dry.Sender, dry.Dir)
		}
		fprintf(w, "campaign %d: %s\nstatus:      %s\nsender:      %s\nfrom:        %s\n", c.ID, c.Name, c.Status, sender, c.From)
		if c.ReplyTo != "" {
			fprintf(w, "reply-to:    %s\n", c.ReplyTo)
		}
		fprintf(w, "subject:     %s\nconcurrency: %d\nbatch size:  %d\ncreated:     %s\n", c.Subject, c.Concurrency, c.BatchSize, c.CreatedAt.Format("2006-01-02 15:04:05Z07:00"))
		printStats(w, &c.Stats)
	})
}

// dryRun marks a campaign whose sender is the outbox plugin in show and
// stats output: its messages are files, not mail.
type dryRun struct {
	Sender string `json:"sender"`
	Dir    string `json:"dir"` // where the .eml files go
}

// dryRunLine says plainly that sender delivers nothing.
func dryRunLine(sender, dir string) string {
	return fmt.Sprintf("%s (dry run: messages are written as .eml files to %s, nothing is delivered)", sender, dir)
}

func printStats(w io.Writer, st *core.Stats) {
	fprintf(w, "total %d: pending %d, queued %d, sending %d, sent %d, failed %d, bounced %d\n",
		st.Total, st.Pending, st.Queued, st.Sending, st.Sent, st.Failed, st.Bounced)
}

func (a *app) campaignChange(ctx context.Context, act core.Action, args []string) error {
	pos, err := a.parse(a.flags("campaign "+string(act)), args, 1, 1, "campaign "+string(act)+" ID")
	if err != nil {
		return err
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
	pos, err := a.parse(a.flags("campaign execute"), args, 1, 1, "campaign execute ID")
	if err != nil {
		return err
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
