-- 0001: the whole first schema. Every table is scoped by guild_id; timestamps are UTC epoch seconds.

CREATE TABLE guild_settings (
    guild_id INTEGER PRIMARY KEY,
    free_open INTEGER NOT NULL DEFAULT 1,
    reviewer_role_id INTEGER,
    admin_role_id INTEGER,
    bookmark_channel_id INTEGER,
    now_playing_channel_id INTEGER,
    metrics_channel_id INTEGER,
    debug_channel_id INTEGER,
    submission_channel_id INTEGER,
    live_queue_channel_id INTEGER,
    reviewer_channel_id INTEGER,
    w_like INTEGER NOT NULL DEFAULT 1,
    w_comment INTEGER NOT NULL DEFAULT 2,
    w_share INTEGER NOT NULL DEFAULT 5,
    w_follow INTEGER NOT NULL DEFAULT 10,
    w_subscribe INTEGER NOT NULL DEFAULT 25,
    w_gift_coin INTEGER NOT NULL DEFAULT 2,
    tier_skip INTEGER NOT NULL DEFAULT 1000,
    tier_double_skip INTEGER NOT NULL DEFAULT 2000,
    tier_back_to_back INTEGER NOT NULL DEFAULT 5000,
    like_cap_per_minute INTEGER NOT NULL DEFAULT 60,
    submit_cooldown_seconds INTEGER NOT NULL DEFAULT 30,
    max_pending_per_user INTEGER NOT NULL DEFAULT 3,
    max_track_seconds INTEGER
);

CREATE TABLE submissions (
    id INTEGER PRIMARY KEY,
    guild_id INTEGER NOT NULL,
    public_id TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    user_name TEXT NOT NULL,
    artist TEXT NOT NULL,
    title TEXT NOT NULL,
    link TEXT,
    platform TEXT,
    file_path TEXT,
    file_name TEXT,
    duration REAL,
    note TEXT,
    tiktok_handle TEXT,
    line TEXT NOT NULL CHECK (line IN ('BackToBack', 'DoubleSkip', 'Skip', 'Free', 'Pending Skips', 'Played', 'Removed')),
    submitted_at REAL NOT NULL,
    entered_line_at REAL NOT NULL,
    played_at REAL,
    played_from TEXT,
    removed_at REAL,
    rating INTEGER CHECK (rating BETWEEN 1 AND 10),
    link_key TEXT,
    song_key TEXT NOT NULL,
    UNIQUE (guild_id, public_id),
    CHECK (link IS NOT NULL OR file_path IS NOT NULL)
);

-- A line in play order, and the next submission: an index range per (guild, line).
CREATE INDEX ix_submissions_line ON submissions (guild_id, line, entered_line_at, id);
-- A user's history, newest first.
CREATE INDEX ix_submissions_user ON submissions (guild_id, user_id, submitted_at DESC);
-- The recent pace of /next (estimated time to play).
CREATE INDEX ix_submissions_played ON submissions (guild_id, played_at) WHERE played_at IS NOT NULL;
-- SPEC 2: one active Free (Free or Pending Skips) submission per user, enforced by the database too.
CREATE UNIQUE INDEX ux_submissions_one_free ON submissions (guild_id, user_id)
    WHERE line IN ('Free', 'Pending Skips');
-- SPEC 3: the same link, or the same artist and title, cannot be active twice in a guild.
CREATE UNIQUE INDEX ux_submissions_active_link ON submissions (guild_id, link_key)
    WHERE link_key IS NOT NULL AND line IN ('BackToBack', 'DoubleSkip', 'Skip', 'Free', 'Pending Skips');
CREATE UNIQUE INDEX ux_submissions_active_song ON submissions (guild_id, song_key)
    WHERE line IN ('BackToBack', 'DoubleSkip', 'Skip', 'Free', 'Pending Skips');

-- The points ledger: counters per handle since its last reset; points = counters x the guild's weights.
CREATE TABLE handles (
    guild_id INTEGER NOT NULL,
    handle TEXT NOT NULL,
    user_id INTEGER,
    verified INTEGER NOT NULL DEFAULT 0,
    nickname TEXT,
    tiktok_user_id INTEGER,
    last_seen REAL,
    likes INTEGER NOT NULL DEFAULT 0,
    comments INTEGER NOT NULL DEFAULT 0,
    shares INTEGER NOT NULL DEFAULT 0,
    follows INTEGER NOT NULL DEFAULT 0,
    subscribes INTEGER NOT NULL DEFAULT 0,
    coins INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (guild_id, handle)
) WITHOUT ROWID;
CREATE INDEX ix_handles_user ON handles (guild_id, user_id, verified DESC, handle);

CREATE TABLE link_codes (
    guild_id INTEGER NOT NULL,
    handle TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    code TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (guild_id, handle, user_id)
);
CREATE INDEX ix_link_codes_code ON link_codes (guild_id, code);

CREATE TABLE displays (
    guild_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    channel_id INTEGER NOT NULL,
    message_id INTEGER,
    content_hash TEXT,
    PRIMARY KEY (guild_id, kind)
);

CREATE TABLE blocklist (
    guild_id INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('user', 'word', 'domain')),
    value TEXT NOT NULL,
    PRIMARY KEY (guild_id, kind, value)
);

CREATE TABLE user_prefs (
    guild_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    dm_notify INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (guild_id, user_id)
);

CREATE TABLE live_sessions (
    id INTEGER PRIMARY KEY,
    guild_id INTEGER NOT NULL,
    host TEXT NOT NULL,
    room_id INTEGER,
    started_at REAL NOT NULL,
    ended_at REAL,
    peak_viewers INTEGER NOT NULL DEFAULT 0,
    simulated INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX ix_live_sessions_guild ON live_sessions (guild_id, started_at);

CREATE TABLE session_stats (
    session_id INTEGER NOT NULL REFERENCES live_sessions (id) ON DELETE CASCADE,
    guild_id INTEGER NOT NULL,
    handle TEXT NOT NULL,
    nickname TEXT,
    likes INTEGER NOT NULL DEFAULT 0,
    comments INTEGER NOT NULL DEFAULT 0,
    shares INTEGER NOT NULL DEFAULT 0,
    follows INTEGER NOT NULL DEFAULT 0,
    subscribes INTEGER NOT NULL DEFAULT 0,
    gifts INTEGER NOT NULL DEFAULT 0,
    coins INTEGER NOT NULL DEFAULT 0,
    joined_at REAL,
    first_seen REAL,
    last_seen REAL,
    PRIMARY KEY (session_id, handle)
) WITHOUT ROWID;

CREATE TABLE gift_rewards (
    session_id INTEGER NOT NULL REFERENCES live_sessions (id) ON DELETE CASCADE,
    guild_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    line TEXT NOT NULL,
    submission_id INTEGER REFERENCES submissions (id),
    granted_at REAL NOT NULL,
    PRIMARY KEY (session_id, user_id, line)
);

-- Bot-wide key/values (the synced command tree hash); not guild data.
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
