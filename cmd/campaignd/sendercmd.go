package main

import (
	"context"
	"io"
	"time"
)

// senderUnblock is `campaignd sender unblock NAME`: it lifts the block a
// provider's quota reply set on a sender (core.Engine.UnblockSender),
// through the daemon or standalone. A sender that is not blocked is no
// error, so a script may run it blindly: exit 0, stdout empty (--json:
// was_blocked false) and a one-line note on stderr, like other notes.
func (a *app) senderUnblock(ctx context.Context, args []string) error {
	pos, err := a.parse(a.flags("sender unblock"), args, 1, 1, "sender unblock NAME")
	if err != nil {
		return err
	}
	s, err := a.open(ctx, writeAccess, "sender unblock")
	if err != nil {
		return err
	}
	defer s.Close()
	u, err := s.UnblockSender(actorContext(ctx), pos[0])
	if err != nil {
		return err
	}
	if !u.WasBlocked {
		fprintf(a.stderr, "campaignd: sender %s is not blocked: nothing to lift\n", u.Sender)
	}
	return a.print(u, func(w io.Writer) {
		if u.WasBlocked {
			fprintf(w, "unblocked %s (blocked until %s by the provider's quota reply: %s); %d waiting messages due now\n",
				u.Sender, u.BlockedUntil.Local().Format(time.DateTime), u.Reason, u.DueNow)
		}
	})
}
