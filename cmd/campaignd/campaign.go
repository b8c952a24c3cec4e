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

// campaignFlags are the content and settings flags campaign create and
// campaign edit share, so both take the same flags with the same meaning.
type campaignFlags struct {
	spec               core.CampaignSpec
	textFile, htmlFile string
	headers            stringList
}

// register adds the flags to fs.
func (f *campaignFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.spec.Name, "name", "", "campaign name")
	fs.StringVar(&f.spec.Sender, "sender", "", "sender `name` ([senders.NAME]; default: default_sender, or outbox when it is the only sender)")
	fs.StringVar(&f.spec.From, "from", "", "From `address` (default: default_from / $SUPPORT_EMAIL)")
	fs.StringVar(&f.spec.ReplyTo, "reply-to", "", "Reply-To `address`")
	fs.StringVar(&f.spec.Subject, "subject", "", "subject `template`")
	fs.StringVar(&f.spec.Text, "text", "", "text body `template` (inline)")
	fs.StringVar(&f.spec.HTML, "html", "", "HTML body `template` (inline)")
	fs.StringVar(&f.textFile, "text-file", "", "text body template `file`")
	fs.StringVar(&f.htmlFile, "html-file", "", "HTML body template `file`")
	fs.IntVar(&f.spec.Concurrency, "concurrency", 0, "sends in flight (default: queue.default_concurrency)")
	fs.IntVar(&f.spec.BatchSize, "batch-size", 0, "most sends per tick for this campaign (<= 50)")
	fs.Var(&f.headers, "header", "extra `header` 'Name: value' (repeatable)")
}

// finish completes the spec once fs is parsed: it reads the body files (a
// file wins over the inline flag) and
// the headers, and refuses an explicit --concurrency 0 or --batch-size 0
// (0 means "the default" only when the flag is not given). It returns the
// names of the flags given.
func (f *campaignFlags) finish(fs *flag.FlagSet) (map[string]bool, error) {
	given := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	if given["concurrency"] && f.spec.Concurrency == 0 {
		return nil, core.Errorf(core.EINVALID, "concurrency: 0 is outside 1..%d", core.MaxConcurrency)
	}
	if given["batch-size"] && f.spec.BatchSize == 0 {
		return nil, core.Errorf(core.EINVALID, "batch_size: 0 is outside 1..%d (50 per tick is the hard ceiling)", core.MaxBatchSize)
	}
	for _, b := range []struct {
		path, flag, inline string
		dst                *string
	}{{f.textFile, "text-file", "text", &f.spec.Text}, {f.htmlFile, "html-file", "html", &f.spec.HTML}} {
		if !given[b.flag] {
			continue
		}
		data, err := os.ReadFile(b.path)
		if err != nil {
			return nil, core.Errorf(core.EINVALID, "--%s: %v", b.flag, err)
		}
		*b.dst = string(data)
		given[b.inline] = true
	}
	for _, h := range f.headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			return nil, usagef("--header %q: want 'Name: value'", h)
		}
		f.spec.Headers = append(f.spec.Headers, sdk.Header{Name: strings.TrimSpace(name), Value: strings.TrimSpace(value)})
	}
	return given, nil
}

func (a *app) campaignCreate(ctx context.Context, args []string) error {
	fs := a.flags("campaign create")
	var f campaignFlags
	f.register(fs)
	const usage = "campaign create --name N --sender S --from ADDR --subject TPL [--text-file F] [--html-file F] ..."
	if _, err := a.parse(fs, args, 0, 0, usage); err != nil {
		return err
	}
	if _, err := f.finish(fs); err != nil {
		return err
	}
	spec := f.spec
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
	class := fs.String("class", "", "only FAILED recipients of this error `class` (transient, permanent, throttled, config, in_doubt, template)")
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

// campaignID parses the one positional argument of a campaign subcommand.
func (a *app) campaignID(fs *flag.FlagSet, args []string, usage string) (int64, error) {
	pos, err := a.parse(fs, args, 1, 1, usage)
	if err != nil {
		return 0, err
	}
	return parseID(pos[0])
}

func (a *app) campaignEdit(ctx context.Context, args []string) error {
	fs := a.flags("campaign edit")
	var f campaignFlags
	f.register(fs)
	clearHeaders := fs.Bool("clear-headers", false, "remove every extra header")
	const usage = "campaign edit ID [--name N] [--subject TPL] [--text-file F] [--html-file F] [--from ADDR] ... (only the flags given change)"
	id, err := a.campaignID(fs, args, usage)
	if err != nil {
		return err
	}
	given, err := f.finish(fs)
	if err != nil {
		return err
	}
	if *clearHeaders && given["header"] {
		return usagef("--clear-headers and --header: give one of them")
	}
	spec := f.spec
	str := func(flagName, v string) *string {
		if given[flagName] {
			return &v
		}
		return nil
	}
	edit := core.CampaignEdit{
		Name: str("name", spec.Name), Sender: str("sender", spec.Sender), From: str("from", spec.From),
		ReplyTo: str("reply-to", spec.ReplyTo), Subject: str("subject", spec.Subject),
		Text: str("text", spec.Text), HTML: str("html", spec.HTML),
	}
	switch {
	case *clearHeaders:
		edit.Headers = &[]sdk.Header{}
	case given["header"]:
		edit.Headers = &spec.Headers
	}
	if given["concurrency"] {
		edit.Concurrency = &spec.Concurrency
	}
	if given["batch-size"] {
		edit.BatchSize = &spec.BatchSize
	}
	s, err := a.open(ctx, writeAccess, "campaign edit")
	if err != nil {
		return err
	}
	defer s.Close()
	c, err := s.EditCampaign(actorContext(ctx), id, edit)
	if err != nil {
		return err
	}
	return a.print(c, func(w io.Writer) { fprintf(w, "edited campaign %d (%s), %s\n", c.ID, c.Name, c.Status) })
}

func (a *app) campaignClone(ctx context.Context, args []string) error {
	fs := a.flags("campaign clone")
	var req core.CloneRequest
	fs.StringVar(&req.Name, "name", "", "the copy's name (default: NAME (copy))")
	fs.BoolVar(&req.WithRecipients, "with-recipients", false, "copy the addresses, names and attributes too, as PENDING")
	id, err := a.campaignID(fs, args, "campaign clone ID [--name N] [--with-recipients]")
	if err != nil {
		return err
	}
	s, err := a.open(ctx, writeAccess, "campaign clone")
	if err != nil {
		return err
	}
	defer s.Close()
	c, err := s.CloneCampaign(actorContext(ctx), id, req)
	if err != nil {
		return err
	}
	return a.print(c, func(w io.Writer) {
		fprintf(w, "cloned campaign %d into campaign %d (%s) in %s", id, c.ID, c.Name, c.Status)
		if req.WithRecipients {
			fprintf(w, " with %d recipients (suppressed addresses left out)", c.Stats.Total)
		}
		fprintf(w, "\n")
	})
}

func (a *app) campaignDelete(ctx context.Context, args []string) error {
	fs := a.flags("campaign delete")
	yes := fs.Bool("yes", false, "really delete (without it: say what would be deleted)")
	id, err := a.campaignID(fs, args, "campaign delete ID --yes")
	if err != nil {
		return err
	}
	acc, holder := readAccess, ""
	if *yes {
		acc, holder = writeAccess, "campaign delete"
	}
	s, err := a.open(ctx, acc, holder)
	if err != nil {
		return err
	}
	defer s.Close()
	res, err := s.DeleteCampaign(actorContext(ctx), id, !*yes)
	if err != nil {
		return err
	}
	if !*yes {
		return core.Errorf(core.ECONFLICT, "%s; run `campaignd campaign delete %d --yes` to delete it", res.Message, id)
	}
	return a.print(res, func(w io.Writer) { fprintf(w, "%s\n", res.Message) })
}

func (a *app) campaignPreview(ctx context.Context, args []string) error {
	fs := a.flags("campaign preview")
	email := fs.String("recipient", "", "the recipient's `address` (default: the first recipient, or a sample)")
	id, err := a.campaignID(fs, args, "campaign preview ID [--recipient EMAIL]")
	if err != nil {
		return err
	}
	s, err := a.open(ctx, readAccess, "")
	if err != nil {
		return err
	}
	defer s.Close()
	p, err := s.Preview(ctx, id, *email)
	if err != nil {
		return err
	}
	if p.Sample {
		fprintf(a.stderr, "campaignd: campaign %d has no recipients: previewing for the sample recipient %s\n", id, p.Email)
	}
	return a.print(p, func(w io.Writer) { fprintf(w, "%s", p.Message) })
}

func (a *app) campaignTest(ctx context.Context, args []string) error {
	fs := a.flags("campaign test")
	var req core.TestSendRequest
	fs.StringVar(&req.To, "to", "", "the `address` to send the test message to (required)")
	fs.StringVar(&req.Recipient, "recipient", "", "render for this recipient's (`address`) name and attributes (default: the first recipient, or a sample)")
	id, err := a.campaignID(fs, args, "campaign test ID --to ADDR [--recipient EMAIL]")
	if err != nil {
		return err
	}
	if req.To == "" {
		return usagef("campaign test: --to is required")
	}
	// No lock: a test send touches nothing in the database.
	s, err := a.open(ctx, readAccess, "")
	if err != nil {
		return err
	}
	defer s.Close()
	res, err := s.TestSend(actorContext(ctx), id, req)
	if err != nil {
		return err
	}
	if a.jsonOut {
		if err := a.print(res, nil); err != nil {
			return err
		}
	}
	if !res.Sent {
		e := res.Error
		code := ""
		if e.SMTPCode != 0 {
			code += fmt.Sprintf(" %d", e.SMTPCode)
		}
		if e.EnhancedCode != "" {
			code += " " + e.EnhancedCode
		}
		if e.HTTPStatus != 0 {
			code += fmt.Sprintf(" HTTP %d", e.HTTPStatus)
		}
		return core.Errorf(core.EUNAVAILABLE, "test send of campaign %d to %s through sender %s failed (%s%s): %s",
			id, res.To, res.Sender, e.Class, code, e.Message)
	}
	if !a.jsonOut {
		fprintf(a.stdout, "sent test message %s of campaign %d to %s through sender %s: accepted", res.MessageID, id, res.To, res.Sender)
		if res.ProviderID != "" {
			fprintf(a.stdout, " as %s", res.ProviderID)
		}
		if res.Response != "" {
			fprintf(a.stdout, " (%s)", res.Response)
		}
		fprintf(a.stdout, "\n")
	}
	return nil
}
