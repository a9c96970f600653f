"""The cost of one idle progress tick over 100,000 finished tasks (SQLite and PostgreSQL).

Bulk-inserts N finished tasks (one request and one delivered message each, updated over
the last 30 days, statistics analysed), then times ``Deliverer.tick()`` when nothing changed
since its cursor — what the progress job does every poll interval on a quiet bot.

    python benchmarks/scheduler_tick.py [--tasks 100000] [--ticks 50]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/atombot_bench | --no-postgres]

PostgreSQL is measured when reachable; the named database is created if missing and its
``public`` schema is dropped and rebuilt (use a database of its own).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine as sync_engine
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

from bot.adapters.base import Services
from bot.delivery import Deliverer
from bot.types import Target, View
from storage.db import create_engine, sync_url
from storage.migrate import upgrade
from storage.repository import Repository
from storage.tables import Delivery, Request, Task, TaskStatus, utcnow

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/atombot_bench"
BATCH = 10_000


class SilentChat:
    """A platform that accepts everything (an idle tick should write nothing anyway)."""

    platform = "fake"
    max_text = 4000
    min_edit_interval = 0.0

    def __init__(self) -> None:
        self.writes = 0

    async def start(self, services: Services) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop."""

    async def send(self, target: Target, view: View) -> str:
        """Count the write."""
        self.writes += 1
        return str(self.writes)

    async def edit(self, target: Target, message_id: str, view: View) -> None:
        """Count the write."""
        self.writes += 1

    async def notify(self, target: Target, text: str) -> None:
        """Count the write."""
        self.writes += 1


def machine() -> str:
    """The CPU model and core count of this machine."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


async def fill(repo: Repository, n: int) -> None:
    """``n`` finished tasks, each with its request and a delivered message, in batches."""
    now = utcnow()
    async with repo.engine.begin() as conn:
        for start in range(0, n, BATCH):
            count = min(BATCH, n - start)
            times = [
                now - timedelta(hours=1) - timedelta(days=30) * ((start + i) / n)
                for i in range(count)
            ]
            requests = [
                dict(
                    platform="fake",
                    tenant="t",
                    channel=f"c{(start + i) % 500}",
                    user=f"u{(start + i) % 2000}",
                    text="draft an email",
                    event_id=f"e{start + i}",
                    locale="en",
                    timezone="UTC",
                    private=False,
                    context={},
                    created_at=at,
                )
                for i, at in enumerate(times)
            ]
            # SQLModel declares ``Request.id`` as ``int | None``, not as a column.
            returning = insert(Request).returning(  # type: ignore[call-overload]
                Request.id, sort_by_parameter_order=True
            )
            request_ids = list((await conn.execute(returning, requests)).scalars())
            await conn.execute(
                insert(Task),
                [
                    dict(
                        request_id=rid,
                        position=0,
                        kind="email.draft",
                        status=TaskStatus.succeeded,
                        progress=1.0,
                        inputs={},
                        depends_on=[],
                        result="Subject: hello",
                        attempts=1,
                        max_attempts=3,
                        priority=0,
                        platform="fake",
                        tenant="t",
                        user="u",
                        created_at=at,
                        updated_at=at,
                        started_at=at,
                        finished_at=at,
                    )
                    for rid, at in zip(request_ids, times, strict=True)
                ],
            )
            await conn.execute(
                insert(Delivery),
                [
                    dict(
                        request_id=rid,
                        platform="fake",
                        tenant="t",
                        channel="c",
                        message_id=f"m{rid}",
                        parts_sent=0,
                        done=True,
                        failures=0,
                        created_at=at,
                        updated_at=at,
                    )
                    for rid, at in zip(request_ids, times, strict=True)
                ],
            )
    async with repo.engine.connect() as conn:
        await conn.execute(text("ANALYZE"))
        await conn.commit()


async def measure(url: str, n: int, ticks: int) -> tuple[float, float, int]:
    """Fill a fresh database at ``url``; returns (median ms, max ms, rows) of idle ticks."""
    upgrade(url)
    repo = Repository(create_engine(url))
    try:
        began = time.perf_counter()
        await fill(repo, n)
        print(f"  inserted {n:,} tasks in {time.perf_counter() - began:.1f}s", flush=True)
        async with repo.engine.connect() as conn:
            rows = int((await conn.execute(text("SELECT count(*) FROM task"))).scalar_one())
        chat = SilentChat()
        deliverer = Deliverer(repo, {"fake": chat})
        deliverer.cursor = datetime.now(UTC)  # started and caught up: nothing changed since
        await deliverer.tick()  # warm the pool and the statement caches
        samples: list[float] = []
        for _ in range(ticks):
            began = time.perf_counter()
            looked_at = await deliverer.tick()
            samples.append((time.perf_counter() - began) * 1000)
            assert looked_at == 0 and chat.writes == 0
        return statistics.median(samples), max(samples), rows
    finally:
        await repo.dispose()


def fresh_postgres(url: str) -> str:
    """Create the benchmark database if needed and give it an empty schema; returns version."""
    parsed = make_url(url)
    admin = sync_engine(
        sync_url(parsed.set(database="postgres").render_as_string(hide_password=False)),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": parsed.database}
        ).first()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()
    engine = sync_engine(sync_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
        version = str(conn.execute(text("SHOW server_version")).scalar_one())
    engine.dispose()
    return version


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print ms per idle tick for each database."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--ticks", type=int, default=50)
    parser.add_argument(
        "--postgres", default=os.environ.get("ATOMBOT_BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
    )
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    results: list[tuple[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp, 'bench.db').as_posix()}"
        print(f"SQLite {sqlite3.sqlite_version} (WAL):", flush=True)
        results.append(("SQLite", asyncio.run(measure(url, args.tasks, args.ticks))))
    if not args.no_postgres:
        try:
            version = fresh_postgres(args.postgres)
        except Exception as exc:  # not reachable: report and measure SQLite only
            print(f"PostgreSQL not reachable at {args.postgres}: {exc.__class__.__name__}")
        else:
            print(f"PostgreSQL {version}:", flush=True)
            results.append(
                ("PostgreSQL", asyncio.run(measure(args.postgres, args.tasks, args.ticks)))
            )
    for name, (median, worst, rows) in results:
        print(
            f"{name}: idle tick over {rows:,} finished tasks: "
            f"{median:.2f} ms median, {worst:.2f} ms max ({args.ticks} ticks)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
