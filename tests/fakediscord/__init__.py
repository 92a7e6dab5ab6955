"""A loopback fake Discord that the real discord.py client connects to.

``FakeDiscord`` (``server.py``) composes the state (``state.py``), REST API (``rest.py``), gateway
(``gateway.py``), Discord's size limits (``limits.py``) and the OpenAPI contract check (``openapi.py``);
tests drive it through ``Actor`` and read results from ``InteractionRecord`` (``actors.py``). Fixtures are in
``pytest_plugin.py``.
"""

from tests.fakediscord.actors import Actor, CommandHidden, InteractionRecord
from tests.fakediscord.openapi import ContractChecker, spec_path
from tests.fakediscord.server import ACK_WINDOW, FakeDiscord
from tests.fakediscord.state import GuildInfo, RequestLog

__all__ = [
    "ACK_WINDOW",
    "Actor",
    "CommandHidden",
    "ContractChecker",
    "FakeDiscord",
    "GuildInfo",
    "InteractionRecord",
    "RequestLog",
    "spec_path",
]
