"""One active scheduler: a PostgreSQL advisory lock held on a dedicated connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.leader import Leader, lock_key
from bot.scheduler import Jobs, Scheduler
from storage.db import create_engine
from storage.migrate import upgrade
from storage.repository import Repository
from storage.schemas import RequestCreate, TaskCreate
from storage.tables import utcnow
from tests.fakes.recording import Chat

KEY = lock_key("atombot:test-scheduler")


@pytest.fixture
async def repos(postgres_url: str) -> AsyncIterator[list[Repository]]:
    """Three processes' connection pools on one PostgreSQL database (two replicas + admin)."""
    made = [Repository(create_engine(postgres_url)) for _ in range(3)]
    yield made
    for repo in made:
        await repo.dispose()


async def kill_backend(admin: Repository, pid: int) -> None:
    async with admin.engine.connect() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


async def eventually(condition: Callable[[], bool], *, within: float = 20.0) -> None:
    """Wait (bounded) for the scheduler's own clock to make ``condition`` true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "the scheduler never got there"
        await asyncio.sleep(0.05)


async def test_on_sqlite_the_one_process_is_always_the_leader(tmp_path: Path) -> None:
    url = f"sqlite:///{(tmp_path / 'one.db').as_posix()}"
    upgrade(url)
    repo = Repository(create_engine(url))
    try:
        assert await Leader(repo).confirm() and await Leader(repo).confirm()
    finally:
        await repo.dispose()


async def test_only_one_of_two_replicas_holds_the_scheduler_lock(repos: list[Repository]) -> None:
    first, second = Leader(repos[0], key=KEY), Leader(repos[1], key=KEY, retry_seconds=0)
    assert await first.confirm()
    assert not await second.confirm()
    assert await first.confirm(), "the leader keeps it"
    await first.release()
    assert await second.confirm(), "a released lock goes to the standby"
    await second.release()


async def test_a_standby_takes_over_when_the_leaders_connection_dies(
    repos: list[Repository],
) -> None:
    changes: list[bool] = []
    first = Leader(repos[0], key=KEY, retry_seconds=3600, on_change=changes.append)
    second = Leader(repos[1], key=KEY, retry_seconds=0)
    assert await first.confirm() and not await second.confirm()
    assert first.backend_pid is not None
    await kill_backend(repos[2], first.backend_pid)
    assert not await first.confirm(), "the leader notices its lock is gone"
    assert changes == [True, False]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while not await second.confirm():  # the server frees the lock as the backend exits
        assert loop.time() < deadline, "the standby never took over"
        await asyncio.sleep(0.05)
    assert second.is_leader
    assert not await first.confirm(), "the old leader waits as a standby"
    await second.release()
    await first.release()


async def a_request(repo: Repository, event_id: str) -> None:
    await repo.create_request(
        request=RequestCreate(
            platform="fake", tenant="t", channel="c", user="u", text="x", event_id=event_id
        ),
        tasks=[TaskCreate(kind="email.draft")],
    )


async def test_two_schedulers_on_one_database_send_one_digest_and_the_standby_takes_over(
    repos: list[Repository],
) -> None:
    digest = await repos[2].subscribe_digest(
        platform="fake",
        tenant="t",
        channel="c",
        user="u",
        cron={"hour": 8},
        timezone="UTC",
        locale="en",
    )
    # The last digest went out two days ago: one is due as soon as a scheduler runs.
    await repos[2].advance_digest_window(
        digest_id=digest.id or 0, previous_end=None, new_end=utcnow() - timedelta(days=2)
    )
    await a_request(repos[2], "before")
    chats = [Chat(), Chat()]
    schedulers: list[Scheduler] = []
    for repo, chat in zip(repos[:2], chats, strict=True):
        scheduler = Scheduler(leader=Leader(repo, key=KEY, retry_seconds=0.2))
        Jobs(repo=repo, adapters={"fake": chat}, scheduler=scheduler).install(
            poll_seconds=0.05, lease_seconds=60
        )
        scheduler.start()
        schedulers.append(scheduler)
    try:
        await eventually(lambda: any(c.notes and c.sent for c in chats))
        await asyncio.sleep(0.5)  # both run many ticks meanwhile
        leader = 0 if chats[0].notes else 1
        standby = 1 - leader
        assert len(chats[leader].notes) == 1 and len(chats[leader].sent) == 1
        assert chats[standby].notes == [] and chats[standby].sent == []

        pid = schedulers[leader].leader.backend_pid  # type: ignore[union-attr]
        assert pid is not None
        await kill_backend(repos[2], pid)
        await a_request(repos[2], "after")
        await eventually(lambda: len(chats[standby].sent) == 1)
        await asyncio.sleep(0.5)
        assert len(chats[leader].sent) == 1, "the old leader stopped posting"
        assert chats[standby].notes == [], "the digest was not sent again"
    finally:
        for scheduler in schedulers:
            await scheduler.shutdown()
