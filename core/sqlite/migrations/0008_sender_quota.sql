-- 0008_sender_quota: each sender's quota windows, one row per sender.
--
-- windows is a JSON array of the sender's sliding windows (core.QuotaWindow:
-- per_ms, head bucket, 61 bucket counts), so a claim under a quota reads and
-- writes this one row, in the claim's own transaction, whatever the window's
-- length or the number of sends. blocked_until (unix ms) is set when a
-- provider answered with a quota reply: nothing is claimed for the sender
-- until then. Rows are kept as long as the database; a sender removed from
-- the configuration leaves a row nobody reads.
CREATE TABLE sender_quota (
    sender         TEXT PRIMARY KEY,
    windows        TEXT NOT NULL DEFAULT '[]',
    blocked_until  INTEGER,
    blocked_reason TEXT,
    updated_at     INTEGER NOT NULL
) WITHOUT ROWID;
