-- 0005_idn: addresses with an internationalised domain are stored in one
-- form, the lower-case A-label ("punycode") form core.NormalizeAddress now
-- returns. Rows written before kept the domain as imported (user@bücher.example
-- beside user@xn--bcher-kva.example), and would no longer match what new
-- imports and lookups produce: a suppressed address would be mailed, and a
-- re-import would add the person to a campaign a second time. So both tables
-- are rewritten here with campaignd_normalize_address, the same Go function
-- registered on every writer connection. Only rows with a non-ASCII
-- character or an xn-- label are touched; an address the function cannot
-- normalise is left as it is.
--
-- Suppressions: the normalised row is added unless that address is already
-- listed (the older entry wins), then the old spelling is removed.
INSERT OR IGNORE INTO suppressions (email, reason, source, created_at)
    SELECT campaignd_normalize_address(email), reason, source, created_at
    FROM suppressions
    WHERE (email GLOB '*[^ -~]*' OR email GLOB '*xn--*') AND campaignd_normalize_address(email) <> email;
DELETE FROM suppressions
    WHERE (email GLOB '*[^ -~]*' OR email GLOB '*xn--*') AND campaignd_normalize_address(email) <> email;

-- Recipients: renamed in place. Where a campaign already holds the person
-- under both spellings, the UPDATE leaves the old row as it is (the unique
-- index refuses the rename); the pairs are settled below.
UPDATE OR IGNORE recipients SET email = campaignd_normalize_address(email)
    WHERE (email GLOB '*[^ -~]*' OR email GLOB '*xn--*') AND campaignd_normalize_address(email) <> email;

-- A campaign that held the person under both spellings now holds one row
-- of each, and would mail them twice (the claim-time suppression check
-- compares the stored spelling, so an unsubscribe under one would not stop
-- the other either). An unsent row (PENDING or QUEUED) of such a pair is
-- removed when the other one is unsent too (the old spelling goes) or was
-- already sent or is in flight: the person gets one message. A pair where
-- the other row FAILED or BOUNCED stays as it is: removing either could
-- lose the one message that would reach them. Provider events of a removed
-- row move to the row kept, and the campaign's counters follow, in this
-- same transaction.
CREATE TEMP TABLE idn_drop AS
    SELECT CASE WHEN r.status IN ('PENDING', 'QUEUED') THEN r.id ELSE o.id END AS id,
           CASE WHEN r.status IN ('PENDING', 'QUEUED') THEN o.id ELSE r.id END AS keep_id,
           r.campaign_id AS campaign_id,
           CASE WHEN r.status IN ('PENDING', 'QUEUED') THEN r.status ELSE o.status END AS status
    FROM recipients AS r
    JOIN recipients AS o ON o.campaign_id = r.campaign_id AND o.email = campaignd_normalize_address(r.email)
    WHERE (r.email GLOB '*[^ -~]*' OR r.email GLOB '*xn--*') AND campaignd_normalize_address(r.email) <> r.email
      AND ((r.status IN ('PENDING', 'QUEUED') AND o.status IN ('PENDING', 'QUEUED', 'SENDING', 'SENT'))
        OR (o.status IN ('PENDING', 'QUEUED') AND r.status IN ('SENDING', 'SENT')));
UPDATE events SET recipient_id = (SELECT keep_id FROM idn_drop AS d WHERE d.id = events.recipient_id)
    WHERE recipient_id IN (SELECT id FROM idn_drop);
UPDATE campaigns SET
    total   = total   - (SELECT count(*) FROM idn_drop AS d WHERE d.campaign_id = campaigns.id),
    pending = pending - (SELECT count(*) FROM idn_drop AS d WHERE d.campaign_id = campaigns.id AND d.status = 'PENDING'),
    queued  = queued  - (SELECT count(*) FROM idn_drop AS d WHERE d.campaign_id = campaigns.id AND d.status = 'QUEUED')
    WHERE id IN (SELECT campaign_id FROM idn_drop);
DELETE FROM recipients WHERE id IN (SELECT id FROM idn_drop);
DROP TABLE idn_drop;
