package sqlite

// CloneRecipientsSQL exposes the clone's copy statement to the plan tests.
const CloneRecipientsSQL = cloneRecipientsSQL
