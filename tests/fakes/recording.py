"""A chat platform double that records what the bot posted (for scheduler-level tests)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.adapters.base import Services
from bot.types import Target, View


@dataclass
class Chat:
    """A platform that records the messages and notes (digests, reminders) it posted."""

    platform: str = "fake"
    max_text: int = 4000
    min_edit_interval: float = 0.0
    notes: list[str] = field(default_factory=list)
    sent: list[View] = field(default_factory=list)

    async def start(self, services: Services) -> None: ...
    async def stop(self) -> None: ...

    async def send(self, target: Target, view: View) -> str:
        self.sent.append(view)
        return f"m{len(self.sent)}"

    async def edit(self, target: Target, message_id: str, view: View) -> None: ...

    async def notify(self, target: Target, text: str) -> None:
        self.notes.append(text)
