-- 0002: live analytics. Shares get a per-handle cap per minute like likes (SPEC 6).
ALTER TABLE guild_settings ADD COLUMN share_cap_per_minute INTEGER NOT NULL DEFAULT 3;
