// Package admin is the admin listener's: its metrics (a Prometheus
// collector fed by the engine through core.Observer and read from the
// store's counters at scrape time), the /metrics, /healthz and /readyz
// handlers, and the dashboard (Dashboard) with its logins (Auth), on the
// HTTP plumbing of core/internal/httpx. It is neither the public listener
// nor the control socket, and serves none of their routes.
//
// Label cardinality is bounded by campaigns and senders, never recipients:
// campaignd_emails_total{campaign,sender,outcome} has at most five series
// per (campaign, sender).
//
// The dashboard is server-rendered (html/template, with its files
// embedded in the binary, no build step), after miniflux: one handler per page or
// action, the session and CSRF checks wrapped around them, pages that work
// without JavaScript and a few lines of it (static/live.js) that refresh
// the parts marked data-live.
package admin
