"""Live streams: a request's message written while its tasks generate, then finished once.

This is the streaming half of the delivery job (:mod:`bot.delivery`); the state lives on
the request's :class:`~storage.tables.Delivery` row and every step is committed before the
next, so a restart resumes where the last process stopped:

- **to start** (``stream_state`` None): used when the adapter is a
  :class:`~bot.adapters.base.StreamingAdapter` that ``can_stream`` the target, streaming is
  on, and the request still has queued or running tasks when its message is first made.
- **starting** (``open``, no ``stream_id``, ``posting`` = the client id): the intent is
  committed (with the usual hold against other schedulers) before ``stream_start``. A crash
  here leaves the start in doubt: the stream is given up for the edit path, which looks
  for a message with that client id before posting (:mod:`bot.posting`).
- **open** (``stream_id`` set): ``stream_append`` with the plan and the text so far, at most
  every ``min_stream_interval`` seconds per message, except the first words, which go out at
  once (a stream usually opens empty, or with a stray mark, before the first word). After each
  call ``streamed`` records what the stream shows (characters, a digest of them, each task's
  status), so a restart appends only what is missing.
- **stopping** (``open``, ``posting`` set): the intent to stop is committed, then
  ``stream_stop`` with the final view (buttons included). The platform keeps that call
  idempotent, so a restart in doubt simply repeats it with the same client id.
- **closed**: ``message_id`` is the message that holds the result; follow-up parts, vote
  tallies and later edits go the usual way.
- **fallback**: the platform refused the stream (:class:`~bot.adapters.base.StreamUnavailable`)
  or its text would not just grow (a task retried after showing text wrote other words; while
  the retry's text is still shorter than what the stream shows, the stream waits): the
  message the stream left (or a new post) is edited from then on, as without streaming.
  Nothing is lost: the edit path renders from the tasks, not from what the stream showed.

The streamed text is the tasks' text in task order: the results of finished tasks, then the
partial text of the first unfinished one (later tasks wait their turn), so it only grows.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from bot.adapters.base import ChatAdapter, DeliveryError, StreamingAdapter, StreamUnavailable
from bot.posting import TAKEOVER_GRACE, find_earlier_post, new_client_id
from bot.texts import t
from bot.types import PlanItem, PlanStatus, StreamUpdate, Target, View
from handlers.kinds import KindRegistry
from storage.repository import Repository
from storage.tables import Delivery, Task, TaskStatus

log = logging.getLogger(__name__)

OPEN = "open"
CLOSED = "closed"
FALLBACK = "fallback"

_PLAN_STATUS = {
    TaskStatus.queued: PlanStatus.queued,
    TaskStatus.running: PlanStatus.running,
    TaskStatus.awaiting_approval: PlanStatus.waiting,
    TaskStatus.succeeded: PlanStatus.done,
    TaskStatus.failed: PlanStatus.failed,
    TaskStatus.cancelled: PlanStatus.cancelled,
}
#: Between the texts of two tasks in one stream.
TASK_SEPARATOR = "\n\n"


def plan_status(task: Task) -> PlanStatus:
    """How the stream's plan shows a task's status."""
    return _PLAN_STATUS.get(TaskStatus(task.status), PlanStatus.queued)


def plan_of(tasks: Sequence[Task], kinds: KindRegistry, locale: str) -> tuple[PlanItem, ...]:
    """One plan item per visible task, in task order."""
    return tuple(
        PlanItem(
            task_id=task.id or 0,
            title=t("stream.plan_title", locale, id=task.id, kind=kinds.label(task.kind, locale)),
            status=plan_status(task),
        )
        for task in tasks
        if kinds.visible(task.kind)
    )


def stream_text(tasks: Sequence[Task], kinds: KindRegistry) -> str:
    """The text a request's stream shows now (see the module docstring)."""
    parts: list[str] = []
    for task in tasks:
        if not kinds.visible(task.kind):
            continue
        if task.status == TaskStatus.succeeded:
            parts.append((task.result or "").strip())
        elif task.status == TaskStatus.running:
            parts.append((task.partial or "").strip())
            break
        elif task.status not in (TaskStatus.failed, TaskStatus.cancelled):
            break  # queued or awaiting approval: the tasks after it wait their turn
    return TASK_SEPARATOR.join(p for p in parts if p)


def _has_word(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def shown_record(text: str, plan: Sequence[PlanItem]) -> dict[str, Any]:
    """What ``Delivery.streamed`` keeps after a call that showed ``text`` and ``plan``."""
    return {
        "chars": len(text),
        "digest": _digest(text),
        "statuses": {str(item.task_id): item.status.value for item in plan},
    }


def grows_from(streamed: dict[str, Any], text: str) -> bool:
    """Whether ``text`` starts with what the stream already shows."""
    chars = int(streamed.get("chars", 0))
    if chars == 0:
        return True
    return len(text) >= chars and _digest(text[:chars]) == streamed.get("digest")


def catching_up(streamed: dict[str, Any], text: str, plan: Sequence[PlanItem]) -> bool:
    """Whether the stream should wait, showing what it shows: its text is shorter than that
    because a retry (the worker died) is writing it again, and no task it showed has failed
    or been cancelled. Once past what the stream shows, the words are compared: the same
    (a deterministic model) and the stream goes on, else it ends for edits."""
    if len(text) >= int(streamed.get("chars", 0)):
        return False
    gone = (PlanStatus.failed, PlanStatus.cancelled)
    return not any(item.status in gone for item in changed_items(streamed, plan))


def changed_items(streamed: dict[str, Any], plan: Sequence[PlanItem]) -> tuple[PlanItem, ...]:
    """The plan items whose status differs from what the stream shows."""
    statuses = streamed.get("statuses", {})
    return tuple(item for item in plan if statuses.get(str(item.task_id)) != item.status.value)


def wants_stream(
    adapter: ChatAdapter, target: Target, delivery: Delivery, tasks: Sequence[Task], *, on: bool
) -> bool:
    """Whether this pass goes through the stream: one is open, or one should start now."""
    if delivery.stream_state == OPEN:
        return True
    if delivery.stream_state is not None or not on:
        return False
    if delivery.last_rendered is not None or delivery.posting is not None:
        return False  # the edit path already shows (or is posting) this request's message
    if not isinstance(adapter, StreamingAdapter) or not adapter.can_stream(target):
        return False
    return any(t.status in (TaskStatus.queued, TaskStatus.running) for t in tasks)


def only_paced(delivery: Delivery) -> bool:
    """Whether the delivery's hold is only the pacing of an open stream's appends (no call
    in flight, no backoff after a failure): the final view need not wait for it."""
    return (
        delivery.stream_state == OPEN
        and delivery.stream_id is not None
        and delivery.posting is None
        and delivery.failures == 0
    )


class Streams:
    """Runs the stream state machine of the delivery job for one request at a time."""

    def __init__(
        self,
        repo: Repository,
        kinds: KindRegistry,
        *,
        shown: Callable[[Delivery, str, datetime], None],
    ) -> None:
        self.repo = repo
        self.kinds = kinds
        #: The delivery job's bookkeeping of a message now showing a view (its key).
        self._shown = shown
        self._wrote: Callable[[], None] = lambda: None

    async def step(
        self,
        delivery: Delivery,
        adapter: ChatAdapter,
        target: Target,
        tasks: Sequence[Task],
        *,
        view: View,
        key: str,
        final: bool,
        locale: str,
        now: datetime,
        wrote: Callable[[], None] = lambda: None,
    ) -> bool:
        """Move the stream on by one pass; returns True when that is all this pass does.

        False: the stream is over (closed with ``view``, or fallen back) and the delivery
        job goes on as without streaming (parts, edits, a post). Raises DeliveryError for
        the job's usual retry with backoff; StreamUnavailable never leaves here. ``wrote``
        is called after each call that wrote to the chat (the job's per-chat pacing).
        """
        self._wrote = wrote
        assert isinstance(adapter, StreamingAdapter)
        try:
            return await self._step(
                delivery, adapter, adapter, target, tasks, view, key, final, locale, now
            )
        except StreamUnavailable as exc:
            log.info("delivery %s: streaming unavailable (%s); editing instead", delivery.id, exc)
            delivery.stream_state = FALLBACK
            delivery.posting = None
            delivery.posting_since = None
            delivery.next_attempt_at = None
            if exc.message_id is not None:
                delivery.message_id = exc.message_id
            delivery.last_rendered = None  # the edit path shows the current view at once
            await self.repo.save_delivery(delivery)
            return False

    async def _step(
        self,
        delivery: Delivery,
        chat: ChatAdapter,
        adapter: StreamingAdapter,
        target: Target,
        tasks: Sequence[Task],
        view: View,
        key: str,
        final: bool,
        locale: str,
        now: datetime,
    ) -> bool:
        plan = plan_of(tasks, self.kinds, locale)
        text = stream_text(tasks, self.kinds)
        if delivery.stream_state is None:
            await self._start(delivery, adapter, target, StreamUpdate(plan, text, text), now)
            return True
        if delivery.stream_id is None:
            await self._start_in_doubt(delivery, chat, target)
            return False
        waiting = not any(t.status in (TaskStatus.queued, TaskStatus.running) for t in tasks)
        if delivery.posting is not None or final or waiting:
            # Finished (or only waiting for approvals): the stream ends with today's view.
            rest = self._rest(dict(delivery.streamed or {}), tasks, text) if final else None
            await self._stop(delivery, adapter, target, view, key, now, rest=rest)
            return False
        streamed = dict(delivery.streamed or {})
        if catching_up(streamed, text, plan):
            return True
        if not grows_from(streamed, text):
            log.info("delivery %s: the text changed under the stream; editing instead", delivery.id)
            await self._stop(delivery, adapter, target, view, key, now, state=FALLBACK)
            return False
        delta = text[int(streamed.get("chars", 0)) :]
        changed = changed_items(streamed, plan)
        if not delta and not changed:
            return True
        last = delivery.last_edit_at or delivery.stream_since
        wait = timedelta(seconds=adapter.min_stream_interval)
        # The first words go out at once, even right after the (empty) start: pacing is for
        # the appends that follow them (the platform's own limiter still paces every call).
        first_words = bool(delta) and not _has_word(text[: int(streamed.get("chars", 0))])
        if last is not None and now - last < wait and not first_words:
            delivery.next_attempt_at = last + wait
            await self.repo.save_delivery(delivery)
            return True
        await adapter.stream_append(
            target, delivery.stream_id, StreamUpdate(plan, text, delta, changed)
        )
        self._wrote()
        delivery.streamed = shown_record(text, plan)
        delivery.last_edit_at = now
        delivery.failures = 0
        delivery.next_attempt_at = None
        await self.repo.save_delivery(delivery)
        return True

    async def _start(
        self,
        delivery: Delivery,
        adapter: StreamingAdapter,
        target: Target,
        update: StreamUpdate,
        now: datetime,
    ) -> None:
        delivery.stream_state = OPEN
        delivery.stream_id = None
        delivery.posting = new_client_id()
        delivery.posting_since = now
        delivery.next_attempt_at = now + TAKEOVER_GRACE
        await self.repo.save_delivery(delivery)
        try:
            stream_id = await adapter.stream_start(target, update, client_id=delivery.posting)
        except StreamUnavailable:
            raise
        except DeliveryError as exc:
            if not exc.maybe_sent:  # refused: nothing started, start again later
                delivery.stream_state = None
                delivery.posting = None
                delivery.posting_since = None
            raise
        self._wrote()
        delivery.stream_id = stream_id
        delivery.stream_since = now
        delivery.streamed = shown_record(update.text, update.plan)
        delivery.posting = None
        delivery.posting_since = None
        delivery.last_edit_at = now
        delivery.failures = 0
        delivery.next_attempt_at = None
        await self.repo.save_delivery(delivery)

    async def _start_in_doubt(
        self, delivery: Delivery, adapter: ChatAdapter, target: Target
    ) -> None:
        """A start that may or may not have happened: no stream is resumed without its id,
        so the request falls back to the edit path, which finds the message the start may
        have left (by its client id) instead of posting a second one where it can."""
        log.warning("delivery %s: a stream start was interrupted; editing instead", delivery.id)
        delivery.stream_state = FALLBACK
        delivery.last_rendered = None
        if delivery.message_id is not None and delivery.posting is not None:
            # An adopted receipt is edited anyway; the stream's message, if found, instead.
            found = await find_earlier_post(
                adapter,
                target,
                delivery.posting,
                since=delivery.posting_since or delivery.created_at,
                what=f"delivery {delivery.id} stream",
            )
            delivery.message_id = found or delivery.message_id
            delivery.posting = None
            delivery.posting_since = None
        # With no message yet, ``posting`` stays: the post path looks for it first.
        await self.repo.save_delivery(delivery)

    def _rest(self, streamed: dict[str, Any], tasks: Sequence[Task], text: str) -> str | None:
        """What the stream still lacks of the result, when the stream shows the start of a
        single succeeded task's result exactly as the chat renders it; else None."""
        shown = [task for task in tasks if self.kinds.visible(task.kind)]
        if len(shown) != 1 or shown[0].status != TaskStatus.succeeded:
            return None
        if self.kinds.render(shown[0]) != text or not grows_from(streamed, text):
            return None
        return text[int(streamed.get("chars", 0)) :]

    async def _stop(
        self,
        delivery: Delivery,
        adapter: StreamingAdapter,
        target: Target,
        view: View,
        key: str,
        now: datetime,
        *,
        state: str = CLOSED,
        rest: str | None = None,
    ) -> None:
        assert delivery.stream_id is not None
        if delivery.posting is None:
            delivery.posting = new_client_id()
        delivery.posting_since = now
        delivery.next_attempt_at = now + TAKEOVER_GRACE
        await self.repo.save_delivery(delivery)
        try:
            message_id = await adapter.stream_stop(
                target, delivery.stream_id, view, client_id=delivery.posting, rest=rest
            )
        except StreamUnavailable:
            raise
        except DeliveryError as exc:
            if not exc.maybe_sent:
                delivery.posting = None
                delivery.posting_since = None
            raise
        self._wrote()
        delivery.message_id = message_id
        delivery.stream_state = state
        delivery.posting = None
        delivery.posting_since = None
        self._shown(delivery, key, now)
        await self.repo.save_delivery(delivery)
