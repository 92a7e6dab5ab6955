"""A loopback fake Discord that the real discord.py client connects to (see ``server.py``)."""

from tests.fakediscord.server import Actor, FakeDiscord, InteractionRecord

__all__ = ["Actor", "FakeDiscord", "InteractionRecord"]
