package core

import (
	"fmt"
	"strings"

	"github.com/campaignd/campaignd/sdk"
)

// This file decides which of a tick's troubles are problems of the tick:
// what cron must hear of (the CLI's exit 3 and its stderr, the HTTP cron
// answer's problems, the tick record). A problem is sender-level: the
// campaign's sender would not start, its configuration is wrong (the
// campaign is paused), or every send of the campaign in this tick failed
// transiently or was cut off (the server is down, refuses connections or
// does not answer). What happens to one recipient — a 550 for one address,
// a bounce, a template that failed on its data, an address suppressed — is
// that recipient's outcome, and a throttle is routine: none is a problem.
// A tick that could not run at all (the database failed under it) is an
// error, not a problem.

// campaignSends is what one campaign's sends came to in one tick.
type campaignSends struct {
	campaign *Campaign
	// unavailable is why the campaign's sender could not be had (its
	// plugin would not start, or is misconfigured); nil when it could.
	unavailable error
	// paused is the configuration error the campaign was paused for.
	paused *sdk.Error
	// attempted counts the sends that reached the sender and came back
	// with an outcome (not those handed back unsent).
	attempted int
	// transient counts those of them that failed transiently or were cut
	// off by the tick's deadline; lastTransient is the last one's error.
	transient     int
	lastTransient string
}

// sent notes the outcome o of one attempted send.
func (s *campaignSends) sent(o Outcome) {
	s.attempted++
	if o.ErrorClass == ClassTransient || o.ErrorClass == ClassInDoubt {
		s.transient++
		s.lastTransient = o.Error
	}
}

// problems returns the tick's problems with this campaign, one line each,
// each naming the campaign and its sender and saying what to do when
// something must be done by hand.
func (s *campaignSends) problems() []string {
	c := s.campaign
	var out []string
	switch {
	case s.paused != nil:
		// The error without its class (the line says it), with its codes.
		why := strings.TrimPrefix(s.paused.Error(), string(s.paused.Class)+": ")
		out = append(out, fmt.Sprintf("campaign %d paused: sender %s is misconfigured: %s; fix it, then run `campaignd campaign resume %d`",
			c.ID, c.Sender, why, c.ID))
	case s.unavailable != nil:
		out = append(out, fmt.Sprintf("campaign %d: sender %s would not start: %s", c.ID, c.Sender, sdk.AsError(s.unavailable).Message))
	}
	if s.attempted > 0 && s.transient == s.attempted {
		out = append(out, fmt.Sprintf("campaign %d: all %d sends through sender %s failed transiently: %s",
			c.ID, s.attempted, c.Sender, s.lastTransient))
	}
	return out
}
