"""Database reachability: a real ping with a timeout, telling an outage from a bug, and
logging an outage once instead of once per failed query."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from urllib.parse import quote

from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` means the database cannot be reached now (not a bug in a query).

    Covers a refused or dropped connection, a server that went away, an SQLite file that
    cannot be opened, and timeouts; a later retry may succeed.
    """
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(
        error,
        sa_exc.OperationalError
        | sa_exc.InterfaceError
        | sa_exc.DisconnectionError
        | sa_exc.TimeoutError
        | sqlite3.OperationalError
        | ConnectionError
        | TimeoutError
        | OSError,
    )


def describe(error: BaseException) -> str:
    """A one-line reason for an outage (the driver's message, without the SQL statement)."""
    original = getattr(error, "orig", None) or error
    first = (str(original).strip().splitlines() or [type(original).__name__])[0]
    return first[:200]


class OutageLog:
    """Logs a database outage once: a warning when it begins, an info line when it ends."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self.logger = logger
        self.what = what
        self.down = False

    def failed(self, error: BaseException) -> None:
        """A query failed because of an outage: warn on the first failure only."""
        if not self.down:
            self.down = True
            self.logger.warning(
                "%s: database unreachable (%s); retrying until it is back",
                self.what,
                describe(error),
            )

    def ok(self) -> None:
        """A query succeeded: end the outage (and say so once)."""
        if self.down:
            self.down = False
            self.logger.info("%s: database reachable again", self.what)


def _sqlite_ping(path: str, timeout: float) -> None:
    # A fresh connection, not a pooled one: a pooled SQLite connection keeps working on a
    # file that has been moved away or become unreadable, so it would hide the problem.
    # Quoted: a "%", "?" or "#" in the path would otherwise be read as part of the URI.
    conn = sqlite3.connect(f"file:{quote(path)}?mode=rw", uri=True, timeout=timeout)
    try:
        conn.execute("SELECT 1").fetchone()
    finally:
        conn.close()


async def ping(engine: AsyncEngine, *, timeout: float = 2.0) -> None:
    """One round trip to the database within ``timeout`` seconds; raises when unreachable."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        database = make_url(url).database
        if database and database != ":memory:":
            await asyncio.wait_for(asyncio.to_thread(_sqlite_ping, database, timeout), timeout)
            return
    async with asyncio.timeout(timeout):
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
