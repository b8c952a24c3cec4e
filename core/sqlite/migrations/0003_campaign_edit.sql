-- 0003_campaign_edit: campaign delete.
--
-- deleted_campaigns is the record a deleted campaign leaves (its recipients,
-- executions and events go with it): its id, name, status and final
-- counters, who deleted it and when. Campaign ids are chosen above every id
-- here as well as in campaigns, so a new campaign never takes a deleted
-- one's id and Message-IDs <cID.rN@domain> of mail already sent never repeat.
CREATE TABLE deleted_campaigns (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    sender      TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    total       INTEGER NOT NULL,
    sent        INTEGER NOT NULL,
    failed      INTEGER NOT NULL,
    bounced     INTEGER NOT NULL,
    executions  INTEGER NOT NULL,
    events      INTEGER NOT NULL,
    deleted_by  TEXT    NOT NULL DEFAULT '',
    deleted_at  INTEGER NOT NULL
);

-- Deleting a campaign deletes its events without scanning everyone's.
CREATE INDEX events_campaign ON events (campaign_id);
