package sqlite

import "github.com/campaignd/campaignd/core"

// Statement texts, exported to the tests that check their query plans.
var (
	ClaimSQL   = claimSQL
	ExecuteSQL = executeSQL
	RetrySQL   = retrySQL
	InsertSQL  = insertSQL[insertRows[0]]
)

// ListSQL exposes listSQL to the plan tests.
func ListSQL(st core.RecipientStatus) string { return listSQL(st) }
