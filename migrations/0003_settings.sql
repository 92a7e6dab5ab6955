-- 0003: settings an admin changes in /settings, and what /setup and the permission doctor remember.
-- Defaults equal services/settings.py (a test compares them). Settings marked built=False there are
-- stored and round-trip now; the features that read them arrive with other changes.
ALTER TABLE guild_settings ADD COLUMN display_refresh_seconds REAL;
ALTER TABLE guild_settings ADD COLUMN share_cap_per_minute INTEGER NOT NULL DEFAULT 5;
ALTER TABLE guild_settings ADD COLUMN free_every_nth INTEGER NOT NULL DEFAULT 0;
ALTER TABLE guild_settings ADD COLUMN public_queue_enabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE guild_settings ADD COLUMN file_link_expiry_hours INTEGER NOT NULL DEFAULT 24;
-- /setup: the category it created or adopted, so a second run finds it again.
ALTER TABLE guild_settings ADD COLUMN setup_category_id INTEGER;
-- The permission doctor: what it last posted (no repeat on every restart) and the one owner DM.
ALTER TABLE guild_settings ADD COLUMN doctor_fingerprint TEXT;
ALTER TABLE guild_settings ADD COLUMN doctor_owner_notified_at REAL;
