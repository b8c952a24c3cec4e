package core_test

import (
	"strings"
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

// Every listing of the engine refuses a limit out of range alike.
func TestListingsRefuseLimitsOutOfRange(t *testing.T) {
	h := newHarness(t, nil)
	id := h.campaign(1, nil)
	for name, list := range map[string]func(n int) error{
		"recipients": func(n int) error {
			_, err := h.eng.Recipients(ctx, id, core.RecipientFilter{Limit: n})
			return err
		},
		"ticks":        func(n int) error { _, err := h.eng.Ticks(ctx, n); return err },
		"suppressions": func(n int) error { _, err := h.eng.Suppressions(ctx, n); return err },
	} {
		for _, n := range []int{-1, core.MaxListLimit + 1} {
			if err := list(n); core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), "limit") {
				t.Errorf("%s with limit %d: %v, want EINVALID naming the limit", name, n, err)
			}
		}
		if err := list(0); err != nil {
			t.Errorf("%s with limit 0: %v", name, err)
		}
	}
}
