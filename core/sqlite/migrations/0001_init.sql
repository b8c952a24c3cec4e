-- 0001_init: everything sending needs, so that no later migration has to
-- rewrite the recipient queue. Times are INTEGER unix milliseconds (UTC).

-- campaigns carries its recipient counters: every recipient status change
-- updates them in the same transaction, so stats are one row read.
-- first_recipient_id..last_recipient_id bounds the ids of the campaign's
-- recipients (ids only grow, and a campaign's rows are inserted as
-- max(id)+1...), which lets execute and listings walk the rowid range in
-- order without a per-campaign index that import would pay for.
CREATE TABLE campaigns (
    id                 INTEGER PRIMARY KEY,
    name               TEXT    NOT NULL,
    sender             TEXT    NOT NULL,
    from_addr          TEXT    NOT NULL,
    reply_to           TEXT    NOT NULL DEFAULT '',
    subject            TEXT    NOT NULL,
    text_body          TEXT    NOT NULL DEFAULT '',
    html_body          TEXT    NOT NULL DEFAULT '',
    headers            TEXT,   -- JSON array of {"name","value"}; NULL when none
    concurrency        INTEGER NOT NULL CHECK (concurrency >= 1),
    batch_size         INTEGER NOT NULL CHECK (batch_size >= 1),
    status             TEXT    NOT NULL CHECK (status = 'DRAFT' OR status = 'ACTIVE' OR status = 'SENDING'
                                                         OR status = 'PAUSED' OR status = 'COMPLETED' OR status = 'CANCELLED'),
    paused_from        TEXT,   -- the status a PAUSED campaign resumes to
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    total              INTEGER NOT NULL DEFAULT 0 CHECK (total >= 0),
    pending            INTEGER NOT NULL DEFAULT 0 CHECK (pending >= 0),
    queued             INTEGER NOT NULL DEFAULT 0 CHECK (queued >= 0),
    sending            INTEGER NOT NULL DEFAULT 0 CHECK (sending >= 0),
    sent               INTEGER NOT NULL DEFAULT 0 CHECK (sent >= 0),
    failed             INTEGER NOT NULL DEFAULT 0 CHECK (failed >= 0),
    bounced            INTEGER NOT NULL DEFAULT 0 CHECK (bounced >= 0),
    first_recipient_id INTEGER,
    last_recipient_id  INTEGER
);

-- recipients is the durable queue: one row per (campaign, normalised address).
-- The status CHECK is an OR chain, not IN (...): SQLite evaluates an IN list
-- in a CHECK by building a temporary table for every row written, which
-- tripled the cost of execute and import.
CREATE TABLE recipients (
    id                 INTEGER PRIMARY KEY,
    campaign_id        INTEGER NOT NULL REFERENCES campaigns (id) DEFERRABLE INITIALLY DEFERRED,
    email              TEXT    NOT NULL,
    name               TEXT    NOT NULL DEFAULT '',
    attrs              TEXT,   -- JSON object of string values; NULL when none
    status             TEXT    NOT NULL CHECK (status = 'PENDING' OR status = 'QUEUED' OR status = 'SENDING'
                                                         OR status = 'SENT' OR status = 'FAILED' OR status = 'BOUNCED'),
    attempts           INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    queued_at          INTEGER,
    next_attempt_at    INTEGER,
    lease_until        INTEGER,
    claim_token        TEXT,
    sent_at            INTEGER,
    provider_id        TEXT,
    last_error_class   TEXT,
    last_error_code    INTEGER,
    last_enhanced_code TEXT,
    last_error         TEXT
);

-- Deduplication; also the lookup of one address in a campaign.
CREATE UNIQUE INDEX recipients_campaign_email ON recipients (campaign_id, email);
-- The claim: due QUEUED rows of a campaign in (next_attempt_at, id) order
-- (the rowid is every index's implicit last column). Partial, so it holds
-- only the queue, and import into a DRAFT campaign never touches it.
CREATE INDEX recipients_claim ON recipients (campaign_id, next_attempt_at) WHERE status = 'QUEUED';
-- Lease recovery: SENDING rows by lease end (at most a few batches).
CREATE INDEX recipients_lease ON recipients (lease_until) WHERE status = 'SENDING';
-- Retry and failure listings without walking the whole campaign.
CREATE INDEX recipients_failed ON recipients (campaign_id) WHERE status = 'FAILED';

-- executions is the history every execute leaves, successful or not.
CREATE TABLE executions (
    id          INTEGER PRIMARY KEY,
    campaign_id INTEGER NOT NULL REFERENCES campaigns (id),
    status      TEXT    NOT NULL CHECK (status IN ('COMPLETED', 'FAILED')),
    queued      INTEGER NOT NULL DEFAULT 0,
    error       TEXT    NOT NULL DEFAULT '',
    by_actor    TEXT    NOT NULL DEFAULT '',
    at          INTEGER NOT NULL
);
CREATE INDEX executions_campaign ON executions (campaign_id);

-- ticks is the history of ticks that did something.
CREATE TABLE ticks (
    id           INTEGER PRIMARY KEY,
    triggered_by TEXT    NOT NULL,
    started      INTEGER NOT NULL,
    duration_ns  INTEGER NOT NULL,
    processed    INTEGER NOT NULL DEFAULT 0,
    sent         INTEGER NOT NULL DEFAULT 0,
    failed       INTEGER NOT NULL DEFAULT 0,
    retried      INTEGER NOT NULL DEFAULT 0,
    throttled    INTEGER NOT NULL DEFAULT 0,
    recovered    INTEGER NOT NULL DEFAULT 0,
    skipped      INTEGER NOT NULL DEFAULT 0,
    error        TEXT    NOT NULL DEFAULT ''
);

-- suppressions is the global do-not-mail list. Addresses compare without
-- regard to ASCII case: when in doubt, do not mail.
CREATE TABLE suppressions (
    email      TEXT    NOT NULL COLLATE NOCASE PRIMARY KEY,
    reason     TEXT    NOT NULL DEFAULT '',
    source     TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
