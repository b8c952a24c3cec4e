package httpx_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/internal/httpx"
)

func TestRoutes(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /things/{id}", func(w http.ResponseWriter, r *http.Request) {
		_ = httpx.WriteJSON(w, http.StatusOK, r.PathValue("id"))
	})
	mux.HandleFunc("DELETE /things/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	custom := serve(t, httpx.Routes(mux, func(r *http.Request) string { return "no such route: " + r.Method + " " + r.URL.Path }))
	plain := serve(t, httpx.Routes(mux, nil))

	if a := do(t, "GET", custom+"/things/7", nil); a.status != 200 || a.body != "\"7\"\n" {
		t.Errorf("a known route: %d %q", a.status, a.body)
	}
	if a := do(t, "DELETE", custom+"/things/7", nil); a.status != 204 {
		t.Errorf("DELETE: %d", a.status)
	}
	a := do(t, "PUT", custom+"/things/7", strings.NewReader("x"))
	a.want(t, 405, httpx.CodeMethodNotAllowed, "PUT", "/things/7", "GET")
	if allow := a.header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "DELETE") {
		t.Errorf("Allow %q", allow)
	}
	do(t, "GET", custom+"/nothing", nil).want(t, 404, core.ENOTFOUND, "no such route: GET /nothing")
	do(t, "GET", plain+"/nothing", nil).want(t, 404, core.ENOTFOUND, "not found")
}
