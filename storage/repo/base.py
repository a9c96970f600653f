"""The repository's shared parts: the engine and session factory, and small helpers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from storage.db import session_factory
from storage.health import ping
from storage.tables import (
    ChatSetting,
    Delivery,
    DigestSubscription,
    Notice,
    Request,
    Task,
    TaskStatus,
)

ACTIVE_STATUSES = (TaskStatus.queued, TaskStatus.running, TaskStatus.awaiting_approval)
ChatRowT = TypeVar("ChatRowT", DigestSubscription, ChatSetting)
QueryT = TypeVar("QueryT", bound=Select[Any])


@dataclass(frozen=True)
class Tally:
    """Feedback counts of one task."""

    up: int = 0
    down: int = 0


@dataclass(frozen=True)
class CreatedRequest:
    """The outcome of :meth:`Repository.create_request`; ``created`` is False for a duplicate."""

    request: Request
    tasks: list[Task]
    created: bool


async def per_chat(
    session: AsyncSession, table: type[ChatRowT], platform: str, tenant: str, channel: str
) -> ChatRowT | None:
    """The row of a per-chat table (digest subscription, chat setting) for one chat."""
    rows = await session.execute(
        select(table).where(
            table.platform == platform, table.tenant == tenant, table.channel == channel
        )
    )
    found: ChatRowT | None = rows.scalars().first()
    return found


def where_given(
    query: QueryT,
    table: type[Any],
    *,
    since: datetime | None = None,
    stamp: str = "created_at",
    **equal: object,
) -> QueryT:
    """``query`` narrowed by the filters a caller gave (None: not given): each ``column=value``
    of ``equal`` on ``table``, and ``since`` on its time column ``stamp``."""
    for name, value in equal.items():
        if value is not None:
            query = query.where(getattr(table, name) == value)
    if since is not None:
        query = query.where(getattr(table, stamp) >= since)
    return query


def new_delivery(request: Request, *, next_attempt_at: datetime | None = None) -> Delivery:
    """A fresh delivery record for a stored request (its chat, nothing shown yet)."""
    return Delivery(
        request_id=request.id or 0,
        platform=request.platform,
        tenant=request.tenant,
        channel=request.channel,
        thread=request.thread,
        next_attempt_at=next_attempt_at,
    )


async def commit_with_notice(session: AsyncSession, claimed: bool, notice: Notice | None) -> bool:
    """Commit a claim together with the message it is for; nothing is stored when not claimed."""
    if not claimed:
        await session.rollback()
        return False
    if notice is not None:
        session.add(notice)
    await session.commit()
    return True


class RepoBase:
    """The engine and session factory every part of the repository works through."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = session_factory(engine)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    async def ping_database(self, *, timeout: float = 2.0) -> None:
        """One real round trip to the database within ``timeout`` s; raises if unreachable."""
        await ping(self.engine, timeout=timeout)

    async def dispose(self) -> None:
        """Close all pooled connections."""
        await self.engine.dispose()
