-- 0007: one switch for the public queue page. /overlay public wrote web_settings.public_enabled and
-- /settings wrote guild_settings.public_queue_enabled; only the latter stays (it is in the settings cache,
-- the /settings panel and the doctor). A guild that had switched the page on either way keeps it on.
INSERT OR IGNORE INTO guild_settings (guild_id) SELECT guild_id FROM web_settings WHERE public_enabled <> 0;
UPDATE guild_settings SET public_queue_enabled = 1
    WHERE guild_id IN (SELECT guild_id FROM web_settings WHERE public_enabled <> 0);
-- web_settings keeps public_links (whether the page shows submitted links: no setting duplicates it).
ALTER TABLE web_settings DROP COLUMN public_enabled;
