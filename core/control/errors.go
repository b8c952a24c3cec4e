package control

import (
	"errors"

	"github.com/campaignd/campaignd/core"
)

// ErrNoDaemon is matched (errors.Is) by a Client error when no daemon is
// listening on the socket: the socket file is missing, or it is a stale file
// nobody accepts connections on (ECONNREFUSED). The CLI then runs the
// operation standalone. A socket the caller may not open (EACCES) is not
// ErrNoDaemon: a daemon is there, and the error is core.EFORBIDDEN.
var ErrNoDaemon = errors.New("no campaignd daemon is listening")

// knownCodes are the codes a daemon may send, in the order codeForStatus
// tries them.
var knownCodes = []string{
	core.EINVALID, core.ENOTFOUND, core.ECONFLICT, core.EFORBIDDEN,
	core.ETOOLARGE, core.EUNAVAILABLE, core.EINTERNAL,
}

// codeForStatus recovers a code from a bare HTTP status, for an error answer
// without a readable error body (a proxy, a crashed handler). It inverts
// core.HTTPStatus rather than keeping a second table.
func codeForStatus(status int) string {
	for _, c := range knownCodes {
		if core.HTTPStatus(c) == status {
			return c
		}
	}
	if status >= 400 && status < 500 {
		return core.EINVALID
	}
	return core.EINTERNAL
}

// isKnownCode reports whether code is one of the core error codes.
func isKnownCode(code string) bool {
	for _, c := range knownCodes {
		if c == code {
			return true
		}
	}
	return false
}
