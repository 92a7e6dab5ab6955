"""The bot's own web server: stream overlay, public queue page and signed file links (SPEC 9)."""
