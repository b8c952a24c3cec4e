package core

// A listing (recipients, executions, ticks, suppressions) returns one page
// of at most a limit's entries. These are the one default and bound every
// layer applies: the store, the engine, the control API and the CLI.
const (
	// DefaultListLimit is the page size of a listing asked for with
	// limit 0.
	DefaultListLimit = 100
	// MaxListLimit is the largest page a listing returns. A larger limit
	// is refused rather than cut short, so that a caller never mistakes a
	// truncated page for the whole list.
	MaxListLimit = 100000
)

// ListLimit returns the page size a listing uses for a requested limit:
// DefaultListLimit for 0, n itself for 1..MaxListLimit. Any other n is an
// EINVALID error naming the limit as the caller calls it (name: "limit",
// "--limit", "query parameter limit").
func ListLimit(name string, n int) (int, error) {
	switch {
	case n == 0:
		return DefaultListLimit, nil
	case n < 0 || n > MaxListLimit:
		return 0, Errorf(EINVALID, "%s: %d is outside 0..%d", name, n, MaxListLimit)
	}
	return n, nil
}
