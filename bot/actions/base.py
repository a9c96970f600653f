"""The contract between the action runner (approval, exactly-once bookkeeping) and the
performers that carry an action out (SMTP, the chat platform)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.types import Target


@dataclass(frozen=True)
class ActionContext:
    """Everything a performer needs to carry out one approved action task."""

    task_id: int
    kind: str
    #: Stable per task (and per approved text version): the idempotency key, e.g. the base
    #: of a deterministic email ``Message-ID``. Recorded before the action starts.
    key: str
    #: The approved text: the draft's result, or the text a person put in its place.
    draft: str
    #: The action task's resolved slots (recipients, subject, time slot, ...).
    slots: dict[str, Any]
    requester: str
    #: The chat of the request (``reply.post`` posts into its thread).
    target: Target
    locale: str = "en"
    #: The requester's display name, for attribution ("on behalf of @ana").
    requester_name: str | None = None
    #: Anything else a performer of this kind was given by the runner.
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ActionOutcome:
    """What an action did: a line for the chat (already localised) and ids for the audit log."""

    summary: str
    detail: dict[str, Any] = field(default_factory=dict)


class ActionFailed(Exception):
    """The action did not happen. ``permanent`` False: retry later (with backoff)."""

    def __init__(self, reason: str, *, permanent: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after


class NeedsInput(Exception):
    """The action cannot go ahead without something only a person can say, e.g. the
    address of a recipient the address book does not know (``what`` = ``recipient``,
    ``name`` = ``Dana``). The runner asks once in the chat and waits."""

    def __init__(self, what: str, name: str) -> None:
        super().__init__(f"{what}: {name}")
        self.what = what
        self.name = name


#: Called by a performer right before its point of no return (for SMTP: before the end of
#: DATA). The runner records it; after a crash past this point the action counts as done.
Commit = Callable[[], Awaitable[None]]


class Performer(Protocol):
    """Carries out one action kind."""

    @property
    def kind(self) -> str:
        """The task kind it performs (``email.send``, ``reply.post``, ``calendar.invite``)."""
        ...

    def available(self) -> bool:
        """Whether its settings exist (an action kind is offered only then)."""
        ...

    async def prepare(self, ctx: ActionContext) -> dict[str, Any]:
        """Check and resolve what the action needs before approval is asked (recipients
        looked up in the address book, ...); returns the resolved slots to store. Raises
        :class:`NeedsInput` or :class:`ActionFailed` (permanent)."""
        ...

    async def perform(self, ctx: ActionContext, commit: Commit) -> ActionOutcome:
        """Do it once. Calls ``commit`` right before the point of no return. Raises
        :class:`ActionFailed`."""
        ...
