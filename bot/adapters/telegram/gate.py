"""The gate every update passes before any handler: redeliveries dropped, chats outside
``TELEGRAM_ALLOWED_CHATS`` refused (pure decisions; the adapter does the answering)."""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum

from telegram import Chat, Update, User

#: Update ids remembered for dedupe (the router dedupes again across restarts).
MAX_SEEN_UPDATES = 10_000


def parse_allowlist(raw: str | None) -> frozenset[str] | None:
    """``TELEGRAM_ALLOWED_CHATS`` (chat ids, user ids or @usernames, comma/space separated).

    None means everyone is allowed.
    """
    if not raw or not raw.strip():
        return None
    return frozenset(item.strip().lower() for item in re.split(r"[,\s]+", raw) if item.strip())


def is_allowed(allowed: frozenset[str] | None, chat: Chat | None, user: User | None) -> bool:
    """Whether the allowlist admits this chat or user (no allowlist: everyone)."""
    if allowed is None:
        return True
    names = set()
    if chat is not None:
        names.add(str(chat.id))
        if chat.username:
            names.add(f"@{chat.username.lower()}")
    if user is not None:
        names.add(str(user.id))
        if user.username:
            names.add(f"@{user.username.lower()}")
    return bool(names & allowed)


class Verdict(Enum):
    """What the gate decided for one update."""

    admit = "admit"
    duplicate = "duplicate"
    refused = "refused"


@dataclass
class Gate:
    """Dedupe by ``update_id`` and the allowlist."""

    allowed: frozenset[str] | None = None

    def __post_init__(self) -> None:
        self._seen: OrderedDict[int, None] = OrderedDict()

    def check(self, update: Update) -> Verdict:
        """Count the update as seen and say whether it goes on to the handlers."""
        if update.update_id in self._seen:
            return Verdict.duplicate
        self._seen[update.update_id] = None
        while len(self._seen) > MAX_SEEN_UPDATES:
            self._seen.popitem(last=False)
        if is_allowed(self.allowed, update.effective_chat, update.effective_user):
            return Verdict.admit
        return Verdict.refused
