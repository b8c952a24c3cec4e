-- 0007_send_window: when a campaign may send.
--
-- send_window is the window in its canonical text ("Mon-Fri 09:00-17:00
-- Europe/Berlin", see core.ParseSendWindow), NULL for always; not_before
-- and expires_at are unix milliseconds, NULL when not set. The tick reads
-- them with the campaign row it already reads, and checks them in Go: a
-- campaign outside its window or before not_before claims nothing; after
-- expires_at its unsent recipients fail with class 'expired'.
ALTER TABLE campaigns ADD COLUMN send_window TEXT;
ALTER TABLE campaigns ADD COLUMN not_before INTEGER;
ALTER TABLE campaigns ADD COLUMN expires_at INTEGER;

-- expired: how many unsent recipients of expired campaigns the tick failed.
ALTER TABLE ticks ADD COLUMN expired INTEGER NOT NULL DEFAULT 0;
