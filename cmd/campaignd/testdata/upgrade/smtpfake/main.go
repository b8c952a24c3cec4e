// Command smtpfake is the SMTP server generate.sh sends the fixture's
// "mixed" campaign to: it bounces bounce@ (550 5.1.1), rejects reject@
// (554 5.7.1), defers later@ (451 4.3.0) and takes everything else. It
// prints its address and serves until killed.
package main

import (
	"fmt"
	"os"
	"os/signal"

	"github.com/campaignd/campaignd/plugins/smtp/smtptest"
)

func main() {
	s, err := smtptest.Start(smtptest.Options{TLS: "none", Faults: []smtptest.Fault{
		{Stage: smtptest.Rcpt, Rcpt: "bounce@example.com", Code: 550, Enhanced: "5.1.1", Text: "no such user"},
		{Stage: smtptest.Rcpt, Rcpt: "reject@example.com", Code: 554, Enhanced: "5.7.1", Text: "policy rejection"},
		{Stage: smtptest.Rcpt, Rcpt: "later@example.com", Code: 451, Enhanced: "4.3.0", Text: "try again later"},
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(s.Port)
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt)
	<-c
	s.Close()
}
