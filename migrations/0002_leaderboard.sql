-- 0002: the all-time leaderboard adds up one guild's per-live counters by handle.
CREATE INDEX ix_session_stats_guild ON session_stats (guild_id, handle);
