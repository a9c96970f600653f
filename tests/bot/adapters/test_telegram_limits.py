"""The Telegram rate limiter (a python-telegram-bot ``BaseRateLimiter``) on virtual time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from telegram.error import RetryAfter

from bot.adapters.telegram import FloodLimiter
from bot.adapters.telegram.limits import counts_as_message

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning"
)

PRIVATE = 1001
GROUP = -1001234567890


class VirtualTime:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class Api:
    """A stand-in for the HTTP call: records when each call went out; may answer 429."""

    def __init__(self, clock: VirtualTime) -> None:
        self.clock = clock
        self.sent: list[tuple[str, Any, float]] = []
        self.floods: list[int] = []

    def call(self, endpoint: str, chat: Any) -> Callable[..., Coroutine[Any, Any, Any]]:
        async def callback(*args: Any, **kwargs: Any) -> Any:
            if self.floods:
                raise RetryAfter(self.floods.pop(0))
            self.sent.append((endpoint, chat, self.clock.now))
            return {"ok": True}

        return callback


def limiter(clock: VirtualTime, **options: Any) -> FloodLimiter:
    return FloodLimiter(clock=clock, sleep=clock.sleep, **options)


async def send(
    limiter_: FloodLimiter, api: Api, chat: Any, endpoint: str = "sendMessage", **extra: Any
) -> Any:
    data = {"chat_id": chat, **extra} if chat is not None else dict(extra)
    return await limiter_.process_request(
        callback=api.call(endpoint, chat),
        args=(),
        kwargs={},
        endpoint=endpoint,
        data=data,
        rate_limit_args=None,
    )


async def test_one_chat_gets_a_burst_then_one_message_a_second() -> None:
    clock = VirtualTime()
    api, limits = Api(clock), limiter(clock)
    for _ in range(5):
        await send(limits, api, PRIVATE)
    assert [at for _, _, at in api.sent] == [0.0, 0.0, 1.0, 2.0, 3.0]


async def test_drafts_and_edits_count_as_messages_of_the_chat() -> None:
    clock = VirtualTime()
    api, limits = Api(clock), limiter(clock)
    for endpoint in ("sendMessageDraft", "sendMessageDraft", "sendMessageDraft", "sendMessage"):
        await send(limits, api, PRIVATE, endpoint)
    assert [at for _, _, at in api.sent] == [0.0, 0.0, 1.0, 2.0]
    assert counts_as_message("editMessageText")
    assert not counts_as_message("sendChatAction")
    assert not counts_as_message("answerCallbackQuery")


async def test_calls_that_are_not_messages_are_not_paced() -> None:
    clock = VirtualTime()
    api, limits = Api(clock), limiter(clock)
    for _ in range(5):
        await send(limits, api, PRIVATE, "sendChatAction")
    await send(limits, api, None, "answerCallbackQuery")
    assert {at for _, _, at in api.sent} == {0.0}


async def test_a_group_gets_at_most_19_messages_a_minute() -> None:
    clock = VirtualTime()
    api, limits = Api(clock), limiter(clock, per_chat_per_second=100, per_chat_burst=100)
    for _ in range(40):
        await send(limits, api, GROUP)
    times = [at for _, _, at in api.sent]
    assert all(sum(1 for x in times if start <= x < start + 60) <= 19 for start in times)
    assert times[19] == pytest.approx(60.0)
    assert times[38] == pytest.approx(120.0)


async def test_chats_together_stay_under_the_overall_rate() -> None:
    clock = VirtualTime()
    api, limits = Api(clock), limiter(clock, global_per_second=25.0)
    for user in range(1, 101):
        await send(limits, api, user)
    times = [at for _, _, at in api.sent]
    assert all(sum(1 for x in times if start <= x < start + 1.0) <= 25 for start in times)
    assert times[-1] == pytest.approx((100 - 25) / 25.0)


class SteppedTime(VirtualTime):
    """A clock that only the test moves: sleepers wait until it has moved far enough."""

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        deadline = self.now + seconds
        while self.now < deadline:  # noqa: ASYNC110 - the test moves this clock by hand
            await asyncio.sleep(0)


async def test_a_slow_group_does_not_hold_up_a_private_chat() -> None:
    clock = SteppedTime()
    api = Api(clock)
    limits = limiter(clock, per_chat_per_second=100, per_chat_burst=100, per_group_per_minute=2)
    await send(limits, api, GROUP)
    await send(limits, api, GROUP)
    waiting = asyncio.create_task(send(limits, api, GROUP))  # its slot is a minute away
    await asyncio.sleep(0)
    await send(limits, api, PRIVATE)
    assert api.sent[-1] == ("sendMessage", PRIVATE, 0.0)
    assert not waiting.done()
    clock.now = 60.0
    await waiting
    assert api.sent[-1] == ("sendMessage", GROUP, 60.0)


async def test_retry_after_is_waited_out_and_the_call_made_again() -> None:
    clock = VirtualTime()
    api = Api(clock)
    counted: list[str] = []
    limits = limiter(clock, on_rate_limited=counted.append)
    api.floods = [3]
    assert await send(limits, api, PRIVATE, "sendMessageDraft") == {"ok": True}
    ((endpoint, chat, at),) = api.sent
    assert (endpoint, chat, at) == ("sendMessageDraft", PRIVATE, 3.0)
    assert 3.0 in clock.slept
    assert counted == ["sendMessageDraft"]


async def test_after_retry_after_the_chat_waits_then_keeps_its_pace() -> None:
    clock = VirtualTime()
    api = Api(clock)
    limits = limiter(clock)
    api.floods = [2]
    await send(limits, api, PRIVATE)
    await send(limits, api, PRIVATE)
    first, second = (at for _, _, at in api.sent)
    assert first == pytest.approx(2.0)
    assert second >= first


async def test_a_429_on_a_call_without_a_chat_is_retried_too() -> None:
    clock = VirtualTime()
    api, limits = Api(clock), limiter(clock)
    api.floods = [1]
    assert await send(limits, api, None, "setMyCommands") == {"ok": True}
    ((endpoint, chat, at),) = api.sent
    assert (endpoint, chat, at) == ("setMyCommands", None, 1.0)


async def test_retries_are_bounded_then_the_retry_after_reaches_the_caller() -> None:
    clock = VirtualTime()
    api, limits = Api(clock), limiter(clock, max_retries=2)
    api.floods = [1, 1, 1]
    with pytest.raises(RetryAfter):
        await send(limits, api, PRIVATE)
    assert api.sent == []


async def test_a_wait_longer_than_allowed_is_not_slept_through() -> None:
    clock = VirtualTime()
    api, limits = Api(clock), limiter(clock, max_retry_wait=30.0)
    api.floods = [120]
    with pytest.raises(RetryAfter):
        await send(limits, api, PRIVATE)
    assert max(clock.slept, default=0.0) < 30.0
