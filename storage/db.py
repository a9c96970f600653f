"""Engine and session factory for SQLite (WAL, busy timeout) and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SQLITE_BUSY_TIMEOUT_MS = 30_000


def default_database_url(data_dir: Path) -> str:
    """The embedded default: a SQLite file in ``data_dir``."""
    return f"sqlite:///{(data_dir / 'atombot.db').as_posix()}"


def _with_driver(url: str, *, sqlite: str) -> str:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported DATABASE_URL backend {backend!r}: use sqlite or postgresql")
    # psycopg 3 serves both the blocking and the asyncio engine under one driver name.
    driver = sqlite if backend == "sqlite" else "postgresql+psycopg"
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def shown_url(url: str) -> str:
    """``url`` without its password, for logs and the audit log."""
    return make_url(url).render_as_string(hide_password=True)


def async_url(url: str) -> str:
    """Map a user-facing URL to its asyncio driver (SQLite: aiosqlite, PostgreSQL: psycopg)."""
    return _with_driver(url, sqlite="sqlite+aiosqlite")


def sync_url(url: str) -> str:
    """Map a user-facing URL to its blocking driver (used by Alembic)."""
    return _with_driver(url, sqlite="sqlite")


def is_sqlite(url: str) -> bool:
    """Whether ``url`` points at SQLite."""
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the scheduler read while the worker writes; the busy timeout turns
    # writer contention into waiting instead of "database is locked" errors.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def install_sqlite_pragmas(engine: Engine) -> None:
    """Apply atombot's SQLite settings to every new connection of ``engine``."""
    event.listen(engine, "connect", _sqlite_pragmas)


def create_engine(url: str) -> AsyncEngine:
    """Build the async engine for ``url`` with the right settings for its backend."""
    if is_sqlite(url):
        path = make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            async_url(url), connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        )
        install_sqlite_pragmas(engine.sync_engine)
        return engine
    return create_async_engine(async_url(url), pool_pre_ping=True, pool_size=10, max_overflow=10)


_T = TypeVar("_T")


async def _to_completion(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` to its end even if the caller is cancelled meanwhile, then re-raise."""
    task = asyncio.ensure_future(coro)
    cancelled: asyncio.CancelledError | None = None
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError as err:
            if task.done():
                raise
            cancelled = err
        else:
            break
    if cancelled is not None:
        raise cancelled
    return result


class CompletingSession(AsyncSession):
    """An AsyncSession whose statements and commit are never abandoned halfway.

    The worker cancels its progress writer whenever a task finishes, and shutdown cancels
    whatever runs. A cancellation landing inside a statement makes SQLAlchemy invalidate
    (terminate) the connection, and one landing inside ``COMMIT`` leaves the pool to roll
    back inside the cancelled task, which is cancelled too: both log ERROR tracebacks
    ("Exception during reset or similar … CancelledError", "Task was destroyed but it is
    pending!") that are noise. Here each statement finishes first (they are short), then
    the cancellation goes on as usual and the session closes cleanly.
    """

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        """Execute a statement, shielded from the caller's cancellation."""
        return await _to_completion(super().execute(*args, **kwargs))

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        """Load a row by primary key, shielded from the caller's cancellation."""
        return await _to_completion(super().get(*args, **kwargs))

    async def flush(self, *args: Any, **kwargs: Any) -> None:
        """Flush pending changes, shielded from the caller's cancellation."""
        await _to_completion(super().flush(*args, **kwargs))

    async def refresh(self, *args: Any, **kwargs: Any) -> None:
        """Reload an object's attributes, shielded from the caller's cancellation."""
        await _to_completion(super().refresh(*args, **kwargs))

    async def commit(self) -> None:
        """Commit the transaction, shielded from the caller's cancellation."""
        await _to_completion(super().commit())


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit (and commit to completion)."""
    return async_sessionmaker(engine, class_=CompletingSession, expire_on_commit=False)
