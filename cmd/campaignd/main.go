// Command campaignd sends email campaigns from a durable SQLite queue.
//
// Every command talks to the daemon (campaignd serve) over its Unix socket
// when one is running, and otherwise opens the database itself under the
// same lock and runs the same core code. See the README.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/campaignd/campaignd/core"
)

// usageError is a command-line mistake: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// exitCode maps an error to the process exit code; the one place that
// does: 0 success, 1 the command failed (a tick that could not run), 2 a
// usage mistake, 3 a tick that ran but met sender-level problems.
func exitCode(err error) int {
	var ue *usageError
	var tp *tickProblems
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue), errors.Is(err, flag.ErrHelp):
		return 2
	case errors.As(err, &tp):
		return 3
	default:
		return 1
	}
}

const usageText = `usage: campaignd [--config FILE] [--db PATH] [--socket PATH] [--json] COMMAND ...

commands:
  init                                   create the database (and its directory) and print where
  serve                                  run the daemon
  tick [--campaign ID]... [-v]           send one batch (at most 50); cron-safe: silent
                                         on success, exit 3 and one line per problem
  campaign create --name N [--sender S] --from ADDR --subject TPL [--text-file F] [--html-file F]
                  [--reply-to ADDR] [--concurrency N] [--batch-size N] [--header 'K: V']...
  campaign list | show ID | activate ID | execute ID | pause ID | resume ID | cancel ID | stats ID
  campaign watch ID [--interval D]       follow progress, rate and ETA until COMPLETED, PAUSED or CANCELLED
  campaign failures ID                   FAILED and BOUNCED recipients grouped by class, code and text
  campaign retry ID [--class CLASS] [--code N]  FAILED -> QUEUED
  campaign edit ID [create's flags]      change a DRAFT, ACTIVE or PAUSED campaign (only the flags given)
  campaign clone ID [--name N] [--with-recipients]
  campaign delete ID --yes               remove a DRAFT, CANCELLED or COMPLETED campaign and its rows
  campaign preview ID [--recipient EMAIL]  the exact message a recipient would get
  campaign test ID --to ADDR [--recipient EMAIL]  send one test message through the campaign's sender
  recipients import ID FILE|- [--format csv|jsonl]
  recipients add ID EMAIL [--name N] [--attr k=v]...
  recipients list ID [--status S] [--limit N]
  executions [ID]                        execution history
  ticks [--limit N]                      recent ticks
  queue                                  due, waiting and in-flight work per campaign
  suppress add EMAIL [--reason R] | remove EMAIL | list | import FILE|-
  verify [ID] [-v]                       audit the database's invariants; exit 1 if any is broken
  config check [--connect]               start every sender's plugin to check its options; --connect opens a session
  backup DEST [--force]                  a consistent, fsynced, verified copy of the database
  migrate [--status]                     apply pending schema migrations, or list applied and pending
  version [--json]                       version, commit and Go version
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: it parses args, runs the command and
// prints one clear line on error.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	err := a.main(ctx, args)
	if err != nil {
		var ue *usageError
		var tp *tickProblems
		switch {
		case errors.Is(err, flag.ErrHelp):
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "campaignd: %s\n%s", ue.msg, usageText)
		case errors.As(err, &tp):
			for _, p := range tp.problems {
				fmt.Fprintf(stderr, "campaignd: %s\n", p)
			}
		default:
			fmt.Fprintf(stderr, "campaignd: %s\n", core.ErrorMessage(err))
		}
	}
	return exitCode(err)
}

func (a *app) main(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("campaignd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a.globalFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(a.stdout, usageText)
			return nil
		}
		return usagef("%v", err)
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return usagef("no command given")
	}
	cmd, rest := rest[0], rest[1:]
	switch cmd {
	case "version":
		return a.cmdVersion(rest)
	case "config":
		return a.cmdConfig(ctx, rest)
	case "init":
		return a.cmdInit(ctx, rest)
	case "serve":
		a.daemon = true
		return a.cmdServe(ctx, rest)
	case "tick":
		return a.cmdTick(ctx, rest)
	case "ticks":
		return a.cmdTicks(ctx, rest)
	case "queue":
		return a.cmdQueue(ctx, rest)
	case "campaign", "campaigns":
		return a.cmdCampaign(ctx, rest)
	case "recipients", "recipient":
		return a.cmdRecipients(ctx, rest)
	case "executions":
		return a.cmdExecutions(ctx, rest)
	case "verify":
		return a.cmdVerify(ctx, rest)
	case "backup":
		return a.cmdBackup(ctx, rest)
	case "migrate":
		return a.cmdMigrate(ctx, rest)
	case "suppress", "suppressions":
		return a.cmdSuppress(ctx, rest)
	case "help":
		fmt.Fprint(a.stdout, usageText)
		return nil
	}
	return usagef("unknown command %q", cmd)
}
