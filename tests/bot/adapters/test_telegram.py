"""The Telegram adapter, with the real python-telegram-bot Application against the fake Bot API."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from bot.adapters.base import Services
from bot.adapters.telegram import COMMANDS, FloodLimiter, TelegramAdapter
from bot.app import App, build_app
from bot.config import Settings
from bot.texts import EN, t
from bot.types import Action, Button, Section, Target, View
from models.generation.base import Generator
from models.intents.spec import IntentParser
from storage.tables import ChatMessage, Task, utcnow
from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeTelegram, RateLimits, free_port

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning"
)

USER = 1001
OTHER_USER = 2002
GROUP = -1001234567890
BOT_ID = DEFAULT_TOKEN.split(":")[0]


def unpaced() -> FloodLimiter:
    """No client-side pacing (tests that are not about rate limits)."""
    return FloodLimiter.unlimited()


async def eventually(check: Callable[[], Any], within: float = 15.0) -> None:
    """Wait until ``check()`` (sync or async) is truthy."""
    for _ in range(int(within / 0.02)):
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


@dataclass
class Harness:
    """A wired atombot whose only adapter is Telegram, talking to the fake Bot API."""

    fake: FakeTelegram
    app: App
    adapter: TelegramAdapter

    async def deliver(self) -> None:
        """One pass of the delivery job (post/edit progress and results), once every receipt
        being posted has become its request's progress message."""
        await eventually(self._receipts_adopted)
        await self.app.jobs.deliverer.tick()

    async def _receipts_adopted(self) -> bool:
        now = utcnow()
        pending = await self.app.repo.pending_deliveries(platforms=["telegram"])
        return not any(
            d.message_id is None and not d.failures and (d.next_attempt_at or now) > now
            for d in pending
        )

    async def work(self) -> None:
        """Run the queued generative tasks to the end."""
        assert self.app.worker is not None
        await self.app.worker.run_until_idle()

    async def tasks(self, user: int = USER) -> list[Task]:
        """The user's tasks, oldest first."""
        found = await self.app.repo.list_tasks(platform="telegram", tenant=BOT_ID, user=str(user))
        return sorted(found, key=lambda x: x.id or 0)

    async def remembered(self, chat_id: int = GROUP) -> list[str]:
        """Texts kept in chat memory for a chat."""
        rows: list[ChatMessage] = await self.app.repo.chat_messages(
            platform="telegram", tenant=BOT_ID, channel=str(chat_id)
        )
        return [r.text for r in rows]

    def texts(self, chat_id: int) -> list[str]:
        """The bot's current messages in a chat."""
        return [m.text for m in self.fake.bot_messages(chat_id)]


Start = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(rate_limits=RateLimits.unlimited()) as server:
        yield server


@pytest.fixture
async def start(
    settings: Settings, parser: IntentParser, fake: FakeTelegram
) -> AsyncIterator[Start]:
    """Start atombot with the Telegram adapter (settings overrides as keyword arguments)."""
    harnesses: list[Harness] = []

    async def _start(
        *,
        generator: Generator | None = None,
        limiter: FloodLimiter | None = None,
        adapter_options: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> Harness:
        configured = settings.model_copy(
            update={
                "telegram_bot_token": DEFAULT_TOKEN,
                "telegram_api_url": fake.base_url,
                **overrides,
            }
        )
        adapter = TelegramAdapter(
            configured,
            poll_timeout=1.0,
            rate_limiter=limiter or unpaced(),
            **(adapter_options or {}),
        )
        adapter.min_edit_interval = 0.0
        app = await build_app(
            configured,
            parser=parser,
            generator=generator,
            adapters=[adapter],
            with_worker=generator is not None,
            migrate=False,
        )
        await adapter.start(Services(router=app.router, repo=app.repo, notify=app.notify))
        harness = Harness(fake, app, adapter)
        harnesses.append(harness)
        return harness

    yield _start
    for harness in harnesses:
        await harness.app.stop()


# -- start-up ---------------------------------------------------------------------------------


async def test_commands_are_registered_with_set_my_commands(start: Start) -> None:
    h = await start()
    assert h.fake.my_commands() == list(COMMANDS)
    assert h.fake.my_commands(language_code="zh") == list(COMMANDS)


async def test_polling_uses_the_configured_api_url(start: Start) -> None:
    h = await start()
    await eventually(lambda: h.fake.calls_to("getUpdates"))
    assert h.fake.calls_to("getMe", ok=True)


# -- private chats ----------------------------------------------------------------------------


async def test_private_message_gets_receipt_progress_and_result_with_buttons(
    start: Start, generator: Generator
) -> None:
    # The progress message is edited (private chats stream only with ATOMBOT_STREAM on).
    h = await start(generator=generator, stream=False)
    update = await h.fake.private_message("draft an email to Dana about the delayed shipment")
    await eventually(lambda: h.fake.bot_messages(USER))
    (receipt,) = h.fake.bot_messages(USER)
    (task,) = await h.tasks()
    assert f"#{task.id}" in receipt.text
    assert receipt.reply_to_message_id == update["message"]["message_id"]

    await h.deliver()
    (progress,) = h.fake.bot_messages(USER)
    assert progress.message_id == receipt.message_id
    assert progress.text.startswith(f"⏳ #{task.id}")
    assert progress.callback_data() == [f"ab:cancel:{task.id}"]
    await eventually(lambda: "typing" in h.fake.chat(USER).actions)

    await h.work()
    await h.deliver()
    (result,) = h.fake.bot_messages(USER)
    assert result.message_id == receipt.message_id
    assert result.text.startswith(f"✅ #{task.id}")
    assert result.callback_data() == [
        f"ab:up:{task.id}",
        f"ab:down:{task.id}",
        f"ab:regen:{task.id}",
    ]
    assert result.history[0] == receipt.history[0]


async def test_the_delivery_job_posts_nothing_while_the_receipt_is_on_its_way(
    start: Start,
) -> None:
    # The progress message is edited (private chats stream only with ATOMBOT_STREAM on).
    h = await start(stream=False)
    release = h.fake.hold_replies("sendMessage")
    await h.fake.private_message("draft an email to Dana about the delayed shipment")
    await eventually(lambda: h.fake.bot_messages(USER))
    # The receipt is in the chat, but the adapter has not heard its message id yet.
    tick = asyncio.create_task(h.app.jobs.deliverer.tick())
    await asyncio.wait([tick], timeout=2.0)
    release()
    await tick
    await h.deliver()
    (progress,) = h.fake.bot_messages(USER)
    assert progress.text.startswith("⏳")
    assert len(h.fake.calls_to("sendMessage")) == 1


async def test_unchanged_progress_is_not_edited_again(start: Start) -> None:
    # The progress message is edited (private chats stream only with ATOMBOT_STREAM on).
    h = await start(stream=False)
    await h.fake.private_message("draft an email to Dana about the delayed shipment")
    await eventually(lambda: h.fake.bot_messages(USER))
    await h.deliver()
    edits = len(h.fake.calls_to("editMessageText"))
    await h.deliver()
    await h.adapter.edit(
        Target("telegram", BOT_ID, str(USER)),
        str(h.fake.bot_messages(USER)[0].message_id),
        View(sections=(Section(h.fake.bot_messages(USER)[0].text),), buttons=()),
    )
    assert len(h.fake.calls_to("editMessageText")) == edits + 1
    await h.adapter.edit(
        Target("telegram", BOT_ID, str(USER)),
        str(h.fake.bot_messages(USER)[0].message_id),
        View(sections=(Section(h.fake.bot_messages(USER)[0].text),), buttons=()),
    )
    assert len(h.fake.calls_to("editMessageText")) == edits + 1
    assert not h.fake.calls_to("editMessageText", ok=False)


async def test_the_same_update_delivered_twice_creates_one_task(start: Start) -> None:
    h = await start()
    update = await h.fake.private_message("draft an email to Dana about the delayed shipment")
    await eventually(lambda: h.fake.bot_messages(USER))
    await h.fake.redeliver(update)
    await h.fake.private_message("status")
    await eventually(lambda: len(h.fake.bot_messages(USER)) >= 2)
    assert len(await h.tasks()) == 1
    assert len(h.fake.bot_messages(USER)) == 2


async def test_a_redelivery_after_a_restart_is_recognised_by_the_router(start: Start) -> None:
    first = await start()
    update = await first.fake.private_message("draft an email to Dana about the delayed shipment")
    await eventually(lambda: first.fake.bot_messages(USER))
    await first.adapter.stop()
    second = await start()
    await second.fake.redeliver(update)
    await second.fake.private_message("status")
    await eventually(lambda: len(second.fake.bot_messages(USER)) >= 2)
    assert len(await second.tasks()) == 1
    assert len(second.fake.bot_messages(USER)) == 2


async def test_a_user_cannot_cancel_another_users_task(start: Start) -> None:
    h = await start()
    await h.fake.private_message("draft an email to Dana about the delayed shipment")
    await eventually(lambda: h.fake.bot_messages(USER))
    (task,) = await h.tasks()
    await h.fake.command("cancel", str(task.id), user_id=OTHER_USER)
    await eventually(lambda: h.fake.bot_messages(OTHER_USER))
    assert h.texts(OTHER_USER) == [t("cancel.not_found", "en", id=task.id)]
    (still,) = await h.tasks()
    assert still.status == "queued"


# -- groups and chat memory --------------------------------------------------------------------


async def test_a_group_message_not_addressed_to_the_bot_is_only_remembered(start: Start) -> None:
    h = await start()
    await h.fake.group_message("we ship on Friday", chat_id=GROUP, user_id=1002)
    # Updates of one chat are processed in order: once this is answered, the first is done.
    await h.fake.group_message("status", chat_id=GROUP, mention_bot=True)
    await eventually(lambda: h.fake.bot_messages(GROUP))
    assert h.texts(GROUP) == [t("status.none", "en")]
    assert await h.remembered() == ["we ship on Friday"]
    assert await h.tasks(1002) == []


async def test_a_group_mention_creates_a_task(start: Start) -> None:
    h = await start()
    await h.fake.group_message(
        "draft an email to Dana about the delayed shipment", chat_id=GROUP, mention_bot=True
    )
    await eventually(lambda: h.fake.bot_messages(GROUP))
    (task,) = await h.tasks()
    assert task.kind == "email.draft"
    assert await h.remembered() == []


async def test_a_reply_to_the_bot_creates_a_task(start: Start) -> None:
    h = await start()
    await h.fake.group_message("status", chat_id=GROUP, mention_bot=True)
    await eventually(lambda: h.fake.bot_messages(GROUP))
    bot_message = h.fake.bot_messages(GROUP)[0].message_id
    await h.fake.group_message(
        "draft an email to Dana about the delayed shipment", chat_id=GROUP, reply_to=bot_message
    )
    await eventually(lambda: len(h.fake.bot_messages(GROUP)) == 2)
    assert [x.kind for x in await h.tasks()] == ["email.draft"]


async def test_summarize_as_a_reply_summarizes_from_that_message_on(start: Start) -> None:
    h = await start()
    await h.fake.group_message("Lunch at noon?", chat_id=GROUP, user_id=1002)
    ship = await h.fake.group_message("We ship on Friday.", chat_id=GROUP, user_id=1003)
    await h.fake.group_message("Dana owns QA.", chat_id=GROUP, user_id=1002)
    await h.fake.command(
        "summarize",
        chat_id=GROUP,
        reply_to=ship["message"]["message_id"],
        with_username=True,
    )
    await eventually(lambda: h.fake.bot_messages(GROUP))
    (task,) = await h.tasks()
    assert task.kind == "summarize"
    material = task.inputs["material"]
    assert "We ship on Friday." in material
    assert "Dana owns QA." in material
    assert "Lunch at noon?" not in material


async def test_summarize_last_n_takes_the_latest_messages(start: Start) -> None:
    h = await start()
    for text in ("one", "two", "three"):
        await h.fake.group_message(text, chat_id=GROUP, user_id=1002)
    await h.fake.command("summarize", "last 2", chat_id=GROUP)
    await eventually(lambda: h.fake.bot_messages(GROUP))
    (task,) = await h.tasks()
    assert [line.split(": ", 1)[1] for line in task.inputs["material"].splitlines()] == [
        "two",
        "three",
    ]


async def _keep(h: Harness, text: str, *, days_ago: float, message_id: int) -> None:
    """A group message the bot kept ``days_ago`` days ago."""
    await h.app.repo.remember_message(
        ChatMessage(
            platform="telegram",
            tenant=BOT_ID,
            channel=str(GROUP),
            message_id=str(message_id),
            author="Ann",
            text=text,
            sent_at=utcnow() - timedelta(days=days_ago),
        )
    )


@pytest.mark.parametrize(
    ("how", "request_text"),
    [("command", "since yesterday"), ("mention", "summarize this chat since yesterday")],
)
async def test_summarize_since_yesterday_reads_the_window_not_only_today(
    start: Start, how: str, request_text: str
) -> None:
    h = await start()
    await _keep(h, "Old news from last week.", days_ago=3, message_id=900_001)
    await _keep(h, "We ship on Friday.", days_ago=1, message_id=900_002)
    await h.fake.group_message("Dana owns QA.", chat_id=GROUP, user_id=1002)
    await eventually(lambda: _count(h.remembered(), 3))
    if how == "command":
        await h.fake.command("summarize", request_text, chat_id=GROUP)
    else:
        await h.fake.group_message(request_text, chat_id=GROUP, mention_bot=True)
    await eventually(lambda: h.fake.bot_messages(GROUP))
    (task,) = await h.tasks()
    assert task.kind == "summarize"
    material = task.inputs["material"]
    assert "We ship on Friday." in material
    assert "Dana owns QA." in material
    assert "Old news from last week." not in material


async def _count(rows: Awaitable[list[str]], n: int) -> bool:
    return len(await rows) == n


async def test_reply_command_drafts_a_reply_to_the_replied_message(start: Start) -> None:
    h = await start()
    question = await h.fake.group_message(
        "Can you send the report by Monday?", chat_id=GROUP, user_id=1002
    )
    await h.fake.command("reply", chat_id=GROUP, reply_to=question["message"]["message_id"])
    await eventually(lambda: h.fake.bot_messages(GROUP))
    (task,) = await h.tasks()
    assert task.kind == "reply.draft"
    assert "Can you send the report by Monday?" in task.inputs["conversation"]


async def test_an_opted_out_chat_stores_nothing(start: Start) -> None:
    h = await start()
    await h.fake.group_message("old news", chat_id=GROUP, user_id=1002)
    await h.fake.command("forget", chat_id=GROUP)
    await h.fake.group_message("secret plans", chat_id=GROUP, user_id=1002)
    await h.fake.command("privacy", chat_id=GROUP)
    await eventually(lambda: len(h.fake.bot_messages(GROUP)) == 2)
    forgotten, privacy = h.texts(GROUP)
    # /forget deletes everything held for the chat and says what: here one kept message.
    what = EN["privacy.table.chatmessage"].format(n=1)
    assert forgotten.splitlines() == [
        EN["privacy.forgotten"].format(what=what),
        EN["privacy.stopped_keeping"],
    ]
    assert privacy == EN["tg.privacy.off"].format(days=7)
    assert await h.remembered() == []


async def test_privacy_on_resumes_remembering(start: Start) -> None:
    h = await start()
    await h.fake.command("privacy", "off", chat_id=GROUP)
    await h.fake.command("privacy", "on", chat_id=GROUP)
    await h.fake.group_message("kept again", chat_id=GROUP, user_id=1002)
    await h.fake.command("privacy", chat_id=GROUP)
    await eventually(lambda: len(h.fake.bot_messages(GROUP)) == 3)
    assert await h.remembered() == ["kept again"]


# -- buttons -----------------------------------------------------------------------------------


async def test_a_rating_is_answered_stored_and_shown_on_the_message(
    start: Start, generator: Generator
) -> None:
    h = await start(generator=generator)
    await h.fake.private_message("draft an email to Dana about the delayed shipment")
    await eventually(lambda: h.fake.bot_messages(USER))
    await h.work()
    await h.deliver()
    (task,) = await h.tasks()
    message = h.fake.bot_messages(USER)[0]

    update = await h.fake.press_button(
        chat_id=USER,
        message_id=message.message_id,
        data=Button("", Action.rate_up, task.id or 0).data,
    )
    query = h.fake.callback_queries[update["callback_query"]["id"]]
    await eventually(lambda: query.answered)
    await eventually(lambda: h.app.repo.feedback_of(task.id or 0))
    await h.deliver()
    assert t("status.tally", "en", up=1, down=0) in h.fake.bot_messages(USER)[0].text

    await h.fake.press_button(
        chat_id=USER, message_id=message.message_id, data=f"ab:down:{task.id}"
    )

    async def changed() -> bool:
        votes = await h.app.repo.feedback_of(task.id or 0)
        return [v.score for v in votes] == [-1]

    await eventually(changed)
    await h.deliver()
    assert t("status.tally", "en", up=0, down=1) in h.fake.bot_messages(USER)[0].text


async def test_cancel_button_cancels_and_says_so(start: Start) -> None:
    # The progress message is edited (private chats stream only with ATOMBOT_STREAM on).
    h = await start(stream=False)
    await h.fake.private_message("draft an email to Dana about the delayed shipment")
    await eventually(lambda: h.fake.bot_messages(USER))
    await h.deliver()
    (task,) = await h.tasks()
    message = h.fake.bot_messages(USER)[0]
    await h.fake.press_button(chat_id=USER, message_id=message.message_id, text="Cancel")
    await eventually(lambda: len(h.fake.bot_messages(USER)) == 2)
    assert h.texts(USER)[1] == t("cancel.done", "en", id=task.id)
    (cancelled,) = await h.tasks()
    assert cancelled.status == "cancelled"


# -- outbound limits ---------------------------------------------------------------------------


async def test_a_long_text_is_split_into_messages_within_4096(start: Start) -> None:
    h = await start()
    h.fake.private_chat(USER)
    paragraphs = [f"Paragraph {i}: " + "word " * 150 for i in range(12)]
    await h.adapter.notify(Target("telegram", BOT_ID, str(USER)), "\n\n".join(paragraphs))
    sent = [m for m in h.fake.bot_messages(USER) if m.text.startswith("Paragraph")]
    assert len(sent) > 1
    assert all(len(m.text) <= 4096 for m in sent)
    assert " ".join(m.text for m in sent).split() == " ".join(paragraphs).split()


async def test_a_long_view_keeps_its_buttons_on_the_last_part(start: Start) -> None:
    h = await start()
    h.fake.private_chat(USER)
    view = View(
        sections=(Section("x " * 3000, title="✅ #1 summary"),),
        buttons=((Button("👍", Action.rate_up, 1),),),
    )
    await h.adapter.send(Target("telegram", BOT_ID, str(USER)), view)
    first, last = h.fake.bot_messages(USER)[-2:]
    assert first.callback_data() == []
    assert last.callback_data() == ["ab:up:1"]


async def test_429_is_waited_out_and_retried_nothing_lost(start: Start) -> None:
    h = await start()
    h.fake.force_429(1, retry_after=1, methods=["sendMessage"])
    await h.fake.private_message("draft an email to Dana about the delayed shipment")
    await eventually(lambda: h.fake.bot_messages(USER))
    (rejected,) = h.fake.calls_to("sendMessage", ok=False)
    assert rejected.status == 429
    (task,) = await h.tasks()
    assert [f"#{task.id}" in x for x in h.texts(USER)] == [True]


async def test_pacing_keeps_a_burst_within_the_flood_limits(
    start: Start, fake: FakeTelegram
) -> None:
    fake.set_rate_limits(RateLimits())
    h = await start(limiter=FloodLimiter())
    h.fake.private_chat(USER)
    for i in range(5):
        await h.adapter.notify(Target("telegram", BOT_ID, str(USER)), f"message {i}")
    assert not fake.calls_to("sendMessage", ok=False)
    assert h.texts(USER) == [f"message {i}" for i in range(5)]


# -- access and webhook ------------------------------------------------------------------------


async def test_chats_outside_the_allowlist_get_a_polite_refusal(start: Start) -> None:
    h = await start(telegram_allowed_chats=f"{USER}")
    await h.fake.private_message(
        "draft an email to Dana about the delayed shipment", user_id=OTHER_USER
    )
    await eventually(lambda: h.fake.bot_messages(OTHER_USER))
    assert h.texts(OTHER_USER) == [t("error.not_allowed", "en")]
    assert await h.tasks(OTHER_USER) == []


async def test_a_group_outside_the_allowlist_is_not_remembered(start: Start) -> None:
    h = await start(telegram_allowed_chats=f"{USER}")
    await h.fake.group_message("we ship on Friday", chat_id=GROUP, user_id=OTHER_USER)
    await h.fake.group_message("status", chat_id=GROUP, user_id=OTHER_USER, mention_bot=True)
    await eventually(lambda: h.fake.bot_messages(GROUP))
    assert h.texts(GROUP) == [t("error.not_allowed", "en")]
    assert await h.remembered() == []


async def test_webhook_with_a_wrong_or_missing_secret_is_refused_and_stores_nothing(
    start: Start,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram"
    h = await start(
        telegram_webhook_url=url,
        telegram_webhook_secret="s3cret",
        adapter_options={"webhook_listen": "127.0.0.1", "webhook_port": port},
    )
    assert (h.fake.webhook.url, h.fake.webhook.secret_token) == (url, "s3cret")
    refused = h.fake.message_update("draft an email to Dana about the delayed shipment")
    assert await h.fake.post_to_webhook(refused, secret="wrong") == 403
    assert await h.fake.post_to_webhook(refused, secret=None) == 403
    # Updates of one chat are handled in order: once this is answered, nothing else is pending.
    accepted = h.fake.message_update("status")
    assert await h.fake.post_to_webhook(accepted, secret="s3cret") == 200
    await eventually(lambda: h.fake.bot_messages(USER))
    assert h.texts(USER) == [t("status.none", "en")]
    assert await h.tasks() == []
