-- 0005: live analytics (the share cap per handle per minute is a setting of 0003).

-- Engagement of a live per minute (the recap's chart), written by the engagement flush in the same
-- transaction as the ledger. minute = floor(epoch seconds / 60).
CREATE TABLE session_minutes (
    session_id INTEGER NOT NULL REFERENCES live_sessions (id) ON DELETE CASCADE,
    guild_id INTEGER NOT NULL,
    minute INTEGER NOT NULL,
    likes INTEGER NOT NULL DEFAULT 0,
    comments INTEGER NOT NULL DEFAULT 0,
    coins INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (session_id, minute)
) WITHOUT ROWID;

-- When a played submission had entered the line it was played from (entered_line_at is stamped with the
-- play itself), so a recap can tell how long each song waited.
ALTER TABLE submissions ADD COLUMN line_entered_at REAL;
