package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

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
	fs.StringVar(&f.spec.SendWindow, "send-window", "", "send only inside this `window`: 'DAYS HH:MM-HH:MM ZONE', e.g. 'Mon-Fri 09:00-17:00 Europe/Berlin' (days: Mon-Fri, Mon,Wed,Fri, daily; end may be 24:00; an end before the start wraps midnight; \"\" on edit removes it)")
	fs.StringVar(&f.spec.NotBefore, "not-before", "", "send nothing before this `TIME`: RFC 3339, or '2026-12-24 09:00' in the send window's zone, else UTC (\"\" on edit removes it)")
	fs.StringVar(&f.spec.Expires, "expires", "", "at this `TIME` (as --not-before) the recipients not yet sent fail with class expired (\"\" on edit removes it)")
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
	p, err := s.Progress(ctx, id)
	if err != nil {
		return err
	}
	if sub == "stats" {
		// The JSON is the counters with the progress beside them; the
		// human form says when they count files, not mail.
		return a.print(p, func(w io.Writer) {
			if dry != nil {
				fprintf(w, "sender: %s\n", dryRunLine(dry.Sender, dry.Dir))
			}
			printStats(w, &p.Stats)
			printProgress(w, p)
		})
	}
	out := struct {
		*core.Campaign
		progressFields
		DryRun *dryRun `json:"dry_run,omitempty"`
	}{c, progressFields{p.PercentDone, p.SentLast5m, p.RatePerMin, p.ETASeconds, p.ETABasis}, dry}
	return a.print(out, func(w io.Writer) {
		sender := c.Sender
		if dry != nil {
			sender = dryRunLine(dry.Sender, dry.Dir)
		}
		fprintf(w, "campaign %d: %s\nstatus:      %s\nsender:      %s\nfrom:        %s\n", c.ID, c.Name, c.Status, sender, c.From)
		if c.ReplyTo != "" {
			fprintf(w, "reply-to:    %s\n", c.ReplyTo)
		}
		fprintf(w, "subject:     %s\n", c.Subject)
		if len(c.TemplateAttrs) > 0 {
			fprintf(w, "attributes:  %s (used by the templates)\n", strings.Join(c.TemplateAttrs, ", "))
		}
		fprintf(w, "concurrency: %d\nbatch size:  %d\ncreated:     %s\n", c.Concurrency, c.BatchSize, c.CreatedAt.Format("2006-01-02 15:04:05Z07:00"))
		printSchedule(w, c, time.Now())
		printStats(w, &c.Stats)
		printProgress(w, p)
	})
}

// printSchedule writes the schedule lines of show: the window, not-before
// and expiry when set, and whether the campaign may send now or when it
// next may.
func printSchedule(w io.Writer, c *core.Campaign, now time.Time) {
	if !c.Schedule.Set() {
		return
	}
	zone := time.UTC
	if c.SendWindow != nil {
		fprintf(w, "window:      %s\n", c.SendWindow)
		zone = c.SendWindow.Location()
	}
	if c.NotBefore != nil {
		fprintf(w, "not before:  %s\n", c.NotBefore.In(zone).Format(time.RFC3339))
	}
	if c.Expires != nil {
		fprintf(w, "expires:     %s\n", c.Expires.In(zone).Format(time.RFC3339))
	}
	switch why := c.ClosedBy(now); {
	case why == "":
		fprintf(w, "schedule:    open now\n")
	case why == "expired":
		fprintf(w, "schedule:    expired (unsent recipients fail as expired)\n")
	default:
		next := "never before it expires"
		if t := c.NextSend(now); !t.IsZero() {
			next = t.In(zone).Format(time.RFC3339)
		}
		fprintf(w, "schedule:    closed (%s), opens %s\n", strings.ReplaceAll(why, "_", " "), next)
	}
}

// progressFields are the fields of core.Progress that `campaign show
// --json` adds to the campaign's (which has the rest: status, counters and
// times).
type progressFields struct {
	PercentDone float64 `json:"percent_done"`
	SentLast5m  int64   `json:"sent_last_5m"`
	RatePerMin  float64 `json:"rate_per_min"`
	ETASeconds  *int64  `json:"eta_seconds"`
	ETABasis    string  `json:"eta_basis,omitempty"`
}

// printProgress writes the progress lines of show and stats.
func printProgress(w io.Writer, p *core.Progress) {
	fprintf(w, "progress:    %.1f%% done, %d sent in the last 5 minutes, %.1f/min, ETA %s\n",
		p.PercentDone, p.SentLast5m, p.RatePerMin, etaText(p))
	fprintf(w, "started:     %s\nfinished:    %s\nlast tick:   %s\n", timeText(p.StartedAt), timeText(p.FinishedAt), timeText(p.LastTickAt))
}

// etaText is an ETA for people: "-" when there is none, "~" before one
// estimated from the tick cadence rather than an observed rate.
func etaText(p *core.Progress) string {
	if p.ETASeconds == nil {
		return "-"
	}
	d := (time.Duration(*p.ETASeconds) * time.Second).String()
	if p.ETABasis == "cadence" {
		return "~" + d + " (from the tick cadence)"
	}
	return d
}

// timeText is a time for people, "-" when it has not happened.
func timeText(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05Z07:00")
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
	class := fs.String("class", "", "only FAILED recipients of this error `class` (transient, permanent, throttled, config, in_doubt, template, expired)")
	code := fs.Int("code", 0, "only FAILED recipients whose last reply `code` is this (a group of `campaign failures`)")
	pos, err := a.parse(fs, args, 1, 1, "campaign retry ID [--class CLASS] [--code N]")
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
	res, err := s.Retry(actorContext(ctx), id, *class, *code)
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
	allowMissing := allowMissingAttrsFlag(fs)
	const usage = "campaign edit ID [--name N] [--subject TPL] [--text-file F] [--html-file F] [--from ADDR] ... [--allow-missing-attrs] (only the flags given change)"
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
		SendWindow: str("send-window", spec.SendWindow), NotBefore: str("not-before", spec.NotBefore),
		Expires: str("expires", spec.Expires),
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
	if *allowMissing {
		ctx = core.WithAllowMissingAttrs(ctx)
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
	return a.print(p, func(w io.Writer) { writeTermLines(w, p.Message) })
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
		return core.Errorf(core.EUNAVAILABLE, "test send of campaign %d to %s through sender %s failed: %s",
			id, res.To, res.Sender, res.Error)
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

// allowMissingAttrsFlag is activate's, execute's and edit's
// --allow-missing-attrs.
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

// campaignWatch follows a campaign until it is COMPLETED, PAUSED or
// CANCELLED: in a terminal a view redrawn in place (progress bar, rate, ETA,
// recent failures); otherwise, and with --json, one line (one Progress
// object) per change, so a script or a test can follow it. It only reads
// (Progress: the counters and five minute rows), through the daemon when
// one answers and from the database otherwise; what sends is the daemon
// or cron's ticks.
func (a *app) campaignWatch(ctx context.Context, args []string) error {
	fs := a.flags("campaign watch")
	every := fs.Duration("interval", 2*time.Second, "how often to look")
	pos, err := a.parse(fs, args, 1, 1, "campaign watch ID [--interval D]")
	if err != nil {
		return err
	}
	if *every < 50*time.Millisecond {
		return usagef("--interval %s: at least 50ms", *every)
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
	live := false
	if f, ok := a.stdout.(*os.File); ok && !a.jsonOut && term.IsTerminal(int(f.Fd())) {
		live = true
	}
	var last string
	drawn := 0
	for {
		p, err := s.Progress(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted: the campaign goes on
			}
			return err
		}
		switch {
		case a.jsonOut:
			line, err := json.Marshal(p)
			if err != nil {
				return err
			}
			// Only changes: a quiet campaign prints nothing.
			if key := watchKey(p); key != last {
				last = key
				fprintf(a.stdout, "%s\n", line)
			}
		case live:
			view := watchView(p)
			if drawn > 0 {
				fprintf(a.stdout, "\x1b[%dA", drawn) // back to the view's first line
			}
			for _, l := range view {
				fprintf(a.stdout, "\r\x1b[K%s\n", l)
			}
			drawn = len(view)
		default:
			if key := watchKey(p); key != last {
				last = key
				fprintf(a.stdout, "%s\n", watchLine(p))
			}
		}
		if p.Finished() {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(*every):
		}
	}
}

// watchKey is what makes a watch line new: status and counters (the
// rate and ETA move with them).
func watchKey(p *core.Progress) string {
	return fmt.Sprintf("%s %+v", p.Status, p.Stats)
}

// watchLine is one line of a watch outside a terminal.
func watchLine(p *core.Progress) string {
	return fmt.Sprintf("campaign %d %s %.1f%% sent %d failed %d bounced %d left %d rate %.1f/min eta %s",
		p.CampaignID, p.Status, p.PercentDone, p.Sent, p.Failed, p.Bounced, p.Unfinished(), p.RatePerMin, etaText(p))
}

// watchView is the watch's screen in a terminal.
func watchView(p *core.Progress) []string {
	const width = 40
	fill := int(p.PercentDone / 100 * width)
	bar := strings.Repeat("#", fill) + strings.Repeat(".", width-fill)
	view := []string{
		fmt.Sprintf("campaign %d  %s  %s", p.CampaignID, p.Status, p.At.Local().Format(time.TimeOnly)),
		fmt.Sprintf("[%s] %5.1f%%", bar, p.PercentDone),
		fmt.Sprintf("sent %d  failed %d  bounced %d  left %d of %d", p.Sent, p.Failed, p.Bounced, p.Unfinished(), p.Total),
		fmt.Sprintf("rate %.1f/min (%d sent in 5 min)  ETA %s", p.RatePerMin, p.SentLast5m, etaText(p)),
		"recent failures:",
	}
	if len(p.RecentFailures) == 0 {
		view = append(view, "  (none)")
	}
	for i, f := range p.RecentFailures {
		if i == 3 {
			break
		}
		view = append(view, "  "+termSafe(f))
	}
	// A fixed height, so the redraw covers the previous view.
	for len(view) < 8 {
		view = append(view, "")
	}
	return view
}

// campaignFailures prints a campaign's failure breakdown (see
// core.Engine.Failures), largest group first, with the retry command of
// each retryable group.
func (a *app) campaignFailures(ctx context.Context, args []string) error {
	pos, err := a.parse(a.flags("campaign failures"), args, 1, 1, "campaign failures ID")
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
	rep, err := s.Failures(ctx, id)
	if err != nil {
		return err
	}
	return a.print(rep, func(w io.Writer) {
		fprintf(w, "campaign %d: %d failed, %d bounced, %d groups\n", rep.CampaignID, rep.Failed, rep.Bounced, len(rep.Groups))
		if len(rep.Groups) == 0 {
			return
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "COUNT\tSTATUS\tCLASS\tCODE\tENHANCED\tTEXT\tEXAMPLE")
		for _, g := range rep.Groups {
			code := "-"
			if g.Code != 0 {
				code = strconv.Itoa(g.Code)
			}
			fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", g.Count, g.Status, g.Class, code, orDash(g.EnhancedCode),
				g.Text, g.Example)
		}
		tw.Flush()
		fprintf(w, "retry a group of FAILED recipients: campaignd campaign retry %d --class CLASS [--code CODE]\n", rep.CampaignID)
	})
}

// orDash is s, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
