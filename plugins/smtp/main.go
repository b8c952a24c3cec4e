// Command campaignd-sender-smtp is campaignd's first-party SMTP sender
// plugin. The host starts it; run by hand it prints a notice and exits.
//
// It delivers through one SMTP server (a submission service or a relay),
// keeping a pool of authenticated sessions that carry message after
// message. Options, from [senders.NAME.options]:
//
//	option                default                          meaning
//	host                  $EMAIL_HOST                      server name or IP; "host:port" accepted
//	port                  465 implicit, 587 starttls,      server port
//	                      25 none
//	tls                   implicit on port 465; none to a  none | starttls | implicit. starttls is
//	                      loopback host; else starttls     required, never opportunistic
//	username              $EMAIL_USER                      AUTH user
//	password              $EMAIL_PASS                      AUTH password
//	auth                  plain if a username is set,      plain | login | none
//	                      else none
//	helo                  the machine's host name          name sent in EHLO; use your FQDN
//	timeout               30s                              dial, TLS handshake, each command, and
//	                                                       any stall while the body is written
//	                                                       (all capped by the send's deadline)
//	max_connections       5                                open sessions at most; also Info's
//	                                                       MaxConcurrency
//	idle_timeout          60s                              idle sessions are closed (QUIT) after this
//	insecure_skip_verify  false                            do not verify the server certificate
//	                                                       (tests only)
//	allow_insecure_auth   false                            allow AUTH over tls = none to a
//	                                                       non-loopback host
//	dkim_domain           (none)                           DKIM signing domain (d=); the From
//	                                                       domain or a parent of it
//	dkim_selector         (none)                           DKIM selector (s=)
//	dkim_private_key_file (none)                           PEM private key: RSA 2048-4096 bits
//	                                                       (PKCS#1 or PKCS#8) or Ed25519 (PKCS#8)
//
// The three dkim_ options go together: with them every message is signed
// (relaxed/relaxed, rsa-sha256 or ed25519-sha256, the RFC 6376 recommended
// fields it has, From, Subject, Reply-To and the other single fields
// oversigned), and Info reports the TXT record to publish, which
// `campaignd config check` prints. A From domain dkim_domain does not
// align with is logged once as a warning, and the message is still signed.
//
// An unknown option or an invalid value fails Configure with an error
// naming the option (and the nearest known one for a typo). Check, which
// `campaignd config check --connect` calls, opens one session (connect,
// EHLO, STARTTLS and AUTH as configured, QUIT) and sends nothing. The EMAIL_* variables are read from the plugin's own
// environment, which the host builds (the plugin does not inherit the
// host's environment).
//
// Every SMTP reply is classified for the host (throttled, transient,
// bounced, permanent, config) with its code, enhanced code and text kept;
// see smtpsender.ClassifyReply for the table.
package main

import (
	"github.com/campaignd/campaignd/plugins/smtp/internal/smtpsender"
	"github.com/campaignd/campaignd/sdk"
	"github.com/campaignd/campaignd/sdk/plugin"
)

func newSender() *smtpsender.Sender {
	return smtpsender.New(sdk.Logger().Named("smtp"))
}

func main() { plugin.Serve(newSender()) }
