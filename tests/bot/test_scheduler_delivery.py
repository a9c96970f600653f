"""The progress job under crashes, restarts, reaped leases and per-chat rate limits."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import event, insert, text

from bot.adapters.base import PostLookup, Services
from bot.delivery import Deliverer
from bot.scheduler import Jobs, Scheduler
from bot.texts import t
from bot.types import Target, View
from storage.db import create_engine
from storage.repository import Repository
from storage.schemas import RequestCreate, TaskCreate
from storage.tables import Request, Task, TaskStatus, utcnow

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


class Crash(Exception):
    """The process died (not a delivery error: nothing in the bot catches it)."""


@dataclass
class Chat:
    """A platform that records every write with the (controllable) time it happened."""

    platform: str = "fake"
    max_text: int = 4000
    min_edit_interval: float = 0.0
    sent: list[tuple[str, View]] = field(default_factory=list)
    edits: list[tuple[str, View, datetime]] = field(default_factory=list)
    crash_after_next_edit: bool = False

    async def start(self, services: Services) -> None: ...
    async def stop(self) -> None: ...

    async def send(self, target: Target, view: View, *, client_id: str | None = None) -> str:
        self.sent.append((target.channel, view))
        return f"m{len(self.sent)}"

    async def edit(self, target: Target, message_id: str, view: View) -> None:
        self.edits.append((message_id, view, utcnow()))
        if self.crash_after_next_edit:
            self.crash_after_next_edit = False
            raise Crash

    async def notify(self, target: Target, text: str, *, client_id: str | None = None) -> None: ...

    async def find_sent(self, target: Target, client_id: str, *, since: datetime) -> PostLookup:
        return PostLookup()


async def a_request(
    repo: Repository, event_id: str = "e", *, channel: str = "c", max_attempts: int = 3
) -> int:
    created = await repo.create_request(
        request=RequestCreate(
            platform="fake", tenant="t", channel=channel, user="u", text="x", event_id=event_id
        ),
        tasks=[TaskCreate(kind="email.draft", max_attempts=max_attempts)],
    )
    return created.tasks[0].id or 0


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


# ------------------------------------------------------------------ crash & restart
async def test_a_crash_after_posting_the_result_before_recording_it_never_posts_a_second_one(
    repo: Repository, database_url: str
) -> None:
    chat = Chat()
    task_id = await a_request(repo)
    await Deliverer(repo, {"fake": chat}).tick()
    await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    await repo.complete(task_id=task_id, worker_id="w", result="Subject: Delay\n\nHi Dana")
    chat.crash_after_next_edit = True
    with pytest.raises(Crash):
        await Deliverer(repo, {"fake": chat}).tick()
    restarted = Repository(create_engine(database_url))
    try:
        await Deliverer(restarted, {"fake": chat}).tick()
        await Deliverer(restarted, {"fake": chat}).tick()
    finally:
        await restarted.dispose()
    assert len(chat.sent) == 1, "only the receipt was ever posted"
    results = [view for _, view, _ in chat.edits if "Hi Dana" in view.text]
    assert len(results) == 2 and results[0] == results[1], "the same edit, repeated"
    assert {message_id for message_id, _, _ in chat.edits} == {"m1"}
    delivery = await repo.delivery_for(1)
    assert delivery is not None and delivery.done


async def test_a_result_that_finished_while_the_bot_was_down_is_delivered_after_the_restart(
    repo: Repository, clock: time_machine.Coordinates
) -> None:
    chat = Chat()
    task_id = await a_request(repo)
    await Deliverer(repo, {"fake": chat}).tick()
    await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    clock.shift(timedelta(hours=1))
    await repo.complete(task_id=task_id, worker_id="w", result="Hi Dana")
    clock.shift(timedelta(hours=30))  # down for longer than the start-up look-back
    await Deliverer(repo, {"fake": chat}).tick()
    assert len(chat.sent) == 1
    assert "Hi Dana" in chat.edits[-1][1].text


async def test_a_request_accepted_just_before_a_crash_gets_its_message_after_the_restart(
    repo: Repository, clock: time_machine.Coordinates
) -> None:
    chat = Chat()
    task_id = await a_request(repo)
    await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    await repo.complete(task_id=task_id, worker_id="w", result="Hi Dana")
    clock.shift(timedelta(hours=2))
    await Deliverer(repo, {"fake": chat}).tick()
    assert len(chat.sent) == 1 and "Hi Dana" in chat.sent[0][1].text


# ------------------------------------------------------------------------ throttling
async def test_progress_edits_in_one_chat_are_spaced_by_the_platforms_interval(
    repo: Repository, clock: time_machine.Coordinates
) -> None:
    chat = Chat(min_edit_interval=10.0)
    deliverer = Deliverer(repo, {"fake": chat})
    first, second = await a_request(repo, "a"), await a_request(repo, "b")
    await repo.claim(worker_id="w", limit=2, lease_seconds=300)
    for second_no in range(41):
        for task_id in (first, second):
            await repo.set_progress(task_id=task_id, worker_id="w", progress=second_no / 100)
        await deliverer.tick()
        clock.shift(timedelta(seconds=1))
    times = [at for _, _, at in chat.edits]
    assert len(chat.sent) == 2
    assert len(times) == 4
    assert all(b - a >= timedelta(seconds=10) for a, b in itertools.pairwise(times))
    assert {message_id for message_id, _, _ in chat.edits} == {"m1", "m2"}, "neither starves"


async def test_chats_are_throttled_independently(
    repo: Repository, clock: time_machine.Coordinates
) -> None:
    chat = Chat(min_edit_interval=10.0)
    deliverer = Deliverer(repo, {"fake": chat})
    ids = [await a_request(repo, "a", channel="one"), await a_request(repo, "b", channel="two")]
    await repo.claim(worker_id="w", limit=2, lease_seconds=300)
    await deliverer.tick()
    clock.shift(timedelta(seconds=10))
    for task_id in ids:
        await repo.set_progress(task_id=task_id, worker_id="w", progress=0.5)
    await deliverer.tick()
    assert len(chat.edits) == 2


async def test_a_final_result_is_not_held_back_by_the_throttle(
    repo: Repository, clock: time_machine.Coordinates
) -> None:
    chat = Chat(min_edit_interval=10.0)
    deliverer = Deliverer(repo, {"fake": chat})
    task_id = await a_request(repo)
    await repo.claim(worker_id="w", limit=1, lease_seconds=300)
    await deliverer.tick()
    clock.shift(timedelta(seconds=1))
    await repo.complete(task_id=task_id, worker_id="w", result="Hi Dana")
    await deliverer.tick()
    assert len(chat.edits) == 1 and "Hi Dana" in chat.edits[0][1].text


# ---------------------------------------------------------------------------- reaper
async def reap_after_lease(
    repo: Repository, clock: time_machine.Coordinates, *, max_attempts: int
) -> Chat:
    chat = Chat()
    jobs = Jobs(repo=repo, adapters={"fake": chat}, scheduler=Scheduler())
    await a_request(repo, max_attempts=max_attempts)
    await repo.claim(worker_id="dead-worker", limit=1, lease_seconds=30)
    await jobs.deliver()
    clock.shift(timedelta(seconds=31))
    await jobs.reap()
    await jobs.deliver()
    return chat


async def test_a_task_whose_worker_died_is_requeued_and_the_user_sees_it_retrying(
    repo: Repository, clock: time_machine.Coordinates
) -> None:
    chat = await reap_after_lease(repo, clock, max_attempts=3)
    shown = chat.edits[-1][1].text
    assert "🔁" in shown and t("reason.worker_lost", "en") in shown
    task = await repo.get_task(1)
    assert task is not None and task.status == TaskStatus.queued and task.lease_owner is None


async def test_a_task_whose_worker_died_on_its_last_attempt_fails_visibly(
    repo: Repository, clock: time_machine.Coordinates
) -> None:
    chat = await reap_after_lease(repo, clock, max_attempts=1)
    shown = chat.edits[-1][1].text
    assert "❌" in shown and t("reason.worker_lost", "en") in shown
    delivery = await repo.delivery_for(1)
    assert delivery is not None and delivery.done


# ------------------------------------------------------------- cost of an idle tick
async def bulk_finished_tasks(repo: Repository, n: int, *, spread: timedelta) -> None:
    """``n`` finished tasks updated evenly over ``spread`` up to an hour ago (one request)."""
    now = utcnow()
    async with repo.engine.begin() as conn:
        result = await conn.execute(
            insert(Request).returning(Request.id),
            [
                dict(
                    platform="fake",
                    tenant="t",
                    channel="c",
                    user="u",
                    text="x",
                    event_id="bulk",
                    locale="en",
                    timezone="UTC",
                    private=False,
                    context={},
                    created_at=now - spread,
                )
            ],
        )
        request_id = result.scalar_one()
        rows: list[dict[str, Any]] = []
        for i in range(n):
            at = now - timedelta(hours=1) - spread * (i / n)
            rows.append(
                dict(
                    request_id=request_id,
                    position=i,
                    kind="email.draft",
                    status=TaskStatus.succeeded,
                    inputs={},
                    depends_on=[],
                    result="ok",
                    progress=1.0,
                    attempts=1,
                    max_attempts=3,
                    priority=0,
                    platform="fake",
                    tenant="t",
                    user="u",
                    created_at=at,
                    updated_at=at,
                    finished_at=at,
                )
            )
        await conn.execute(insert(Task), rows)


async def test_an_idle_tick_runs_two_queries_and_loads_no_task_however_many_there_are(
    repo: Repository,
) -> None:
    await bulk_finished_tasks(repo, 2000, spread=timedelta(days=30))
    deliverer = Deliverer(repo, {"fake": Chat()})
    deliverer.cursor = utcnow()
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(repo.engine.sync_engine, "before_cursor_execute", record)
    try:
        assert await deliverer.tick() == 0
    finally:
        event.remove(repo.engine.sync_engine, "before_cursor_execute", record)
    assert len(statements) == 2  # changed_since and pending_deliveries, nothing per task


async def test_the_changed_tasks_query_uses_the_updated_at_index_on_postgres(
    postgres_url: str,
) -> None:
    repo = Repository(create_engine(postgres_url))
    try:
        # Realistic history: 20,000 tasks over 60 days, statistics up to date. The tick
        # asks for the last few seconds, so the planner must pick ix_task_updated.
        await bulk_finished_tasks(repo, 20_000, spread=timedelta(days=60))
        async with repo.engine.connect() as conn:
            await conn.execute(text("ANALYZE task"))
            await conn.commit()
        captured: list[tuple[str, Any]] = []

        def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
            captured.append((statement, parameters))

        event.listen(repo.engine.sync_engine, "before_cursor_execute", record)
        try:
            await repo.changed_since(cursor=utcnow() - timedelta(seconds=5))
        finally:
            event.remove(repo.engine.sync_engine, "before_cursor_execute", record)
        ((statement, parameters),) = captured
        async with repo.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            cursor = raw.driver_connection.cursor()  # type: ignore[union-attr]
            await cursor.execute("EXPLAIN " + statement, parameters)
            plan = "\n".join(row[0] for row in await cursor.fetchall())
        assert "ix_task_updated" in plan, plan
        assert "Seq Scan" not in plan, plan
    finally:
        await repo.dispose()
