package sqlite

import (
	"context"
	"crypto/sha256"
	"fmt"

	"github.com/campaignd/campaignd/core"
)

// Statement texts, exported to the tests that check their query plans.
var (
	ClaimSQL   = claimSQL
	ExecuteSQL = executeSQL
	RetrySQL   = retrySQL
	// DueWaitingSQL makes an unblocked sender's waiting messages due.
	DueWaitingSQL = dueWaitingSQL
	// The progress statements: minute counters and the failure walks.
	BumpMinuteSQL  = bumpMinuteSQL
	MinutesSQL     = minutesSQL
	EachFailedSQL  = eachFailedSQL
	EachBouncedSQL = eachBouncedSQL
	InsertSQL      = insertSQL[insertRows[0]]
)

// ListSQL exposes listSQL to the plan tests.
func ListSQL(st core.RecipientStatus) string { return listSQL(st) }

// SchemaKey identifies the schema a database file was built with: the
// migrations' text and the page size, for caching benchmark databases.
func SchemaKey() string {
	h := sha256.New()
	for _, m := range migrations {
		fmt.Fprintf(h, "%d %s\n", m.version, m.sql)
	}
	fmt.Fprintf(h, "page %d", pageSize)
	return fmt.Sprintf("v%d-%x", len(migrations), h.Sum(nil)[:6])
}

// Attrs column codec, exported to its fuzz test.
var (
	AppendAttrs = appendAttrs
	DecodeAttrs = decodeAttrs
)

// ReapplyMigration runs the statements of migration name again on db's
// writer: how a test gives rows an older build left the treatment the
// migration gives them, whatever migrations came after it.
func ReapplyMigration(ctx context.Context, db *DB, name string) error {
	for _, m := range migrations {
		if m.name == name {
			_, err := db.w.ExecContext(ctx, m.sql)
			return err
		}
	}
	return fmt.Errorf("no migration %q", name)
}
