"""The fake Slack's ``assistant.threads.*`` methods, called with the real slack_sdk client:
they refuse what Slack refuses, keep what they were told, and answer bursts with 429."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_assistant import (
    MAX_LOADING_MESSAGES,
    MAX_STATUS_CHARS,
    SET_PROMPTS,
    SET_STATUS,
    SET_TITLE,
)

PROMPT = {"title": "Draft email", "message": "draft an email to Dana"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    # No retry handlers: the test sees every answer as the fake gave it.
    web = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)
    web.retry_handlers = []
    return web


def pane(fake: FakeSlack) -> tuple[str, str]:
    thread = fake.assistant.thread_started(user_id="U0ANA")["assistant_thread"]
    return str(thread["channel_id"]), str(thread["thread_ts"])


async def error_of(call: Any) -> str:
    with pytest.raises(SlackApiError) as raised:
        await call
    return str(raised.value.response["error"])


async def test_a_status_is_shown_until_cleared_or_until_the_bot_posts_in_the_thread(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    channel, ts = pane(fake)

    await client.assistant_threads_setStatus(
        channel_id=channel, thread_ts=ts, status="is thinking…", loading_messages=["Reading…"]
    )
    shown = fake.assistant.status(channel, ts)
    await client.chat_postMessage(channel=channel, thread_ts=ts, text="Here you go")

    assert shown == "is thinking…"
    assert fake.assistant.thread(channel, ts).statuses[0].loading_messages == ("Reading…",)
    assert fake.assistant.status(channel, ts) is None
    await client.assistant_threads_setStatus(channel_id=channel, thread_ts=ts, status="again")
    await client.assistant_threads_setStatus(channel_id=channel, thread_ts=ts, status="")
    assert fake.assistant.status(channel, ts) is None
    assert fake.assistant.statuses(channel, ts) == ["is thinking…", "again", ""]


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"channel_id": "", "thread_ts": "1.1", "status": "x"}, "invalid_arguments"),
        ({"channel_id": "D0NOPE", "thread_ts": "1.1", "status": "x"}, "channel_not_found"),
        ({"thread_ts": None, "status": "x"}, "invalid_arguments"),
        ({"thread_ts": "1.000001", "status": "x"}, "invalid_thread_ts"),
        ({"status": "x" * (MAX_STATUS_CHARS + 1)}, "invalid_arguments"),
        (
            {"status": "x", "loading_messages": ["m"] * (MAX_LOADING_MESSAGES + 1)},
            "invalid_arguments",
        ),
    ],
)
async def test_set_status_refuses_what_slack_refuses(
    fake: FakeSlack, client: AsyncWebClient, arguments: dict[str, Any], error: str
) -> None:
    channel, ts = pane(fake)
    call = {"channel_id": channel, "thread_ts": ts, **arguments}
    call = {k: v for k, v in call.items() if v is not None}

    assert await error_of(client.api_call(SET_STATUS, json=call)) == error
    assert fake.assistant.statuses(channel, ts) == []


async def test_suggested_prompts_are_kept_for_the_thread_or_the_whole_channel(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    channel, ts = pane(fake)

    await client.assistant_threads_setSuggestedPrompts(
        channel_id=channel, thread_ts=ts, prompts=[PROMPT], title="Try these:"
    )
    await client.assistant_threads_setSuggestedPrompts(channel_id=channel, prompts=[PROMPT] * 2)

    assert fake.assistant.thread(channel, ts).prompts == [PROMPT]
    assert fake.assistant.thread(channel, ts).prompts_title == "Try these:"
    assert fake.assistant.channel_prompts[channel] == [PROMPT, PROMPT]


@pytest.mark.parametrize(
    "prompts",
    [[], [PROMPT] * 5, [{"title": "Only a title"}], [{"title": "", "message": "m"}], ["text"]],
)
async def test_prompts_need_one_to_four_each_with_title_and_message(
    fake: FakeSlack, client: AsyncWebClient, prompts: list[Any]
) -> None:
    channel, ts = pane(fake)

    call = client.api_call(
        SET_PROMPTS, json={"channel_id": channel, "thread_ts": ts, "prompts": prompts}
    )

    assert await error_of(call) == "invalid_arguments"
    assert fake.assistant.thread(channel, ts).prompts is None


async def test_a_title_needs_the_thread_and_a_text(fake: FakeSlack, client: AsyncWebClient) -> None:
    channel, ts = pane(fake)

    await client.assistant_threads_setTitle(channel_id=channel, thread_ts=ts, title="Rent email")
    missing = client.api_call(SET_TITLE, params={"channel_id": channel, "thread_ts": ts})

    assert fake.assistant.thread(channel, ts).title == "Rent email"
    assert await error_of(missing) == "invalid_arguments"


async def test_prompts_and_titles_need_the_assistant_scope(fake: FakeSlack) -> None:
    channel, ts = pane(fake)
    fake.scopes = [s for s in fake.scopes if s != "assistant:write"]
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)
    client.retry_handlers = []

    title = client.assistant_threads_setTitle(channel_id=channel, thread_ts=ts, title="x")
    prompts = client.assistant_threads_setSuggestedPrompts(
        channel_id=channel, thread_ts=ts, prompts=[PROMPT]
    )

    assert await error_of(title) == "missing_scope"
    assert await error_of(prompts) == "missing_scope"
    # setStatus also takes chat:write.
    await client.assistant_threads_setStatus(channel_id=channel, thread_ts=ts, status="ok")


async def test_a_burst_of_status_calls_gets_429_with_retry_after(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    channel, ts = pane(fake)
    fake.set_rate_limit(SET_STATUS, 3)

    for n in range(3):
        await client.assistant_threads_setStatus(channel_id=channel, thread_ts=ts, status=f"{n}")
    with pytest.raises(SlackApiError) as raised:
        await client.assistant_threads_setStatus(channel_id=channel, thread_ts=ts, status="4")

    assert raised.value.response.status_code == 429
    assert raised.value.response["error"] == "ratelimited"
    assert int(raised.value.response.headers["Retry-After"]) >= 1
    assert fake.assistant.statuses(channel, ts) == ["0", "1", "2"]


def test_the_assistant_methods_have_their_rate_tiers(fake: FakeSlack) -> None:
    assert fake.rate_limits[SET_PROMPTS].per_minute == 100
    assert fake.rate_limits[SET_TITLE].per_minute == 100
    assert fake.rate_limits[SET_STATUS].per_minute == 50
