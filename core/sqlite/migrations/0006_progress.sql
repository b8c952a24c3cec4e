-- 0006_progress: what a campaign did, minute by minute, and when it ran.
--
-- campaign_minutes counts the outcomes ticks recorded, per campaign and
-- minute (unix time / 60): the rate, the ETA and the per-minute chart read a
-- handful of its rows instead of the recipients. Every count is bumped in
-- the transaction that records the outcome (RecordOutcome, lease recovery),
-- so `verify` can check that the SENT ones add up to the rows that carry a
-- sent time. failed, bounced and retried count events, not states: a
-- recipient that failed, was retried and then sent counts once in each.
-- last_failure is the minute's most recent failure ("address: class code
-- text"), the watch's "recent failures" without a scan. Rows are kept as
-- long as their campaign (one per minute of sending: a 10,000,000-recipient
-- campaign at 50 a minute leaves about 200,000 small rows).
CREATE TABLE campaign_minutes (
    campaign_id  INTEGER NOT NULL,
    minute       INTEGER NOT NULL,
    sent         INTEGER NOT NULL DEFAULT 0,
    failed       INTEGER NOT NULL DEFAULT 0,
    bounced      INTEGER NOT NULL DEFAULT 0,
    retried      INTEGER NOT NULL DEFAULT 0,
    last_failure TEXT,
    PRIMARY KEY (campaign_id, minute)
) WITHOUT ROWID;

-- started_at: the first execute; finished_at: when the campaign last became
-- COMPLETED (cleared when a retry reopens it); last_tick_at: when a tick
-- last claimed its recipients. Unix milliseconds, NULL until they happen.
ALTER TABLE campaigns ADD COLUMN started_at INTEGER;
ALTER TABLE campaigns ADD COLUMN finished_at INTEGER;
ALTER TABLE campaigns ADD COLUMN last_tick_at INTEGER;

-- What the database already holds: one scan, once, at the upgrade.
INSERT INTO campaign_minutes (campaign_id, minute, sent)
    SELECT campaign_id, sent_at / 60000, count(*) FROM recipients
    WHERE sent_at IS NOT NULL GROUP BY campaign_id, sent_at / 60000;
INSERT INTO campaign_minutes (campaign_id, minute, failed, bounced)
    SELECT campaign_id, updated_at / 60000, total(status = 'FAILED'), total(status = 'BOUNCED') FROM recipients
    WHERE (status = 'FAILED' OR status = 'BOUNCED') AND sent_at IS NULL AND last_error_class IS NOT 'cancelled'
    GROUP BY campaign_id, updated_at / 60000
    ON CONFLICT (campaign_id, minute) DO UPDATE SET failed = failed + excluded.failed, bounced = bounced + excluded.bounced;
UPDATE campaigns SET started_at = (SELECT min(at) FROM executions e WHERE e.campaign_id = campaigns.id AND e.status = 'COMPLETED');
UPDATE campaigns SET finished_at = updated_at WHERE status = 'COMPLETED';
