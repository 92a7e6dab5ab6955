-- 0002: the all-time leaderboard adds up one guild's per-live counters by handle.
CREATE INDEX ix_session_stats_guild ON session_stats (guild_id, handle);
-- Only handles the submitter proved add points to their Free songs (on by default).
ALTER TABLE guild_settings ADD COLUMN verified_handles_only INTEGER NOT NULL DEFAULT 1;
-- A drop followed by a reconnect within this many seconds continues the same live session.
ALTER TABLE guild_settings ADD COLUMN reconnect_grace_seconds INTEGER NOT NULL DEFAULT 300;
