package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/campaignd/campaignd/core"
)

// tickProblems is a tick that ran but met sender-level problems (see
// core/problem.go): each is printed on its own line, and the exit code is 3
// so cron mails them.
type tickProblems struct{ problems []string }

func (e *tickProblems) Error() string { return strings.Join(e.problems, "; ") }

// campaignIDs is a repeatable --campaign flag.
type campaignIDs []int64

func (c *campaignIDs) String() string { return fmt.Sprint([]int64(*c)) }

func (c *campaignIDs) Set(s string) error {
	id, err := parseID(s)
	if err != nil {
		return err
	}
	*c = append(*c, id)
	return nil
}

// cmdTick runs one tick: through the daemon when it runs, standalone
// otherwise; of the --campaign campaigns only when any are given. Quiet
// success, loud failure, for cron (which mails any output): a tick that
// sent, had nothing to do, or was skipped because its campaigns were busy
// prints nothing (without -v or --json) and exits 0; a tick that met
// sender-level problems, or found the database held by a daemon that did
// not answer on its socket, prints one line per problem on stderr and
// exits 3; a tick that could not run exits 1.
func (a *app) cmdTick(ctx context.Context, args []string) error {
	fs := a.flags("tick")
	var ids campaignIDs
	fs.Var(&ids, "campaign", "tick only the campaign with this `ID` (repeatable)")
	if _, err := a.parse(fs, args, 0, 0, "tick [--campaign ID]... [-v] [--json]"); err != nil {
		return err
	}
	res, err := a.tick(ctx, ids)
	skipped := "another tick is working on its campaigns"
	var du *daemonUnreachableError
	switch {
	case errors.Is(err, errLockBusy):
		// Skipped, quietly for cron; -v says who holds the lock.
		skipped = strings.TrimPrefix(err.Error(), errLockBusy.Error()+": ")
		res, err = &core.TickResult{Skipped: true, Problems: []string{}}, nil
	case errors.As(err, &du):
		// Skipped, but a problem: this cron line would do nothing forever.
		skipped = "the daemon holds the database"
		res, err = &core.TickResult{Skipped: true, Problems: []string{du.Error()}}, nil
	}
	if err != nil {
		return err
	}
	if a.jsonOut {
		if err := a.print(res, nil); err != nil {
			return err
		}
	} else if a.verbose {
		if res.Skipped {
			fprintf(a.stdout, "tick skipped: %s\n", skipped)
		} else {
			fprintf(a.stdout, "%s\n", tickLine(res))
		}
	}
	if len(res.Problems) > 0 {
		return &tickProblems{problems: res.Problems}
	}
	return nil
}

// tickLine is what `tick -v` says a tick did.
func tickLine(res *core.TickResult) string {
	return fmt.Sprintf("tick: processed %d, sent %d, failed %d, retried %d, throttled %d, recovered %d, expired %d, completed %d, remaining %d",
		res.Processed, res.Sent, res.Failed, res.Retried, res.Throttled, res.Recovered, res.Expired, res.Completed, res.Remaining)
}

// tick runs the tick through the daemon, or standalone under the lock
// file's shared database lock (busy: an error wrapping errLockBusy that
// names the holder) with the tick's campaigns locked in it (see
// sqlite.FileLock), so standalone ticks of different campaigns run at
// once and a daemon or a writing command excludes them all.
func (a *app) tick(ctx context.Context, ids []int64) (*core.TickResult, error) {
	s, err := a.open(ctx, tickAccess, "campaignd tick (standalone)")
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if s.local == nil {
		return s.Tick(ctx, core.TriggerSocket, ids...)
	}
	// SIGTERM stops claiming but lets in-flight sends finish and be
	// recorded: cancelling them would turn sent mail into in-doubt mail.
	stop := context.AfterFunc(ctx, s.local.Drain)
	defer stop()
	return s.Tick(context.WithoutCancel(actorContext(ctx)), core.TriggerCLI, ids...)
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
		var paused, closed []*core.QueueSummary
		for _, q := range qs {
			if q.Status == core.CampaignPaused {
				paused = append(paused, q)
				continue
			}
			if q.Closed != "" {
				closed = append(closed, q)
				continue
			}
			next := "-"
			if q.NextAttempt != nil {
				next = q.NextAttempt.Local().Format(time.DateTime)
			}
			fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\t%s\n", q.CampaignID, q.CampaignName, q.Status, q.DueNow, q.Waiting, q.InFlight, next)
		}
		tw.Flush()
		if len(closed) > 0 {
			// Apart, like paused ones: a tick claims nothing of theirs
			// until their schedule opens.
			fmt.Fprintln(w, "\noutside their schedule (a tick sends nothing for them until it opens):")
			tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CAMPAIGN\tNAME\tQUEUED\tIN FLIGHT\tCLOSED BY\tOPENS")
			for _, q := range closed {
				fprintf(tw, "%d\t%s\t%d\t%d\t%s\t%s\n", q.CampaignID, q.CampaignName, q.DueNow+q.Waiting, q.InFlight,
					strings.ReplaceAll(q.Closed, "_", " "), opensText(q))
			}
			tw.Flush()
		}
		if quotas := queueQuotas(qs); len(quotas) > 0 {
			fmt.Fprintln(w, "\nsender quotas (a tick sends no more than these allow; the rest waits, no attempt counted):")
			printQuotas(w, quotas)
		}
		if len(paused) == 0 {
			return
		}
		// Apart, and never as due: a tick sends nothing for them.
		fmt.Fprintln(w, "\npaused (nothing is sent until `campaignd campaign resume ID`):")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CAMPAIGN\tNAME\tQUEUED, HELD\tIN FLIGHT")
		for _, q := range paused {
			fprintf(tw, "%d\t%s\t%d\t%d\n", q.CampaignID, q.CampaignName, q.Held, q.InFlight)
		}
		tw.Flush()
	})
}

// opensText is the OPENS column of a campaign outside its schedule: when
// it opens, in the operator's local time, or why it never will.
func opensText(q *core.QueueSummary) string {
	if q.OpensAt != nil {
		return q.OpensAt.Local().Format("2006-01-02 15:04:05 MST")
	}
	if q.Closed == "expired" {
		return "never (expired: its unsent recipients fail at the next tick)"
	}
	return "never before it expires (its unsent recipients then fail as expired)"
}
