"""Pacing of every Bot API call under Telegram's flood limits, as a python-telegram-bot
:class:`~telegram.ext.BaseRateLimiter` (the ``ExtBot`` passes each call but ``getUpdates``
through :meth:`FloodLimiter.process_request`).

Telegram's figures (PLATFORM-RULES.md): about 1 message per second per chat, at most 20
messages per minute per group, about 30 messages per second overall. Calls that write to a
chat (:func:`counts_as_message`: ``sendMessage``, ``editMessageText``, ``sendMessageDraft``…)
are paced under all three; every call, message or not, has its ``RetryAfter`` waited out and
is made again, so nothing is lost to a 429 (up to ``max_retries`` times, and never waiting
longer than ``max_retry_wait`` for one answer: then the ``RetryAfter`` reaches the caller).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import logging
import time
import warnings
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
Result = bool | dict[str, Any] | list[dict[str, Any]]

#: Methods with a ``chat_id`` that do not post or change a message (not counted by Telegram).
NOT_MESSAGES = frozenset({"sendChatAction", "getChat", "getChatMember", "leaveChat"})


def counts_as_message(endpoint: str) -> bool:
    """Whether a call posts or changes a message in a chat (counted by the flood limits)."""
    if endpoint in NOT_MESSAGES:
        return False
    return endpoint.startswith(("send", "edit", "copy", "forward"))


def retry_seconds(error: RetryAfter) -> float:
    """``RetryAfter.retry_after`` in seconds (an int in PTB 22, a timedelta later)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PTB 22 warns on every read that the type changes
        value: Any = error.retry_after
    if isinstance(value, dtm.timedelta):
        return value.total_seconds()
    return float(value)


def _chat_of(data: dict[str, Any]) -> int | str | None:
    chat_id = data.get("chat_id")
    if chat_id is None:
        return None
    with contextlib.suppress(ValueError, TypeError):
        return int(chat_id)
    return str(chat_id)


class FloodLimiter(BaseRateLimiter[int]):
    """Per-chat, per-group and overall pacing, and ``RetryAfter`` waited out and retried.

    The defaults stay one step under Telegram's figures: its server counts arrival times,
    which trail ours by a varying latency (the first request of a burst also opens the
    connection). Per chat a burst of ``per_chat_burst`` goes at once, then one call every
    ``1 / per_chat_per_second`` seconds; calls to one chat keep their order. Waiting for one
    chat never holds up another (each call reserves its slot, then sleeps outside the lock).
    A group or channel is a negative ``chat_id`` or an ``@username``.

    ``rate_limit_args`` (python-telegram-bot's per-call argument) overrides ``max_retries``.
    ``clock`` and ``sleep`` are injectable so that tests can run on virtual time.
    """

    def __init__(
        self,
        *,
        per_chat_per_second: float = 1.0,
        per_chat_burst: int = 2,
        per_group_per_minute: int = 19,
        global_per_second: float = 25.0,
        max_retries: int = 3,
        max_retry_wait: float = 30.0,
        on_rate_limited: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.per_chat_per_second = per_chat_per_second
        self.per_chat_burst = max(1, per_chat_burst)
        self.per_group_per_minute = max(1, per_group_per_minute)
        self.global_per_second = global_per_second
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        #: Called with the method name for every 429 answer (the adapter counts it).
        self.on_rate_limited = on_rate_limited
        self.clock = clock
        self.sleep = sleep
        self._lock = asyncio.Lock()
        #: GCRA "theoretical arrival time" per chat, and the chat's last reserved slot.
        self._chat_tat: dict[int | str, float] = {}
        self._chat_last: dict[int | str, float] = {}
        self._group_sent: dict[int | str, deque[float]] = {}
        self._global_sent: deque[float] = deque()
        #: A chat (or, for calls without one, everything) is held until a RetryAfter ends.
        self._held_until: dict[int | str | None, float] = {}

    @classmethod
    def unlimited(cls, **options: Any) -> FloodLimiter:
        """No pacing (retries still on): for tests against an unlimited fake."""
        return cls(
            per_chat_per_second=1e9,
            per_chat_burst=1_000_000,
            per_group_per_minute=1_000_000,
            global_per_second=1e9,
            **options,
        )

    async def initialize(self) -> None:
        """Nothing to allocate."""

    async def shutdown(self) -> None:
        """Nothing to free."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Result:
        """Make one Bot API call: paced when it is a message, retried after a RetryAfter."""
        retries = self.max_retries if rate_limit_args is None else rate_limit_args
        chat = _chat_of(data)
        message = chat is not None and counts_as_message(endpoint)
        attempt = 0
        while True:
            if message:
                assert chat is not None
                await self.wait(chat)
            else:
                await self._wait_held(chat)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                wait = retry_seconds(exc)
                if self.on_rate_limited is not None:
                    self.on_rate_limited(endpoint)
                if attempt >= retries or wait > self.max_retry_wait:
                    raise
                attempt += 1
                log.info(
                    "Telegram flood limit on %s (chat %s): waiting %.0fs", endpoint, chat, wait
                )
                # Everything else for that chat waits too: it would only meet the same 429.
                until = self.clock() + wait
                self._held_until[chat] = max(self._held_until.get(chat, until), until)
                await self._wait_held(chat)

    async def wait(self, chat: int | str) -> None:
        """Sleep until one more message to ``chat`` is within the limits (and count it)."""
        async with self._lock:
            now = self.clock()
            slot = max(now, self._held_until.get(chat, now), self._held_until.get(None, now))
            interval = 1.0 / self.per_chat_per_second
            tolerance = (self.per_chat_burst - 1) * interval
            tat = self._chat_tat.get(chat, now)
            slot = max(slot, tat - tolerance, self._chat_last.get(chat, slot))
            group = isinstance(chat, str) or chat < 0
            if group:
                sent = self._group_sent.setdefault(chat, deque())
                while sent and sent[0] <= now - 60:
                    sent.popleft()
                if len(sent) >= self.per_group_per_minute:
                    slot = max(slot, sent[-self.per_group_per_minute] + 60)
                sent.append(slot)
            self._chat_tat[chat] = max(tat, slot) + interval
            self._chat_last[chat] = slot
            self._forget_idle(now)
        if slot > now:
            await self.sleep(slot - now)
        await self._wait_global()

    async def _wait_global(self) -> None:
        # Overall: a sliding second, taken at the moment of sending (arrivals in real time
        # order), so that a group waiting out its minute holds no slot of the overall budget.
        async with self._lock:
            now = self.clock()
            sent = self._global_sent
            while sent and sent[0] <= now - 1.0:
                sent.popleft()
            budget = max(1, int(self.global_per_second))
            slot = max(now, sent[-budget] + 1.0) if len(sent) >= budget else now
            sent.append(slot)
        if slot > now:
            await self.sleep(slot - now)

    async def _wait_held(self, chat: int | str | None) -> None:
        while True:
            now = self.clock()
            until = max(self._held_until.get(chat, now), self._held_until.get(None, now))
            if until <= now:
                return
            await self.sleep(until - now)

    def _forget_idle(self, now: float) -> None:
        if len(self._chat_tat) <= 10_000:
            return
        for chat in [c for c, tat in self._chat_tat.items() if tat < now - 60]:
            self._chat_tat.pop(chat, None)
            self._chat_last.pop(chat, None)
            self._group_sent.pop(chat, None)
        for held in [c for c, until in self._held_until.items() if until < now]:
            self._held_until.pop(held, None)
