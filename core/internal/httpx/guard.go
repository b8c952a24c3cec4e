package httpx

import (
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/campaignd/campaignd/core"
)

// Logger is what the plumbing logs to: the methods hclog.Logger and
// *slog.Logger share.
type Logger interface {
	Debug(msg string, args ...any)
	Error(msg string, args ...any)
}

// panicMessage is the answer to a request whose handler panicked: nothing
// of the panic reaches the caller.
const panicMessage = "internal error: the daemon failed while handling this request; see its log"

// Guard is the outermost middleware of a server. For every request it
//
//   - logs one debug line "<Name> request" with the method, Fields, status
//     and duration;
//   - recovers a panicking handler: logs "panic in <Name> handler" with the
//     stack at error level and, if nothing was written yet, answers 500
//     internal in the envelope; the server keeps serving
//     (http.ErrAbortHandler is passed on, as net/http expects);
//   - answers Connection: close when the handler answers before reading
//     the request body to its end: net/http would otherwise try to read
//     the rest before answering, however slowly the client sends it.
//
// The ResponseWriter it passes on keeps http.ResponseController working
// (it has Unwrap).
type Guard struct {
	// Name names the server in log lines: "control", "public HTTP".
	Name string
	// Log receives the lines above; nil discards them.
	Log Logger
	// Fields returns the key/value pairs that identify a request in its
	// log lines, after its method (nil: "path", r.URL.Path). A server adds
	// its caller (uid, remote address) or hides a capability in the path
	// here.
	Fields func(r *http.Request) []any
}

// Wrap returns next behind the guard.
func (g Guard) Wrap(next http.Handler) http.Handler {
	log := g.Log
	if log == nil {
		log = nopLogger{}
	}
	fields := func(r *http.Request, more ...any) []any {
		f := []any{"method", r.Method}
		if g.Fields != nil {
			f = append(f, g.Fields(r)...)
		} else {
			f = append(f, "path", r.URL.Path)
		}
		return append(f, more...)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		if r.Body != nil && r.Body != http.NoBody {
			sw.body = &trackedBody{ReadCloser: r.Body}
			r.Body = sw.body
		}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("panic in "+g.Name+" handler", fields(r, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))...)
				if !sw.wrote {
					WriteError(sw, core.EINTERNAL, panicMessage)
				}
			}
			log.Debug(g.Name+" request", fields(r, "status", sw.status, "duration", time.Since(start))...)
		}()
		next.ServeHTTP(sw, r)
	})
}

// nopLogger discards.
type nopLogger struct{}

func (nopLogger) Debug(string, ...any) {}
func (nopLogger) Error(string, ...any) {}

// statusWriter remembers the status a handler wrote, for the log line and
// for panic recovery, and adds Connection: close when the request body was
// not read to its end. Unwrap lets http.ResponseController reach the
// connection through it.
type statusWriter struct {
	http.ResponseWriter
	body   *trackedBody // nil without a request body
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
		if w.body != nil && !w.body.eof {
			w.Header().Set("Connection", "close")
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// trackedBody notes whether a request body was read to its end. Handlers
// read it from their own goroutine before answering, so eof needs no lock.
type trackedBody struct {
	io.ReadCloser
	eof bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}
