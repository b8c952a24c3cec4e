-- 0004_template_attrs: the recipient attributes a campaign's templates
-- reference (core.CheckTemplates), as a JSON array of strings, for
-- `campaign show` and the missing-attribute checks. NULL for campaigns
-- created before this migration: the engine then derives them from the
-- templates.
ALTER TABLE campaigns ADD COLUMN template_attrs TEXT;
