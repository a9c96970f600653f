"""The fake Telegram Bot API behaves like Telegram for the real python-telegram-bot client."""

from __future__ import annotations

import asyncio
import datetime as dtm
import warnings
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from telegram import Bot, BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Conflict, InvalidToken, RetryAfter

from tests.fakes.telegram_api import (
    DEFAULT_TOKEN,
    SECRET_HEADER,
    FakeTelegram,
    ManualClock,
    RateLimits,
)

# PTB 22 itself warns when it builds a RetryAfter (the attribute's type will change).
pytestmark = pytest.mark.filterwarnings(
    "ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning"
)

USER = 1001
GROUP = -1001234567890


def keyboard(*data: str) -> InlineKeyboardMarkup:
    """One row of buttons whose text is their callback data."""
    return InlineKeyboardMarkup([[InlineKeyboardButton(d, callback_data=d) for d in data]])


def retry_after_seconds(error: RetryAfter) -> float:
    """``RetryAfter.retry_after`` in seconds, whichever type this PTB version gives."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PTB 22 warns that the type becomes timedelta
        value = error.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def fake(clock: ManualClock) -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(clock=clock, rate_limits=RateLimits.unlimited()) as server:
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(DEFAULT_TOKEN, base_url=fake.base_url, base_file_url=fake.base_file_url) as b:
        yield b


async def a_private_chat(fake: FakeTelegram, user_id: int = USER) -> None:
    """The user has written to the bot, so the bot may write to them."""
    await fake.private_message("hi", user_id=user_id)


# -- identity and authentication ------------------------------------------------------------


async def test_get_me_returns_the_bot_user(fake: FakeTelegram, bot: Bot) -> None:
    me = await bot.get_me()
    assert me.is_bot
    assert me.username == fake.bot_username
    assert me.id == fake.bot_id


async def test_a_wrong_token_is_unauthorized(fake: FakeTelegram) -> None:
    with pytest.raises(InvalidToken):
        async with Bot("7000001:wrong", base_url=fake.base_url):
            pass
    assert fake.calls[-1].status == 401


async def test_every_call_is_recorded_with_decoded_parameters(fake: FakeTelegram, bot: Bot) -> None:
    await a_private_chat(fake)
    await bot.send_message(USER, "hello", reply_markup=keyboard("a"))
    call = fake.calls_to("sendMessage")[-1]
    assert call.ok
    assert call.params["chat_id"] == USER
    assert call.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "a"


# -- sending, editing, deleting ---------------------------------------------------------------


async def test_send_message_returns_and_keeps_the_message(fake: FakeTelegram, bot: Bot) -> None:
    await a_private_chat(fake)
    sent = await bot.send_message(USER, "Queued #1", reply_markup=keyboard("up", "down"))
    stored = fake.bot_messages(USER)[-1]
    assert (stored.message_id, stored.text) == (sent.message_id, "Queued #1")
    assert stored.callback_data() == ["up", "down"]
    assert sent.reply_markup == keyboard("up", "down")
    assert sent.from_user is not None and sent.from_user.id == fake.bot_id


async def test_sending_to_an_unknown_chat_fails(bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(424242, "hello")


async def test_text_of_4096_characters_is_accepted(fake: FakeTelegram, bot: Bot) -> None:
    await a_private_chat(fake)
    await bot.send_message(USER, "x" * 4096)
    assert len(fake.bot_messages(USER)[-1].text) == 4096


async def test_text_over_4096_characters_is_too_long(fake: FakeTelegram, bot: Bot) -> None:
    await a_private_chat(fake)
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(USER, "x" * 4097)
    assert fake.bot_messages(USER) == []


async def test_html_markup_does_not_count_towards_the_limit(fake: FakeTelegram, bot: Bot) -> None:
    await a_private_chat(fake)
    await bot.send_message(USER, "<b>" + "x" * 4096 + "</b>", parse_mode=ParseMode.HTML)
    assert fake.bot_messages(USER)[-1].text == "x" * 4096


async def test_unsupported_html_is_rejected(fake: FakeTelegram, bot: Bot) -> None:
    await a_private_chat(fake)
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(USER, "<div>x</div>", parse_mode=ParseMode.HTML)


async def test_empty_text_is_rejected(fake: FakeTelegram, bot: Bot) -> None:
    await a_private_chat(fake)
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(USER, "")


async def test_callback_data_over_64_bytes_is_rejected(fake: FakeTelegram, bot: Bot) -> None:
    await a_private_chat(fake)
    # 33 characters but 66 bytes of UTF-8
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(USER, "rate", reply_markup=keyboard("é" * 33))


async def test_callback_data_of_64_bytes_is_accepted(fake: FakeTelegram, bot: Bot) -> None:
    await a_private_chat(fake)
    await bot.send_message(USER, "rate", reply_markup=keyboard("é" * 32))
    assert fake.bot_messages(USER)[-1].callback_data() == ["é" * 32]


async def test_editing_to_identical_text_and_markup_is_not_modified(
    fake: FakeTelegram, bot: Bot
) -> None:
    await a_private_chat(fake)
    sent = await bot.send_message(USER, "40%", reply_markup=keyboard("cancel"))
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("40%", USER, sent.message_id, reply_markup=keyboard("cancel"))
    assert fake.bot_messages(USER)[-1].edits == 0


async def test_editing_changes_text_and_keeps_a_history(fake: FakeTelegram, bot: Bot) -> None:
    await a_private_chat(fake)
    sent = await bot.send_message(USER, "40%")
    await bot.edit_message_text("80%", USER, sent.message_id)
    stored = fake.bot_messages(USER)[-1]
    assert (stored.text, stored.edits, stored.history) == ("80%", 1, ["40%", "80%"])


async def test_editing_text_without_markup_removes_the_keyboard(
    fake: FakeTelegram, bot: Bot
) -> None:
    await a_private_chat(fake)
    sent = await bot.send_message(USER, "40%", reply_markup=keyboard("cancel"))
    edited = await bot.edit_message_text("80%", USER, sent.message_id)
    assert isinstance(edited, type(sent))
    assert edited.reply_markup is None
    assert fake.bot_messages(USER)[-1].reply_markup is None


async def test_edit_reply_markup_with_the_same_markup_is_not_modified(
    fake: FakeTelegram, bot: Bot
) -> None:
    await a_private_chat(fake)
    sent = await bot.send_message(USER, "done", reply_markup=keyboard("up"))
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_reply_markup(USER, sent.message_id, reply_markup=keyboard("up"))
    await bot.edit_message_reply_markup(USER, sent.message_id, reply_markup=keyboard("up 1"))
    assert fake.bot_messages(USER)[-1].callback_data() == ["up 1"]


async def test_a_users_message_cannot_be_edited_by_the_bot(fake: FakeTelegram, bot: Bot) -> None:
    update = await fake.private_message("mine")
    with pytest.raises(BadRequest, match=r"(?i)can't be edited"):
        await bot.edit_message_text("yours", USER, update["message"]["message_id"])


async def test_deleted_messages_are_gone(fake: FakeTelegram, bot: Bot) -> None:
    await a_private_chat(fake)
    sent = await bot.send_message(USER, "temp")
    assert await bot.delete_message(USER, sent.message_id)
    assert fake.bot_messages(USER) == []
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(USER, sent.message_id)


async def test_chat_actions_are_kept_per_chat(fake: FakeTelegram, bot: Bot) -> None:
    await a_private_chat(fake)
    await bot.send_chat_action(USER, "typing")
    assert fake.chat(USER).actions == ["typing"]


async def test_commands_round_trip_and_are_validated(fake: FakeTelegram, bot: Bot) -> None:
    await bot.set_my_commands([BotCommand("start", "Start"), BotCommand("summarize", "Recap")])
    assert [c.command for c in await bot.get_my_commands()] == ["start", "summarize"]
    assert fake.my_commands() == ["start", "summarize"]
    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Bad-Name", "x")])


# -- callback queries ---------------------------------------------------------------------------


async def pressed(fake: FakeTelegram, bot: Bot) -> str:
    """A button of a bot message was pressed; returns the callback query id."""
    await a_private_chat(fake)
    sent = await bot.send_message(USER, "result", reply_markup=keyboard("up", "down"))
    update = await fake.press_button(chat_id=USER, message_id=sent.message_id, data="up")
    return str(update["callback_query"]["id"])


async def test_a_pressed_button_yields_a_callback_query_update(
    fake: FakeTelegram, bot: Bot
) -> None:
    await a_private_chat(fake)
    sent = await bot.send_message(USER, "result", reply_markup=keyboard("up", "down"))
    raw = await fake.press_button(chat_id=USER, message_id=sent.message_id, text="down")
    update = Update.de_json(raw, bot)
    assert update.callback_query is not None
    assert update.callback_query.data == "down"
    assert update.callback_query.message is not None
    assert update.callback_query.message.message_id == sent.message_id


async def test_pressing_a_button_that_does_not_exist_is_a_test_error(
    fake: FakeTelegram, bot: Bot
) -> None:
    await a_private_chat(fake)
    sent = await bot.send_message(USER, "result", reply_markup=keyboard("up"))
    with pytest.raises(LookupError):
        await fake.press_button(chat_id=USER, message_id=sent.message_id, data="regenerate")


async def test_a_callback_query_can_be_answered_once(fake: FakeTelegram, bot: Bot) -> None:
    query_id = await pressed(fake, bot)
    assert await bot.answer_callback_query(query_id, text="Thanks!")
    assert fake.callback_queries[query_id].answered
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query(query_id)


async def test_a_late_answer_is_too_old(fake: FakeTelegram, bot: Bot, clock: ManualClock) -> None:
    query_id = await pressed(fake, bot)
    clock.advance(fake.callback_answer_timeout + 1)
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query(query_id)


async def test_an_answer_over_200_characters_is_rejected(fake: FakeTelegram, bot: Bot) -> None:
    query_id = await pressed(fake, bot)
    with pytest.raises(BadRequest):
        await bot.answer_callback_query(query_id, text="x" * 201)
    assert not fake.callback_queries[query_id].answered


# -- rate limits --------------------------------------------------------------------------------


async def test_a_burst_in_one_chat_gets_retry_after(clock: ManualClock) -> None:
    async with (
        FakeTelegram(clock=clock) as fake,
        Bot(DEFAULT_TOKEN, base_url=fake.base_url) as bot,
    ):
        await a_private_chat(fake)
        for i in range(RateLimits().per_chat_burst):
            await bot.send_message(USER, f"m{i}")
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(USER, "one too many")
        assert retry_after_seconds(caught.value) == 1
        clock.advance(1)
        await bot.send_message(USER, "after waiting")
        body = fake.calls_to("sendMessage", ok=False)[0].response
        assert body == {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 1",
            "parameters": {"retry_after": 1},
        }


async def test_a_group_gets_at_most_20_messages_a_minute(clock: ManualClock) -> None:
    limits = RateLimits(per_chat_per_second=100, per_chat_burst=100)
    async with (
        FakeTelegram(clock=clock, rate_limits=limits) as fake,
        Bot(DEFAULT_TOKEN, base_url=fake.base_url) as bot,
    ):
        await fake.group_message("hello", chat_id=GROUP)
        for i in range(20):
            await bot.send_message(GROUP, f"m{i}")
            clock.advance(1)
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(GROUP, "21st")
        assert retry_after_seconds(caught.value) == 40


async def test_the_overall_rate_is_limited_across_chats(clock: ManualClock) -> None:
    limits = RateLimits(global_per_second=2)
    async with (
        FakeTelegram(clock=clock, rate_limits=limits) as fake,
        Bot(DEFAULT_TOKEN, base_url=fake.base_url) as bot,
    ):
        for user_id in (1, 2, 3):
            await a_private_chat(fake, user_id)
        await bot.send_message(1, "a")
        await bot.send_message(2, "b")
        with pytest.raises(RetryAfter):
            await bot.send_message(3, "c")


async def test_forced_429_fails_the_next_calls_then_recovers(fake: FakeTelegram, bot: Bot) -> None:
    await a_private_chat(fake)
    fake.force_429(2, retry_after=7, methods=["sendMessage"])
    await bot.send_chat_action(USER, "typing")
    for _ in range(2):
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(USER, "hi")
        assert retry_after_seconds(caught.value) == 7
    await bot.send_message(USER, "hi")
    assert [m.text for m in fake.bot_messages(USER)] == ["hi"]


# -- receiving updates --------------------------------------------------------------------------


async def test_get_updates_returns_injected_updates_in_order(fake: FakeTelegram, bot: Bot) -> None:
    await fake.private_message("first")
    await fake.private_message("second")
    updates = await bot.get_updates()
    assert [u.message.text for u in updates if u.message] == ["first", "second"]


async def test_an_offset_confirms_earlier_updates(fake: FakeTelegram, bot: Bot) -> None:
    first = await fake.private_message("first")
    await fake.private_message("second")
    updates = await bot.get_updates(offset=first["update_id"] + 1)
    assert [u.message.text for u in updates if u.message] == ["second"]
    assert [u.update_id for u in await bot.get_updates()] == [updates[0].update_id]


async def test_limit_caps_the_batch(fake: FakeTelegram, bot: Bot) -> None:
    for i in range(3):
        await fake.private_message(f"m{i}")
    assert len(await bot.get_updates(limit=2)) == 2


async def test_a_long_poll_waits_until_an_update_arrives(fake: FakeTelegram, bot: Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=30))
    await asyncio.wait_for(fake.until_polling(), 10)
    await fake.private_message("late")
    updates = await asyncio.wait_for(poll, 10)
    assert [u.message.text for u in updates if u.message] == ["late"]


async def test_a_long_poll_without_updates_returns_nothing_at_its_timeout(bot: Bot) -> None:
    assert await bot.get_updates(timeout=1) == ()


async def test_a_newer_poll_terminates_a_waiting_one(fake: FakeTelegram, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=30))
    await asyncio.wait_for(fake.until_polling(), 10)
    # PTB allows one getUpdates at a time per Bot, so the newer poll is another instance.
    async with Bot(DEFAULT_TOKEN, base_url=fake.base_url) as other:
        await other.get_updates(timeout=0)
    with pytest.raises(Conflict):
        await first


async def test_a_group_mention_carries_a_mention_entity(fake: FakeTelegram, bot: Bot) -> None:
    await fake.group_message("draft a reply", chat_id=GROUP, mention_bot=True)
    (update,) = await bot.get_updates()
    assert update.message is not None
    assert update.message.chat.type == "supergroup"
    assert list(update.message.parse_entities(["mention"]).values()) == [f"@{fake.bot_username}"]


async def test_a_command_as_a_reply_links_the_replied_message(fake: FakeTelegram, bot: Bot) -> None:
    original = await fake.group_message("we ship on Friday", chat_id=GROUP, user_id=1002)
    await fake.command(
        "summarize", chat_id=GROUP, reply_to=original["message"]["message_id"], with_username=True
    )
    updates = await bot.get_updates()
    message = updates[-1].message
    assert message is not None and message.reply_to_message is not None
    assert message.reply_to_message.text == "we ship on Friday"
    assert list(message.parse_entities(["bot_command"]).values()) == [
        f"/summarize@{fake.bot_username}"
    ]


async def test_a_redelivered_update_comes_again_with_the_same_id(
    fake: FakeTelegram, bot: Bot
) -> None:
    update = await fake.private_message("once")
    first = await bot.get_updates()
    await fake.redeliver(update)
    again = await bot.get_updates(offset=first[-1].update_id + 1)
    assert [u.update_id for u in again] == [update["update_id"]]


# -- webhook ------------------------------------------------------------------------------------


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[tuple[dict[str, object], str | None]]]]:
    """A webhook endpoint that records bodies and secret headers and answers 200."""
    received: list[tuple[dict[str, object], str | None]] = []

    async def handle(request: web.Request) -> web.Response:
        received.append((await request.json(), request.headers.get(SECRET_HEADER)))
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/hook", received
    await runner.cleanup()


async def test_with_a_webhook_updates_are_posted_with_the_secret(
    fake: FakeTelegram,
    bot: Bot,
    receiver: tuple[str, list[tuple[dict[str, object], str | None]]],
) -> None:
    url, received = receiver
    await bot.set_webhook(url, secret_token="s3cret")
    update = await fake.private_message("via webhook")
    assert received == [(update, "s3cret")]
    info = await bot.get_webhook_info()
    assert (info.url, info.pending_update_count) == (url, 0)


async def test_a_webhook_post_can_carry_a_wrong_or_no_secret(
    fake: FakeTelegram,
    bot: Bot,
    receiver: tuple[str, list[tuple[dict[str, object], str | None]]],
) -> None:
    url, received = receiver
    await bot.set_webhook(url, secret_token="s3cret")
    await fake.post_to_webhook({"message": {}}, secret="wrong")
    await fake.post_to_webhook({"message": {}}, secret=None)
    assert [secret for _, secret in received] == ["wrong", None]


async def test_get_updates_conflicts_while_a_webhook_is_set(
    fake: FakeTelegram,
    bot: Bot,
    receiver: tuple[str, list[tuple[dict[str, object], str | None]]],
) -> None:
    await bot.set_webhook(receiver[0])
    with pytest.raises(Conflict):
        await bot.get_updates()
    await bot.delete_webhook()
    assert await bot.get_updates() == ()


async def test_a_failed_webhook_delivery_stays_pending(fake: FakeTelegram, bot: Bot) -> None:
    await bot.set_webhook("http://127.0.0.1:9/unreachable")
    await fake.private_message("lost?")
    info = await bot.get_webhook_info()
    assert info.pending_update_count == 1
    assert info.last_error_message


# -- sendMessageDraft -------------------------------------------------------------------------


async def test_a_draft_shows_in_a_private_chat_until_a_message_ends_it(
    fake: FakeTelegram, bot: Bot
) -> None:
    await a_private_chat(fake)
    assert await bot.send_message_draft(USER, 7, "")  # the "Thinking…" placeholder
    assert await bot.send_message_draft(USER, 7, "Dear Dana,")
    chat = fake.chat(USER)
    assert chat.drafts == [(7, ""), (7, "Dear Dana,")]
    assert chat.open_drafts == {7: "Dear Dana,"}
    assert fake.bot_messages(USER) == []
    await bot.send_message(USER, "Dear Dana, the shipment is late.")
    assert chat.open_drafts == {}
    (call,) = fake.calls_to("sendMessageDraft", ok=True)[-1:]
    assert call.params["draft_id"] == 7


async def test_a_draft_is_refused_in_a_group(fake: FakeTelegram, bot: Bot) -> None:
    await fake.group_message("hello", chat_id=GROUP)
    with pytest.raises(BadRequest, match=r"(?i)textdraft_peer_invalid"):
        await bot.send_message_draft(GROUP, 7, "Dear Dana,")
    assert fake.chat(GROUP).drafts == []


async def test_a_draft_needs_a_non_zero_draft_id(fake: FakeTelegram, bot: Bot) -> None:
    await a_private_chat(fake)
    with pytest.raises(BadRequest, match=r"(?i)draft_id_invalid"):
        await bot.send_message_draft(USER, 0, "Dear Dana,")


async def test_a_draft_over_4096_characters_is_too_long(fake: FakeTelegram, bot: Bot) -> None:
    await a_private_chat(fake)
    assert await bot.send_message_draft(USER, 7, "x" * 4096)
    with pytest.raises(BadRequest, match="too long"):
        await bot.send_message_draft(USER, 7, "x" * 4097)


async def test_a_burst_of_drafts_gets_retry_after(clock: ManualClock) -> None:
    async with (
        FakeTelegram(clock=clock) as fake,
        Bot(DEFAULT_TOKEN, base_url=fake.base_url) as bot,
    ):
        await a_private_chat(fake)
        for i in range(RateLimits().per_chat_burst):
            await bot.send_message_draft(USER, 7, f"part {i}")
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message_draft(USER, 7, "one too many")
        assert retry_after_seconds(caught.value) == 1
        clock.advance(1)
        assert await bot.send_message_draft(USER, 7, "after waiting")
