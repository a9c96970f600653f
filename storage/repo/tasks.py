"""Reading tasks: by id, by request, listings, queue position, changes and results."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, func, or_, select

from storage.repo.base import (
    RepoBase,
)
from storage.tables import (
    Request,
    Task,
    TaskStatus,
    utcnow,
)


@dataclass(frozen=True)
class QueueStats:
    """The queue at one moment: queued tasks and the age of the oldest one (0 when empty)."""

    depth: int
    oldest_age_seconds: float


class TaskReads(RepoBase):
    """Reading tasks: by id, by request, listings, queue position, changes and results."""

    async def get_task(self, task_id: int) -> Task | None:
        """A task by id."""
        async with self._sessions() as session:
            return await session.get(Task, task_id)

    async def tasks_of_request(self, request_id: int) -> list[Task]:
        """A request's tasks in their order."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(Task).where(Task.request_id == request_id).order_by(Task.position, Task.id)
            )
            return list(rows.scalars().all())

    async def tasks_by_ids(self, task_ids: Sequence[int]) -> list[Task]:
        """The tasks with these ids (missing ids are skipped), ordered by id."""
        if not task_ids:
            return []
        async with self._sessions() as session:
            rows = await session.execute(
                select(Task).where(Task.id.in_(list(task_ids))).order_by(Task.id)  # type: ignore[union-attr]
            )
            return list(rows.scalars().all())

    async def list_tasks(
        self,
        *,
        status: str | None = None,
        platform: str | None = None,
        tenant: str | None = None,
        user: str | None = None,
        limit: int = 50,
    ) -> list[Task]:
        """The newest tasks, optionally filtered."""
        query = select(Task)
        if status:
            query = query.where(Task.status == status)
        if platform:
            query = query.where(Task.platform == platform)
        if tenant:
            query = query.where(Task.tenant == tenant)
        if user:
            query = query.where(Task.user == user)
        async with self._sessions() as session:
            rows = await session.execute(query.order_by(Task.id.desc()).limit(limit))  # type: ignore[union-attr]
            return list(rows.scalars().all())

    async def queue_position(self, task: Task) -> int:
        """How many queued tasks would be claimed before ``task`` (0 = next)."""
        async with self._sessions() as session:
            count = await session.execute(
                select(func.count())
                .select_from(Task)
                .where(
                    Task.status == TaskStatus.queued,
                    or_(
                        Task.priority > task.priority,
                        and_(Task.priority == task.priority, Task.id < (task.id or 0)),  # type: ignore[operator]
                    ),
                )
            )
            return int(count.scalar_one())

    async def changed_since(self, *, cursor: datetime, limit: int = 500) -> list[Task]:
        """Tasks updated after ``cursor``, oldest change first (uses ``ix_task_updated``)."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(Task)
                .where(Task.updated_at > cursor)  # type: ignore[operator]
                .order_by(Task.updated_at, Task.id)
                .limit(limit)
            )
            return list(rows.scalars().all())

    async def results_of(self, task_ids: Sequence[int]) -> dict[int, str]:
        """The results of finished tasks, by id (used to feed dependent tasks)."""
        return {t.id or 0: t.result or "" for t in await self.tasks_by_ids(task_ids)}

    async def last_result(
        self,
        *,
        platform: str,
        tenant: str,
        channel: str,
        thread: str | None,
        kinds: Sequence[str],
        user: str,
    ) -> Task | None:
        """The newest finished task of ``kinds`` in one thread (``None``: outside threads).

        Only results of public requests, or of ``user``'s own, count: a follow-up never
        reads someone else's private result.
        """
        if not kinds:
            return None
        where_thread = (
            Request.thread == thread if thread is not None else Request.thread.is_(None)  # type: ignore[union-attr]
        )
        query = (
            select(Task)
            .join(Request, Request.id == Task.request_id)  # type: ignore[arg-type]
            .where(
                Request.platform == platform,
                Request.tenant == tenant,
                Request.channel == channel,
                where_thread,
                Task.status == TaskStatus.succeeded,
                Task.kind.in_(list(kinds)),  # type: ignore[attr-defined]
                Task.result.is_not(None),  # type: ignore[union-attr]
                or_(Request.private.is_(False), Request.user == user),  # type: ignore[attr-defined]
            )
            .order_by(Task.id.desc())  # type: ignore[union-attr]
            .limit(1)
        )
        async with self._sessions() as session:
            rows = await session.execute(query)
            return rows.scalars().first()

    async def queue_stats(self, *, now: datetime | None = None) -> QueueStats:
        """How many tasks are queued, and how long the oldest of them has waited."""
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(func.count(), func.min(Task.created_at)).where(
                        Task.status == TaskStatus.queued
                    )
                )
            ).one()
        depth, oldest = int(row[0]), row[1]
        if oldest is None:
            return QueueStats(depth=depth, oldest_age_seconds=0.0)
        if isinstance(oldest, str):  # SQLite returns an aggregate of a timestamp as text
            oldest = datetime.fromisoformat(oldest)
        if oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        age = ((now or utcnow()) - oldest).total_seconds()
        return QueueStats(depth=depth, oldest_age_seconds=max(age, 0.0))
