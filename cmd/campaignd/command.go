package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/campaignd/campaignd/core"
)

// command is one entry of the registry: the one list of commands that the
// dispatcher, the help, the usage text and the completion scripts all read.
// A command's flags are the ones its run function registers before it
// parses (see flagsOf), so they are written once, where they are used.
type command struct {
	name        string   // "tick", "campaign create"; a group's name is one word
	aliases     []string // other spellings of a top-level word ("campaigns")
	args        string   // positional arguments for the usage line: "ID", "[ID]", "ID FILE|-"
	synopsis    string   // one line, for the command list
	description string   // one paragraph, for the command's help
	examples    []string // command lines without the leading "campaignd "; between them they use every flag
	run         func(a *app, ctx context.Context, args []string) error
	subs        []*command // a group's subcommands (run is nil)
}

// leaf reports whether c runs (as opposed to grouping subcommands).
func (c *command) leaf() bool { return c.subs == nil }

// usageLine is "campaignd NAME ARGS" and its own flags, spelled out
// ("[--force]", "[--limit N]") when fs is known and they are few, else
// "[flags]".
func (c *command) usageLine(fs *flag.FlagSet) string {
	s := "campaignd " + c.name
	if !c.leaf() {
		return s + " SUBCOMMAND ..."
	}
	if c.args != "" {
		s += " " + c.args
	}
	if fs == nil {
		return s + " [flags]"
	}
	own := ownFlags(fs)
	if len(own) > 4 {
		return s + " [flags]"
	}
	for _, f := range own {
		s += " [" + flagName(f.Name)
		if takesValue(f) {
			s += " " + placeholder(f)
		}
		s += "]"
	}
	return s
}

// registry is set in init: the run functions reach it (through help and
// the usage on errors), which a package-level initialiser cannot express.
var registry []*command

// errProbed stops a command's run at its parse in probe mode (flagsOf).
var errProbed = errors.New("flags probed")

// errHelpShown reports that --help printed the help: success, exit 0.
var errHelpShown = errors.New("help shown")

// lookup finds the command args name, walking into groups; rest is what
// follows its name. It returns a group for the group's --help; a group
// without a subcommand, or with an unknown one, is a usage error naming its
// subcommands, returned with the group (for its usage line).
func lookup(args []string) (*command, []string, error) {
	if len(args) == 0 {
		return nil, nil, usagef("no command given")
	}
	list, prefix := registry, ""
	for {
		var c *command
		for _, x := range list {
			if x.word() == args[0] || slices.Contains(x.aliases, args[0]) {
				c = x
			}
		}
		if c == nil {
			if prefix == "" {
				return nil, nil, usagef("unknown command %q", args[0])
			}
			return byName(prefix), nil, usagef("%s: unknown subcommand %q (%s)", prefix, args[0], subNames(list))
		}
		args = args[1:]
		if c.leaf() {
			return c, args, nil
		}
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			return c, nil, nil
		}
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			return c, nil, usagef("%s: missing subcommand (%s)", c.name, subNames(c.subs))
		}
		list, prefix = c.subs, c.name
	}
}

// word is the last word of c's name: what is typed to reach it.
func (c *command) word() string { return c.name[strings.LastIndexByte(c.name, ' ')+1:] }

func subNames(cs []*command) string {
	var names []string
	for _, c := range cs {
		names = append(names, c.word())
	}
	return strings.Join(names, ", ")
}

// byName returns the registry entry named name (as a FlagSet is named),
// or nil.
func byName(name string) *command {
	var found *command
	walk(func(c *command) {
		if c.name == name {
			found = c
		}
	})
	return found
}

// walk calls f for every command, groups before their subcommands, in
// registry order.
func walk(f func(c *command)) {
	var rec func(cs []*command)
	rec = func(cs []*command) {
		for _, c := range cs {
			f(c)
			rec(c.subs)
		}
	}
	rec(registry)
}

// flagsOf returns the FlagSet c's run registers, global flags included:
// it runs c in probe mode, where parse stops it before it does anything
// (and config and open refuse, in case a command reached them first).
func flagsOf(c *command) (*flag.FlagSet, error) {
	p := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, probing: true}
	if err := c.run(p, context.Background(), nil); !errors.Is(err, errProbed) || p.probed == nil {
		return nil, fmt.Errorf("command %q: flags not probed (its run must call parse first): %v", c.name, err)
	}
	return p.probed, nil
}

// globalNames is the set of the global flags' names.
func globalNames() map[string]bool {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	(&app{}).globalFlags(fs)
	names := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { names[f.Name] = true })
	return names
}

// ownFlags returns the flags of fs that are not global, sorted by name.
func ownFlags(fs *flag.FlagSet) []*flag.Flag {
	global := globalNames()
	var out []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if !global[f.Name] {
			out = append(out, f)
		}
	})
	return out
}

// takesValue reports whether f needs an argument (every flag but a bool).
func takesValue(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

// printFlags writes one line per flag: --name VALUE, its description and
// its default when it has one.
func printFlags(w io.Writer, flags []*flag.Flag) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, f := range flags {
		_, usage := flag.UnquoteUsage(f)
		spec := flagName(f.Name)
		if takesValue(f) {
			spec += " " + placeholder(f)
		}
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" && f.DefValue != "[]" {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(tw, "  %s\t%s\n", spec, usage)
	}
	tw.Flush()
}

// printGlobalFlags writes the flags every command accepts.
func printGlobalFlags(w io.Writer) {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	(&app{}).globalFlags(fs)
	var flags []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) { flags = append(flags, f) })
	fmt.Fprintln(w, "global flags (before or after the command):")
	printFlags(w, flags)
}

// usageText is the top-level help: every command with its synopsis and the
// global flags, generated from the registry.
func usageText() string {
	var b strings.Builder
	b.WriteString("usage: campaignd [global flags] COMMAND [ARGS] [flags]\n\n")
	b.WriteString("campaignd sends email campaigns from a durable queue: through the daemon (campaignd serve)\nwhen one runs, standalone on the database otherwise.\n\n")
	b.WriteString("commands:\n")
	b.WriteString(commandList())
	b.WriteString("\n")
	printGlobalFlags(&b)
	b.WriteString("\nrun `campaignd help COMMAND` or `campaignd COMMAND --help` for a command's flags and examples.\n")
	return b.String()
}

// commandList is one line per runnable command: its usage and synopsis.
// The README's command list is this text (TestREADMECommandList).
func commandList() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	walk(func(c *command) {
		if c.leaf() {
			name := c.name
			if c.args != "" {
				name += " " + c.args
			}
			fmt.Fprintf(tw, "  %s\t%s\n", name, c.synopsis)
		}
	})
	tw.Flush()
	return b.String()
}

// printHelp writes c's help: usage, description, its flags (fs, from the
// run itself), the global flags and examples; a group lists its
// subcommands.
func printHelp(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: %s\n\n%s\n", c.usageLine(fs), wrap(c.description, 100))
	if !c.leaf() {
		fmt.Fprintln(w, "\nsubcommands:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, s := range c.subs {
			fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace(s.word()+" "+s.args), s.synopsis)
		}
		tw.Flush()
		fmt.Fprintf(w, "\nrun `campaignd help %s SUBCOMMAND` for its flags and examples.\n", c.name)
		return
	}
	if own := ownFlags(fs); len(own) > 0 {
		fmt.Fprintln(w, "\nflags:")
		printFlags(w, own)
	}
	fmt.Fprintln(w)
	printGlobalFlags(w)
	if len(c.examples) > 0 {
		fmt.Fprintln(w, "\nexamples:")
		for _, e := range c.examples {
			fmt.Fprintf(w, "  campaignd %s\n", e)
		}
	}
}

// cmdHelp prints the top-level help, or the help of the command words
// name.
func (a *app) cmdHelp(words []string) error {
	if len(words) == 0 {
		fmt.Fprint(a.stdout, usageText())
		return nil
	}
	c, rest, err := lookup(append(words, "--help"))
	if err != nil {
		return err
	}
	if len(rest) > 1 {
		return usagef("help: %s has no subcommand %q", c.name, rest[0])
	}
	return a.showHelp(c)
}

// showHelp prints c's help on stdout.
func (a *app) showHelp(c *command) error {
	var fs *flag.FlagSet
	if c.leaf() {
		var err error
		if fs, err = flagsOf(c); err != nil {
			return err
		}
	}
	printHelp(a.stdout, c, fs)
	return nil
}

// campaignChangeCmd runs campaign activate, pause, resume or cancel.
func campaignChangeCmd(act core.Action) func(a *app, ctx context.Context, args []string) error {
	return func(a *app, ctx context.Context, args []string) error { return a.campaignChange(ctx, act, args) }
}

// suppressCmd runs a suppress subcommand.
func suppressCmd(sub string) func(a *app, ctx context.Context, args []string) error {
	return func(a *app, ctx context.Context, args []string) error {
		return a.cmdSuppress(ctx, sub, args)
	}
}

func init() {
	registry = []*command{
		{name: "init", synopsis: "create the database (and its directory) and print where",
			description: "Creates the configured database and its directory, applying every migration, and prints its path and the config file in use. Only init, serve and campaign create may create a database: every other command refuses a missing one, naming the path it looked for.",
			examples:    []string{"init", "--config /etc/campaignd/campaignd.toml init"},
			run:         func(a *app, ctx context.Context, args []string) error { return a.cmdInit(ctx, args) }},
		{name: "serve", synopsis: "run the daemon",
			description: "Runs the daemon: holds the database lock, listens on the control socket (and [http] listeners when configured), keeps sender plugins warm and ticks every tick_interval (0: cron only). SIGHUP reloads limits; SIGTERM drains in-flight sends and exits.",
			examples:    []string{"serve", "--config /etc/campaignd/campaignd.toml serve"},
			run: func(a *app, ctx context.Context, args []string) error {
				a.daemon = true
				return a.cmdServe(ctx, args)
			}},
		{name: "status", synopsis: "version, database, plugins, last tick and queue depth",
			description: "Says what is running and how it is doing: the version, the database and its schema version, each configured sender and whether its plugin executable is found (through the daemon: whether it is running), the last tick and its result, and the queue depth from the counters. It works with or without the daemon.",
			examples:    []string{"status", "status --json"},
			run:         func(a *app, ctx context.Context, args []string) error { return a.cmdStatus(ctx, args) }},
		{name: "tick", synopsis: "send one batch (at most 50); silent on success, exit 3 and one line per problem",
			description: "Claims at most 50 due messages and sends them through their campaigns' senders: what cron runs every minute. A tick that delivered or had nothing to do prints nothing and exits 0; one that met sender-level problems prints one line each on stderr and exits 3; one that could not run exits 1. With --campaign it ticks only those campaigns, so disjoint cron lines run at once.",
			examples:    []string{"tick", "tick --campaign 3 --campaign 4 -v", "tick --json"},
			run:         func(a *app, ctx context.Context, args []string) error { return a.cmdTick(ctx, args) }},
		{name: "ticks", synopsis: "recent ticks and their results",
			description: "Lists the most recent ticks, newest first: trigger, duration and what each processed, sent, failed, retried, throttled, recovered and expired, and its error if it could not run.",
			examples:    []string{"ticks", "ticks --limit 5 --json"},
			run:         func(a *app, ctx context.Context, args []string) error { return a.cmdTicks(ctx, args) }},
		{name: "queue", synopsis: "due, waiting and in-flight work per campaign; paused campaigns apart; sender quotas",
			description: "Shows, per campaign with queued work, how many messages are due now, waiting for a retry and in flight, and the next attempt. A paused campaign's queue is listed apart and never counted as due: nothing is sent for it until `campaignd campaign resume ID`. A SENDING campaign outside its schedule (--send-window, --not-before, --expires) is listed apart too, with why and when it opens next (closed, opens_at in --json). Then, per sender with a rate, what each window has left and when it refills, and a provider's block.",
			examples:    []string{"queue", "queue --json"},
			run:         func(a *app, ctx context.Context, args []string) error { return a.cmdQueue(ctx, args) }},
		{name: "executions", args: "[ID]", synopsis: "execution history (each execution's own result)",
			description: "Lists campaign executions, newest first, for one campaign or all: when, by whom, how many recipients each queued and its own result, apart from the campaign's current status.",
			examples:    []string{"executions", "executions 3 --limit 10"},
			run:         func(a *app, ctx context.Context, args []string) error { return a.cmdExecutions(ctx, args) }},
		{name: "campaign", aliases: []string{"campaigns"}, synopsis: "create, change and inspect campaigns",
			description: "Campaigns go DRAFT -> ACTIVE -> (execute) SENDING -> COMPLETED; PAUSED from ACTIVE or SENDING and back; CANCELLED from any state but COMPLETED.",
			subs: []*command{
				{name: "campaign create", synopsis: "create a DRAFT campaign",
					description: "Creates a campaign in DRAFT. --send-window, --not-before and --expires say when ticks may send it (TIME: RFC 3339, or '2026-12-24 09:00' in the window's zone, else UTC); after --expires its unsent recipients fail with class expired. Its templates are Go text/template (html/template for --html) over the recipient's .Email, .Name, .Attr.KEY, .Campaign.Name and .UnsubscribeURL. --sender is required when a real sender is configured and default_sender is not set.",
					examples: []string{
						"campaign create --name 'March news' --sender smtp --from news@example.com --subject 'Hello {{.Name}}' --text-file march.txt --html-file march.html",
						"campaign create --name Promo --from news@example.com --reply-to help@example.com --subject Hi --text 'Hi {{.Name}}' --html '<p>Hi</p>' --concurrency 5 --batch-size 50 --header 'X-Campaign: promo'",
						"campaign create --name Advent --from news@example.com --subject Hi --text Hi --send-window 'Mon-Fri 09:00-17:00 Europe/Berlin' --not-before '2027-12-01 09:00' --expires '2027-12-24 12:00'",
					},
					run: func(a *app, ctx context.Context, args []string) error { return a.campaignCreate(ctx, args) }},
				{name: "campaign edit", args: "ID", synopsis: "change a DRAFT, ACTIVE or PAUSED campaign (only the flags given)",
					description: "Changes a campaign in DRAFT, ACTIVE or PAUSED with create's flags and the same validation; only the flags given change. An edit of only --send-window, --not-before and --expires (\"\" removes one) is allowed in any state but CANCELLED, so a SENDING campaign's window can move and an expired campaign can be extended before `campaign retry ID --class expired`. An edit whose templates reference a new attribute is refused while a PENDING or QUEUED recipient lacks it, unless --allow-missing-attrs (it then renders empty). After an edit, `campaignd campaign retry ID --class template` sends to the recipients that failed on the old template.",
					examples: []string{
						"campaign edit 3 --subject 'Hello again {{.Name}}' --text-file march.txt --html-file march.html",
						"campaign edit 3 --name 'March news' --sender smtp --from news@example.com --reply-to help@example.com --text 'Hi' --html '<p>Hi</p>' --concurrency 2 --batch-size 20 --header 'X-Campaign: march'",
						"campaign edit 3 --clear-headers",
						"campaign edit 3 --send-window 'Sat-Sun 10:00-14:00 Europe/Berlin' --expires 2027-12-31T23:00:00Z",
						"campaign edit 3 --send-window '' --not-before '' --expires ''",
						"campaign edit 3 --text 'Your coupon: {{.Attr.coupon}}' --allow-missing-attrs",
					},
					run: func(a *app, ctx context.Context, args []string) error { return a.campaignEdit(ctx, args) }},
				{name: "campaign clone", args: "ID", synopsis: "copy a campaign into a new DRAFT",
					description: "Copies a campaign's content and settings into a new DRAFT, and with --with-recipients its addresses and attributes as PENDING (suppressed addresses left out).",
					examples:    []string{"campaign clone 3", "campaign clone 3 --name 'April news' --with-recipients"},
					run:         func(a *app, ctx context.Context, args []string) error { return a.campaignClone(ctx, args) }},
				{name: "campaign delete", args: "ID", synopsis: "remove a DRAFT, CANCELLED or COMPLETED campaign and its rows",
					description: "Removes a campaign in DRAFT, CANCELLED or COMPLETED with its recipients. Without --yes it only says what would be deleted.",
					examples:    []string{"campaign delete 3", "campaign delete 3 --yes"},
					run:         func(a *app, ctx context.Context, args []string) error { return a.campaignDelete(ctx, args) }},
				{name: "campaign preview", args: "ID", synopsis: "print the exact message a recipient would get",
					description: "Prints the RFC 5322 message the tick would send to a recipient (the first, or a sample when there is none), rendered by the tick's own code; --json gives subject, text, html and headers.",
					examples:    []string{"campaign preview 3", "campaign preview 3 --recipient ann@example.com --json"},
					run:         func(a *app, ctx context.Context, args []string) error { return a.campaignPreview(ctx, args) }},
				{name: "campaign test", args: "ID", synopsis: "send one test message through the campaign's sender",
					description: "Sends one real message through the campaign's sender without touching its queue or counters, and says what the server answered.",
					examples:    []string{"campaign test 3 --to me@example.com", "campaign test 3 --to me@example.com --recipient ann@example.com"},
					run:         func(a *app, ctx context.Context, args []string) error { return a.campaignTest(ctx, args) }},
				{name: "campaign list", synopsis: "every campaign with its counters",
					description: "Lists every campaign with its status, sender and counters.",
					examples:    []string{"campaign list", "campaign list --json"},
					run:         func(a *app, ctx context.Context, args []string) error { return a.campaignList(ctx, args) }},
				{name: "campaign show", args: "ID", synopsis: "a campaign's settings and counters",
					description: "Shows a campaign's settings and counters, and says plainly when its sender is the outbox (a dry run).",
					examples:    []string{"campaign show 3", "campaign show 3 --json"},
					run:         func(a *app, ctx context.Context, args []string) error { return a.campaignShow(ctx, "show", args) }},
				{name: "campaign stats", args: "ID", synopsis: "a campaign's counters",
					description: "Prints a campaign's counters: total, pending, queued, sending, sent, failed and bounced.",
					examples:    []string{"campaign stats 3", "campaign stats 3 --json"},
					run:         func(a *app, ctx context.Context, args []string) error { return a.campaignShow(ctx, "stats", args) }},
				{name: "campaign activate", args: "ID", synopsis: "DRAFT -> ACTIVE",
					description: "Makes a DRAFT campaign ACTIVE, ready to execute. It refuses while recipients lack attributes the templates use, naming how many and one example; --allow-missing-attrs renders them empty instead.",
					examples:    []string{"campaign activate 3", "campaign activate 3 --allow-missing-attrs"}, run: campaignChangeCmd(core.ActionActivate)},
				{name: "campaign execute", args: "ID", synopsis: "queue every PENDING recipient: ACTIVE -> SENDING",
					description: "Queues every PENDING recipient of an ACTIVE campaign in one statement and returns at once; the ticks send them. It sends nothing itself. Like activate, it refuses while recipients lack attributes the templates use, unless --allow-missing-attrs.",
					examples:    []string{"campaign execute 3", "campaign execute 3 --json", "campaign execute 3 --allow-missing-attrs"},
					run:         func(a *app, ctx context.Context, args []string) error { return a.campaignExecute(ctx, args) }},
				{name: "campaign pause", args: "ID", synopsis: "stop sending (ACTIVE or SENDING -> PAUSED)", description: "Pauses a campaign: ticks send nothing for it until it is resumed.",
					examples: []string{"campaign pause 3"}, run: campaignChangeCmd(core.ActionPause)},
				{name: "campaign resume", args: "ID", synopsis: "PAUSED -> where it was", description: "Resumes a paused campaign: back to ACTIVE or SENDING.",
					examples: []string{"campaign resume 3"}, run: campaignChangeCmd(core.ActionResume)},
				{name: "campaign cancel", args: "ID", synopsis: "stop for good (any state but COMPLETED -> CANCELLED)", description: "Cancels a campaign: its queued messages are never sent.",
					examples: []string{"campaign cancel 3"}, run: campaignChangeCmd(core.ActionCancel)},
				{name: "campaign retry", args: "ID", synopsis: "FAILED -> QUEUED (optionally one error class, or one group)",
					description: "Queues the FAILED recipients of a campaign again, all or those of one error class (transient, permanent, throttled, config, in_doubt, template, expired), or one group of `campaign failures` with --class and --code.",
					examples:    []string{"campaign retry 3", "campaign retry 3 --class template", "campaign retry 3 --class expired", "campaign retry 3 --class permanent --code 552"},
					run:         func(a *app, ctx context.Context, args []string) error { return a.campaignRetry(ctx, args) }},
				{name: "campaign watch", args: "ID", synopsis: "follow a campaign: progress, rate, ETA, recent failures",
					description: "Shows a campaign's progress bar, rate, ETA and recent failures, redrawn in a terminal (one line per change otherwise, one JSON object with --json), until it is COMPLETED, PAUSED or CANCELLED.",
					examples:    []string{"campaign watch 3", "campaign watch 3 --interval 10s --json"},
					run:         func(a *app, ctx context.Context, args []string) error { return a.campaignWatch(ctx, args) }},
				{name: "campaign failures", args: "ID", synopsis: "FAILED and BOUNCED recipients grouped by class, code and text",
					description: "Groups a campaign's FAILED and BOUNCED recipients by class, reply code, enhanced code and normalised text, largest group first, with one example address each; `campaign retry ID --class C --code N` retries one group.",
					examples:    []string{"campaign failures 3", "campaign failures 3 --json"},
					run:         func(a *app, ctx context.Context, args []string) error { return a.campaignFailures(ctx, args) }},
			}},
		{name: "recipients", aliases: []string{"recipient"}, synopsis: "import, add, list and show a campaign's recipients",
			description: "A campaign's recipients: one row per normalised address, with a name and attributes for the templates.",
			subs: []*command{
				{name: "recipients import", args: "ID FILE|-", synopsis: "add recipients from a CSV or JSONL file (or stdin)",
					description: "Adds recipients from a CSV file (an email column, optionally name and attribute columns) or JSONL, reporting duplicates, suppressed and invalid rows with their line numbers.",
					examples:    []string{"recipients import 3 list.csv", "recipients import 3 - --format jsonl < list.jsonl"},
					run:         func(a *app, ctx context.Context, args []string) error { return a.recipientsImport(ctx, args) }},
				{name: "recipients add", args: "ID EMAIL", synopsis: "add one recipient",
					description: "Adds one recipient with a name and attributes.",
					examples:    []string{"recipients add 3 ann@example.com --name Ann --attr plan=pro --attr city=Oslo"},
					run:         func(a *app, ctx context.Context, args []string) error { return a.recipientsAdd(ctx, args) }},
				{name: "recipients list", args: "ID", synopsis: "a campaign's recipients, a page at a time or --all",
					description: "Lists a campaign's recipients in id order, a page of --limit rows (after --after ID), or every row with --all, streamed page by page. When a page stops with rows left it says so on stderr, with the --after to continue.",
					examples:    []string{"recipients list 3", "recipients list 3 --status FAILED --limit 500 --after 1200", "recipients list 3 --all --json"},
					run:         func(a *app, ctx context.Context, args []string) error { return a.recipientsList(ctx, args) }},
				{name: "recipients show", args: "ID EMAIL", synopsis: "one recipient's state and its delivery events",
					description: "Shows one recipient of a campaign, looked up by address (normalised as imports normalise it): its status, attempts and last error, then every delivery event recorded about it, oldest first (time, type, provider, reason): the provider webhook's and the bounce mailbox's bounces, deferrals, deliveries and complaints, and one-click unsubscribes. --json prints the recipient and its events as one document.",
					examples:    []string{"recipients show 3 ann@example.com", "recipients show 3 ann@example.com --json"},
					run:         func(a *app, ctx context.Context, args []string) error { return a.recipientsShow(ctx, args) }},
			}},
		{name: "suppress", aliases: []string{"suppressions"}, synopsis: "the suppression list: addresses never sent to",
			description: "Suppressed addresses are never sent to: bounces add them, unsubscribes add them, and so can an operator.",
			subs: []*command{
				{name: "suppress add", args: "EMAIL", synopsis: "suppress an address", description: "Adds an address to the suppression list.",
					examples: []string{"suppress add ann@example.com --reason 'asked by phone'"}, run: suppressCmd("add")},
				{name: "suppress remove", args: "EMAIL", synopsis: "unsuppress an address", description: "Removes an address from the suppression list.",
					examples: []string{"suppress remove ann@example.com"}, run: suppressCmd("remove")},
				{name: "suppress list", synopsis: "suppressed addresses", description: "Lists suppressed addresses with their source, date and reason.",
					examples: []string{"suppress list --limit 50"}, run: suppressCmd("list")},
				{name: "suppress import", args: "FILE|-", synopsis: "suppress every address of a file",
					description: "Suppresses every address of a CSV file (an email column, optionally reason) or of a text file with one address per line.",
					examples:    []string{"suppress import bounces.csv --reason 'old list'"}, run: suppressCmd("import")},
			}},
		{name: "sender", aliases: []string{"senders"}, synopsis: "a configured sender: lift a provider's quota block",
			description: "A configured sender ([senders.NAME]): its quota and blocks show in `queue` and `status`; an operator may lift a block by hand.",
			subs: []*command{
				{name: "sender unblock", args: "NAME", synopsis: "lift the block a provider's quota reply set on a sender",
					description: "Lifts the block a provider's quota reply (Gmail's 550 5.4.5, a 421 rate limit) set on a configured sender, for when its account's limit was raised or the reply was a false alarm: the next tick sends through it again, and its campaigns' messages waiting for a later attempt (those the throttled replies held back for as long as the block) are due at once. Its rate windows keep their counts, so the configured rate still binds. It prints the block it lifted (--json: {sender, was_blocked, blocked_until, reason, due_now}). A sender that is not blocked is no error: exit 0 with a note on stderr (was_blocked false), so a script may run it blindly. An unknown NAME exits 1 naming the configured senders.",
					examples:    []string{"sender unblock gmail", "sender unblock gmail --json"},
					run:         func(a *app, ctx context.Context, args []string) error { return a.senderUnblock(ctx, args) }},
			}},
		{name: "bounces", aliases: []string{"bounce"}, synopsis: "the bounce mailbox: delivery failures and complaints by mail",
			description: "Bounces and complaints that come back by mail (delivery status notifications, RFC 3464, and feedback reports, RFC 5965) are read from the POP3 mailbox of [bounces]: the daemon reads it every bounces.interval, cron runs `bounces fetch` without a daemon.",
			subs: []*command{
				{name: "bounces fetch", synopsis: "read the bounce mailbox once: bounce, defer or suppress; silent on success",
					description: "Reads the [bounces] mailbox once: a hard bounce turns its SENT recipient BOUNCED and suppresses the address, a delay is recorded, a complaint suppresses the address. Reports are matched to recipients by the original Message-ID or the VERP return path, and deduplicated; applied reports and reports about other mail are deleted, messages it cannot read are left in the mailbox and counted. Silent on success (-v prints the counts, --json them as JSON); a mailbox error exits 1 with its message. While the daemon runs, it reads the mailbox itself and the command is skipped.",
					examples:    []string{"bounces fetch", "bounces fetch -v", "bounces fetch --json"},
					run:         func(a *app, ctx context.Context, args []string) error { return a.bouncesFetch(ctx, args) }},
			}},
		{name: "verify", args: "[ID]", synopsis: "audit the database's invariants; exit 1 if any is broken",
			description: "Audits the database's invariants (counters against rows, leases, states); silent when clean, -v prints the report, exit 1 if any is broken.",
			examples:    []string{"verify", "verify 3 -v"},
			run:         func(a *app, ctx context.Context, args []string) error { return a.cmdVerify(ctx, args) }},
		{name: "config", synopsis: "check the configuration",
			description: "The configuration: found from --config, $CAMPAIGND_CONFIG, ./campaignd.toml, then /etc/campaignd/campaignd.toml.",
			subs: []*command{
				{name: "config check", synopsis: "start every sender's plugin to check its options; --connect opens a session",
					description: "Prints the effective configuration (secrets as the variables they come from, never their values) and starts every configured sender's plugin to validate its options; --connect also opens one real session through each.",
					examples:    []string{"config check", "config check --connect"},
					run:         func(a *app, ctx context.Context, args []string) error { return a.configCheck(ctx, args) }},
			}},
		{name: "backup", args: "DEST", synopsis: "a consistent, fsynced, verified copy of the database",
			description: "Writes a consistent copy of the database to DEST (through the daemon when it runs), fsyncs and verifies it. Silent on success.",
			examples:    []string{"backup /var/backups/campaignd.db", "backup /var/backups/campaignd.db --force"},
			run:         func(a *app, ctx context.Context, args []string) error { return a.cmdBackup(ctx, args) }},
		{name: "dashboard", synopsis: "print a one-time login link to the running daemon's dashboard",
			description: "Asks the running daemon for a one-time link that logs one browser in to its dashboard ([admin] listen); it is valid 10 minutes and works once.",
			examples:    []string{"dashboard"},
			run:         func(a *app, ctx context.Context, args []string) error { return a.cmdDashboard(ctx, args) }},
		{name: "migrate", synopsis: "apply pending schema migrations, or list them",
			description: "Applies pending schema migrations (the daemon and writing commands refuse a database that needs them); --status lists applied and pending and changes nothing.",
			examples:    []string{"migrate", "migrate --status"},
			run:         func(a *app, ctx context.Context, args []string) error { return a.cmdMigrate(ctx, args) }},
		{name: "version", synopsis: "version, commit and Go version",
			description: "Prints the version, the commit and the Go version and platform it was built with.",
			examples:    []string{"version", "version --json"},
			run:         func(a *app, ctx context.Context, args []string) error { return a.cmdVersion(args) }},
		{name: "completion", args: "bash|zsh|fish", synopsis: "print a shell completion script",
			description: "Prints a completion script for bash, zsh or fish, generated from the same list of commands and flags as this help.",
			examples:    []string{"completion bash > /etc/bash_completion.d/campaignd", "completion zsh > \"${fpath[1]}/_campaignd\"", "completion fish > ~/.config/fish/completions/campaignd.fish"},
			run:         func(a *app, ctx context.Context, args []string) error { return a.cmdCompletion(args) }},
		{name: "help", args: "[COMMAND [SUBCOMMAND]]", synopsis: "this help, or a command's",
			description: "Prints the list of commands, or a command's usage, flags and examples.",
			examples:    []string{"help", "help campaign create"},
			run:         func(a *app, ctx context.Context, args []string) error { return a.helpRun(args) }},
	}
}

// helpRun is `campaignd help [COMMAND [SUBCOMMAND]]`.
func (a *app) helpRun(args []string) error {
	pos, err := a.parse(a.flags("help"), args, 0, 2, "help [COMMAND [SUBCOMMAND]]")
	if err != nil {
		return err
	}
	return a.cmdHelp(pos)
}

// flagName is how help writes a flag: -v for one letter, --name otherwise
// (the flag package takes either spelling).
func flagName(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// placeholder names a flag's value in help: the `word` its usage quotes,
// N for a number, else the flag's name in capitals ("--from FROM").
func placeholder(f *flag.Flag) string {
	name, _ := flag.UnquoteUsage(f)
	switch {
	case strings.Contains(f.Usage, "`"):
		return strings.ToUpper(name)
	case name == "int" || name == "uint" || name == "float":
		return "N"
	case name == "duration":
		return "DURATION"
	}
	return strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
}

// wrap breaks text into lines of at most width columns at spaces.
func wrap(text string, width int) string {
	var b strings.Builder
	n := 0
	for i, word := range strings.Fields(text) {
		if i > 0 && n+1+len(word) > width {
			b.WriteByte('\n')
			n = 0
		} else if i > 0 {
			b.WriteByte(' ')
			n++
		}
		b.WriteString(word)
		n += len(word)
	}
	return b.String()
}
