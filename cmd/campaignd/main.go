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
	// Send windows name IANA zones: the binary carries the zone data, so
	// a machine without /usr/share/zoneinfo (a scratch container) works.
	_ "time/tzdata"

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
	case errors.Is(err, errHelpShown):
		return 0
	case errors.As(err, &ue):
		return 2
	case errors.As(err, &tp):
		return 3
	default:
		return 1
	}
}

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
		case errors.Is(err, errHelpShown):
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "campaignd: %s\n", ue.msg)
			// The command's own usage when it was found, else the list.
			if a.cmd != nil {
				fmt.Fprintf(stderr, "usage: %s\nrun `campaignd help %s` for its flags and examples\n", a.cmd.usageLine(a.flagSet), a.cmd.name)
			} else {
				fmt.Fprint(stderr, usageText())
			}
		case errors.As(err, &tp):
			// A problem line and an error carry text from elsewhere (an
			// SMTP server's reply, a provider's error): escaped.
			for _, p := range tp.problems {
				fprintf(stderr, "campaignd: %s\n", p)
			}
		default:
			fprintf(stderr, "campaignd: %s\n", core.ErrorMessage(err))
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
			fmt.Fprint(a.stdout, usageText())
			return nil
		}
		return usagef("%v", err)
	}
	cmd, rest, err := lookup(fs.Args())
	a.cmd = cmd
	if err != nil {
		return err
	}
	if !cmd.leaf() {
		// lookup returns a group only for its --help.
		return a.showHelp(cmd)
	}
	return cmd.run(a, ctx, rest)
}
