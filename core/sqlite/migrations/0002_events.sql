-- 0002_events: what providers report after a send (bounces, complaints,
-- unsubscribes, deliveries, opens, clicks), one row per event, deduplicated
-- on the provider's event id so a replayed webhook changes nothing.
CREATE TABLE events (
    id           INTEGER PRIMARY KEY,
    provider     TEXT    NOT NULL,
    event_id     TEXT    NOT NULL,
    type         TEXT    NOT NULL,
    campaign_id  INTEGER NOT NULL REFERENCES campaigns (id),
    recipient_id INTEGER NOT NULL REFERENCES recipients (id),
    email        TEXT    NOT NULL DEFAULT '',
    reason       TEXT    NOT NULL DEFAULT '',
    at           INTEGER NOT NULL,
    UNIQUE (provider, event_id)
);
CREATE INDEX events_recipient ON events (recipient_id);
