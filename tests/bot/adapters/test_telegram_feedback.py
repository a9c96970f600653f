"""Why a 👎 in Telegram: the inline-keyboard menu replying to a result, "wrong kind of task"
re-planning the request, and a forced reply for the voter's own words, through
python-telegram-bot against the fake Bot API."""

from __future__ import annotations

import pytest

from bot.types import OTHER_REASON, Action, Button
from models.generation.base import Generator
from storage.tables import CorrectionStatus, TaskStatus
from tests.bot.adapters import test_telegram as wiring
from tests.bot.adapters.test_telegram import (
    BOT_ID,
    GROUP,
    OTHER_USER,
    USER,
    Harness,
    Start,
    eventually,
)
from tests.fakes.telegram_api import StoredMessage

# The wired bot of the Telegram adapter's tests, reused (the fixtures by name).
fake = wiring.fake
start = wiring.start

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning"
)

REQUEST = "draft an email to Dana about the delayed shipment"


def data(action: Action, task_id: int, choice: str | None = None) -> str:
    return Button("", action, task_id, choice).data


def with_button(h: Harness, chat_id: int, wanted: str) -> StoredMessage | None:
    """The bot's message in ``chat_id`` offering the button ``wanted``, if any."""
    found = [m for m in h.fake.bot_messages(chat_id) if wanted in m.callback_data()]
    return found[-1] if found else None


async def result(h: Harness, chat_id: int, *, group: bool = False) -> tuple[int, StoredMessage]:
    """A delivered email draft of USER in ``chat_id``: its task id and result message."""
    if group:
        await h.fake.group_message(REQUEST, chat_id=chat_id, user_id=USER, mention_bot=True)
    else:
        await h.fake.private_message(REQUEST, user_id=USER)
    await eventually(lambda: h.fake.bot_messages(chat_id))
    await h.work()
    await h.deliver()
    (task,) = await h.tasks()
    message = with_button(h, chat_id, data(Action.rate_down, task.id or 0))
    assert message is not None
    return task.id or 0, message


async def press(h: Harness, chat_id: int, message: StoredMessage, wanted: str, user: int) -> None:
    update = await h.fake.press_button(
        chat_id=chat_id, message_id=message.message_id, data=wanted, user_id=user
    )
    query = h.fake.callback_queries[update["callback_query"]["id"]]
    await eventually(lambda: query.answered)


async def test_wrong_kind_then_a_kind_delivers_a_new_attempt_and_records_a_correction(
    start: Start, generator: Generator
) -> None:
    h = await start(generator=generator, stream=False)  # the result message is edited
    task_id, message = await result(h, USER)

    await press(h, USER, message, data(Action.rate_down, task_id), USER)
    await eventually(lambda: with_button(h, USER, data(Action.why, task_id, "wrong_kind")))
    reasons = with_button(h, USER, data(Action.why, task_id, "wrong_kind"))
    assert reasons is not None and reasons.reply_to_message_id == message.message_id
    assert data(Action.why, task_id, OTHER_REASON) in reasons.callback_data()

    await press(h, USER, reasons, data(Action.why, task_id, "wrong_kind"), USER)
    kind = data(Action.replan, task_id, "summarize")
    await eventually(lambda: kind in h.fake.chat(USER).messages[reasons.message_id].callback_data())
    await press(h, USER, reasons, kind, USER)

    async def replanned() -> bool:
        return len(await h.tasks()) == 2

    await eventually(replanned)
    await eventually(lambda: "Redoing" in h.fake.chat(USER).messages[reasons.message_id].text)
    assert h.fake.chat(USER).messages[reasons.message_id].callback_data() == []
    await h.work()
    await h.deliver()

    _, second = await h.tasks()
    assert second.kind == "summarize" and second.retry_of == task_id
    assert second.status == TaskStatus.succeeded
    assert any(f"#{second.id}" in m.text for m in h.fake.bot_messages(USER))
    [correction] = await h.app.repo.corrections()
    assert (
        correction.platform,
        correction.tenant,
        correction.channel,
        correction.user,
        correction.text,
        correction.wrong_kind,
        correction.right_kind,
        correction.task_id,
        correction.status,
    ) == (
        "telegram",
        BOT_ID,
        str(USER),
        str(USER),
        REQUEST,
        "email.draft",
        "summarize",
        task_id,
        CorrectionStatus.active,
    )


async def test_in_a_group_only_the_voter_explains_and_their_reply_is_the_note(
    start: Start, generator: Generator
) -> None:
    h = await start(generator=generator)
    task_id, message = await result(h, GROUP, group=True)
    await press(h, GROUP, message, data(Action.rate_down, task_id), USER)
    await eventually(lambda: with_button(h, GROUP, data(Action.why, task_id, "wrong_kind")))
    reasons = with_button(h, GROUP, data(Action.why, task_id, "wrong_kind"))
    assert reasons is not None

    await press(h, GROUP, reasons, data(Action.why, task_id, "wrong_kind"), OTHER_USER)
    await eventually(lambda: any("Only someone" in m.text for m in h.fake.bot_messages(GROUP)))
    # The menu is still the voter's to use; the bystander's pick changed nothing.
    assert data(Action.why, task_id, "too_long") in reasons.callback_data()
    [vote] = await h.app.repo.feedback_of(task_id)
    assert vote.reason is None

    await press(h, GROUP, reasons, data(Action.why, task_id, OTHER_REASON), USER)
    await eventually(
        lambda: any((m.reply_markup or {}).get("force_reply") for m in h.fake.bot_messages(GROUP))
    )
    (prompt,) = [m for m in h.fake.bot_messages(GROUP) if (m.reply_markup or {}).get("force_reply")]
    await h.fake.group_message(
        "Dana should get it in German", chat_id=GROUP, user_id=USER, reply_to=prompt.message_id
    )

    async def noted() -> bool:
        votes = await h.app.repo.feedback_of(task_id)
        return bool(votes) and votes[0].comment == "Dana should get it in German"

    await eventually(noted)
    await eventually(lambda: any("is saved" in m.text for m in h.fake.bot_messages(GROUP)))
    assert len(await h.tasks()) == 1  # the note was not taken as a new request
    [vote] = await h.app.repo.feedback_of(task_id)
    assert (vote.user, vote.score) == (str(USER), -1)
