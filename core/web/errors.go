package web

import (
	"html"
	"net/http"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/internal/httpx"
)

// ErrorBody is the inner object of an error answer.
type ErrorBody = httpx.ErrorBody

// ErrorResponse is every JSON error answer: {"error": {"code", "message"}}.
type ErrorResponse = httpx.ErrorResponse

// publicError returns the code and the message safe to show a caller on
// the public internet: the operator-facing message for coded errors, and
// nothing of an internal error's detail (that goes to the log).
func publicError(err error) (code, msg string) {
	code = core.ErrorCode(err)
	if httpx.Status(code) == http.StatusInternalServerError {
		return core.EINTERNAL, "internal error; see the daemon's log"
	}
	return code, core.ErrorMessage(err)
}

// logError logs a failed request: internal failures at error level with
// their detail, refusals at debug (warn for authentication failures).
func (s *Server) logError(r *http.Request, err error) {
	code := core.ErrorCode(err)
	switch httpx.Status(code) {
	case http.StatusInternalServerError, http.StatusServiceUnavailable:
		s.log.Error("public request failed", "method", r.Method, "path", logPath(r), "remote", r.RemoteAddr,
			"code", code, "error", err.Error())
	case http.StatusUnauthorized, http.StatusForbidden:
		s.log.Warn("public request refused", "method", r.Method, "path", logPath(r), "remote", r.RemoteAddr,
			"code", code, "error", err.Error())
	default:
		s.log.Debug("public request refused", "method", r.Method, "path", logPath(r), "remote", r.RemoteAddr,
			"code", code, "error", err.Error())
	}
}

// writeError logs err and answers it as the JSON error envelope, with
// what publicError lets the caller see.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	s.logError(r, err)
	code, msg := publicError(err)
	httpx.WriteError(w, code, msg)
}

// htmlPage is the small page the unsubscribe routes show. Everything
// inserted is escaped; the page loads nothing and runs nothing.
func htmlPage(title, message, form string) []byte {
	return []byte(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>` + html.EscapeString(title) + `</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;line-height:1.5}button{font-size:1rem;padding:.5rem 1rem}</style>
</head><body>
<h1>` + html.EscapeString(title) + `</h1>
<p>` + html.EscapeString(message) + `</p>
` + form + `</body></html>
`)
}

// setPageHeaders sets the security headers of an HTML page: no scripts,
// no framing (a framed button could be clicked for the reader), forms
// only to this site.
func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Robots-Tag", "noindex, nofollow")
}

// writeErrorPage logs err and answers it as a small HTML page for a
// person, with the status httpx.Status gives its code.
func (s *Server) writeErrorPage(w http.ResponseWriter, r *http.Request, err error) {
	s.logError(r, err)
	code, msg := publicError(err)
	status := httpx.Status(code)
	var text string
	switch status {
	case http.StatusNotFound:
		text = "This unsubscribe link is not valid. If you copied it from an email, check that it is complete."
	case http.StatusBadRequest:
		text = "This request could not be understood (" + msg + ")."
	case http.StatusRequestEntityTooLarge:
		text = "This request is too large."
	default:
		text = "Something went wrong on our side. Please try again later."
	}
	setPageHeaders(w)
	httpx.WriteBody(w, status, "text/html; charset=utf-8", htmlPage("Unsubscribe", text, ""))
}
