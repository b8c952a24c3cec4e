package admin

import (
	"context"
	"crypto/subtle"
	"net/http"
	"time"

	"github.com/campaignd/campaignd/core/internal/httpx"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one readiness condition: Fn returns nil when it holds.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// CheckTimeout bounds each readiness check, so /readyz answers within a
// probe's patience even when a plugin will not start.
const CheckTimeout = 5 * time.Second

// Readiness is the body of /readyz: "ready" or "not ready", and each
// check's result ("ok" or its error).
type Readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// Options configure Handler.
type Options struct {
	// Metrics is served on /metrics; nil: no /metrics route.
	Metrics *Metrics
	// Ready are /readyz's checks (the daemon's: database writable,
	// senders startable), run in order.
	Ready []Check
	// MetricsToken, when set, is required of /metrics as
	// "Authorization: Bearer TOKEN" (compared in constant time); without
	// it /metrics is open to whoever reaches the listener.
	MetricsToken string
	// Dashboard serves every other path (nil: none, and they are 404).
	Dashboard *Dashboard
	// Logger gets one line per request at debug and panics at error.
	Logger httpx.Logger
}

// Handler serves GET /metrics (the Prometheus text exposition), /healthz
// (200 "ok" while the process serves: liveness) and /readyz (200 when
// every check passes, else 503, with a Readiness body), behind httpx.Guard
// and with the envelope's 404 and 405. It holds no session or login: the
// dashboard, when given, serves every other path behind its login.
func Handler(o Options) http.Handler {
	mux := http.NewServeMux()
	if o.Metrics != nil {
		mux.Handle("GET /metrics", bearer(o.MetricsToken, promhttp.HandlerFor(o.Metrics.Registry(), promhttp.HandlerOpts{
			ErrorHandling: promhttp.ContinueOnError, // one failing collector leaves the rest readable
		})))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteBody(w, http.StatusOK, "text/plain; charset=utf-8", []byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		rd := ready(r.Context(), o.Ready)
		status := http.StatusOK
		if rd.Status != "ready" {
			status = http.StatusServiceUnavailable
		}
		_ = httpx.WriteJSON(w, status, rd) // an error is the client gone
	})
	if o.Dashboard != nil {
		mux.Handle("/", o.Dashboard)
	}
	return httpx.Guard{Name: "admin", Log: o.Logger}.Wrap(httpx.Routes(mux, nil))
}

// bearer requires "Authorization: Bearer token" of h's requests when
// token is set: 401 unauthorized otherwise, compared in constant time.
func bearer(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="campaignd metrics"`)
			httpx.WriteError(w, httpx.CodeUnauthorized, "metrics: this listener's /metrics needs \"Authorization: Bearer\" with [admin] metrics_token")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// ready runs the checks, each under CheckTimeout.
func ready(ctx context.Context, checks []Check) Readiness {
	rd := Readiness{Status: "ready", Checks: map[string]string{}}
	for _, c := range checks {
		cctx, cancel := context.WithTimeout(ctx, CheckTimeout)
		err := c.Fn(cctx)
		cancel()
		if err != nil {
			rd.Status = "not ready"
			rd.Checks[c.Name] = err.Error()
			continue
		}
		rd.Checks[c.Name] = "ok"
	}
	return rd
}
