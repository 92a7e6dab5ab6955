-- 0004: the web server. Secret per-guild tokens for the overlay and the public queue page, stored only as
-- SHA-256 hashes (a database copy gives no working link), and the public page's switches.

CREATE TABLE web_tokens (
    guild_id INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('overlay', 'public')),
    token_hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    PRIMARY KEY (guild_id, kind)
);

CREATE TABLE web_settings (
    guild_id INTEGER PRIMARY KEY,
    public_enabled INTEGER NOT NULL DEFAULT 0,
    public_links INTEGER NOT NULL DEFAULT 0
);
