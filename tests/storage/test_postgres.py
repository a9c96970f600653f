"""PostgreSQL specifics: concurrent workers claim with FOR UPDATE SKIP LOCKED."""

from __future__ import annotations

import asyncio

from storage.db import create_engine
from storage.repository import Repository
from storage.schemas import RequestCreate, TaskCreate


async def test_two_workers_claiming_at_once_never_get_the_same_task(postgres_url: str) -> None:
    setup = Repository(create_engine(postgres_url))
    for i in range(20):
        await setup.create_request(
            request=RequestCreate(
                platform="p", tenant="t", channel="c", user="u", text="x", event_id=f"e{i}"
            ),
            tasks=[TaskCreate(kind="summarize") for _ in range(5)],
        )
    workers = [Repository(create_engine(postgres_url)) for _ in range(2)]

    async def drain(repo: Repository, name: str) -> list[int]:
        got: list[int] = []
        while batch := await repo.claim(worker_id=name, limit=3, lease_seconds=30):
            got.extend(t.id or 0 for t in batch)
            await asyncio.sleep(0)
        return got

    claimed_a, claimed_b = await asyncio.gather(drain(workers[0], "a"), drain(workers[1], "b"))
    assert len(claimed_a) + len(claimed_b) == 100
    assert not set(claimed_a) & set(claimed_b)
    assert claimed_a and claimed_b  # both workers did real work
    for repo in (setup, *workers):
        await repo.dispose()
