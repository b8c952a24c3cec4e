package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/campaignd/campaignd/core"
)

// cmdSuppress runs the suppress subcommand sub (the registry's add,
// remove, list or import).
func (a *app) cmdSuppress(ctx context.Context, sub string, args []string) error {
	if sub == "import" {
		return a.suppressImport(ctx, args)
	}
	fs := a.flags("suppress " + sub)
	// Each subcommand registers only its own flags, for its help.
	reason, limit := new(string), new(int)
	switch sub {
	case "add":
		fs.StringVar(reason, "reason", "", "why, recorded with the address")
	case "list":
		fs.IntVar(limit, "limit", 1000, "most rows")
	}
	switch sub {
	case "add", "remove":
		pos, err := a.parse(fs, args, 1, 1, "suppress "+sub+" EMAIL")
		if err != nil {
			return err
		}
		s, err := a.open(ctx, writeAccess, "suppress "+sub)
		if err != nil {
			return err
		}
		defer s.Close()
		if sub == "add" {
			err = s.Suppress(actorContext(ctx), core.Suppression{Email: pos[0], Reason: *reason, Source: "operator"})
		} else {
			err = s.Unsuppress(actorContext(ctx), pos[0])
		}
		if err != nil {
			return err
		}
		result := map[string]string{"add": "suppressed", "remove": "unsuppressed"}[sub]
		return a.print(map[string]string{"email": pos[0], "result": result}, func(w io.Writer) {
			fprintf(w, "%s %s\n", result, pos[0])
		})
	case "list":
		if _, err := a.parse(fs, args, 0, 0, "suppress list"); err != nil {
			return err
		}
		n, err := core.ListLimit("--limit", *limit)
		if err != nil {
			return err
		}
		s, err := a.open(ctx, readAccess, "")
		if err != nil {
			return err
		}
		defer s.Close()
		list, err := s.Suppressions(ctx, n)
		if err != nil {
			return err
		}
		if list == nil {
			list = []*core.Suppression{}
		}
		return a.print(list, func(w io.Writer) {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "EMAIL\tSOURCE\tSINCE\tREASON")
			for _, x := range list {
				fprintf(tw, "%s\t%s\t%s\t%s\n", x.Email, x.Source, x.CreatedAt.Local().Format(time.DateTime), x.Reason)
			}
			tw.Flush()
		})
	}
	return fmt.Errorf("suppress: no subcommand %q", sub) // the registry names only those above
}

// suppressImport adds every address of a file to the suppression list in
// one request (see core.Engine.ImportSuppressions): a CSV file with an
// "email" column (and optionally "reason"), or plain text with one address
// per line. Invalid lines are reported with their number and skipped.
func (a *app) suppressImport(ctx context.Context, args []string) error {
	fs := a.flags("suppress import")
	reason := fs.String("reason", "imported", "reason recorded for rows without one")
	pos, err := a.parse(fs, args, 1, 1, "suppress import FILE|- [--reason R]")
	if err != nil {
		return err
	}
	var in io.Reader = a.stdin
	if pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			return core.Errorf(core.EINVALID, "suppress import: %v", err)
		}
		defer f.Close()
		in = f
	}
	s, err := a.open(ctx, writeAccess, "suppress import")
	if err != nil {
		return err
	}
	defer s.Close()
	res, err := s.ImportSuppressions(actorContext(ctx), "", in, *reason)
	if err != nil {
		if res != nil && res.Added > 0 {
			fmt.Fprintf(a.stderr, "campaignd: %d addresses were suppressed before the error\n", res.Added)
		}
		return fmt.Errorf("suppress import: %w", err)
	}
	return a.print(res, func(w io.Writer) {
		fprintf(w, "suppressed %d addresses, invalid %d\n", res.Added, res.Invalid)
		for _, e := range res.Errors {
			fprintf(w, "line %d: %s\n", e.Line, e.Message)
		}
	})
}
