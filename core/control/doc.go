// Package control is campaignd's control API: the HTTP/1.1 + JSON server the
// daemon runs on its Unix socket, and the typed Client the CLI uses to talk to
// it. Both sides speak the core types as wire types, so a Client is a
// core.Service: the CLI runs the same commands against the daemon or, when
// no daemon is listening (errors.Is(err, ErrNoDaemon)), against a local
// engine.
//
// # Routes
//
// All routes are under /v1. Request bodies are JSON objects decoded
// strictly (unknown fields and trailing data are rejected) except the
// streamed imports. Lists are JSON arrays, never null.
//
//	GET    /v1/status                                  -> Status
//	POST   /v1/campaigns                 CampaignSpec  -> 201 Campaign
//	GET    /v1/campaigns                               -> []Campaign
//	GET    /v1/campaigns/{id}                          -> Campaign
//	PATCH  /v1/campaigns/{id}            CampaignEdit  -> Campaign
//	DELETE /v1/campaigns/{id}?dry_run=                 -> DeleteResult
//	POST   /v1/campaigns/{id}/clone      CloneRequest  -> 201 Campaign (body optional)
//	GET    /v1/campaigns/{id}/preview?recipient=       -> Preview
//	POST   /v1/campaigns/{id}/test       TestSendRequest -> TestSendResult (a refused send is sent:false, not an error)
//	POST   /v1/campaigns/{id}/{action}                 -> Campaign  (activate|pause|resume|cancel)
//	POST   /v1/campaigns/{id}/execute                  -> ExecuteResult
//	       (activate, execute and edit take ?allow_missing_attrs=true: core.WithAllowMissingAttrs)
//	GET    /v1/campaigns/{id}/stats                    -> Stats
//	POST   /v1/campaigns/{id}/retry      RetryRequest  -> RetryResult (body optional)
//	GET    /v1/campaigns/{id}/progress                 -> Progress
//	GET    /v1/campaigns/{id}/failures                 -> FailureReport
//	POST   /v1/campaigns/{id}/recipients RecipientInput -> ImportResult
//	POST   /v1/campaigns/{id}/recipients:import?format=csv|jsonl  (streamed body) -> ImportResult
//	GET    /v1/campaigns/{id}/recipients?status=&limit=&after_id= -> []Recipient
//	GET    /v1/executions?campaign=                    -> []Execution (campaign omitted: all)
//	POST   /v1/tick                      TickRequest   -> TickResult (body optional)
//	GET    /v1/ticks?limit=                            -> []TickRecord
//	GET    /v1/queue                                   -> []QueueSummary
//	GET    /v1/quotas                                  -> []QuotaStatus (senders with a rate or blocked by a quota reply)
//	POST   /v1/senders/{name}/unblock                  -> SenderUnblock (lifts a quota block; idempotent)
//	GET    /v1/verify?campaign=                        -> VerifyReport
//	POST   /v1/backup                    BackupRequest -> BackupResult (a verified copy of the database)
//	GET    /v1/suppressions?limit=                     -> []Suppression
//	POST   /v1/suppressions              Suppression   -> 204
//	DELETE /v1/suppressions/{email}                    -> 204 (email path-escaped)
//	POST   /v1/suppressions:import?format=csv|list&reason=  (streamed body) -> ImportResult (format omitted: from the first line)
//
// # Errors
//
// Every error response is {"error": {"code": "...", "message": "..."}}
// where code is one of the core error codes (core.EINVALID, ...) or
// method_not_allowed. The HTTP status follows from the code through one
// function shared with the other HTTP servers, httpx.Status (invalid 400,
// not_found 404, conflict 409, forbidden 403, too_large 413, unavailable
// 503, internal 500, method_not_allowed 405); the router's own answers are
// 404 not_found for an unknown route and 405 method_not_allowed, with the
// Allow header, for a known route with the wrong method.
// The message is the operator-facing text core.ErrorMessage gives, so the
// CLI prints the same words whether it ran standalone or through the
// daemon.
//
// # Security
//
// The socket is created with mode 0600 (configurable, with an optional
// group) without a window in which it has looser permissions. Every
// connection's peer is identified with SO_PEERCRED; root, the daemon's own
// user and the configured AllowUIDs may call, anyone else gets 403
// forbidden. The caller is recorded on each request's context as
// core.WithActor(ctx, "uid N via socket").
//
// The Client checks the other direction: Dial reads the server's uid from
// the connection's peer credentials and refuses (EFORBIDDEN) a server not
// run by root, the caller's uid or one of Client.AllowUIDs, before it
// writes anything. Whoever can write the socket's directory could
// otherwise pose as the daemon and receive what the caller sends.
package control
