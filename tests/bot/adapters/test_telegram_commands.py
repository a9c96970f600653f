"""Telegram commands go straight to the task kind they name: the classifier is never asked
what ``/cancel 12`` means (here it answers nonsense, and the commands still work)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from bot.adapters.telegram.commands import Usage, command_request
from bot.texts import t
from bot.types import Action, Button
from models.generation.base import Generator
from models.intents.spec import KindTraits, TaskSpec
from tests.bot.adapters import test_telegram as wiring
from tests.bot.adapters.test_telegram import USER, Start, eventually

fake = wiring.fake
start = wiring.start

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning"
)

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


class Nonsense:
    """A classifier that reads every message as a request for help."""

    def parse(
        self,
        text: str,
        *,
        now_iso: str | None = None,
        timezone: str = "UTC",
        traits: KindTraits | None = None,
    ) -> list[TaskSpec]:
        return [TaskSpec("help", span=(0, len(text)))]


@pytest.fixture
def parser() -> Nonsense:
    return Nonsense()


def spec(command: str, args: str = "") -> TaskSpec | Usage:
    text = f"/{command} {args}".strip()
    return command_request(command, text, args, now=NOW, timezone="UTC")


# -- the mapping (pure) ---------------------------------------------------------------------


def test_cancel_with_an_id_is_a_cancel_of_that_task() -> None:
    found = spec("cancel", "12")
    assert isinstance(found, TaskSpec)
    assert (found.intent, found.slots["task_ids"]) == ("task.cancel", [12])


def test_cancel_without_an_id_is_answered_with_its_usage() -> None:
    assert spec("cancel") == Usage("tg.usage.cancel")


def test_status_takes_every_id_given() -> None:
    found = spec("status", "3 and 4")
    assert isinstance(found, TaskSpec)
    assert (found.intent, found.slots["task_ids"]) == ("task.status", [3, 4])


def test_email_reads_its_slots_from_the_arguments() -> None:
    found = spec("email", "to Dana about the delayed shipment")
    assert isinstance(found, TaskSpec)
    assert found.intent == "email.draft"
    assert "Dana" in found.slots["recipients"]
    assert not found.missing
    text = "/email to Dana about the delayed shipment"
    assert text[found.span[0] : found.span[1]] == "to Dana about the delayed shipment"
    assert spec("email") == Usage("tg.usage.email")


def test_email_without_a_recipient_is_missing_one() -> None:
    found = spec("email", "about the delayed shipment")
    assert isinstance(found, TaskSpec)
    assert found.missing == ("recipients",)


def test_digest_subscribes_at_nine_by_default_and_off_unsubscribes() -> None:
    daily = spec("digest")
    assert isinstance(daily, TaskSpec)
    assert daily.intent == "digest.subscribe"
    assert daily.slots["cron"] == {"hour": 9, "minute": 0}
    off = spec("digest", "off")
    assert isinstance(off, TaskSpec) and off.intent == "digest.unsubscribe"


def test_summarize_summarizes_the_chat() -> None:
    found = spec("summarize", "since yesterday")
    assert isinstance(found, TaskSpec)
    assert (found.intent, found.slots["scope"]) == ("summarize", "channel")
    assert found.slots["since"] is not None
    last = spec("summarize", "last 20")
    assert isinstance(last, TaskSpec) and last.slots["scope"] == "channel"


def test_reply_drafts_a_reply_to_the_message() -> None:
    found = spec("reply", "politely decline")
    assert isinstance(found, TaskSpec)
    assert found.intent == "reply.draft"
    assert (found.slots["target"], found.slots["instructions"]) == ("message", "politely decline")


# -- through the bot ------------------------------------------------------------------------


async def test_commands_work_whatever_the_classifier_says(start: Start) -> None:
    h = await start()
    await h.fake.command("email", "to Dana about the delayed shipment")
    await eventually(lambda: h.fake.bot_messages(USER))
    (task,) = await h.tasks()
    assert task.kind == "email.draft"

    await h.fake.command("cancel", str(task.id))
    await eventually(lambda: t("cancel.done", "en", id=task.id) in h.texts(USER))
    (cancelled,) = await h.tasks()
    assert cancelled.status == "cancelled"

    await h.fake.command("status", str(task.id))
    await eventually(lambda: len(h.fake.bot_messages(USER)) == 3)
    assert f"#{task.id}" in h.texts(USER)[-1]

    # Free text still goes to the classifier (which reads everything as help).
    await h.fake.private_message("cancel the email please")
    await eventually(lambda: len(h.fake.bot_messages(USER)) == 4)
    assert h.texts(USER)[-1].startswith(t("help", "en"))


async def test_a_digest_command_subscribes_the_chat(start: Start) -> None:
    h = await start()
    await h.fake.command("digest", "at 9am")
    await eventually(lambda: h.fake.bot_messages(USER))
    (digest,) = await h.app.repo.list_digests()
    assert digest.channel == str(USER)
    await h.fake.command("digest", "off")
    await eventually(lambda: len(h.fake.bot_messages(USER)) == 2)
    assert await h.app.repo.list_digests() == []


async def test_a_double_tap_on_thumbs_down_posts_one_menu(
    start: Start, generator: Generator
) -> None:
    h = await start(generator=generator)
    await h.fake.command("email", "to Dana about the delayed shipment")
    await eventually(lambda: h.fake.bot_messages(USER))
    await h.work()
    await h.deliver()
    (task,) = await h.tasks()
    down = Button("", Action.rate_down, task.id or 0).data
    (result,) = [m for m in h.fake.bot_messages(USER) if down in m.callback_data()]

    taps = [
        await h.fake.press_button(chat_id=USER, message_id=result.message_id, data=down)
        for _ in range(2)
    ]
    queries = [h.fake.callback_queries[u["callback_query"]["id"]] for u in taps]
    await eventually(lambda: all(q.answered for q in queries))
    why = Button("", Action.why, task.id or 0, "wrong_kind").data

    def menus() -> int:
        return sum(1 for m in h.fake.bot_messages(USER) if why in m.callback_data())

    await eventually(lambda: menus() >= 1)
    await asyncio.sleep(0.2)  # room for a second menu, were one coming
    assert menus() == 1
    assert [v.score for v in await h.app.repo.feedback_of(task.id or 0)] == [-1]
