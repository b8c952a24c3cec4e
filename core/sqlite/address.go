package sqlite

import (
	"github.com/mattn/go-sqlite3"

	"github.com/campaignd/campaignd/core"
)

// registerFuncs adds campaignd's SQL functions to a writer connection:
// campaignd_normalize_address(email), core.NormalizeAddress for migrations
// that bring stored addresses to the current normal form (0005_idn). An
// address it cannot normalise comes back unchanged, so a migration never
// fails on, or destroys, a row an older build accepted.
func registerFuncs(c *sqlite3.SQLiteConn) error {
	return c.RegisterFunc("campaignd_normalize_address", func(email string) string {
		addr, _, err := core.NormalizeAddress(email)
		if err != nil {
			return email
		}
		return addr
	}, true)
}
