package httpx_test

import (
	"net/http"
	"testing"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/internal/httpx"
)

func TestStatus(t *testing.T) {
	want := map[string]int{
		core.EINVALID:              http.StatusBadRequest,
		core.ENOTFOUND:             http.StatusNotFound,
		core.ECONFLICT:             http.StatusConflict,
		core.EFORBIDDEN:            http.StatusForbidden,
		core.ETOOLARGE:             http.StatusRequestEntityTooLarge,
		core.EUNAVAILABLE:          http.StatusServiceUnavailable,
		core.EINTERNAL:             http.StatusInternalServerError,
		httpx.CodeUnauthorized:     http.StatusUnauthorized,
		httpx.CodeMethodNotAllowed: http.StatusMethodNotAllowed,
		"no_such_code":             http.StatusInternalServerError,
		"":                         http.StatusInternalServerError,
	}
	for code, status := range want {
		if got := httpx.Status(code); got != status {
			t.Errorf("Status(%q) = %d, want %d", code, got, status)
		}
		known := status != http.StatusInternalServerError || code == core.EINTERNAL
		if httpx.KnownCode(code) != known {
			t.Errorf("KnownCode(%q) = %v, want %v", code, !known, known)
		}
		// CodeForStatus inverts Status for every known code.
		if known {
			if got := httpx.CodeForStatus(status); got != code {
				t.Errorf("CodeForStatus(%d) = %q, want %q", status, got, code)
			}
		}
	}
	for status, code := range map[int]string{418: core.EINVALID, 502: core.EINTERNAL, 301: core.EINTERNAL} {
		if got := httpx.CodeForStatus(status); got != code {
			t.Errorf("CodeForStatus(%d) = %q, want %q", status, got, code)
		}
	}
}
