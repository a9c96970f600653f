"""A chat platform double that records what the bot posted (for scheduler-level tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.adapters.base import DeliveryError, PostLookup, Services
from bot.types import Target, View


class Crash(Exception):
    """The process died (not a delivery error: nothing in the bot catches it)."""


@dataclass
class Chat:
    """A platform that records the messages and notes (digests, reminders) it posted.

    Like Slack it keeps the client-side id of each post and finds it again (``find_sent``);
    ``searchable=False`` makes it a platform that cannot (Telegram). ``fail_next`` refuses
    the next notes; ``crash_after_next_note`` posts the next note, then the bot "dies".
    """

    platform: str = "fake"
    max_text: int = 4000
    min_edit_interval: float = 0.0
    searchable: bool = True
    notes: list[str] = field(default_factory=list)
    sent: list[View] = field(default_factory=list)
    client_ids: dict[str, str] = field(default_factory=dict)
    fail_next: list[DeliveryError] = field(default_factory=list)
    crash_after_next_note: bool = False

    async def start(self, services: Services) -> None: ...
    async def stop(self) -> None: ...

    async def send(self, target: Target, view: View, *, client_id: str | None = None) -> str:
        self.sent.append(view)
        message_id = f"m{len(self.sent)}"
        if client_id is not None:
            self.client_ids[client_id] = message_id
        return message_id

    async def edit(self, target: Target, message_id: str, view: View) -> None: ...

    async def notify(self, target: Target, text: str, *, client_id: str | None = None) -> None:
        if self.fail_next:
            raise self.fail_next.pop(0)
        self.notes.append(text)
        if client_id is not None:
            self.client_ids[client_id] = f"n{len(self.notes)}"
        if self.crash_after_next_note:
            self.crash_after_next_note = False
            raise Crash

    async def find_sent(self, target: Target, client_id: str, *, since: datetime) -> PostLookup:
        if not self.searchable:
            return PostLookup(searchable=False)
        return PostLookup(message_id=self.client_ids.get(client_id))
