// Command campaignd-sender-smtp is campaignd's first-party SMTP sender
// plugin. The host starts it; run by hand it prints a notice and exits.
//
// It delivers through one SMTP server (a submission service or a relay)
// configured in [senders.NAME.options]; see package
// github.com/campaignd/campaignd/plugins/smtp/internal/smtpsender for the
// options, the connection pool and the classification of SMTP replies.
package main

import (
	"github.com/campaignd/campaignd/plugins/smtp/internal/smtpsender"
	"github.com/campaignd/campaignd/sdk"
)

func newSender() *smtpsender.Sender {
	return smtpsender.New(sdk.Logger().Named("smtp"))
}

func main() { sdk.Serve(newSender()) }
