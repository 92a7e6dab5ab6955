"""Who may do what (SPEC 1): admins have Manage Server or the admin role; reviewers the reviewer role."""

from __future__ import annotations

from collections.abc import Collection

from models import GuildSettings


def is_admin(*, manage_guild: bool, role_ids: Collection[int], settings: GuildSettings) -> bool:
    """Manage Server, or the configured admin role."""
    return manage_guild or (settings.admin_role_id is not None and settings.admin_role_id in role_ids)


def is_reviewer(*, manage_guild: bool, role_ids: Collection[int], settings: GuildSettings) -> bool:
    """The configured reviewer role, or an admin."""
    if is_admin(manage_guild=manage_guild, role_ids=role_ids, settings=settings):
        return True
    return settings.reviewer_role_id is not None and settings.reviewer_role_id in role_ids
