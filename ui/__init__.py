"""Discord-facing building blocks: the response helper, permission checks, embeds and views."""
