package httpx_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/internal/httpx"
)

// The envelope WriteError sends is what ReadError gives back, code and
// message verbatim; an answer without it still gets a code from its status.
func TestEnvelopeRoundTrip(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/conflict", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, core.ECONFLICT, "campaign 3 is PAUSED")
	})
	mux.HandleFunc("/plain", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream went away", http.StatusBadGateway)
	})
	mux.HandleFunc("/bare405", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusMethodNotAllowed)
	})
	mux.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) {
		_ = httpx.WriteJSON(w, http.StatusCreated, map[string]int{"queued": 3})
	})
	mux.HandleFunc("/unencodable", func(w http.ResponseWriter, r *http.Request) {
		if err := httpx.WriteJSON(w, http.StatusOK, func() {}); err == nil {
			t.Error("WriteJSON of a func succeeded")
		}
		w.WriteHeader(http.StatusNoContent)
	})
	base := serve(t, mux)
	get := func(path string) *http.Response {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}

	resp := get("/conflict")
	if resp.StatusCode != http.StatusConflict || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("conflict: %d %v", resp.StatusCode, resp.Header)
	}
	if e := httpx.ReadError(resp); e.Code != core.ECONFLICT || e.Message != "campaign 3 is PAUSED" {
		t.Errorf("ReadError = %+v", e)
	}
	if e := httpx.ReadError(get("/plain")); e.Code != core.EINTERNAL || !strings.Contains(e.Message, "502") || !strings.Contains(e.Message, "upstream went away") {
		t.Errorf("ReadError of a plain 502 = %+v", e)
	}
	if e := httpx.ReadError(get("/bare405")); e.Code != httpx.CodeMethodNotAllowed || !strings.Contains(e.Message, "no details") {
		t.Errorf("ReadError of a bare 405 = %+v", e)
	}
	resp = get("/json")
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated || string(b) != "{\"queued\":3}\n" ||
		resp.Header.Get("Content-Type") != "application/json" || resp.ContentLength != int64(len(b)) {
		t.Errorf("WriteJSON: %d %q %v", resp.StatusCode, b, resp.Header)
	}
	if resp := get("/unencodable"); resp.StatusCode != http.StatusNoContent {
		t.Errorf("a failed WriteJSON wrote %d", resp.StatusCode)
	}
}
