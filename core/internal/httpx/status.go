package httpx

import (
	"net/http"

	"github.com/campaignd/campaignd/core"
)

// Codes the HTTP servers add to core's codes. They describe the HTTP
// exchange itself, so no core operation returns them.
const (
	// CodeUnauthorized answers missing or wrong credentials (a bearer
	// token, a login): 401.
	CodeUnauthorized = "unauthorized"
	// CodeMethodNotAllowed answers a known path asked with a method it
	// does not take: 405, with the Allow header.
	CodeMethodNotAllowed = "method_not_allowed"
)

// codes is every code a campaignd HTTP server sends, in the order
// CodeForStatus tries them.
var codes = []string{
	core.EINVALID, core.ENOTFOUND, core.ECONFLICT, core.EFORBIDDEN,
	core.ETOOLARGE, core.EUNAVAILABLE, core.EINTERNAL,
	CodeUnauthorized, CodeMethodNotAllowed,
}

// Status is the one place an error code becomes an HTTP status. Unknown
// codes are internal errors (500).
func Status(code string) int {
	switch code {
	case core.EINVALID:
		return http.StatusBadRequest
	case core.ENOTFOUND:
		return http.StatusNotFound
	case core.ECONFLICT:
		return http.StatusConflict
	case core.EFORBIDDEN:
		return http.StatusForbidden
	case core.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case core.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	default:
		return http.StatusInternalServerError
	}
}

// CodeForStatus recovers a code from a bare HTTP status, for an error
// answer without a readable envelope (a proxy, a crashed handler). It
// inverts Status rather than keeping a second table; a 4xx no code maps
// to is invalid, anything else internal.
func CodeForStatus(status int) string {
	for _, c := range codes {
		if Status(c) == status {
			return c
		}
	}
	if status >= 400 && status < 500 {
		return core.EINVALID
	}
	return core.EINTERNAL
}

// KnownCode reports whether code is one Status maps on purpose: a core
// code or one of the codes this package adds.
func KnownCode(code string) bool {
	for _, c := range codes {
		if c == code {
			return true
		}
	}
	return false
}
