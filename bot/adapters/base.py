"""The contract between the core and a chat platform adapter.

An adapter translates platform events into :class:`~bot.types.Inbound` /
:class:`~bot.types.ActionEvent` for the :class:`~bot.router.Router` (acknowledging within
the platform's deadline), and writes :class:`~bot.types.View` messages for the delivery
job. Nothing outside ``bot/adapters`` imports a chat SDK.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from bot.types import Target, View

if TYPE_CHECKING:
    from bot.router import Router
    from storage.repository import Repository


class DeliveryError(Exception):
    """Writing to the platform failed. ``retryable`` False means: give this message up."""

    def __init__(
        self, reason: str, *, retryable: bool = True, retry_after: float | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass
class Services:
    """What the core hands an adapter when it starts."""

    router: Router
    repo: Repository
    #: Call after a request was accepted: wakes the worker and the delivery job.
    notify: Callable[[], None]


class ChatAdapter(Protocol):
    """One chat platform (console, Slack, Telegram)."""

    @property
    def platform(self) -> str:
        """The platform name stored on requests (``console``, ``slack``, ``telegram``)."""
        ...

    @property
    def max_text(self) -> int:
        """The longest message text the platform accepts (after which we split)."""
        ...

    @property
    def min_edit_interval(self) -> float:
        """Seconds to leave between two edits in one channel (rate limits)."""
        ...

    async def start(self, services: Services) -> None:
        """Begin receiving events (returns once listening)."""
        ...

    async def stop(self) -> None:
        """Stop receiving events and close connections."""
        ...

    async def send(self, target: Target, view: View) -> str:
        """Post a new message; returns its platform message id. Raises DeliveryError."""
        ...

    async def edit(self, target: Target, message_id: str, view: View) -> None:
        """Replace a message's content. Raises DeliveryError."""
        ...

    async def notify(self, target: Target, text: str) -> None:
        """Post a plain message (reminders, digests). Raises DeliveryError."""
        ...
