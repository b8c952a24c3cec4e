package core_test

import (
	"testing"

	"github.com/campaignd/campaignd/core"
)

func TestListLimit(t *testing.T) {
	for _, tc := range []struct {
		in, want int
		err      string
	}{
		{0, core.DefaultListLimit, ""},
		{1, 1, ""},
		{core.MaxListLimit, core.MaxListLimit, ""},
		{core.MaxListLimit + 1, 0, "--limit: 100001 is outside 0..100000"},
		{-1, 0, "--limit: -1 is outside 0..100000"},
	} {
		got, err := core.ListLimit("--limit", tc.in)
		if got != tc.want || (tc.err == "") != (err == nil) || (err != nil && (err.Error() != tc.err || core.ErrorCode(err) != core.EINVALID)) {
			t.Errorf("ListLimit(%d) = %d, %v; want %d, %q", tc.in, got, err, tc.want, tc.err)
		}
	}
}
