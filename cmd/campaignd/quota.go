package main

import (
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/campaignd/campaignd/core"
)

// queueQuotas is each sender's quota among a queue's campaigns, once per
// sender, in the queue's order.
func queueQuotas(qs []*core.QueueSummary) []*core.QuotaStatus {
	var out []*core.QuotaStatus
	seen := map[string]bool{}
	for _, q := range qs {
		if q.Quota != nil && !seen[q.Sender] {
			seen[q.Sender] = true
			out = append(out, q.Quota)
		}
	}
	return out
}

// printQuotas prints sender quotas for queue and status: one line per
// window with the budget left and when it next refills, and a line for a
// sender blocked by a provider's quota reply.
// A sender blocked without a rate has no window: no table for it alone.
func printQuotas(w io.Writer, quotas []*core.QuotaStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if slices.ContainsFunc(quotas, func(q *core.QuotaStatus) bool { return len(q.Windows) > 0 }) {
		fprintf(tw, "  SENDER\tWINDOW\tUSED\tLEFT\tNEXT REFILL\n")
	}
	for _, q := range quotas {
		for _, win := range q.Windows {
			refill := "-"
			if win.NextRefill != nil {
				refill = win.NextRefill.Local().Format(time.DateTime)
			}
			fprintf(tw, "  %s\t%s\t%d\t%d\t%s\n", q.Sender, win.Rate, win.Used, win.Remaining, refill)
		}
	}
	tw.Flush()
	for _, q := range quotas {
		if q.BlockedUntil != nil {
			fprintf(w, "  %s: blocked until %s by the provider's quota reply: %s\n", q.Sender, q.BlockedUntil.Local().Format(time.DateTime), q.BlockedReason)
		}
	}
}
