package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/campaignd/campaignd/core"
)

func (a *app) cmdSuppress(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("suppress: missing subcommand (add, remove, list, import)")
	}
	sub, args := args[0], args[1:]
	if sub == "import" {
		return a.suppressImport(ctx, args)
	}
	fs := a.flags("suppress " + sub)
	reason := fs.String("reason", "", "why (add)")
	limit := fs.Int("limit", 1000, "most rows (list)")
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
		s, err := a.open(ctx, readAccess, "")
		if err != nil {
			return err
		}
		defer s.Close()
		list, err := s.Suppressions(ctx, *limit)
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
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", x.Email, x.Source, x.CreatedAt.Local().Format(time.DateTime), x.Reason)
			}
			tw.Flush()
		})
	}
	return usagef("suppress: unknown subcommand %q", sub)
}

// suppressImport adds every address of a file to the suppression list: a
// CSV file with an "email" column (and optionally "reason"), or plain text
// with one address per line. Invalid lines are reported with their number
// and skipped.
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
	br := bufio.NewReader(in)
	if bom, _ := br.Peek(3); string(bom) == "\ufeff" {
		_, _ = br.Discard(3) // spreadsheet exports start with one
	}
	first, _ := br.Peek(4096)
	// A first line that names an "email" column makes the file a CSV file
	// (one column is enough); a first line with commas but no such column
	// is a CSV file without the header it needs; anything else, a comment
	// line included, is a list.
	var columns []string
	if line0 := strings.TrimRight(strings.SplitN(string(first), "\n", 2)[0], "\r"); !strings.HasPrefix(strings.TrimSpace(line0), "#") {
		for _, h := range strings.Split(line0, ",") {
			columns = append(columns, strings.ToLower(strings.TrimSpace(strings.Trim(strings.TrimSpace(h), `"`))))
		}
	}
	var next func() (email, why string, line int64, err error)
	if !slices.Contains(columns, "email") && len(columns) > 1 {
		return core.Errorf(core.EINVALID, "suppress import: line 1: a CSV file needs a header row with an email column (columns: %s)", strings.Join(columns, ", "))
	}
	if slices.Contains(columns, "email") {
		r := csv.NewReader(br)
		r.FieldsPerRecord = -1
		head, err := r.Read()
		if err != nil {
			return core.Errorf(core.EINVALID, "suppress import: line 1: %v", err)
		}
		emailCol, reasonCol := -1, -1
		for i, h := range head {
			switch strings.ToLower(strings.TrimSpace(h)) {
			case "email":
				emailCol = i
			case "reason":
				reasonCol = i
			}
		}
		next = func() (string, string, int64, error) {
			rec, err := r.Read()
			if err != nil {
				var pe *csv.ParseError
				if errors.As(err, &pe) {
					return "", "", int64(pe.StartLine), core.Errorf(core.EINVALID, "%v", pe.Err)
				}
				return "", "", 0, err
			}
			line, _ := r.FieldPos(0)
			why := ""
			if reasonCol >= 0 && reasonCol < len(rec) {
				why = rec[reasonCol]
			}
			if emailCol >= len(rec) {
				return "", why, int64(line), core.Errorf(core.EINVALID, "no email field")
			}
			return rec[emailCol], why, int64(line), nil
		}
	} else {
		sc := bufio.NewScanner(br)
		var n int64
		next = func() (string, string, int64, error) {
			for sc.Scan() {
				n++
				if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
					return l, "", n, nil
				}
			}
			if err := sc.Err(); err != nil {
				return "", "", n, err
			}
			return "", "", n, io.EOF
		}
	}
	s, err := a.open(ctx, writeAccess, "suppress import")
	if err != nil {
		return err
	}
	defer s.Close()
	res := &core.ImportResult{Errors: []core.ImportError{}}
	for {
		email, why, line, err := next()
		if err == io.EOF {
			break
		}
		if err == nil {
			if why == "" {
				why = *reason
			}
			err = s.Suppress(actorContext(ctx), core.Suppression{Email: email, Reason: why, Source: "import"})
		}
		if err != nil {
			if core.ErrorCode(err) != core.EINVALID {
				return fmt.Errorf("suppress import: line %d: %w", line, err)
			}
			res.Invalid++
			if len(res.Errors) < core.MaxImportErrors {
				res.Errors = append(res.Errors, core.ImportError{Line: line, Message: core.ErrorMessage(err)})
			}
			continue
		}
		res.Added++
	}
	return a.print(res, func(w io.Writer) {
		fprintf(w, "suppressed %d addresses, invalid %d\n", res.Added, res.Invalid)
		for _, e := range res.Errors {
			fprintf(w, "line %d: %s\n", e.Line, e.Message)
		}
	})
}
