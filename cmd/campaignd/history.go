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
		fmt.Fprintln(tw, "ID\tSTARTED\tTRIGGER\tDURATION\tPROCESSED\tSENT\tFAILED\tRETRIED\tTHROTTLED\tRECOVERED\tEXPIRED\tERROR")
		for _, t := range ts {
			fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", t.ID, t.Started.Local().Format(time.DateTime), t.Trigger,
				t.Duration.Round(time.Millisecond), t.Processed, t.Sent, t.Failed, t.Retried, t.Throttled, t.Recovered, t.Expired, t.Error)
		}
		tw.Flush()
	})
}

func (a *app) cmdExecutions(ctx context.Context, args []string) error {
	fs := a.flags("executions")
	limit := fs.Int("limit", 20, fmt.Sprintf("most records, newest first (at most %d)", core.MaxListLimit))
	id, err := a.optionalID(fs, args, "executions [ID] [--limit N]")
	if err != nil {
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
	xs, err := s.Executions(ctx, id)
	if err != nil {
		return err
	}
	if xs == nil {
		xs = []*core.Execution{}
	}
	total := len(xs)
	if total > n {
		xs = xs[:n]
	}
	// Each execution's own result, apart from where its campaign is now:
	// a COMPLETED execution of a campaign that is PAUSED is not a
	// contradiction, and a FAILED one changed nothing.
	now := map[int64]core.CampaignStatus{}
	if !a.jsonOut {
		cs, err := s.Campaigns(ctx)
		if err != nil {
			return err
		}
		for _, c := range cs {
			now[c.ID] = c.Status
		}
	}
	if err := a.print(xs, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "EXECUTION\tAT\tBY\tRESULT OF THIS EXECUTION\tSENT\tFAILED\tBOUNCED\tSUCCESS\tCAMPAIGN\tCAMPAIGN NOW")
		for _, x := range xs {
			result := "ok: queued " + core.Thousands(x.Queued)
			if x.Status != core.ExecutionCompleted {
				result = "refused, nothing queued: " + x.Error
			}
			success := "-"
			if x.SuccessRate != nil {
				success = fmt.Sprintf("%.1f%%", *x.SuccessRate)
			}
			st := string(now[x.CampaignID])
			if st == "" {
				st = "(deleted)"
			}
			fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%d\t%s\n", x.ID, x.At.Local().Format(time.DateTime), x.By, result,
				x.Sent, x.Failed, x.Bounced, success, x.CampaignID, st)
		}
		tw.Flush()
	}); err != nil {
		return err
	}
	if total > n {
		fmt.Fprintf(a.stderr, "campaignd: showing %s of %s: --limit N for more\n", core.Thousands(int64(n)), core.Thousands(int64(total)))
	}
	return nil
}
