"""Helpers shared by the fuzz tests: how many examples to run, an event loop on its own
thread for the servers under test, and row counts of a SQLite database.

The fuzz tests run in the default suite with a small number of examples; set
``ATOMBOT_FUZZ_EXAMPLES=10000`` for a long run. Hypothesis drives a synchronous test body, so
the servers under test live on an event loop in a background thread (:class:`LoopThread`).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections import Counter
from collections.abc import Awaitable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings

T = TypeVar("T")

#: Tables whose rows a rejected request must never add (alembic's bookkeeping aside).
IGNORED_TABLES = frozenset({"alembic_version", "sqlite_sequence"})


def fuzz_examples(default: int) -> int:
    """``ATOMBOT_FUZZ_EXAMPLES`` when set (a long run), else ``default`` (CI)."""
    value = os.environ.get("ATOMBOT_FUZZ_EXAMPLES", "").strip()
    return int(value) if value else default


def fuzz_settings(default: int) -> settings:
    """Hypothesis settings for a fuzz test: no deadline, no example database, derandomized in
    CI (a long run explores freely)."""
    long_run = bool(os.environ.get("ATOMBOT_FUZZ_EXAMPLES", "").strip())
    return settings(
        max_examples=fuzz_examples(default),
        deadline=None,
        database=None,
        derandomize=not long_run,
        print_blob=True,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
            HealthCheck.filter_too_much,
        ],
    )


def fuzz_timeout(default_examples: int, seconds_per_example: float) -> pytest.MarkDecorator:
    """A pytest-timeout mark that grows with the number of examples."""
    return pytest.mark.timeout(max(300, int(fuzz_examples(default_examples) * seconds_per_example)))


class LoopThread:
    """An asyncio event loop running in a daemon thread; ``run`` waits for a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.errors: list[dict[str, Any]] = []
        self.loop.set_exception_handler(lambda _loop, context: self.errors.append(context))
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T] | Awaitable[T], timeout: float = 60.0) -> T:
        """Run ``coro`` on the loop and return its result (raises what it raised)."""
        future = asyncio.run_coroutine_threadsafe(_as_coroutine(coro), self.loop)
        return future.result(timeout)

    def close(self) -> None:
        """Stop the loop and join the thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable


def count_rows(database: Path) -> Counter[str]:
    """Rows per table of a SQLite database (read through its own connection)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        tables = [
            name
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if name not in IGNORED_TABLES
        ]
        return Counter(
            {t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}
        )
