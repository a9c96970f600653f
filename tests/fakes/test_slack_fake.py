"""The fake Slack platform behaves like Slack for the real slack_sdk clients.

Every test drives `FakeSlack` with the real `AsyncWebClient`, `SocketModeClient`,
`AsyncWebhookClient` or `SignatureVerifier`, so the limits the fake enforces are the ones
the bot will meet.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import pytest
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.models.blocks import ActionsBlock, ButtonElement, HeaderBlock, SectionBlock
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.fakes.slack_api import AckTimeout, FakeSlack, ts_to_micros

CHANNEL = "C0GENERAL"


class ManualClock:
    """A clock the test moves by hand (starts at the real time so signatures stay fresh)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)


def button_blocks(value: str = "v") -> list[dict[str, Any]]:
    return [
        SectionBlock(block_id="result", text="Result").to_dict(),
        ActionsBlock(
            block_id="buttons",
            elements=[ButtonElement(text="👍", action_id="vote_up", value=value)],
        ).to_dict(),
    ]


async def slack_error(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value


# --- Web API basics --------------------------------------------------------------------


def test_api_url_is_in_slack_sdk_base_url_form(fake: FakeSlack) -> None:
    assert fake.api_url.startswith("http://127.0.0.1:")
    assert fake.api_url.endswith("/api/")


async def test_posted_message_is_stored_with_a_slack_ts(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    response = await client.chat_postMessage(channel=CHANNEL, text="hello")

    stored = fake.message(CHANNEL, response["ts"])
    assert stored.text == "hello"
    assert stored.bot_id == fake.bot_id
    seconds, fraction = response["ts"].split(".")
    assert len(seconds) == 10 and len(fraction) == 6


async def test_every_call_is_recorded_with_its_arguments(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    await client.chat_postMessage(channel=CHANNEL, text="hello", blocks=button_blocks())

    (call,) = fake.calls_to("chat.postMessage")
    assert call.args["channel"] == CHANNEL
    assert call.args["blocks"][1]["elements"][0]["action_id"] == "vote_up"
    assert call.token == fake.bot_token
    assert call.ok


async def test_wrong_bot_token_is_invalid_auth(fake: FakeSlack) -> None:
    intruder = AsyncWebClient(token="xoxb-wrong", base_url=fake.api_url)

    error = await slack_error(intruder.chat_postMessage(channel=CHANNEL, text="hi"))

    assert error.response["error"] == "invalid_auth"
    assert fake.messages(CHANNEL) == []


async def test_missing_token_is_not_authed(fake: FakeSlack) -> None:
    anonymous = AsyncWebClient(base_url=fake.api_url)

    error = await slack_error(anonymous.auth_test())

    assert error.response["error"] == "not_authed"


async def test_auth_test_names_the_bot_and_workspace(
    client: AsyncWebClient, fake: FakeSlack
) -> None:
    response = await client.auth_test()

    assert (response["user_id"], response["bot_id"], response["team_id"]) == (
        fake.bot_user_id,
        fake.bot_id,
        fake.team_id,
    )


async def test_users_info_knows_seeded_users_only(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.add_user("U0ANA", "ana", real_name="Ana Lima", tz="America/Sao_Paulo")

    found = await client.users_info(user="U0ANA")
    error = await slack_error(client.users_info(user="U0NOBODY"))

    assert found["user"]["tz"] == "America/Sao_Paulo"
    assert error.response["error"] == "user_not_found"


async def test_forced_error_answers_the_next_call_only(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    fake.force_error("chat.postMessage", "channel_not_found")

    error = await slack_error(client.chat_postMessage(channel=CHANNEL, text="a"))
    await client.chat_postMessage(channel=CHANNEL, text="b")

    assert error.response["error"] == "channel_not_found"
    assert [m.text for m in fake.messages(CHANNEL)] == ["b"]


async def test_wait_for_calls_returns_once_the_calls_arrive(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    waiter = asyncio.create_task(fake.wait_for_calls("chat.postMessage", 2))
    await client.chat_postMessage(channel=CHANNEL, text="1")
    await client.chat_postMessage(channel=CHANNEL, text="2")

    calls = await waiter

    assert [c.args["text"] for c in calls] == ["1", "2"]


# --- sizes ---------------------------------------------------------------------------------


async def test_post_accepts_40000_characters(fake: FakeSlack, client: AsyncWebClient) -> None:
    response = await client.chat_postMessage(channel=CHANNEL, text="x" * 40_000)

    assert len(fake.message(CHANNEL, response["ts"]).text) == 40_000


async def test_post_over_40000_characters_is_msg_too_long(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    error = await slack_error(client.chat_postMessage(channel=CHANNEL, text="x" * 40_001))

    assert error.response["error"] == "msg_too_long"
    assert fake.messages(CHANNEL) == []


async def test_update_over_4000_characters_is_msg_too_long(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="short")

    error = await slack_error(
        client.chat_update(channel=CHANNEL, ts=posted["ts"], text="x" * 4_001)
    )
    await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="y" * 4_000)

    assert error.response["error"] == "msg_too_long"
    assert fake.message(CHANNEL, posted["ts"]).text == "y" * 4_000


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
async def test_message_without_text_or_blocks_is_no_text(client: AsyncWebClient) -> None:
    error = await slack_error(client.chat_postMessage(channel=CHANNEL, text=""))

    assert error.response["error"] == "no_text"


async def test_blocks_built_with_slack_sdk_models_are_accepted(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    blocks = [
        HeaderBlock(text="h" * 150),
        SectionBlock(text="s" * 3_000),
        ActionsBlock(
            elements=[
                ButtonElement(text="b" * 75, action_id="a" * 255, value="v" * 2_000),
            ]
        ),
    ]

    response = await client.chat_postMessage(channel=CHANNEL, text="fallback", blocks=blocks)

    assert len(fake.message(CHANNEL, response["ts"]).blocks) == 3


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _button(text: str = "ok", value: str = "v", action_id: str = "a") -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "value": value,
        "action_id": action_id,
    }


OVERSIZED_BLOCKS: dict[str, list[dict[str, Any]]] = {
    "51 blocks": [_section("x")] * 51,
    "section text 3001": [_section("x" * 3_001)],
    "header 151": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
    "button text 76": [{"type": "actions", "elements": [_button(text="b" * 76)]}],
    "button value 2001": [{"type": "actions", "elements": [_button(value="v" * 2_001)]}],
    "action_id 256": [{"type": "actions", "elements": [_button(action_id="a" * 256)]}],
    "block_id 256": [{**_section("x"), "block_id": "b" * 256}],
    "26 actions": [
        {"type": "actions", "elements": [_button(action_id=f"a{i}") for i in range(26)]}
    ],
    "11 context elements": [
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}
    ],
    "unknown block type": [{"type": "marquee", "text": "hi"}],
    "empty section text": [_section("")],
}


@pytest.mark.parametrize("blocks", OVERSIZED_BLOCKS.values(), ids=OVERSIZED_BLOCKS.keys())
async def test_blocks_beyond_block_kit_limits_are_invalid_blocks(
    fake: FakeSlack, client: AsyncWebClient, blocks: list[dict[str, Any]]
) -> None:
    error = await slack_error(client.chat_postMessage(channel=CHANNEL, text="t", blocks=blocks))

    assert error.response["error"] == "invalid_blocks"
    assert error.response["response_metadata"]["messages"][0].startswith("[ERROR]")
    assert fake.messages(CHANNEL) == []


async def test_update_with_invalid_blocks_keeps_the_old_message(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="old", blocks=button_blocks())

    error = await slack_error(
        client.chat_update(channel=CHANNEL, ts=posted["ts"], text="new", blocks=[_section("")])
    )

    assert error.response["error"] == "invalid_blocks"
    assert fake.message(CHANNEL, posted["ts"]).text == "old"


# --- rate limits ---------------------------------------------------------------------------


async def test_calls_over_the_per_minute_limit_get_429_with_retry_after(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    fake.set_rate_limit("chat.update", per_minute=3)
    posted = await client.chat_postMessage(channel=CHANNEL, text="0")
    for n in range(3):
        await client.chat_update(channel=CHANNEL, ts=posted["ts"], text=str(n + 1))

    error = await slack_error(client.chat_update(channel=CHANNEL, ts=posted["ts"], text="4"))

    assert error.response.status_code == 429
    assert error.response["error"] == "ratelimited"
    assert 1 <= int(error.response.headers["Retry-After"]) <= 60
    assert fake.message(CHANNEL, posted["ts"]).text == "3"


async def test_rate_limit_window_reopens_after_retry_after() -> None:
    clock = ManualClock()
    async with FakeSlack(clock=clock) as fake:
        client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)
        fake.set_rate_limit("auth.test", per_minute=1)
        await client.auth_test()
        error = await slack_error(client.auth_test())

        clock.now += int(error.response.headers["Retry-After"])

        assert (await client.auth_test())["ok"]


async def test_post_message_limit_counts_each_channel_separately(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    fake.set_rate_limit("chat.postMessage", per_minute=1, per_channel=True)
    await client.chat_postMessage(channel="C0ONE", text="a")

    other = await client.chat_postMessage(channel="C0TWO", text="b")
    error = await slack_error(client.chat_postMessage(channel="C0ONE", text="c"))

    assert other["ok"]
    assert error.response["error"] == "ratelimited"


async def test_forced_429_is_retried_by_the_rate_limit_retry_handler(
    fake: FakeSlack,
) -> None:
    client = AsyncWebClient(
        token=fake.bot_token,
        base_url=fake.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)],
    )
    fake.force_rate_limit("chat.postMessage", times=1, retry_after=1)

    response = await client.chat_postMessage(channel=CHANNEL, text="persistent")

    assert [c.status for c in fake.calls_to("chat.postMessage")] == [429, 200]
    assert [m.text for m in fake.messages(CHANNEL)] == ["persistent"]
    assert response["ok"]


async def test_without_a_retry_handler_a_forced_429_surfaces_as_an_error(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    fake.force_rate_limit("chat.postMessage", times=1, retry_after=7)

    error = await slack_error(client.chat_postMessage(channel=CHANNEL, text="x"))

    assert error.response.headers["Retry-After"] == "7"


# --- conversations -------------------------------------------------------------------------


async def test_history_pages_newest_first_with_a_cursor(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    for n in range(7):
        fake.seed_message(CHANNEL, f"m{n}")

    pages: list[list[str]] = []
    cursor = None
    while True:
        page = await client.conversations_history(channel=CHANNEL, limit=3, cursor=cursor)
        pages.append([m["text"] for m in page["messages"]])
        cursor = page["response_metadata"]["next_cursor"]
        if not page["has_more"]:
            break

    assert pages == [["m6", "m5", "m4"], ["m3", "m2", "m1"], ["m0"]]
    assert cursor == ""


async def test_history_leaves_thread_replies_out(fake: FakeSlack, client: AsyncWebClient) -> None:
    root = fake.seed_thread(CHANNEL, "parent", ["reply 1", "reply 2"])

    page = await client.conversations_history(channel=CHANNEL)

    assert [m["text"] for m in page["messages"]] == ["parent"]
    assert page["messages"][0]["reply_count"] == 2
    assert page["messages"][0]["ts"] == root.ts


async def test_history_honours_oldest(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.seed_message(CHANNEL, "yesterday", ts="1700000000.000100")
    fake.seed_message(CHANNEL, "today", ts="1700086400.000100")

    page = await client.conversations_history(channel=CHANNEL, oldest="1700050000.000000")

    assert [m["text"] for m in page["messages"]] == ["today"]


async def test_an_invalid_cursor_is_rejected(client: AsyncWebClient) -> None:
    error = await slack_error(client.conversations_history(channel=CHANNEL, cursor="bogus!"))

    assert error.response["error"] == "invalid_cursor"


async def test_replies_return_the_parent_then_replies_in_order(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    root = fake.seed_thread(CHANNEL, "plan?", [("U0BEN", "ship friday"), "agreed"])

    thread = await client.conversations_replies(channel=CHANNEL, ts=root.ts)

    assert [m["text"] for m in thread["messages"]] == ["plan?", "ship friday", "agreed"]
    assert thread["messages"][1]["user"] == "U0BEN"
    assert all(m["thread_ts"] == root.ts for m in thread["messages"])


async def test_replies_of_an_unknown_ts_is_thread_not_found(client: AsyncWebClient) -> None:
    error = await slack_error(client.conversations_replies(channel=CHANNEL, ts="1.000001"))

    assert error.response["error"] == "thread_not_found"


async def test_bot_reply_in_a_thread_bumps_the_reply_count(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    root = fake.seed_message(CHANNEL, "question")

    await client.chat_postMessage(channel=CHANNEL, thread_ts=root.ts, text="answer")

    assert [m.text for m in fake.thread(CHANNEL, root.ts)] == ["question", "answer"]


async def test_posting_into_a_missing_thread_fails(client: AsyncWebClient) -> None:
    error = await slack_error(
        client.chat_postMessage(channel=CHANNEL, thread_ts="1.000001", text="x")
    )

    assert error.response["error"] == "thread_not_found"


async def test_posting_to_a_user_id_lands_in_the_bots_dm(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    response = await client.chat_postMessage(channel="U0ANA", text="private result")

    assert response["channel"] == fake.dm_channel_id("U0ANA")
    assert fake.messages(response["channel"])[0].text == "private result"


async def test_unknown_channel_is_channel_not_found_when_auto_create_is_off() -> None:
    async with FakeSlack(auto_create_channels=False) as fake:
        client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)

        error = await slack_error(client.chat_postMessage(channel=CHANNEL, text="x"))

        assert error.response["error"] == "channel_not_found"


# --- update, ephemeral, delete -------------------------------------------------------------


async def test_update_edits_the_message_in_place_and_keeps_its_history(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="▱▱▱ 0%")
    await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="▰▱▱ 33%")
    await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="done")

    message = fake.message(CHANNEL, posted["ts"])
    assert message.text == "done"
    assert [e["text"] for e in message.edits] == ["▰▱▱ 33%", "done"]
    assert len(fake.messages(CHANNEL)) == 1


async def test_the_bot_cannot_update_a_users_message(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    theirs = fake.seed_message(CHANNEL, "mine")

    error = await slack_error(client.chat_update(channel=CHANNEL, ts=theirs.ts, text="hacked"))

    assert error.response["error"] == "cant_update_message"


async def test_update_of_an_unknown_message_is_message_not_found(client: AsyncWebClient) -> None:
    error = await slack_error(client.chat_update(channel=CHANNEL, ts="1.000001", text="x"))

    assert error.response["error"] == "message_not_found"


async def test_ephemeral_messages_are_kept_apart_from_the_channel(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    await client.chat_postEphemeral(channel=CHANNEL, user="U0ANA", text="only you")

    assert [(e.user, e.text) for e in fake.ephemerals] == [("U0ANA", "only you")]
    assert fake.messages(CHANNEL) == []


async def test_deleted_message_leaves_history(fake: FakeSlack, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="oops")

    await client.chat_delete(channel=CHANNEL, ts=posted["ts"])
    page = await client.conversations_history(channel=CHANNEL)

    assert page["messages"] == []


# --- views and trigger ids -----------------------------------------------------------------

MODAL = {
    "type": "modal",
    "title": {"type": "plain_text", "text": "Draft reply"},
    "blocks": [_section("hello")],
}


async def test_views_open_accepts_a_fresh_trigger_id_once(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    trigger = fake.slash_command_payload("draft")["trigger_id"]

    opened = await client.views_open(trigger_id=trigger, view=MODAL)
    error = await slack_error(client.views_open(trigger_id=trigger, view=MODAL))

    assert opened["view"]["id"].startswith("V")
    assert error.response["error"] == "exchanged_trigger_id"
    assert len(fake.opened_views) == 1


async def test_a_trigger_id_expires_after_3_seconds() -> None:
    clock = ManualClock()
    async with FakeSlack(clock=clock) as fake:
        client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)
        trigger = fake.issue_trigger_id()
        clock.now += 3.5

        error = await slack_error(client.views_open(trigger_id=trigger, view=MODAL))

        assert error.response["error"] == "expired_trigger_id"


async def test_a_made_up_trigger_id_is_invalid(client: AsyncWebClient) -> None:
    error = await slack_error(client.views_open(trigger_id="123.456.abc", view=MODAL))

    assert error.response["error"] == "invalid_trigger_id"


async def test_a_modal_title_over_24_characters_is_invalid_arguments(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    view = {**MODAL, "title": {"type": "plain_text", "text": "t" * 25}}

    error = await slack_error(client.views_open(trigger_id=fake.issue_trigger_id(), view=view))

    assert error.response["error"] == "invalid_arguments"


async def test_views_publish_stores_the_users_home_tab(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    home = {"type": "home", "blocks": [_section("Your tasks")] * 100}

    await client.views_publish(user_id="U0ANA", view=home)

    assert len(fake.home_views["U0ANA"]["blocks"]) == 100


async def test_a_home_tab_over_100_blocks_is_rejected(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    home = {"type": "home", "blocks": [_section("x")] * 101}

    error = await slack_error(client.views_publish(user_id="U0ANA", view=home))

    assert error.response["error"] == "invalid_arguments"
    assert "U0ANA" not in fake.home_views


# --- response_url --------------------------------------------------------------------------


async def test_a_response_url_works_five_times_then_is_used(fake: FakeSlack) -> None:
    url = fake.slash_command_payload("x")["response_url"]
    webhook = AsyncWebhookClient(url)

    statuses = [(await webhook.send(text=f"reply {n}")).status_code for n in range(6)]

    assert statuses == [200] * 5 + [404]
    assert fake.response_url_posts[-1].error == "used_url"
    assert len(fake.ephemerals) == 5


async def test_a_response_url_expires_after_30_minutes() -> None:
    clock = ManualClock()
    async with FakeSlack(clock=clock) as fake:
        webhook = AsyncWebhookClient(fake.slash_command_payload("x")["response_url"])
        clock.now += 30 * 60 + 1

        response = await webhook.send(text="late")

        assert response.status_code == 404
        assert fake.response_url_posts[-1].error == "expired_url"


async def test_response_url_is_ephemeral_unless_in_channel(fake: FakeSlack) -> None:
    payload = fake.slash_command_payload("x", user_id="U0ANA")
    webhook = AsyncWebhookClient(payload["response_url"])

    await webhook.send(text="just you")
    await webhook.send(text="everyone", response_type="in_channel")

    assert [e.text for e in fake.ephemerals] == ["just you"]
    assert [m.text for m in fake.messages(CHANNEL)] == ["everyone"]


async def test_replace_original_edits_the_message_the_button_was_on(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="rate", blocks=button_blocks())
    payload = fake.block_actions(channel_id=CHANNEL, message_ts=posted["ts"], action_id="vote_up")

    await AsyncWebhookClient(payload["response_url"]).send(text="👍 by @ana", replace_original=True)

    assert fake.message(CHANNEL, posted["ts"]).text == "👍 by @ana"


async def test_delete_original_removes_the_source_message(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="rate", blocks=button_blocks())
    payload = fake.block_actions(channel_id=CHANNEL, message_ts=posted["ts"], action_id="vote_up")

    await AsyncWebhookClient(payload["response_url"]).send_dict({"delete_original": True})

    assert fake.messages(CHANNEL) == []


# --- signed inbound requests ---------------------------------------------------------------


def test_signed_slash_command_verifies_with_slack_sdk(fake: FakeSlack) -> None:
    request = fake.signed_slash_command("draft an email", user_id="U0ANA")

    assert SignatureVerifier(fake.signing_secret).is_valid_request(request.body, request.headers)
    form = parse_qs(request.body.decode())
    assert form["command"] == ["/atom"]
    assert form["text"] == ["draft an email"]
    assert form["response_url"][0].startswith(fake.url)


def test_wrongly_signed_request_fails_verification(fake: FakeSlack) -> None:
    request = fake.signed_slash_command("x", signing={"bad_signature": True})

    assert not SignatureVerifier(fake.signing_secret).is_valid_request(
        request.body, request.headers
    )


def test_stale_timestamp_fails_verification(fake: FakeSlack) -> None:
    request = fake.signed_event(fake.app_mention("hi"), stale=True)

    assert not SignatureVerifier(fake.signing_secret).is_valid_request(
        request.body, request.headers
    )
    assert int(request.headers["X-Slack-Request-Timestamp"]) < time.time() - 300


def test_redelivery_keeps_the_event_id_and_adds_retry_headers(fake: FakeSlack) -> None:
    first = fake.signed_event(fake.app_mention("summarize this"))

    again = fake.redelivery(first, retry_num=1)

    assert again.body == first.body
    assert again.event_id == first.event_id
    assert again.headers["X-Slack-Retry-Num"] == "1"
    assert again.headers["X-Slack-Retry-Reason"] == "http_timeout"
    assert SignatureVerifier(fake.signing_secret).is_valid_request(again.body, again.headers)


def test_app_mention_in_a_thread_is_stored_in_that_thread(fake: FakeSlack) -> None:
    root = fake.seed_thread(CHANNEL, "outage", ["db down", "fixed"])

    event = fake.app_mention("summarize this", thread_ts=root.ts)

    assert event["text"] == f"<@{fake.bot_user_id}> summarize this"
    assert event["thread_ts"] == root.ts
    assert fake.thread(CHANNEL, root.ts)[-1].ts == event["ts"]


def test_direct_message_arrives_in_the_users_dm_channel(fake: FakeSlack) -> None:
    event = fake.direct_message("remind me at 5", user_id="U0BEN")

    assert event["channel_type"] == "im"
    assert event["channel"] == fake.dm_channel_id("U0BEN")


def test_block_actions_sends_the_pressed_buttons_value(fake: FakeSlack) -> None:
    posted = fake.seed_message(CHANNEL, "result", blocks=button_blocks(value="task:41"))

    payload = fake.block_actions(channel_id=CHANNEL, message_ts=posted.ts, action_id="vote_up")

    (action,) = payload["actions"]
    assert (action["action_id"], action["block_id"], action["value"]) == (
        "vote_up",
        "buttons",
        "task:41",
    )
    assert payload["container"]["message_ts"] == posted.ts


def test_block_actions_on_a_missing_button_is_a_test_error(fake: FakeSlack) -> None:
    posted = fake.seed_message(CHANNEL, "no buttons")

    with pytest.raises(LookupError):
        fake.block_actions(channel_id=CHANNEL, message_ts=posted.ts, action_id="vote_up")


def test_message_shortcut_carries_the_message(fake: FakeSlack) -> None:
    root = fake.seed_thread(CHANNEL, "plan", ["ok"])

    payload = fake.message_action(
        callback_id="summarize_thread", channel_id=CHANNEL, message_ts=root.ts
    )

    assert payload["type"] == "message_action"
    assert payload["message"]["reply_count"] == 1
    assert payload["trigger_id"]


async def test_post_to_app_gives_up_after_the_ack_deadline(fake: FakeSlack) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.Response()

    app = web.Application()
    app.router.add_post("/slack/events", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        with pytest.raises(AckTimeout):
            await fake.post_to_app(
                f"http://127.0.0.1:{port}/slack/events",
                fake.signed_slash_command("x"),
                within_s=0.1,
            )
    finally:
        await runner.cleanup()


def test_message_ts_increase_strictly(fake: FakeSlack) -> None:
    stamps = [fake.seed_message(CHANNEL, str(n)).ts for n in range(5)]

    assert [ts_to_micros(t) for t in stamps] == sorted({ts_to_micros(t) for t in stamps})


# --- Socket Mode ---------------------------------------------------------------------------


async def test_connections_open_needs_the_app_token(client: AsyncWebClient) -> None:
    error = await slack_error(client.apps_connections_open(app_token=""))

    assert error.response["error"] in {"not_authed", "not_allowed_token_type"}


async def test_connections_open_rejects_a_bot_token(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    error = await slack_error(client.apps_connections_open(app_token=fake.bot_token))

    assert error.response["error"] == "not_allowed_token_type"


@pytest.fixture
async def socket_client(
    fake: FakeSlack,
) -> AsyncIterator[tuple[SocketModeClient, list[dict[str, Any]]]]:
    """A real slack_sdk SocketModeClient that acks every envelope and keeps every message."""
    received: list[dict[str, Any]] = []
    client = SocketModeClient(
        app_token=fake.app_token, web_client=AsyncWebClient(base_url=fake.api_url)
    )

    async def keep(_: Any, message: dict[str, Any], raw: str | None) -> None:
        received.append(message)

    async def ack(sm_client: Any, request: SocketModeRequest) -> None:
        await sm_client.send_socket_mode_response(
            SocketModeResponse(envelope_id=request.envelope_id)
        )

    client.message_listeners.append(keep)
    client.socket_mode_request_listeners.append(ack)
    await client.connect()  # type: ignore[no-untyped-call]
    try:
        yield client, received
    finally:
        await client.close()  # type: ignore[no-untyped-call]


async def test_socket_mode_client_is_greeted_with_hello(
    fake: FakeSlack, socket_client: tuple[SocketModeClient, list[dict[str, Any]]]
) -> None:
    _, received = socket_client

    await fake.wait_until(lambda: bool(received))

    assert received[0]["type"] == "hello"
    assert received[0]["connection_info"]["app_id"] == fake.app_id


async def test_socket_mode_envelopes_are_acked_by_envelope_id(
    fake: FakeSlack, socket_client: tuple[SocketModeClient, list[dict[str, Any]]]
) -> None:
    await fake.wait_for_socket_connections(1)

    envelope_id = await fake.push_event(fake.app_mention("hi"))

    assert await fake.wait_for_ack(envelope_id) == {"envelope_id": envelope_id}


async def test_socket_mode_slash_command_and_interaction_envelopes_are_acked(
    fake: FakeSlack, socket_client: tuple[SocketModeClient, list[dict[str, Any]]]
) -> None:
    await fake.wait_for_socket_connections(1)
    posted = fake.seed_message(CHANNEL, "r", blocks=button_blocks())

    command = await fake.push_slash_command("draft")
    press = await fake.push_interaction(
        fake.block_actions(channel_id=CHANNEL, message_ts=posted.ts, action_id="vote_up")
    )

    assert (await fake.wait_for_ack(command))["envelope_id"] == command
    assert (await fake.wait_for_ack(press))["envelope_id"] == press


async def test_disconnect_makes_the_client_reconnect_on_a_new_url(
    fake: FakeSlack, socket_client: tuple[SocketModeClient, list[dict[str, Any]]]
) -> None:
    first = await fake.wait_for_socket_connections(1)

    await fake.socket_disconnect("refresh_requested")
    second = await fake.wait_for_socket_connections(2)
    envelope_id = await fake.push_event(fake.app_mention("still there?"))

    urls = [c.response["url"] for c in fake.calls_to("apps.connections.open")]
    assert len(urls) == 2 and urls[0] != urls[1]
    assert second.ticket != first.ticket
    assert await fake.wait_for_ack(envelope_id) == {"envelope_id": envelope_id}


async def test_an_unacked_envelope_times_out(fake: FakeSlack) -> None:
    web_client = AsyncWebClient(base_url=fake.api_url)
    silent = SocketModeClient(app_token=fake.app_token, web_client=web_client)
    await silent.connect()  # type: ignore[no-untyped-call]
    try:
        await fake.wait_for_socket_connections(1)
        envelope_id = await fake.push_event(fake.app_mention("anyone?"))

        with pytest.raises(AckTimeout):
            await fake.wait_for_ack(envelope_id, within_s=0.2)
    finally:
        await silent.close()  # type: ignore[no-untyped-call]


# --- chat streaming ------------------------------------------------------------------------


async def start_stream(fake: FakeSlack, client: AsyncWebClient, **args: Any) -> Any:
    root = fake.seed_message(CHANNEL, "please draft")
    defaults: dict[str, Any] = {
        "channel": CHANNEL,
        "thread_ts": root.ts,
        "recipient_user_id": "U0ANA",
        "recipient_team_id": fake.team_id,
    }
    return await client.chat_startStream(**{**defaults, **args})


async def test_a_stream_grows_then_stops_with_blocks_at_the_bottom(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    started = await start_stream(fake, client, markdown_text="Hello")
    await client.chat_appendStream(channel=CHANNEL, ts=started["ts"], markdown_text=" world")
    await client.chat_stopStream(channel=CHANNEL, ts=started["ts"], blocks=button_blocks())

    (message,) = fake.streams(CHANNEL)
    assert message.stream is not None and message.stream.state == "stopped"
    assert message.text == message.stream.markdown == "Hello world"
    assert message.blocks == button_blocks()
    assert message.is_reply


async def test_a_channel_stream_needs_both_recipients(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    no_team = await slack_error(start_stream(fake, client, recipient_team_id=None))
    no_user = await slack_error(start_stream(fake, client, recipient_user_id=None))
    no_thread = await slack_error(client.chat_startStream(channel=CHANNEL, thread_ts=""))

    assert no_team.response["error"] == "missing_recipient_team_id"
    assert no_user.response["error"] == "missing_recipient_user_id"
    assert no_thread.response["error"] == "invalid_arguments"
    assert fake.streams() == []


async def test_a_dm_stream_needs_no_recipient(fake: FakeSlack, client: AsyncWebClient) -> None:
    dm = fake.dm_channel_id("U0ANA")
    root = fake.seed_message(dm, "hi", user="U0ANA")

    started = await client.chat_startStream(channel=dm, thread_ts=root.ts, markdown_text="x")

    assert started["ok"] and fake.streams(dm)[0].text == "x"


async def test_more_than_twelve_thousand_characters_per_call_is_refused(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    started = await start_stream(fake, client, markdown_text="a" * 12_000)
    too_long = await slack_error(
        client.chat_appendStream(channel=CHANNEL, ts=started["ts"], markdown_text="b" * 12_001)
    )

    assert too_long.response["error"] == "msg_too_long"
    assert fake.streams()[0].text == "a" * 12_000


async def test_task_updates_are_recorded_in_order_and_bad_chunks_refused(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    def task(status: str) -> dict[str, str]:
        return {"type": "task_update", "id": "41", "title": "email", "status": status}

    started = await start_stream(fake, client, task_display_mode="plan", chunks=[task("pending")])
    ts = started["ts"]
    await client.chat_appendStream(channel=CHANNEL, ts=ts, chunks=[task("in_progress")])
    await client.chat_appendStream(
        channel=CHANNEL, ts=ts, chunks=[task("complete"), {"type": "markdown_text", "text": "ok"}]
    )
    bad = await slack_error(client.chat_appendStream(channel=CHANNEL, ts=ts, chunks=[task("done")]))
    bad_mode = await slack_error(start_stream(fake, client, task_display_mode="grid"))

    stream = fake.streams()[0].stream
    assert stream is not None and stream.statuses(41) == ["pending", "in_progress", "complete"]
    assert stream.markdown == "ok"
    assert bad.response["error"] == "invalid_chunks"
    assert bad_mode.response["error"] == "invalid_arguments"


async def test_an_expired_or_stopped_stream_takes_no_appends_but_takes_chat_update(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    clock = ManualClock()
    fake.clock = clock
    fake.stream_expiry_s = 10.0
    started = await start_stream(fake, client, markdown_text="Hi")
    clock.now += 11

    late = await slack_error(
        client.chat_appendStream(channel=CHANNEL, ts=started["ts"], markdown_text=" there")
    )
    stop = await slack_error(client.chat_stopStream(channel=CHANNEL, ts=started["ts"]))
    await client.chat_update(channel=CHANNEL, ts=started["ts"], text="Hi there, in full")

    assert late.response["error"] == stop.response["error"] == "message_not_in_streaming_state"
    (message,) = fake.streams(CHANNEL)
    assert message.text == "Hi there, in full"
    plain = fake.seed_message(CHANNEL, "not a stream")
    not_stream = await slack_error(
        client.chat_appendStream(channel=CHANNEL, ts=plain.ts, markdown_text="x")
    )
    assert not_stream.response["error"] == "message_not_in_streaming_state"


async def test_stream_methods_have_their_rate_tiers(fake: FakeSlack) -> None:
    no_retries = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)
    no_retries.retry_handlers = []
    assert fake.rate_limits["chat.startStream"].per_minute == 20
    assert fake.rate_limits["chat.appendStream"].per_minute == 100
    assert fake.rate_limits["chat.stopStream"].per_minute == 20
    fake.set_rate_limit("chat.appendStream", 2)
    started = await start_stream(fake, no_retries, markdown_text="a")

    for _ in range(2):
        await no_retries.chat_appendStream(channel=CHANNEL, ts=started["ts"], markdown_text="b")
    limited = await slack_error(
        no_retries.chat_appendStream(channel=CHANNEL, ts=started["ts"], markdown_text="c")
    )

    assert limited.response.status_code == 429
    assert int(limited.response.headers["Retry-After"]) >= 1
    assert fake.streams()[0].text == "abb"


async def test_native_feedback_buttons_are_validated_and_pressed_by_side(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    pair = {
        "type": "feedback_buttons",
        "action_id": "fb",
        "positive_button": {"text": {"type": "plain_text", "text": "👍"}, "value": "up"},
        "negative_button": {"text": {"type": "plain_text", "text": "👎"}, "value": "down"},
    }
    good = [{"type": "context_actions", "block_id": "f", "elements": [pair]}]
    bad = [{"type": "context_actions", "elements": [{**pair, "negative_button": None}]}]
    posted = await client.chat_postMessage(channel=CHANNEL, text="r", blocks=good)
    refused = await slack_error(client.chat_postMessage(channel=CHANNEL, text="r", blocks=bad))

    press = fake.feedback_actions(
        channel_id=CHANNEL, message_ts=posted["ts"], action_id="fb", positive=False
    )

    assert refused.response["error"] == "invalid_blocks"
    assert press["actions"][0]["value"] == "down"
    assert press["actions"][0]["type"] == "feedback_buttons"
