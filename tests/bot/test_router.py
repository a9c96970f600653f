"""The router: bad input, dedupe, atomization into stored tasks, immediate answers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.router import Router, clean_text
from bot.types import Action, ActionEvent, Inbound
from models.intents import IntentClassifier
from storage.repository import Repository
from storage.tables import TaskStatus


@pytest.fixture
async def router(repo: Repository, parser: IntentClassifier) -> AsyncIterator[Router]:
    yield Router(repo=repo, parser=parser, max_input_chars=20_000)


def msg(text: str, event_id: str = "e1", user: str = "ana", channel: str = "c1") -> Inbound:
    return Inbound(
        platform="console", tenant="t1", channel=channel, user=user, text=text, event_id=event_id
    )


async def test_empty_text_gets_a_helpful_reply_and_stores_nothing(
    router: Router, repo: Repository
) -> None:
    for text in ("", "   ", "\n\t"):
        reply = await router.handle(msg(text))
        assert "Send me a request" in reply.text and not reply.task_ids
    assert await repo.list_tasks() == []


async def test_only_control_characters_is_called_unreadable(router: Router) -> None:
    reply = await router.handle(msg("\x00\x01\x1b\u202e"))
    assert "couldn't read" in reply.text


async def test_a_100kb_message_gets_a_clear_limit_and_creates_nothing(
    router: Router, repo: Repository
) -> None:
    reply = await router.handle(msg("a" * 100_000))
    assert "100000 characters" in reply.text and "20000" in reply.text
    assert await repo.list_tasks() == []


async def test_control_characters_are_stripped_before_classifying(
    router: Router, repo: Repository
) -> None:
    assert clean_text("draft\x00 an email\u202e to Dana\x07") == "draft an email to Dana"
    reply = await router.handle(msg("draft an\x00 email to Dana about the\x1b delayed shipment"))
    assert reply.text.startswith("Queued #1 draft email")
    [task] = await repo.list_tasks()
    assert "\x00" not in task.inputs["request_text"]


async def test_out_of_scope_text_gets_help_not_a_task(router: Router, repo: Repository) -> None:
    reply = await router.handle(msg("what's the weather like in Paris tomorrow?"))
    assert "not something I can do" in reply.text
    assert await repo.list_tasks() == []


async def test_the_same_event_twice_creates_one_request_and_no_new_tasks(
    router: Router, repo: Repository
) -> None:
    first = await router.handle(
        msg("draft an email to Dana about the delayed shipment", event_id="ev-7")
    )
    again = await router.handle(
        msg("draft an email to Dana about the delayed shipment", event_id="ev-7")
    )
    assert not first.duplicate and again.duplicate
    assert again.task_ids == first.task_ids
    assert len(await repo.list_tasks()) == 1


async def test_a_multi_part_request_becomes_ordered_dependent_tasks(
    router: Router, repo: Repository
) -> None:
    reply = await router.handle(msg("summarize this thread and then email Dana the outcome"))
    tasks = sorted(await repo.list_tasks(), key=lambda t: t.id or 0)
    assert [t.kind for t in tasks] == ["summarize", "email.draft"]
    assert tasks[1].depends_on == [tasks[0].id]
    assert reply.text == "Queued #1 summary, #2 draft email."


async def test_a_chinese_request_is_answered_and_generated_in_chinese(
    router: Router, repo: Repository
) -> None:
    reply = await router.handle(msg("给 Dana 起草一封关于发货延迟的邮件"))
    assert reply.text.startswith("已加入队列")
    [task] = await repo.list_tasks()
    assert task.inputs["locale"] == "zh"


async def test_help_and_status_are_answered_at_once_without_tasks(
    router: Router, repo: Repository
) -> None:
    assert "draft an email" in (await router.handle(msg("help", event_id="h"))).text
    assert "no tasks yet" in (await router.handle(msg("status", event_id="s"))).text
    assert await repo.list_tasks() == []


async def test_a_user_can_cancel_only_their_own_task(router: Router, repo: Repository) -> None:
    await router.handle(msg("draft an email to Dana about the delayed shipment", event_id="a"))
    other = await router.handle(msg("cancel #1", event_id="b", user="mallory"))
    assert "no task #1 of yours" in other.text
    mine = await router.handle(msg("cancel #1", event_id="c"))
    assert "Cancelled #1" in mine.text
    task = await repo.get_task(1)
    assert task is not None and task.status == TaskStatus.cancelled


async def test_a_reminder_is_stored_and_confirmed_without_the_gpu(
    router: Router, repo: Repository
) -> None:
    reply = await router.handle(msg("remind me tomorrow at 9 to send the report"))
    assert "⏰" in reply.text and "send the report" in reply.text
    [task] = await repo.list_tasks()
    assert task.kind == "reminder.create" and task.status == TaskStatus.succeeded
    reminder = await repo.reminder_of_task(task.id or 0)
    assert reminder is not None and reminder.active and reminder.what == "send the report"


async def test_rating_needs_a_finished_task_and_keeps_one_vote_per_user(
    router: Router, repo: Repository
) -> None:
    await router.handle(msg("draft an email to Dana about the delayed shipment"))
    press = ActionEvent(
        platform="console",
        tenant="t1",
        channel="c1",
        user="ana",
        action=Action.rate_up,
        task_id=1,
        event_id="p1",
    )
    assert "hasn't finished" in (await router.handle_action(press)).text
    [claimed] = await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    await repo.complete(task_id=claimed.id or 0, worker_id="w", result="Dear Dana")
    assert "👍 recorded" in (await router.handle_action(press)).text
    assert "already recorded" in (await router.handle_action(press)).text
    down = ActionEvent(
        platform="console",
        tenant="t1",
        channel="c1",
        user="ana",
        action=Action.rate_down,
        task_id=1,
        event_id="p2",
    )
    assert "👎 recorded" in (await router.handle_action(down)).text
    assert [(v.user, v.score) for v in await repo.feedback_of(1)] == [("ana", -1)]


async def test_regenerate_queues_a_new_attempt_linked_to_the_first(
    router: Router, repo: Repository
) -> None:
    await router.handle(msg("draft an email to Dana about the delayed shipment"))
    [claimed] = await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    await repo.complete(task_id=claimed.id or 0, worker_id="w", result="Dear Dana")
    press = ActionEvent(
        platform="console",
        tenant="t1",
        channel="c1",
        user="ana",
        action=Action.regenerate,
        task_id=1,
        event_id="r1",
    )
    reply = await router.handle_action(press)
    assert "#2" in reply.text
    again = await router.handle_action(press)  # a double click
    assert again.duplicate
    new = await repo.get_task(2)
    assert new is not None and new.retry_of == 1 and new.kind == "email.draft"
    assert len(await repo.list_tasks()) == 2
