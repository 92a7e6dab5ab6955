"""The TikTok LIVE layer: the event adapter and the live connection manager (no discord imports)."""
