"""The audit row of a configuration change.

Each ``atombot run`` and ``atombot worker`` compares the settings that shape what atombot
does with those recorded at the last start that changed them, and records the difference
as ``config.changed`` (actor ``operator``): which settings changed, and their new values.
Secrets never enter the row (tokens, keys, passwords; a database URL keeps no password).
"""

from __future__ import annotations

from typing import Any

from bot.config import Settings
from bot.logs import SECRET_SETTINGS
from storage.db import shown_url
from storage.repository import Repository

ACTION = "config.changed"


def recorded_settings(settings: Settings) -> dict[str, str]:
    """The settings as the audit row holds them: every one but the secrets, as text."""
    values: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if name in SECRET_SETTINGS:
            values[name] = "(set)" if value else ""
        elif name == "database_url" and value:
            values[name] = shown_url(str(value))
        else:
            values[name] = "" if value is None else str(value)
    return values


async def audit_configuration(repo: Repository, settings: Settings, *, role: str) -> list[str]:
    """Record the settings that changed since the last recorded start; return their names
    (none at a start with the same settings; every one at the first start)."""
    current = recorded_settings(settings)
    last = await repo.audit_entries(action=ACTION, limit=1)
    previous: dict[str, Any] = last[-1].detail.get("settings", {}) if last else {}
    changed = sorted(
        name for name in current.keys() | previous.keys() if current.get(name) != previous.get(name)
    )
    if changed:
        await repo.audit(
            actor="operator",
            action=ACTION,
            subject=role,
            detail={"changed": changed, "settings": current},
        )
    return changed


__all__ = ["ACTION", "audit_configuration", "recorded_settings"]
