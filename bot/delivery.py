"""The delivery job: turns task state into chat messages, once.

Each request gets one message that is posted when its first tick runs and then *edited*
as its tasks progress and finish, so a restart re-sends nothing. Result text that does not
fit goes into follow-up parts, each recorded before the next is sent. Every post records its
intent (a client-side id) first, so a crash between the post and recording its message id
finds the post again instead of repeating it (:mod:`bot.posting`).

Progress edits are throttled per chat (``min_edit_interval`` of the adapter), counting every
message written to that chat, so many requests in one channel stay within the platform's
rate limits; final results are never held back.

Where the adapter can stream (a :class:`~bot.adapters.base.StreamingAdapter`) and streaming
is on, the message is instead a live stream of the generated text while the tasks run, and
the final view replaces it once (the state machine is in :mod:`bot.streaming`); when the
platform refuses the stream, this module's post-and-edit path takes over, losing nothing.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

from bot import logcontext
from bot.adapters.base import ChatAdapter, DeliveryError
from bot.metrics import Metrics
from bot.posting import TAKEOVER_GRACE, find_earlier_post, new_client_id
from bot.render import fit_view, render_request
from bot.streaming import Streams, only_paced, wants_stream
from bot.types import Section, Target, View
from handlers.kinds import KindRegistry, build_registry
from storage.repository import Repository
from storage.tables import TERMINAL_STATUSES, Delivery, Request, Task, TaskStatus, utcnow

log = logging.getLogger(__name__)

#: Changes committed slightly out of timestamp order are still seen.
CURSOR_OVERLAP = timedelta(seconds=5)
#: On start, look back this far for results that finished while the bot was down.
STARTUP_LOOKBACK = timedelta(hours=24)
MAX_DELIVERY_FAILURES = 8
#: Forget per-chat write times once this many chats are remembered (old ones no longer matter).
_CHAT_MEMORY = 10_000

ChatKey = tuple[str, str, str]


def view_key(view: View) -> str:
    """A fingerprint of what a message shows (text and buttons)."""
    raw = view.text + "|" + ";".join(b.data for row in view.buttons for b in row)
    return hashlib.sha256(raw.encode()).hexdigest()


def target_of(
    request: Request | Delivery, *, user: str | None = None, private: bool = False
) -> Target:
    """Where a request's messages go."""
    return Target(
        platform=request.platform,
        tenant=request.tenant,
        channel=request.channel,
        thread=request.thread,
        user=user,
        private=private,
    )


class Deliverer:
    """Reads changed tasks and keeps each request's chat message in step with them."""

    def __init__(
        self,
        repo: Repository,
        adapters: Mapping[str, ChatAdapter],
        kinds: KindRegistry | None = None,
        metrics: Metrics | None = None,
        *,
        stream: bool = True,
    ) -> None:
        self.repo = repo
        #: Stream results where the adapter can (ATOMBOT_STREAM); off: post and edit only.
        self.stream = stream
        self.adapters = adapters
        #: The task-kind registry (the built-in kinds when none is given).
        self.kinds = kinds if kinds is not None else build_registry()
        self.metrics = metrics if metrics is not None else Metrics(k.name for k in self.kinds)
        self.cursor = utcnow() - STARTUP_LOOKBACK
        #: When this process last wrote to each chat (only one scheduler is active).
        self._chat_writes: dict[ChatKey, datetime] = {}
        self.streams = Streams(repo, self.kinds, shown=self._shown)

    async def tick(self) -> int:
        """One pass; returns how many requests were looked at."""
        if not self.adapters:
            return 0
        changed = await self.repo.changed_since(cursor=self.cursor - CURSOR_OVERLAP)
        if changed:
            self.cursor = max(self.cursor, *(t.updated_at for t in changed))
        request_ids = {t.request_id for t in changed if t.platform in self.adapters}
        now = utcnow()
        waited: dict[int, datetime] = {}
        for delivery in await self.repo.pending_deliveries(platforms=list(self.adapters)):
            if delivery.next_attempt_at is None:
                request_ids.add(delivery.request_id)
            elif delivery.next_attempt_at <= now:
                waited[delivery.request_id] = delivery.last_edit_at or delivery.created_at
        # Messages that were held back go first, least recently shown first, so one busy
        # request cannot starve the others of its chat.
        order = sorted(waited, key=lambda r: (waited[r], r))
        order += sorted(request_ids - set(waited))
        for request_id in order:
            await self.sync(request_id)
        return len(order)

    async def sync(self, request_id: int) -> None:
        """Bring one request's message up to date (post, edit, follow-up parts)."""
        logcontext.begin(request_id=request_id)
        request = await self.repo.get_request(request_id)
        if request is None or request.platform not in self.adapters:
            return
        adapter = self.adapters[request.platform]
        logcontext.bind(platform=request.platform, tenant=request.tenant)
        tasks = await self.repo.tasks_of_request(request_id)
        if not any(self.kinds.visible(t.kind) for t in tasks):
            return
        delivery = await self.repo.ensure_delivery(request=request)
        if delivery.done and (delivery.error or delivery.message_id is None):
            return  # given up: never retried forever, never posted anew
        now = utcnow()
        final = all(t.status in TERMINAL_STATUSES for t in tasks)
        held = delivery.next_attempt_at is not None and delivery.next_attempt_at > now
        if held and not (final and only_paced(delivery)):
            return
        view = await self._render(request, tasks, now)
        main, parts = fit_view(view, adapter.max_text, request.locale)
        key = view_key(main)
        target = target_of(request, user=request.user, private=request.private)
        chat: ChatKey = (request.platform, request.tenant, request.channel)
        try:
            if wants_stream(adapter, target, delivery, tasks, on=self.stream):
                streamed = await self.streams.step(
                    delivery,
                    adapter,
                    target,
                    tasks,
                    view=main,
                    key=key,
                    final=final,
                    locale=request.locale,
                    now=now,
                    wrote=lambda: self._wrote(chat, now),
                )
                if streamed:
                    return
            posted_now = False
            if delivery.message_id is None:
                posted = await self._post_once(
                    delivery, adapter, target, main, now, what=f"delivery {delivery.id}"
                )
                delivery.message_id, posted_now = posted
                self._wrote(chat, now)
                if posted_now:
                    self._shown(delivery, key, now)
                else:  # found after a crash: it shows what was current then
                    delivery.last_rendered = None
                await self.repo.save_delivery(delivery)
            if not posted_now and key != delivery.last_rendered:
                assert delivery.message_id is not None
                last = max(
                    (x for x in (delivery.last_edit_at, self._chat_writes.get(chat)) if x),
                    default=None,
                )
                wait = timedelta(seconds=adapter.min_edit_interval)
                if not final and last is not None and now - last < wait:
                    delivery.next_attempt_at = last + wait
                    await self.repo.save_delivery(delivery)
                    return
                await adapter.edit(target, delivery.message_id, main)
                self._wrote(chat, now)
                self._shown(delivery, key, now)
            await self.repo.save_delivery(delivery)
            if final:
                while delivery.parts_sent < len(parts):
                    await self._post_once(
                        delivery,
                        adapter,
                        target,
                        _text_view(parts[delivery.parts_sent]),
                        now,
                        what=f"delivery {delivery.id} part {delivery.parts_sent + 1}",
                    )
                    self._wrote(chat, now)
                    delivery.parts_sent += 1
                    await self.repo.save_delivery(delivery)
                newly_done = not delivery.done
                delivery.done = True
                delivery.next_attempt_at = None
                await self.repo.save_delivery(delivery)
                if newly_done:  # later passes over a finished request show nothing new
                    shown = [t for t in tasks if self.kinds.visible(t.kind)]
                    self.metrics.delivered(request.platform, shown, now=utcnow())
        except DeliveryError as exc:
            self.metrics.delivery_failed(request.platform)
            await self._failed(delivery, exc, now)

    async def _post_once(
        self,
        delivery: Delivery,
        adapter: ChatAdapter,
        target: Target,
        view: View,
        now: datetime,
        *,
        what: str,
    ) -> tuple[str, bool]:
        """Post the delivery's next message (the main one, or part ``parts_sent``) once.

        Returns its message id and whether it was posted now (False: an interrupted earlier
        post was found). The intent (client id, time, and a hold against other schedulers)
        is committed before the call; see :mod:`bot.posting` for the state machine.
        """
        if delivery.posting is not None:
            # An earlier post of this message was interrupted: did it go out?
            found = await find_earlier_post(
                adapter,
                target,
                delivery.posting,
                since=delivery.posting_since or delivery.created_at,
                what=what,
            )
            if found is not None:
                delivery.posting = None
                delivery.posting_since = None
                return found, False
        else:
            delivery.posting = new_client_id()
        delivery.posting_since = now
        delivery.next_attempt_at = now + TAKEOVER_GRACE
        await self.repo.save_delivery(delivery)
        try:
            message_id = await adapter.send(target, view, client_id=delivery.posting)
        except DeliveryError as exc:
            if not exc.maybe_sent:
                delivery.posting = None  # refused: it did not go out
                delivery.posting_since = None
            raise
        delivery.posting = None
        delivery.posting_since = None
        delivery.next_attempt_at = None
        return message_id, True

    def _wrote(self, chat: ChatKey, now: datetime) -> None:
        if len(self._chat_writes) >= _CHAT_MEMORY:
            self._chat_writes.clear()
        self._chat_writes[chat] = now

    def _shown(self, delivery: Delivery, key: str, now: datetime) -> None:
        delivery.last_rendered = key
        delivery.last_edit_at = now
        delivery.failures = 0
        delivery.next_attempt_at = None

    async def _failed(self, delivery: Delivery, exc: DeliveryError, now: datetime) -> None:
        delivery.failures += 1
        delivery.error = exc.reason
        if not exc.retryable or delivery.failures >= MAX_DELIVERY_FAILURES:
            log.error(
                "giving up delivery %s after %d failures: %s",
                delivery.id,
                delivery.failures,
                exc.reason,
            )
            delivery.done = True
            delivery.next_attempt_at = None
        else:
            wait = (
                exc.retry_after
                if exc.retry_after is not None
                else min(2.0**delivery.failures, 300.0)
            )
            delivery.next_attempt_at = now + timedelta(seconds=wait)
            log.warning("delivery %s failed (%s); retrying in %.1fs", delivery.id, exc.reason, wait)
        await self.repo.save_delivery(delivery)

    async def _render(self, request: Request, tasks: list[Task], now: datetime) -> View:
        positions: dict[int, int] = {}
        for task in tasks:
            if task.status == TaskStatus.queued and not task.depends_on:
                positions[task.id or 0] = await self.repo.queue_position(task)
        tallies = await self.repo.tallies(
            [t.id or 0 for t in tasks if t.status == TaskStatus.succeeded]
        )
        return render_request(
            tasks,
            request.locale,
            now=now,
            kinds=self.kinds,
            positions=positions,
            tallies=tallies,
        )


def _text_view(text: str) -> View:
    return View(sections=(Section(text=text),))
