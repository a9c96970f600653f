"""The performers of this atombot, by action kind; only those whose settings exist.

Each performer module (``bot/actions/email.py``, ``calendar.py``, ``reply.py``) exposes::

    def build_performer(settings: Settings, adapters: Mapping[str, ChatAdapter]) -> Performer | None

returning None (or a performer whose ``available()`` is False) when its settings are
missing. :func:`build_action_registry` asks each of them; the kind registry then offers
only the available kinds (``build_registry(..., actions=registry.kinds)``).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from bot.actions.base import Performer

if TYPE_CHECKING:
    from bot.adapters.base import ChatAdapter
    from bot.config import Settings

log = logging.getLogger(__name__)

#: The modules that may provide a performer (looked up in this order).
PERFORMER_MODULES = ("bot.actions.email", "bot.actions.calendar", "bot.actions.reply")


class ActionRegistry:
    """Available performers by kind (a performer whose settings are missing is left out)."""

    def __init__(self, performers: Iterable[Performer] = ()) -> None:
        self._performers: dict[str, Performer] = {}
        for performer in performers:
            if not performer.available():
                continue
            if performer.kind in self._performers:
                raise ValueError(f"two performers for action kind {performer.kind!r}")
            self._performers[performer.kind] = performer

    @property
    def kinds(self) -> tuple[str, ...]:
        """The action kinds that can be carried out here."""
        return tuple(self._performers)

    def get(self, kind: str) -> Performer | None:
        """The performer of ``kind``, if available."""
        return self._performers.get(kind)

    def __contains__(self, kind: object) -> bool:
        return kind in self._performers

    def __len__(self) -> int:
        return len(self._performers)


def build_action_registry(
    settings: Settings, adapters: Mapping[str, ChatAdapter] | None = None
) -> ActionRegistry:
    """The performers the settings allow (none at all by default: every action is off)."""
    performers: list[Performer] = []
    for name in PERFORMER_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise  # the module exists but needs something that is not installed
            continue
        build = getattr(module, "build_performer", None)
        if build is None:
            continue
        performer = build(settings, dict(adapters or {}))
        if performer is not None:
            performers.append(performer)
    registry = ActionRegistry(performers)
    if registry.kinds:
        log.info("actions available: %s", ", ".join(registry.kinds))
    return registry
