"""The contract between the core and a chat platform adapter.

An adapter translates platform events into :class:`~bot.types.Inbound` /
:class:`~bot.types.ActionEvent` for the :class:`~bot.router.Router` (acknowledging within
the platform's deadline), and writes :class:`~bot.types.View` messages for the delivery
job. Nothing outside ``bot/adapters`` imports a chat SDK.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from bot.metrics import Metrics
from bot.types import Target, View

if TYPE_CHECKING:
    from bot.router import Router
    from storage.repository import Repository


class DeliveryError(Exception):
    """Writing to the platform failed. ``retryable`` False means: give this message up."""

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool = True,
        retry_after: float | None = None,
        maybe_sent: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        #: True when the platform may have applied the call anyway (a timeout or a dropped
        #: connection after the request went out), False when it answered with a refusal.
        self.maybe_sent = maybe_sent


@dataclass(frozen=True)
class PostLookup:
    """What a platform knows about a post made with a client-side id (see ``find_sent``)."""

    #: The platform message id when the post was found.
    message_id: str | None = None
    #: False when the platform cannot list what the bot posted (Telegram): then "not found"
    #: means "cannot tell", not "it never went out".
    searchable: bool = True


@dataclass
class Services:
    """What the core hands an adapter when it starts."""

    router: Router
    repo: Repository
    #: Call after a request was accepted: wakes the worker and the delivery job.
    notify: Callable[[], None]
    #: The app's metrics (adapters count the platform's 429 answers there).
    metrics: Metrics = field(default_factory=Metrics)


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

    def ready(self) -> tuple[bool, str]:
        """(connected and receiving events, a short reason): what ``/readyz`` reports."""
        ...

    async def send(self, target: Target, view: View, *, client_id: str | None = None) -> str:
        """Post a new message; returns its platform message id. Raises DeliveryError.

        ``client_id`` (ours, unique per post) goes with the message where the platform keeps
        it, so that :meth:`find_sent` can find the post again after a crash.
        """
        ...

    async def edit(self, target: Target, message_id: str, view: View) -> None:
        """Replace a message's content. Raises DeliveryError."""
        ...

    async def notify(self, target: Target, text: str, *, client_id: str | None = None) -> None:
        """Post a plain message (reminders, digests). Raises DeliveryError.

        ``client_id`` as for :meth:`send`; callers pass texts of at most :attr:`max_text`.
        """
        ...

    async def find_sent(self, target: Target, client_id: str, *, since: datetime) -> PostLookup:
        """Look for a message posted to ``target`` with ``client_id`` at or after ``since``.

        Used only when a post may or may not have gone out (the bot crashed or timed out
        during the call). Raises DeliveryError when the platform cannot be asked now.
        """
        ...
