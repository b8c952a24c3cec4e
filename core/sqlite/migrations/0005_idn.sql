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
-- under both spellings, both rows stay (each has its own state and history;
-- merging would lose one); the claim-time suppression check still matches
-- the normalised one.
UPDATE OR IGNORE recipients SET email = campaignd_normalize_address(email)
    WHERE (email GLOB '*[^ -~]*' OR email GLOB '*xn--*') AND campaignd_normalize_address(email) <> email;
