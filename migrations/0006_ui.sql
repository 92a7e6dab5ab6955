-- 0006: the average review time behind wait estimates (until a live has a pace of its own).
ALTER TABLE guild_settings ADD COLUMN avg_review_seconds INTEGER NOT NULL DEFAULT 240;
