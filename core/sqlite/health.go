package sqlite

import (
	"context"
	"database/sql"
)

// Writable checks that a write transaction can begin and commit on the
// database (not read-only, not locked out past the busy timeout): the
// admin listener's readiness. It writes nothing: an empty immediate
// transaction takes the write lock and gives it back.
func (db *DB) Writable(ctx context.Context) error {
	return db.writeTx(ctx, "check writable", func(*sql.Tx) error { return nil })
}
