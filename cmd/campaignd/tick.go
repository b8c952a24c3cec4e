package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/campaignd/campaignd/core"
)

// cmdTick runs one tick: through the daemon when it runs, standalone
// otherwise. Silent on success (cron mails any output); a tick skipped
// because another holds the lock is a success.
func (a *app) cmdTick(ctx context.Context, args []string) error {
	if _, err := a.parse(a.flags("tick"), args, 0, 0, "tick [-v] [--json]"); err != nil {
		return err
	}
	res, err := a.tick(ctx)
	if err != nil {
		return err
	}
	if a.jsonOut {
		return a.print(res, nil)
	}
	if a.verbose {
		if res.Skipped {
			fprintf(a.stdout, "tick skipped: another tick holds the lock\n")
		} else {
			fprintf(a.stdout, "tick: processed %d, sent %d, failed %d, retried %d, throttled %d, recovered %d, completed %d\n",
				res.Processed, res.Sent, res.Failed, res.Retried, res.Throttled, res.Recovered, res.Completed)
		}
	}
	return nil
}

func (a *app) tick(ctx context.Context) (*core.TickResult, error) {
	s, err := a.open(ctx, tickAccess, "campaignd tick (standalone)")
	if errors.Is(err, errLockBusy) {
		return &core.TickResult{Skipped: true}, nil
	}
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if s.local == nil {
		return s.Tick(ctx, core.TriggerSocket)
	}
	// SIGTERM stops claiming but lets in-flight sends finish and be
	// recorded: cancelling them would turn sent mail into in-doubt mail.
	stop := context.AfterFunc(ctx, s.local.Drain)
	defer stop()
	return s.Tick(context.WithoutCancel(actorContext(ctx)), core.TriggerCLI)
}

func (a *app) cmdQueue(ctx context.Context, args []string) error {
	if _, err := a.parse(a.flags("queue"), args, 0, 0, "queue"); err != nil {
		return err
	}
	s, err := a.open(ctx, readAccess, "")
	if err != nil {
		return err
	}
	defer s.Close()
	qs, err := s.Queue(ctx)
	if err != nil {
		return err
	}
	if qs == nil {
		qs = []*core.QueueSummary{}
	}
	return a.print(qs, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CAMPAIGN\tNAME\tSTATUS\tDUE NOW\tWAITING RETRY\tIN FLIGHT\tNEXT ATTEMPT")
		for _, q := range qs {
			next := "-"
			if q.NextAttempt != nil {
				next = q.NextAttempt.Local().Format(time.DateTime)
			}
			fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\t%s\n", q.CampaignID, q.CampaignName, q.Status, q.DueNow, q.Waiting, q.InFlight, next)
		}
		tw.Flush()
	})
}
