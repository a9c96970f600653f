"""The Telegram webhook's one rule: 403 if not authentic, 400/413 if malformed, never a 5xx.

Real python-telegram-bot and atombot behind the real webhook server, posted to over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import pytest

from bot.adapters.telegram.webhook import MAX_BODY_BYTES, MAX_DEPTH, json_depth
from bot.config import Settings
from bot.texts import t
from models.intents.spec import IntentParser
from tests.fakes.telegram_api import FakeTelegram, RateLimits
from tests.fakes.telegram_webhook import WebhookBot, webhook_bot

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning"
)

USER = 1001
GROUP = -1001234567890
PRIVATE_TEXT = "draft an email to Dana about the confidential merger with Initech"


@pytest.fixture
async def bot(settings: Settings, parser: IntentParser) -> AsyncIterator[WebhookBot]:
    async with (
        FakeTelegram(rate_limits=RateLimits.unlimited()) as fake,
        webhook_bot(settings, parser, fake) as running,
    ):
        yield running


def encoded(update: dict[str, object]) -> bytes:
    return json.dumps(update).encode()


async def eventually_answered(bot: WebhookBot, chat_id: int) -> None:
    for _ in range(750):
        if bot.fake.bot_messages(chat_id):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the bot did not answer")


async def test_the_webhook_is_registered_with_its_secret_and_allowed_updates(
    bot: WebhookBot,
) -> None:
    assert bot.fake.webhook.url == bot.url
    assert bot.fake.webhook.secret_token == "webhook-secret_42"
    assert bot.fake.webhook.allowed_updates == ["message", "callback_query"]


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe\x00{not utf-8",
        b'{"update_id": 5, "message": {"text": "caf\xe9"}}',  # Latin-1, not UTF-8
        b"not json at all",
        b'{"update_id": 5, "message": ',  # truncated
        b"",
        b"[1, 2, 3]",
        b"null",
        b'{"update_id": NaN}',
    ],
    ids=["binary", "latin-1", "text", "truncated", "empty", "array", "null", "nan"],
)
async def test_a_body_that_is_not_a_json_object_is_answered_400_and_stores_nothing(
    bot: WebhookBot, body: bytes
) -> None:
    before = await bot.stored_rows()
    assert (await bot.post(body)).status == 400
    assert await bot.stored_rows() == before


async def test_deep_nesting_is_refused_without_parsing(bot: WebhookBot) -> None:
    body = b'{"update_id": 7, "message": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    assert (await bot.post(body)).status == 400
    assert json_depth('{"a": "[[[[", "b": [[{}]]}') == 4
    assert json_depth("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)) == MAX_DEPTH + 1


async def test_a_body_over_the_limit_is_answered_413_or_403_without_the_secret(
    bot: WebhookBot,
) -> None:
    big = b'{"update_id": 8, "pad": "' + b"x" * (MAX_BODY_BYTES + 10) + b'"}'
    assert (await bot.post(big)).status == 413
    assert (await bot.post(big, secret="wrong")).status == 403


def message(**fields: object) -> dict[str, object]:
    """An update with a minimal private message, ``fields`` added or replaced."""
    base: dict[str, object] = {"message_id": 1, "date": 1, "chat": {"id": 1, "type": "private"}}
    return {"update_id": 9, "message": {**base, **fields}}


NO_CHAT = {"update_id": 9, "message": {"message_id": 1, "date": 1_700_000_000, "text": "hi"}}


@pytest.mark.parametrize(
    "update",
    [
        NO_CHAT,
        {"update_id": 9, "message": []},
        message(message_id="1"),
        message(text=5),
        message(date=10**20),
        message(chat={"id": 2**70, "type": "private"}),
        message(entities=5),
        message(text="a\u0000b"),
        {"update_id": 9, "callback_query": {"id": "1", "chat_instance": "c", "data": "ab:up:1"}},
        {"update_id": "9", "message": None},
        {"update_id": -1},
        {"message": message()["message"]},
        {**message(), "callback_query": {"id": "1", "chat_instance": "c"}},
    ],
    ids=[
        "no chat",
        "message is a list",
        "string id",
        "text is a number",
        "date overflows",
        "chat id over 64 bits",
        "entities not a list",
        "NUL in text",
        "callback without from",
        "string update_id",
        "negative update_id",
        "no update_id",
        "two kinds",
    ],
)
async def test_an_authentic_update_of_the_wrong_shape_is_answered_400_and_stores_nothing(
    bot: WebhookBot, update: dict[str, object]
) -> None:
    before = await bot.stored_rows()
    assert (await bot.post(encoded(update))).status == 400
    assert await bot.stored_rows() == before
    assert bot.fake.calls_to("sendMessage") == []


async def test_a_lone_surrogate_in_text_is_answered_400(bot: WebhookBot) -> None:
    body = (
        b'{"update_id": 10, "message": {"message_id": 1, "date": 1, '
        b'"chat": {"id": -5, "type": "group"}, "from": {"id": 3, "is_bot": false, '
        b'"first_name": "A"}, "text": "x\\ud800y"}}'
    )
    before = await bot.stored_rows()
    assert (await bot.post(body)).status == 400
    assert await bot.stored_rows() == before


@pytest.mark.parametrize(
    "update",
    [
        {"update_id": 11, "poll": {"id": "p", "question": "?"}},
        {"update_id": 11, "edited_message": {**message(text="status")["message"]}},
        {"update_id": 11, "some_future_kind": {"x": 1}},
        {"update_id": 11},
    ],
    ids=["poll", "edited message", "unknown field", "empty"],
)
async def test_update_kinds_the_bot_does_not_accept_are_answered_200_and_ignored(
    bot: WebhookBot, update: dict[str, object]
) -> None:
    before = await bot.stored_rows()
    assert (await bot.post(encoded(update))).status == 200
    assert await bot.stored_rows() == before
    assert bot.fake.calls_to("sendMessage") == []


async def test_a_valid_update_after_malformed_ones_is_handled(bot: WebhookBot) -> None:
    for body in (b"\xff", b"[", b"{}", b'{"update_id": 1, "message": 3}'):
        assert (await bot.post(body)).status == 400
    update = bot.fake.message_update("status")
    assert (await bot.post(encoded(update))).status == 200
    await eventually_answered(bot, USER)
    assert [m.text for m in bot.fake.bot_messages(USER)] == [t("status.none", "en")]


async def test_a_wrong_or_missing_secret_is_403_and_stores_nothing(bot: WebhookBot) -> None:
    update = encoded(bot.fake.message_update("we ship on Friday", chat_id=GROUP))
    before = await bot.stored_rows()
    assert (await bot.post(update, secret="wrong")).status == 403
    assert (await bot.post(update, secret=None)).status == 403
    assert (await bot.post(update, secret="webhook-secret_4")).status == 403
    assert (await bot.post(b"\xff", secret=None)).status == 403
    assert await bot.stored_rows() == before
    assert (await bot.post(update)).status == 200
    after = await bot.stored_rows()
    assert after["chatmessage"] == before["chatmessage"] + 1


async def test_refused_payloads_are_logged_by_size_and_kind_never_by_content(
    bot: WebhookBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    no_chat = {"update_id": 12, "message": {"message_id": 1, "date": 1, "text": PRIVATE_TEXT}}
    wrong_type = {
        "update_id": 13,
        "message": {
            "message_id": 1,
            "date": 1,
            "chat": {"id": 1, "type": "private"},
            "from": {"id": 1, "is_bot": False, "first_name": PRIVATE_TEXT},
            "text": PRIVATE_TEXT,
            "entities": [{"type": PRIVATE_TEXT, "offset": "0", "length": 1}],
        },
    }
    assert (await bot.post(encoded(no_chat))).status == 400
    assert (await bot.post(encoded(wrong_type))).status == 400
    assert (await bot.post(PRIVATE_TEXT.encode("utf-16"))).status == 400
    assert (await bot.post(encoded(no_chat), secret=PRIVATE_TEXT)).status == 403
    await bot.settle()
    logged = "\n".join(
        r.getMessage() + (r.exc_text or "") + repr(r.exc_info) for r in caplog.records
    )
    assert "Initech" not in logged
    refusals = [
        r.getMessage() for r in caplog.records if "refused a Telegram webhook" in r.getMessage()
    ]
    assert len(refusals) == 4
    assert f"({len(encoded(no_chat))} bytes): 400 bad message (message.chat)" in refusals[0]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
