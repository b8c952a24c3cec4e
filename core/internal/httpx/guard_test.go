package httpx_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/internal/httpx"
)

// logger records what Guard logs.
type logger struct {
	mu    sync.Mutex
	lines []string
}

func (l *logger) add(level, msg string, args []any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, level+" "+msg+" "+fmt.Sprint(args...))
}

func (l *logger) Debug(msg string, args ...any) { l.add("debug", msg, args) }
func (l *logger) Error(msg string, args ...any) { l.add("error", msg, args) }

// find waits briefly for a line containing every one of parts: the request
// line is logged after the answer has gone out.
func (l *logger) find(t *testing.T, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		l.mu.Lock()
		lines := strings.Join(l.lines, "\n")
		l.mu.Unlock()
		for _, line := range strings.Split(lines, "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q in:\n%s", parts, lines)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestGuard(t *testing.T) {
	log := &logger{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /panic", func(w http.ResponseWriter, r *http.Request) { panic("bug in handler") })
	mux.HandleFunc("GET /half", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		panic("bug after answering")
	})
	mux.HandleFunc("POST /ignore", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /read", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		// The guard's writer lets a ResponseController reach the connection.
		if err := http.NewResponseController(w).SetReadDeadline(time.Time{}); err != nil {
			t.Errorf("ResponseController through the guard: %v", err)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	guard := httpx.Guard{Name: "test", Log: log, Fields: func(r *http.Request) []any {
		return []any{"path", "/redacted", "who", "tester"}
	}}
	base := serve(t, guard.Wrap(mux))

	do(t, "GET", base+"/panic", nil).want(t, 500, core.EINTERNAL, "see its log")
	log.find(t, "error panic in test handler", "/redacted", "tester", "bug in handler", "stack")
	log.find(t, "debug test request", "GET", "/redacted", "tester", "status500")
	// A handler that panics after answering keeps its answer.
	if a := do(t, "GET", base+"/half", nil); a.status != http.StatusAccepted {
		t.Errorf("panic after answering: %d", a.status)
	}
	// The server still serves. A body read to its end keeps the
	// connection; one left unread closes it.
	if a := do(t, "POST", base+"/read", strings.NewReader("all of it")); a.status != 204 || a.close {
		t.Errorf("read body: %d close=%v", a.status, a.close)
	}
	if a := do(t, "POST", base+"/ignore", strings.NewReader("never read")); a.status != 204 || !a.close {
		t.Errorf("unread body: %d close=%v", a.status, a.close)
	}
	if a := do(t, "POST", base+"/ignore", nil); a.status != 204 || a.close {
		t.Errorf("no body: %d close=%v", a.status, a.close)
	}
	// Without Fields the path is logged; without a Logger nothing is.
	log2 := &logger{}
	base2 := serve(t, httpx.Guard{Name: "bare", Log: log2}.Wrap(mux))
	do(t, "GET", base2+"/panic", nil).want(t, 500, core.EINTERNAL)
	log2.find(t, "debug bare request", "path/panic")
	base3 := serve(t, httpx.Guard{Name: "silent"}.Wrap(mux))
	do(t, "GET", base3+"/panic", nil).want(t, 500, core.EINTERNAL)
}
