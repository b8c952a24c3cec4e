package httpx

import (
	"fmt"
	"net/http"

	"github.com/campaignd/campaignd/core"
)

// Routes serves mux, answering in the envelope what the mux would answer
// by itself in plain text: a path it knows under other methods is 405
// method_not_allowed with the Allow header, anything else it has no
// pattern for is 404 not_found with the message notFound returns (nil:
// "not found").
func Routes(mux *http.ServeMux, notFound func(r *http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// Learn which of the two the mux means from its own answer.
		probe := &probeWriter{header: http.Header{}}
		h.ServeHTTP(probe, r)
		if probe.status == http.StatusMethodNotAllowed {
			allow := probe.header.Get("Allow")
			w.Header().Set("Allow", allow)
			WriteError(w, CodeMethodNotAllowed,
				fmt.Sprintf("method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow))
			return
		}
		msg := "not found"
		if notFound != nil {
			msg = notFound(r)
		}
		WriteError(w, core.ENOTFOUND, msg)
	})
}

// probeWriter captures what the mux's own not-found or method-not-allowed
// handler would answer.
type probeWriter struct {
	header http.Header
	status int
}

func (p *probeWriter) Header() http.Header { return p.header }

func (p *probeWriter) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return len(b), nil
}

func (p *probeWriter) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}
