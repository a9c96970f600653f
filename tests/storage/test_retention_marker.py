"""Forgetting a chat leaves none of its text in any table, on SQLite and PostgreSQL.

A marker word goes into every column that holds a chat's text through the real paths — the
router (requests, tasks, reminders), the worker (results, prompts, partial text), the
delivery job (progress messages), reminders firing (notices), votes with comments, a
"wrong kind" correction and chat memory — then the chat is forgotten and every string and
JSON column of every table in the schema is searched for the marker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import JSON, Column, String, Text, TypeDecorator, cast, func, select
from sqlmodel import SQLModel

import storage.tables  # noqa: F401 (every table is in the metadata)
from bot.router import Router
from bot.scheduler import Jobs, Scheduler
from bot.types import OTHER_REASON, Action, ActionEvent, Inbound
from handlers.forgetting import forget_everything, forgotten_text
from handlers.kinds import build_registry
from models.generation.base import GenerationRequest, GenerationResult
from models.generation.worker import Worker
from models.intents import IntentClassifier
from models.intents.spec import OOS
from storage.db import create_engine
from storage.repository import Repository
from storage.tables import ChatMessage, utcnow
from tests.fakes.generators import FakeGenerator
from tests.fakes.recording import Chat

MARKER = "Zorblax"
OTHER = "Quintrell"
PLATFORM = "telegram"


@dataclass
class EchoGenerator(FakeGenerator):
    """The GPU stand-in: every result repeats the marker of the prompt it was given."""

    context_length: int = 4096

    def answer(self, request: GenerationRequest) -> GenerationResult:
        said = " ".join(m["content"] for m in request.messages)
        word = MARKER if MARKER in said else OTHER
        return GenerationResult(text=f"Dear Dana, about {word}: it ships Friday.")


def holds_text(kind: object) -> bool:
    """Whether a column type stores strings or JSON (sqlmodel's AutoString included)."""
    if isinstance(kind, TypeDecorator):
        kind = kind.impl_instance
    return isinstance(kind, String | Text | JSON)


def text_columns() -> list[tuple[str, Column[Any]]]:
    """Every string, text and JSON column of every table in the schema."""
    found: list[tuple[str, Column[Any]]] = []
    for table in SQLModel.metadata.sorted_tables:
        for column in table.columns:
            if holds_text(column.type):
                found.append((f"{table.name}.{column.name}", column))
    return found


async def columns_holding(repo: Repository, word: str) -> dict[str, int]:
    """``table.column`` → rows whose value contains ``word`` (JSON searched as its text)."""
    holding: dict[str, int] = {}
    async with repo.engine.connect() as conn:
        for name, column in text_columns():
            value: Any = cast(column, Text) if isinstance(column.type, JSON) else column
            n = await conn.scalar(
                select(func.count()).select_from(column.table).where(value.contains(word))
            )
            if n:
                holding[name] = int(n)
    return holding


async def fill_chat(repo: Repository, router: Router, chat: str, word: str) -> list[int]:
    """Put ``word`` into every kind of row a chat can leave behind; returns its task ids."""

    def inbound(text: str, event_id: str) -> Inbound:
        return Inbound(
            platform=PLATFORM,
            tenant="bot1",
            channel=chat,
            user="ana",
            text=text,
            event_id=f"{chat}:{event_id}",
            user_name=f"Ana {word}",
        )

    await repo.remember_message(
        ChatMessage(
            platform=PLATFORM,
            tenant="bot1",
            channel=chat,
            message_id=f"{chat}-m1",
            author=f"Bo {word}",
            text=f"the {word} shipment is late",
        )
    )
    email = await router.handle(inbound(f"draft an email to Dana about the {word} shipment", "e1"))
    reminder = await router.handle(inbound(f"remind me tomorrow at 9am to call {word}", "e2"))
    assert email.task_ids and reminder.task_ids, (email.text, reminder.text)

    worker = Worker(
        repo=repo,
        prompts=build_registry(),
        kinds=build_registry().generative_kinds,
        generator=EchoGenerator(),
    )
    await worker.run_until_idle(timeout=60)
    chat_platform: Any = Chat(platform=PLATFORM)  # the recording double of tests/fakes
    jobs = Jobs(repo=repo, adapters={PLATFORM: chat_platform}, scheduler=Scheduler())
    await jobs.deliver()
    assert await jobs.fire_reminders(now=utcnow() + timedelta(days=2)) == 1

    [task_id] = email.task_ids

    def press(action: Action, choice: str | None = None, comment: str | None = None) -> ActionEvent:
        return ActionEvent(
            platform=PLATFORM,
            tenant="bot1",
            channel=chat,
            user="ana",
            action=action,
            task_id=task_id,
            event_id=f"{chat}:{action}:{choice}",
            choice=choice,
            comment=comment,
        )

    await router.handle_action(press(Action.rate_down))
    await router.handle_action(press(Action.why, OTHER_REASON))
    await router.handle_action(press(Action.note, comment=f"too stiff for {word}"))
    await router.handle_action(press(Action.replan, OOS))

    # A task the worker is still writing: its partial text is in the row.
    running = await router.handle(inbound(f"draft a reply to Bo about {word}", "e3"))
    [claimed] = await repo.claim(worker_id="w9", limit=1, lease_seconds=60)
    assert claimed.id == running.task_ids[0]
    await repo.set_partial(
        task_id=claimed.id or 0, worker_id="w9", text=f"Hi Bo, {word}", progress=0.5
    )
    return [*email.task_ids, *reminder.task_ids, *running.task_ids]


#: Where the marker must be before forgetting, or the test proves nothing.
EXPECTED = {
    "request.text",
    "request.context",
    "task.inputs",
    "task.result",
    "task.prompt",
    "task.partial",
    "feedback.comment",
    "correction.text",
    "chatmessage.text",
    "chatmessage.author",
    "reminder.what",
    "notice.text",
}


async def forget_leaves_no_trace(repo: Repository, parser: IntentClassifier) -> None:
    router = Router(repo=repo, parser=parser)
    await fill_chat(repo, router, "c1", MARKER)
    other_tasks = await fill_chat(repo, router, "c2", OTHER)
    before = await columns_holding(repo, MARKER)
    other_before = await columns_holding(repo, OTHER)
    assert set(before) >= EXPECTED, EXPECTED - set(before)

    removal = await forget_everything(
        repo, platform=PLATFORM, tenant="bot1", channel="c1", actor="ana", stop_keeping=True
    )

    assert await columns_holding(repo, MARKER) == {}
    assert await columns_holding(repo, OTHER) == other_before
    assert None not in [await repo.get_task(i) for i in other_tasks]
    assert {
        "request",
        "task",
        "feedback",
        "correction",
        "chatmessage",
        "reminder",
        "notice",
    } <= set(removal.counts)
    answer = forgotten_text(removal, "en", stopped_keeping=True)
    assert f"{removal.counts['request']} request(s)" in answer and "kept message(s)" in answer
    [entry] = await repo.audit_entries(action="forget")
    assert entry.actor == "ana" and entry.detail["counts"] == removal.counts
    assert await repo.memory_opted_out(platform=PLATFORM, tenant="bot1", channel="c1")


async def test_forgetting_a_chat_leaves_none_of_its_text_in_any_table(
    repo: Repository, parser: IntentClassifier
) -> None:
    await forget_leaves_no_trace(repo, parser)


async def test_forgetting_a_chat_leaves_none_of_its_text_on_postgresql(
    postgres_url: str, parser: IntentClassifier
) -> None:
    repo = Repository(create_engine(postgres_url))
    try:
        await forget_leaves_no_trace(repo, parser)
    finally:
        await repo.dispose()
