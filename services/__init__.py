"""Business rules of the bot; nothing in this package imports discord."""
