-- 0002 (ui): the average review time behind waits before the live has a pace of its own (issue 16).
ALTER TABLE guild_settings ADD COLUMN avg_review_seconds INTEGER NOT NULL DEFAULT 240;
