package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/campaignd/campaignd/core"
)

// optionalID parses a command's flags and its optional campaign id argument;
// 0 means all campaigns.
func (a *app) optionalID(fs *flag.FlagSet, args []string, usage string) (int64, error) {
	pos, err := a.parse(fs, args, 0, 1, usage)
	if err != nil || len(pos) == 0 {
		return 0, err
	}
	return parseID(pos[0])
}

func (a *app) cmdTicks(ctx context.Context, args []string) error {
	fs := a.flags("ticks")
	limit := fs.Int("limit", 20, "most records")
	if _, err := a.parse(fs, args, 0, 0, "ticks [--limit N]"); err != nil {
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
	ts, err := s.Ticks(ctx, n)
	if err != nil {
		return err
	}
	if ts == nil {
		ts = []*core.TickRecord{}
	}
	return a.print(ts, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTARTED\tTRIGGER\tDURATION\tPROCESSED\tSENT\tFAILED\tRETRIED\tTHROTTLED\tRECOVERED\tERROR")
		for _, t := range ts {
			fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", t.ID, t.Started.Local().Format(time.DateTime), t.Trigger,
				t.Duration.Round(time.Millisecond), t.Processed, t.Sent, t.Failed, t.Retried, t.Throttled, t.Recovered, t.Error)
		}
		tw.Flush()
	})
}

func (a *app) cmdExecutions(ctx context.Context, args []string) error {
	id, err := a.optionalID(a.flags("executions"), args, "executions [ID]")
	if err != nil {
		return err
	}
	s, err := a.open(ctx, readAccess, "")
	if err != nil {
		return err
	}
	defer s.Close()
	xs, err := s.Executions(ctx, id)
	if err != nil {
		return err
	}
	if xs == nil {
		xs = []*core.Execution{}
	}
	return a.print(xs, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCAMPAIGN\tAT\tSTATUS\tQUEUED\tSENT\tFAILED\tBOUNCED\tSUCCESS\tBY\tERROR")
		for _, x := range xs {
			success := "-"
			if x.SuccessRate != nil {
				success = fmt.Sprintf("%.1f%%", *x.SuccessRate)
			}
			fprintf(tw, "%d\t%d\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", x.ID, x.CampaignID, x.At.Local().Format(time.DateTime), x.Status,
				x.Queued, x.Sent, x.Failed, x.Bounced, success, x.By, x.Error)
		}
		tw.Flush()
	})
}
