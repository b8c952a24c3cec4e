// Command campaignd-sender-sendgrid is campaignd's first-party SendGrid
// sender plugin. The host starts it; run by hand it prints a notice and
// exits.
//
// Each message is one POST /v3/mail/send (SendGrid's v3 Web API), built
// with sendgrid-go's request model and sent with the plugin's own HTTP
// client, bounded by the timeout and by the send's context. Options, from
// [senders.NAME.options]:
//
//	option        default                   meaning
//	api_key       $SENDGRID_API_KEY         API key with the mail.send permission
//	                                        (required); write "${SENDGRID_API_KEY}"
//	                                        and let the host expand it. Never
//	                                        logged, never in an error
//	api_url       https://api.sendgrid.com  API base URL (https://api.eu.sendgrid.com
//	                                        for EU subusers; http only to a loopback
//	                                        host, e.g. a test fake)
//	timeout       30s                       bound on one request (connect, TLS,
//	                                        upload, answer), capped by the send's
//	                                        deadline
//	sandbox       false                     mail_settings.sandbox_mode: SendGrid
//	                                        validates and answers 200, delivers
//	                                        nothing
//	categories    (none)                    comma-separated categories for every
//	                                        message (at most 10, unique, ASCII,
//	                                        255 characters each)
//	asm_group_id  (none)                    unsubscribe group id (asm.group_id)
//
// An unknown option or an invalid value fails Configure with a ClassConfig
// error naming the option. Check, which `campaignd config check --connect`
// calls, makes one GET /v3/scopes to api_url: it sends nothing, and fails
// for a key SendGrid refuses or one without the mail.send permission. SENDGRID_API_KEY is read from the plugin's own
// environment, which the host builds (the plugin does not inherit the
// host's environment).
//
// Every message carries custom_args campaign_id, recipient_id and
// message_id, which SendGrid returns in its Event Webhook events, and its
// Message-ID header, so a resend after a crash keeps its Message-ID. The
// answer is classified by sgsender.Classify: 202 is a Receipt with the
// X-Message-Id as ProviderID; 400/403/413 are permanent with SendGrid's
// error messages and fields; 401 is a configuration error (the campaign
// pauses rather than failing every recipient); 429 is throttled with
// RetryAfter from X-RateLimit-Reset; 5xx, timeouts and network errors are
// transient. Every error keeps the HTTP status.
package main

import (
	"github.com/campaignd/campaignd/plugins/sendgrid/internal/sgsender"
	"github.com/campaignd/campaignd/sdk"
	"github.com/campaignd/campaignd/sdk/plugin"
)

func main() { plugin.Serve(sgsender.New(sdk.Logger().Named("sendgrid"))) }
