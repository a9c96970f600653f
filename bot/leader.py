"""One active scheduler among several ``atombot run`` replicas.

On PostgreSQL the leader is the process that holds a session-level advisory lock on a
dedicated connection: the lock lives exactly as long as that database session, so when the
leader's process or connection dies the server releases it and a standby takes over. On
SQLite there is one process by construction, so it is always the leader.

Leadership is checked lazily, by the scheduler's job guard: a leader confirms it with one
round trip on the lock's connection before each job; a standby tries to take the lock at
most every ``retry_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from storage.health import OutageLog, is_outage
from storage.repository import Repository

log = logging.getLogger(__name__)


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


#: The advisory lock every atombot scheduler of one database competes for.
SCHEDULER_LOCK = lock_key("atombot:scheduler")


class Leader:
    """Whether this process may run the scheduler's jobs (see the module docstring)."""

    def __init__(
        self,
        repo: Repository,
        *,
        key: int = SCHEDULER_LOCK,
        retry_seconds: float = 5.0,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.repo = repo
        self.key = key
        self.retry_seconds = retry_seconds
        self.on_change = on_change
        self._single_process = repo.dialect != "postgresql"
        self._conn: AsyncConnection | None = None
        self._pid: int | None = None
        self._leading = False
        self._last_try: float | None = None
        self._lock = asyncio.Lock()
        self._outage = OutageLog(log, "scheduler lock")

    @property
    def is_leader(self) -> bool:
        """What the last check found (no database round trip)."""
        return self._single_process or self._leading

    @property
    def known(self) -> bool:
        """Whether this process knows if it leads: always on SQLite, else after one try."""
        return self._single_process or self._leading or self._last_try is not None

    @property
    def backend_pid(self) -> int | None:
        """The PostgreSQL backend process holding (or trying for) the lock, if connected."""
        return self._pid

    async def confirm(self) -> bool:
        """True when this process is the leader now.

        A leader verifies its lock connection is alive (and reports a loss when it is
        not); a standby tries to take the lock when ``retry_seconds`` have passed since
        its last try.
        """
        if self._single_process:
            return True
        async with self._lock:
            if self._leading:
                if await self._alive():
                    return True
                self._set(False)
                log.warning("lost the scheduler lock: another replica may take over")
                # Sit out two retry periods so that a standby, not this process with its
                # suspect connection, is the one to take over.
                self._last_try = asyncio.get_running_loop().time() + self.retry_seconds
            loop = asyncio.get_running_loop()
            if self._last_try is not None and loop.time() - self._last_try < self.retry_seconds:
                return False
            self._last_try = loop.time()
            await self._try_acquire()
            return self._leading

    async def release(self) -> None:
        """Give up the lock (closing its connection ends the session that holds it)."""
        async with self._lock:
            if self._leading and self._conn is not None:
                # Unlock explicitly: the server frees a closed session's locks only once its
                # backend has exited, which a standby would otherwise have to wait for.
                with contextlib.suppress(Exception):
                    await self.repo.advisory_unlock(self._conn, self.key)
            await self._close()
            if self._leading:
                self._set(False)

    async def _try_acquire(self) -> None:
        try:
            if self._conn is None:
                self._conn = await self.repo.lock_connection()
                self._pid = await self.repo.ping(self._conn)
            got = await self.repo.try_advisory_lock(self._conn, self.key)
        except Exception as exc:  # the database is unreachable or the connection died
            if is_outage(exc):
                self._outage.failed(exc)  # once per outage, not once per retry
            else:
                log.warning("could not try the scheduler lock: %s", exc)
            await self._close()
            return
        self._outage.ok()
        if got:
            log.info("this process is now the active scheduler (backend %s)", self._pid)
            self._set(True)

    async def _alive(self) -> bool:
        if self._conn is None:
            return False
        try:
            await self.repo.ping(self._conn)
        except Exception as exc:  # any failure means the session (and its lock) may be gone
            log.warning("scheduler lock connection failed: %s", exc)
            await self._close()
            return False
        return True

    async def _close(self) -> None:
        conn, self._conn, self._pid = self._conn, None, None
        if conn is not None:
            # Invalidate rather than return it to the pool: a pooled session would keep
            # holding the advisory lock after we meant to give it up.
            with contextlib.suppress(Exception):
                await conn.invalidate()
            with contextlib.suppress(Exception):
                await conn.close()

    def _set(self, leading: bool) -> None:
        self._leading = leading
        if self.on_change is not None:
            self.on_change(leading)
