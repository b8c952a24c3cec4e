// Package admin is the admin listener's: for now its metrics (a Prometheus
// collector fed by the engine through core.Observer and read from the
// store's counters at scrape time) and the /metrics, /healthz and /readyz
// handlers, on the HTTP plumbing of core/internal/httpx. The dashboard and
// its login come next; they mount beside these on the same listener.
//
// Label cardinality is bounded by campaigns and senders, never recipients:
// campaignd_emails_total{campaign,sender,outcome} has at most five series
// per (campaign, sender).
package admin
