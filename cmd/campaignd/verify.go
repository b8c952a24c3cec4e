package main

import (
	"context"
	"io"
	"time"

	"github.com/campaignd/campaignd/core"
)

// cmdVerify audits the database's invariants. Like a cron job should, it
// prints nothing when all is well (-v for a summary), and prints each
// violation and exits 1 when anything is wrong.
func (a *app) cmdVerify(ctx context.Context, args []string) error {
	id, err := a.optionalID(a.flags("verify"), args, "verify [ID] [-v]")
	if err != nil {
		return err
	}
	s, err := a.open(ctx, readAccess, "")
	if err != nil {
		return err
	}
	defer s.Close()
	rep, err := s.Verify(ctx, id)
	if err != nil {
		return err
	}
	if err := a.print(rep, func(w io.Writer) {
		for _, v := range rep.Violations {
			fprintf(w, "campaign %d: %s: %s\n", v.CampaignID, v.Check, v.Message)
		}
		if a.verbose {
			for _, n := range rep.Notes {
				fprintf(w, "note: %s\n", n)
			}
			fprintf(w, "verified %d campaigns, %d recipients in %s: %d violations\n",
				rep.Campaigns, rep.Recipients, rep.Duration.Round(time.Millisecond), len(rep.Violations))
		}
	}); err != nil {
		return err
	}
	if !rep.OK() {
		return core.Errorf(core.ECONFLICT, "verify: %d invariant violations", len(rep.Violations))
	}
	return nil
}
