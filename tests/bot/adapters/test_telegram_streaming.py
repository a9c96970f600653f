"""Live answers in Telegram: a private chat's result streams as drafts (``sendMessageDraft``)
and ends in one message with the buttons; groups get no drafts. The adapter's streaming
methods, with the real python-telegram-bot against the fake Bot API."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from bot.adapters.base import StreamingAdapter, StreamUnavailable
from bot.adapters.telegram import FloodLimiter
from bot.adapters.telegram.outbound import draft_id_for
from bot.types import Action, Button, PlanItem, PlanStatus, Section, StreamUpdate, Target, View
from models.generation.base import Generator
from models.intents.spec import KindTraits, TaskSpec
from tests.bot.adapters import test_telegram as wiring
from tests.bot.adapters.test_telegram import BOT_ID, GROUP, USER, Harness, Start
from tests.fakes.telegram_api import FakeTelegram, RateLimits

fake = wiring.fake
start = wiring.start

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning"
)

PRIVATE = Target("telegram", BOT_ID, str(USER), private=True)
IN_GROUP = Target("telegram", BOT_ID, str(GROUP))
WORDS = [
    "Dear",
    "Dana,",
    "the",
    "shipment",
    "of",
    "the",
    "blue",
    "widgets",
    "is",
    "delayed",
    "until",
    "Friday.",
    "Sorry!",
]


class Unused:
    """A classifier for tests that never route free text."""

    def parse(
        self,
        text: str,
        *,
        now_iso: str | None = None,
        timezone: str = "UTC",
        traits: KindTraits | None = None,
    ) -> list[TaskSpec]:
        return [TaskSpec("oos")]


@pytest.fixture
def parser() -> Unused:
    return Unused()


def so_far(n: int, *, previous: int = 0) -> StreamUpdate:
    text = " ".join(WORDS[:n])
    shown = " ".join(WORDS[:previous])
    return StreamUpdate(plan=(), text=text, delta=text[len(shown) :])


def final_view(task_id: int = 41) -> View:
    return View(
        sections=(Section(" ".join(WORDS), title=f"✅ #{task_id} email draft"),),
        buttons=(
            (
                Button("👍", Action.rate_up, task_id),
                Button("👎", Action.rate_down, task_id),
                Button("Regenerate", Action.regenerate, task_id),
            ),
        ),
    )


async def stream(h: Harness, target: Target, *, client_id: str, steps: int = 4) -> str:
    """Start, append ``steps`` growing texts, stop: what the delivery job does for a result."""
    stream_id = await h.adapter.stream_start(
        target, StreamUpdate(plan=(), text=""), client_id=client_id
    )
    shown = 0
    for n in range(1, steps + 1):
        count = len(WORDS) * n // steps
        await h.adapter.stream_append(target, stream_id, so_far(count, previous=shown))
        shown = count
    return await h.adapter.stream_stop(target, stream_id, final_view(), client_id=client_id)


async def test_the_adapter_is_a_streaming_adapter_for_private_chats_only(start: Start) -> None:
    h = await start()
    assert isinstance(h.adapter, StreamingAdapter)
    assert h.adapter.can_stream(PRIVATE)
    assert not h.adapter.can_stream(IN_GROUP)
    # One draft a second: drafts count as messages of the chat (≤ 1/s per chat).
    assert h.adapter.min_stream_interval == 1.0


async def test_a_private_result_streams_as_drafts_then_one_message_with_buttons(
    start: Start,
) -> None:
    h = await start()
    h.fake.private_chat(USER)
    message_id = await stream(h, PRIVATE, client_id="c0ffee")

    chat = h.fake.chat(USER)
    draft_ids = {draft_id for draft_id, _ in chat.drafts}
    assert draft_ids == {draft_id_for("c0ffee")}
    texts = [text for _, text in chat.drafts]
    assert texts[0] == ""  # the "Thinking…" placeholder before the first token
    assert texts[-1] == " ".join(WORDS)
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(texts))
    (final,) = h.fake.bot_messages(USER)
    assert str(final.message_id) == message_id
    assert final.text == final_view().text
    assert final.callback_data() == ["ab:up:41", "ab:down:41", "ab:regen:41"]
    assert chat.open_drafts == {}
    assert not h.fake.calls_to("sendMessageDraft", ok=False)


async def test_stopping_a_stopped_stream_again_sends_nothing(start: Start) -> None:
    h = await start()
    h.fake.private_chat(USER)
    message_id = await stream(h, PRIVATE, client_id="c0ffee")
    again = await h.adapter.stream_stop(
        PRIVATE, str(draft_id_for("c0ffee")), final_view(), client_id="c0ffee"
    )
    assert again == message_id
    assert len(h.fake.calls_to("sendMessage")) == 1


async def test_each_result_has_its_own_draft_id() -> None:
    ids = {draft_id_for(f"{n:032x}") for n in range(1000)}
    assert len(ids) == 1000
    assert all(0 < i < 2**31 for i in ids)
    assert draft_id_for("c0ffee") == draft_id_for("c0ffee")


async def test_a_group_gets_no_draft(start: Start) -> None:
    h = await start()
    await h.fake.group_message("hello", chat_id=GROUP)
    with pytest.raises(StreamUnavailable):
        await h.adapter.stream_start(IN_GROUP, StreamUpdate(plan=(), text=""), client_id="c1")
    assert not h.fake.calls_to("sendMessageDraft")


async def test_a_draft_telegram_refuses_makes_the_stream_unavailable(start: Start) -> None:
    h = await start()
    await h.fake.group_message("hello", chat_id=GROUP)
    # Say the core asked anyway (a stream begun before the chat became a group).
    with pytest.raises(StreamUnavailable):
        await h.adapter.stream_append(IN_GROUP, "12345", so_far(3))
    (refused,) = h.fake.calls_to("sendMessageDraft", ok=False)
    assert refused.status == 400


async def test_a_long_result_drafts_within_4096_and_ends_split_with_buttons_last(
    start: Start,
) -> None:
    h = await start()
    h.fake.private_chat(USER)
    long_text = "\n\n".join(f"Paragraph {i}: " + "word " * 150 for i in range(8))
    stream_id = await h.adapter.stream_start(
        PRIVATE, StreamUpdate(plan=(), text=""), client_id="c2"
    )
    await h.adapter.stream_append(PRIVATE, stream_id, StreamUpdate(plan=(), text=long_text))
    view = View(sections=(Section(long_text),), buttons=((Button("👍", Action.rate_up, 7),),))
    await h.adapter.stream_stop(PRIVATE, stream_id, view, client_id="c2")

    _, shown = h.fake.chat(USER).drafts[-1]
    assert 0 < len(shown) <= 4096
    assert long_text.endswith(shown)  # the part being written
    parts = h.fake.bot_messages(USER)
    assert len(parts) == 2
    assert [p.callback_data() for p in parts] == [[], ["ab:up:7"]]
    assert " ".join(p.text for p in parts).split() == long_text.split()


async def test_a_plan_of_several_tasks_shows_in_the_draft(start: Start) -> None:
    h = await start()
    h.fake.private_chat(USER)
    plan = (
        PlanItem(41, "email draft", PlanStatus.done),
        PlanItem(42, "summary", PlanStatus.running),
    )
    stream_id = await h.adapter.stream_start(
        PRIVATE, StreamUpdate(plan=plan, text=""), client_id="c3"
    )
    await h.adapter.stream_append(PRIVATE, stream_id, StreamUpdate(plan=plan, text="Dear Dana"))
    _, shown = h.fake.chat(USER).drafts[-1]
    assert shown.splitlines()[:2] == ["✅ #41 email draft", "✍️ #42 summary"]
    assert shown.endswith("Dear Dana")


async def test_429_on_drafts_and_the_final_message_is_waited_out_and_nothing_is_lost(
    start: Start, fake: FakeTelegram
) -> None:
    h = await start()
    h.fake.private_chat(USER)
    fake.force_429(1, retry_after=1, methods=["sendMessageDraft"])
    fake.force_429(1, retry_after=1, methods=["sendMessage"])
    message_id = await stream(h, PRIVATE, client_id="c4", steps=2)

    assert [c.status for c in fake.calls_to("sendMessageDraft", ok=False)] == [429]
    assert [c.status for c in fake.calls_to("sendMessage", ok=False)] == [429]
    texts = [text for _, text in fake.chat(USER).drafts]
    assert texts[0] == "" and texts[-1] == " ".join(WORDS)
    (final,) = fake.bot_messages(USER)
    assert str(final.message_id) == message_id
    assert final.text == final_view().text


async def test_drafts_are_paced_under_the_fakes_flood_limits(
    start: Start, fake: FakeTelegram
) -> None:
    # Telegram's figures ten times faster, and the limiter one step under them as in production.
    fake.set_rate_limits(RateLimits(per_chat_per_second=10.0, per_chat_burst=3))
    limits: dict[str, Any] = {"per_chat_per_second": 9.0, "per_chat_burst": 2}
    h = await start(limiter=FloodLimiter(**limits))
    h.fake.private_chat(USER)
    await stream(h, PRIVATE, client_id="c5", steps=6)
    assert not fake.calls_to("sendMessageDraft", ok=False)
    assert not fake.calls_to("sendMessage", ok=False)
    assert len(fake.chat(USER).drafts) == 7


# -- through the delivery job ---------------------------------------------------------------


async def delivered(h: Harness, chat_id: int) -> list[str]:
    """Run the request to the end, delivery passes included; the messages with 👍."""
    await h.deliver()
    await h.work()
    for _ in range(20):
        await h.deliver()
        done = [
            m
            for m in h.fake.bot_messages(chat_id)
            if any(d.startswith("ab:up:") for d in m.callback_data())
        ]
        if done:
            break
    return [
        m.text
        for m in h.fake.bot_messages(chat_id)
        if any(d.startswith("ab:up:") for d in m.callback_data())
    ]


async def test_a_private_request_streams_through_the_delivery_job(
    start: Start, generator: Generator
) -> None:
    h = await start(generator=generator)
    await h.fake.command("email", "to Dana about the delayed shipment")
    await wiring.eventually(lambda: h.fake.bot_messages(USER))
    (result,) = await delivered(h, USER)
    (task,) = await h.tasks()
    assert task.result and task.result.strip() in result
    drafts = h.fake.chat(USER).drafts
    assert drafts and drafts[0][1] == ""
    assert len({draft_id for draft_id, _ in drafts}) == 1
    finals = [m for m in h.fake.bot_messages(USER) if m.callback_data()]
    assert len(finals) == 1


async def test_a_group_request_is_edited_not_drafted(start: Start) -> None:
    h = await start()
    await h.fake.command("email", "to Dana about the delayed shipment", chat_id=GROUP)
    await wiring.eventually(lambda: h.fake.bot_messages(GROUP))
    await h.deliver()
    (task,) = await h.tasks()
    (progress,) = h.fake.bot_messages(GROUP)
    assert progress.text.startswith(f"⏳ #{task.id}")
    assert h.fake.calls_to("editMessageText", ok=True)
    assert not h.fake.calls_to("sendMessageDraft")
