"""Platform-neutral message types shared by adapters, the router and the scheduler."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Action(StrEnum):
    """What a button under a result does."""

    rate_up = "up"
    rate_down = "down"
    regenerate = "regen"
    cancel = "cancel"


@dataclass(frozen=True)
class Inbound:
    """One incoming message, translated by an adapter.

    ``event_id`` identifies the platform event (Slack ``event_id``, Telegram ``update_id``,
    a console line number) so a redelivery is recognised. ``context`` carries what a
    handler may need from the platform, already fetched (e.g. thread messages).
    """

    platform: str
    tenant: str
    channel: str
    user: str
    text: str
    event_id: str
    thread: str | None = None
    private: bool = False
    timezone: str = "UTC"
    user_name: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    #: The adapter turns its receipt into the request's progress message, so the delivery
    #: job must not post one of its own while that receipt is being sent.
    adopts_receipt: bool = False


@dataclass(frozen=True)
class ActionEvent:
    """A button press on a result message."""

    platform: str
    tenant: str
    channel: str
    user: str
    action: Action
    task_id: int
    event_id: str
    user_name: str | None = None


@dataclass(frozen=True)
class Button:
    """A button under a message: its label and what it does to which task."""

    label: str
    action: Action
    task_id: int

    @property
    def data(self) -> str:
        """A compact token for the platform's callback field (well under 64 bytes)."""
        return f"ab:{self.action.value}:{self.task_id}"

    @staticmethod
    def parse(data: str) -> tuple[Action, int] | None:
        """Decode :attr:`data`; None for anything that is not ours."""
        parts = data.split(":")
        if len(parts) != 3 or parts[0] != "ab":
            return None
        try:
            return Action(parts[1]), int(parts[2])
        except ValueError:
            return None


@dataclass(frozen=True)
class Section:
    """A block of a message: optional title line and body text."""

    text: str
    title: str | None = None


@dataclass(frozen=True)
class View:
    """What a message shows: sections of text and rows of buttons.

    ``text`` is the whole message as plain text (what console and notifications show).
    """

    sections: tuple[Section, ...]
    buttons: tuple[tuple[Button, ...], ...] = ()

    @property
    def text(self) -> str:
        """The view flattened to plain text."""
        parts = []
        for section in self.sections:
            parts.append(f"{section.title}\n{section.text}" if section.title else section.text)
        return "\n\n".join(p for p in parts if p)


@dataclass(frozen=True)
class Target:
    """Where the bot writes: a chat (and thread) on a platform."""

    platform: str
    tenant: str
    channel: str
    thread: str | None = None
    user: str | None = None
    private: bool = False


@dataclass(frozen=True)
class Reply:
    """The router's immediate answer to an inbound message or action."""

    text: str
    task_ids: tuple[int, ...] = ()
    duplicate: bool = False
    ephemeral: bool = False
    request_id: int | None = None
