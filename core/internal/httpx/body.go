package httpx

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/campaignd/campaignd/core"
)

// Body is a request body read under a size limit and, optionally, an idle
// deadline. It remembers why reading failed, so the handler answers with
// that (413 too_large, a stalled client) rather than with what the code
// reading the body made of a cut-off stream.
type Body struct {
	what    string
	idle    time.Duration
	limit   int64
	r       io.Reader
	rc      *http.ResponseController
	tooBig  bool
	timeout bool
	readErr error
}

// NewBody wraps r.Body: reading past limit bytes fails (and Err is then
// too_large), and, when idle is positive, each read may wait at most idle
// for data (a per-read deadline, so a long upload that keeps sending is
// never cut). what names the body in error messages ("request body",
// "recipients import"). Call Finish when done reading.
func NewBody(w http.ResponseWriter, r *http.Request, limit int64, what string, idle time.Duration) *Body {
	return &Body{
		what:  what,
		idle:  idle,
		limit: limit,
		r:     http.MaxBytesReader(w, r.Body, limit),
		rc:    http.NewResponseController(w),
	}
}

// Read reads the body. With an idle deadline it extends the deadline
// before each read and clears it when the body ends, so the connection's
// background read (which watches for the client going away) never trips
// over it.
func (b *Body) Read(p []byte) (int, error) {
	if b.idle > 0 {
		_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
	}
	n, err := b.r.Read(p)
	if err != nil {
		b.Finish()
		var mbe *http.MaxBytesError
		switch {
		case errors.Is(err, io.EOF):
		case errors.As(err, &mbe):
			b.tooBig = true
		case errors.Is(err, os.ErrDeadlineExceeded):
			b.timeout = true
		default:
			b.readErr = err
		}
	}
	return n, err
}

// Finish clears the idle deadline; call it when the handler has stopped
// reading the body, before the work that follows. (A body left unread makes
// the answer Connection: close; see Guard.)
func (b *Body) Finish() {
	if b.idle > 0 {
		_ = b.rc.SetReadDeadline(time.Time{})
	}
}

// Err is the coded error for a body that failed: core.ETOOLARGE past the
// limit, core.EINVALID for a stalled or broken body; nil if it read cleanly
// (so far).
func (b *Body) Err() error {
	switch {
	case b.tooBig:
		return TooLarge(b.what, b.limit)
	case b.timeout:
		return core.Errorf(core.EINVALID, "%s: the client sent nothing for %s", b.what, b.idle)
	case b.readErr != nil:
		return &core.Error{Code: core.EINVALID, Message: fmt.Sprintf("%s: reading it failed: %v", b.what, b.readErr), Err: b.readErr}
	}
	return nil
}

// ReadBody reads the whole request body through a Body (see NewBody). A
// Content-Length over limit is refused before anything is read. Errors are
// those of Body.Err: core.ETOOLARGE or core.EINVALID.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64, what string, idle time.Duration) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, TooLarge(what, limit)
	}
	body := NewBody(w, r, limit, what, idle)
	defer body.Finish()
	data, err := io.ReadAll(body)
	if berr := body.Err(); berr != nil {
		return nil, berr
	}
	if err != nil {
		return nil, &core.Error{Code: core.EINVALID, Message: fmt.Sprintf("%s: reading it failed: %v", what, err), Err: err}
	}
	return data, nil
}

// TooLarge is the core.ETOOLARGE error for what, a body over limit bytes.
func TooLarge(what string, limit int64) error {
	return core.Errorf(core.ETOOLARGE, "%s is larger than the limit of %s", what, formatBytes(limit))
}

// formatBytes writes n in the largest binary unit that divides it, or in
// bytes.
func formatBytes(n int64) string {
	for _, u := range []struct {
		size int64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d %s", n/u.size, u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}
