// Command leansink is the Send path benchmark's SMTP sink in a process of
// its own, so that its CPU time is its own and not the benchmark's: a Lean
// smtptest server that only counts messages by Message-ID.
//
//	leansink [SIZE_HINT]
//
// It prints "HOST PORT" on one line, then answers every line read on its
// standard input with its smtptest.Counts as one line of JSON (a poll that
// costs no process start), and exits when its standard input closes.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/campaignd/campaignd/plugins/smtp/smtptest"
)

func main() {
	hint := 0
	if len(os.Args) > 1 {
		hint, _ = strconv.Atoi(os.Args[1])
	}
	s, err := smtptest.Start(smtptest.Options{Lean: true, SizeHint: hint, ReadTimeout: 10 * time.Minute, WriteTimeout: time.Minute})
	if err != nil {
		fmt.Fprintln(os.Stderr, "leansink:", err)
		os.Exit(1)
	}
	fmt.Println(s.Host, s.Port)
	defer s.Close()
	in, enc := bufio.NewScanner(os.Stdin), json.NewEncoder(os.Stdout)
	for in.Scan() {
		if err := enc.Encode(s.Counts()); err != nil {
			fmt.Fprintln(os.Stderr, "leansink:", err)
			return
		}
	}
}
