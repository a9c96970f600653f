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
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from bot.metrics import Metrics
from bot.types import StreamUpdate, Target, View

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


class StreamUnavailable(DeliveryError):
    """Streaming cannot be used (or go on) for this message: no recipient for the stream,
    an expired stream, a workspace or chat that does not support it. The core falls back
    to posting and editing the message; ``message_id`` is the message the stream left in
    the chat (to be edited from now on), None when it left nothing."""

    def __init__(self, reason: str, *, message_id: str | None = None) -> None:
        super().__init__(reason, retryable=True)
        self.message_id = message_id


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


@runtime_checkable
class StreamingAdapter(Protocol):
    """An adapter that can show a result while it is generated (optional capability).

    The delivery job (``bot/delivery.py``) owns the state (``Delivery.stream_*``) and calls
    these in order: ``stream_start`` once, ``stream_append`` as text and statuses change
    (already throttled), ``stream_stop`` once with the final view. Any of them may raise
    :class:`StreamUnavailable` (fall back to post/edit) or :class:`DeliveryError`.
    """

    def can_stream(self, target: Target) -> bool:
        """Whether results for ``target`` stream here (e.g. Telegram: private chats only)."""
        ...

    @property
    def min_stream_interval(self) -> float:
        """Seconds to leave between two stream calls for one message (rate tiers)."""
        ...

    async def stream_start(self, target: Target, update: StreamUpdate, *, client_id: str) -> str:
        """Open a stream showing ``update``; returns its id (stored as ``Delivery.stream_id``)."""
        ...

    async def stream_append(self, target: Target, stream_id: str, update: StreamUpdate) -> None:
        """Show ``update`` (append ``update.delta``, or replace with ``update.text``)."""
        ...

    async def stream_stop(
        self,
        target: Target,
        stream_id: str,
        view: View,
        *,
        client_id: str,
        rest: str | None = None,
    ) -> str:
        """Finish the stream with the final ``view`` (its buttons included); returns the id of
        the message that now holds the result. Calling it again for a stream already stopped
        returns the same id (a restart may repeat it).

        ``rest`` is given when what was streamed is the start of the one result, exactly as
        the view shows it: the text still missing (maybe empty). The platform may then finish
        the stream in place (the rest, then the view's titles and buttons) instead of
        replacing it with the view."""
        ...
