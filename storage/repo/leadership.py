"""Scheduler leadership through a PostgreSQL advisory lock on a held connection."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.repo.base import (
    RepoBase,
)


class Leadership(RepoBase):
    """Scheduler leadership through a PostgreSQL advisory lock on a held connection."""

    async def lock_connection(self) -> AsyncConnection:
        """A dedicated autocommit connection for holding a session-level advisory lock.

        The caller owns it and must invalidate it when done (a pooled session would keep
        the lock).
        """
        conn = await self.engine.connect()
        return await conn.execution_options(isolation_level="AUTOCOMMIT")

    async def try_advisory_lock(self, conn: AsyncConnection, key: int) -> bool:
        """Take the session-level advisory lock ``key`` on ``conn`` if it is free."""
        result = await conn.execute(select(func.pg_try_advisory_lock(key)))
        return bool(result.scalar_one())

    async def ping(self, conn: AsyncConnection) -> int:
        """One round trip on ``conn``; returns its backend process id (raises if it died)."""
        if self.dialect != "postgresql":
            await conn.execute(select(1))
            return 0
        result = await conn.execute(select(func.pg_backend_pid()))
        return int(result.scalar_one())

    async def advisory_unlock(self, conn: AsyncConnection, key: int) -> bool:
        """Release the session-level advisory lock ``key`` held on ``conn``."""
        result = await conn.execute(select(func.pg_advisory_unlock(key)))
        return bool(result.scalar_one())
