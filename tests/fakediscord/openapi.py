"""Contract checks: every request body the bot sends is validated against Discord's OpenAPI spec.

The spec is read from ``DISCORD_OPENAPI_SPEC`` or ``../shared/discord-api-spec/openapi.json`` beside the
repository. When it is absent, ``ContractChecker.enabled`` is False and the contract test skips, saying so.
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

REPO = Path(__file__).resolve().parents[2]
SPEC_URI = "urn:discord-openapi"


def spec_path() -> Path:
    """Where the spec is expected."""
    override = os.environ.get("DISCORD_OPENAPI_SPEC")
    return Path(override) if override else REPO.parent / "shared" / "discord-api-spec" / "openapi.json"


@dataclass(frozen=True)
class _Route:
    method: str
    regex: re.Pattern[str]
    pointer: str


@functools.cache
def _load(path: str) -> tuple[list[_Route], Registry] | None:
    file = Path(path)
    if not file.is_file():
        return None
    spec = json.loads(file.read_text(encoding="utf-8"))
    registry = Registry().with_resource(SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT202012))
    routes = []
    for template, item in spec.get("paths", {}).items():
        regex = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", r"[^/]+", re.escape(template)) + "$")
        escaped = template.replace("~", "~0").replace("/", "~1")
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue  # path-level "parameters" list
            content = (operation.get("requestBody") or {}).get("content") or {}
            if "application/json" in content:
                pointer = f"#/paths/{escaped}/{method}/requestBody/content/application~1json/schema"
                routes.append(_Route(method.upper(), regex, pointer))
    # Literal segments must win over parameters (e.g. /messages/pins over /messages/{message_id}).
    routes.sort(key=lambda r: r.regex.pattern.count("[^/]+"))
    return routes, registry


def _leaf(error: Any) -> Any:
    """The most specific cause of a oneOf/anyOf failure."""
    while error.context:
        error = min(error.context, key=lambda e: len(list(e.context)) or 0)
    return error


class ContractChecker:
    """Validates request bodies; ``check`` returns a list of problems (empty when valid)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or spec_path()
        loaded = _load(str(self.path))
        self.enabled = loaded is not None
        self._routes, self._registry = loaded if loaded else ([], Registry())
        self._validators: dict[str, Draft202012Validator] = {}

    @classmethod
    def off(cls) -> ContractChecker:
        """A checker that checks nothing, for latency benchmarks.

        Checking a body against the spec (jsonschema) is Discord's work, not the bot's: inline in every
        request, it took more than half of each ``/queue`` acknowledgement the fake timed (about 6 of 11 ms).
        The test suite checks every request the bot makes.
        """
        checker = cls()
        checker.enabled = False
        return checker

    @staticmethod
    def _describe(method: str, api_path: str, error: Any) -> str:
        leaf = _leaf(error)
        where = "/".join(map(str, leaf.absolute_path)) or "<body>"
        return f"{method} {api_path}: {where}: {leaf.validator} failed: {leaf.message[-200:]}"

    def check(self, method: str, api_path: str, body: Any) -> list[str]:
        """Problems of ``body`` for ``method api_path`` (path relative to /api/v10)."""
        if not self.enabled or body is None:
            return []
        for route in self._routes:
            if route.method == method and route.regex.match(api_path):
                validator = self._validators.get(route.pointer)
                if validator is None:
                    validator = Draft202012Validator({"$ref": SPEC_URI + route.pointer}, registry=self._registry)
                    self._validators[route.pointer] = validator
                return [self._describe(method, api_path, e) for e in validator.iter_errors(body)]
        return []
