"""The task queue's life cycle: claim with a lease, progress, complete, fail, cancel, reap."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.orm import aliased

from storage.repo.base import (
    ACTIVE_STATUSES,
    RepoBase,
)
from storage.tables import (
    Reminder,
    Task,
    TaskDependency,
    TaskStatus,
    utcnow,
)


def _held(worker_id: str) -> ColumnElement[bool]:
    """The tasks ``worker_id`` holds: leased to it and still running (not cancelled, reaped
    or finished meanwhile). Every write a worker makes to a task is guarded by this."""
    return and_(Task.lease_owner == worker_id, Task.status == TaskStatus.running)  # type: ignore[arg-type]


class TaskQueue(RepoBase):
    """The task queue's life cycle: claim with a lease, progress, complete, fail, cancel, reap."""

    async def claim(
        self,
        *,
        worker_id: str,
        limit: int,
        lease_seconds: float,
        kinds: Sequence[str] | None = None,
    ) -> list[Task]:
        """Lease up to ``limit`` ready tasks (priority, then age) to ``worker_id``.

        A task is ready when it is queued, its backoff has passed and every task it depends
        on has succeeded. PostgreSQL skips rows another worker is claiming (``FOR UPDATE
        SKIP LOCKED``); on SQLite the single ``UPDATE … RETURNING`` is atomic.
        """
        if limit <= 0:
            return []
        now = utcnow()
        dep_task = aliased(Task)
        blocked = (
            select(TaskDependency.task_id)
            .join(dep_task, dep_task.id == TaskDependency.depends_on_id)  # type: ignore[arg-type]
            .where(
                TaskDependency.task_id == Task.id,
                dep_task.status != TaskStatus.succeeded,
            )
        )
        candidates = select(Task.id).where(
            Task.status == TaskStatus.queued,
            or_(Task.not_before.is_(None), Task.not_before <= now),  # type: ignore[union-attr, operator]
            ~exists(blocked),
        )
        if kinds is not None:
            candidates = candidates.where(Task.kind.in_(list(kinds)))  # type: ignore[attr-defined]
        candidates = candidates.order_by(Task.priority.desc(), Task.id).limit(limit)  # type: ignore[attr-defined]
        if self.dialect == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        stmt = (
            update(Task)
            .where(Task.id.in_(candidates.scalar_subquery()))  # type: ignore[union-attr]
            .values(
                status=TaskStatus.running,
                lease_owner=worker_id,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                attempts=Task.attempts + 1,
                started_at=func.coalesce(Task.started_at, now),
                updated_at=now,
                error=None,
            )
            .returning(Task)
            .execution_options(synchronize_session=False)
        )
        async with self._sessions() as session:
            rows = await session.execute(stmt)
            claimed = list(rows.scalars().all())
            await session.commit()
        return sorted(claimed, key=lambda t: (-t.priority, t.id or 0))

    async def heartbeat(
        self, *, worker_id: str, task_ids: Sequence[int], lease_seconds: float
    ) -> int:
        """Extend the leases ``worker_id`` holds; returns how many are still held."""
        if not task_ids:
            return 0
        now = utcnow()
        async with self._sessions() as session:
            result = await session.execute(
                update(Task)
                .where(
                    Task.id.in_(list(task_ids)),  # type: ignore[union-attr]
                    _held(worker_id),
                )
                .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
                .execution_options(synchronize_session=False)
            )
            await session.commit()
            return int(result.rowcount)  # type: ignore[attr-defined]

    async def set_progress(self, *, task_id: int, worker_id: str, progress: float) -> bool:
        """Record progress; False when the worker no longer holds the task (e.g. cancelled)."""
        progress = min(max(progress, 0.0), 0.99)
        async with self._sessions() as session:
            result = await session.execute(
                update(Task)
                .where(
                    Task.id == task_id,
                    _held(worker_id),
                )
                .values(progress=progress, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            await session.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def set_partial(
        self, *, task_id: int, worker_id: str, text: str, progress: float
    ) -> bool:
        """Store the text generated so far (and the progress) of a running task, so the
        delivery job can show it; bumps ``updated_at`` so the job's next pass sees it.

        False when ``worker_id`` no longer holds the task (cancelled, reaped, finished).
        """
        now = utcnow()
        async with self._sessions() as session:
            result = await session.execute(
                update(Task)
                .where(Task.id == task_id, _held(worker_id))
                .values(
                    partial=text,
                    partial_at=now,
                    progress=min(max(progress, 0.0), 0.99),
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            await session.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def set_variant(self, *, task_id: int, worker_id: str, variant: str) -> bool:
        """Record the prompt variant chosen for a running task (kept by its retries, and
        counted in its failure if it fails); False when ``worker_id`` no longer holds it."""
        async with self._sessions() as session:
            result = await session.execute(
                update(Task)
                .where(
                    Task.id == task_id,
                    _held(worker_id),
                )
                .values(variant=variant)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def complete(
        self,
        *,
        task_id: int,
        worker_id: str,
        result: str,
        variant: str | None = None,
        prompt: Sequence[Mapping[str, Any]] | None = None,
        tokens: int | None = None,
    ) -> bool:
        """Store the result and mark the task succeeded, if ``worker_id`` still holds it.

        ``prompt`` is the chat messages the model was given (the result is the assistant turn
        that follows them), ``variant`` the prompt variant used, ``tokens`` how many tokens
        were generated; each is left as it was when not given.
        """
        now = utcnow()
        extra: dict[str, Any] = {}
        if variant is not None:
            extra["variant"] = variant
        if prompt is not None:
            extra["prompt"] = [dict(message) for message in prompt]
        if tokens is not None:
            extra["tokens"] = tokens
        async with self._sessions() as session:
            done = await session.execute(
                update(Task)
                .where(
                    Task.id == task_id,
                    _held(worker_id),
                )
                .values(
                    status=TaskStatus.succeeded,
                    result=result,
                    partial=None,
                    partial_at=None,
                    progress=1.0,
                    error=None,
                    lease_owner=None,
                    lease_expires_at=None,
                    finished_at=now,
                    updated_at=now,
                    **extra,
                )
                .execution_options(synchronize_session=False)
            )
            await session.commit()
            return bool(done.rowcount)  # type: ignore[attr-defined]

    async def finish_immediately(self, *, task_id: int, result: str) -> None:
        """Mark a task that needs no worker (reminder set, digest subscribed) as succeeded."""
        now = utcnow()
        async with self._sessions() as session:
            await session.execute(
                update(Task)
                .where(Task.id == task_id)
                .values(
                    status=TaskStatus.succeeded,
                    result=result,
                    progress=1.0,
                    finished_at=now,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            await session.commit()

    async def fail(
        self,
        *,
        task_id: int,
        worker_id: str,
        error: str,
        retryable: bool = True,
        backoff_seconds: float = 2.0,
    ) -> Task | None:
        """Record a failed attempt: re-queue with exponential backoff, or fail for good.

        A task that fails for good fails the tasks that depend on it too.
        Returns the updated task, or None if ``worker_id`` no longer held it.
        """
        now = utcnow()
        async with self._sessions() as session:
            task = (
                (
                    await session.execute(
                        select(Task)
                        .where(
                            Task.id == task_id,
                            _held(worker_id),
                        )
                        .with_for_update()
                    )
                )
                .scalars()
                .first()
            )
            if task is None:
                return None
            task.lease_owner = None
            task.lease_expires_at = None
            task.error = error
            task.updated_at = now
            # A retry generates anew: the text of this attempt is no longer shown.
            task.partial = None
            task.partial_at = None
            if retryable and task.attempts < task.max_attempts:
                task.status = TaskStatus.queued
                task.not_before = now + timedelta(
                    seconds=backoff_seconds * 2 ** max(task.attempts - 1, 0)
                )
            else:
                task.status = TaskStatus.failed
                task.finished_at = now
                await self._close_dependents(session, [task_id], TaskStatus.failed, now)
            session.add(task)
            await session.commit()
            return task

    async def release(self, *, task_id: int, worker_id: str) -> bool:
        """Give a claimed task back to the queue without counting the attempt (clean shutdown)."""
        async with self._sessions() as session:
            result = await session.execute(
                update(Task)
                .where(
                    Task.id == task_id,
                    _held(worker_id),
                )
                .values(
                    status=TaskStatus.queued,
                    lease_owner=None,
                    lease_expires_at=None,
                    attempts=Task.attempts - 1,
                    progress=0.0,
                    partial=None,
                    partial_at=None,
                    updated_at=utcnow(),
                )
                .execution_options(synchronize_session=False)
            )
            await session.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def cancel(self, *, task_id: int, reason: str | None = None) -> Task | None:
        """Cancel a queued or running task and the tasks that depend on it.

        Returns the task (cancelled, or unchanged when it had already finished), or None.
        """
        now = utcnow()
        async with self._sessions() as session:
            task = await session.get(Task, task_id)
            if task is None:
                return None
            if task.status in ACTIVE_STATUSES:
                task.status = TaskStatus.cancelled
                task.error = reason
                task.lease_owner = None
                task.lease_expires_at = None
                task.finished_at = now
                task.updated_at = now
                session.add(task)
                await self._close_dependents(session, [task_id], TaskStatus.cancelled, now)
                await session.execute(
                    update(Reminder)
                    .where(Reminder.task_id == task_id)
                    .values(active=False)
                    .execution_options(synchronize_session=False)
                )
            else:  # a finished task with a reminder (reminder.create): stop the reminder
                await session.execute(
                    update(Reminder)
                    .where(Reminder.task_id == task_id, Reminder.active.is_(True))  # type: ignore[attr-defined]
                    .values(active=False)
                    .execution_options(synchronize_session=False)
                )
            await session.commit()
            return task

    async def _close_dependents(
        self, session: Any, roots: list[int], status: str, now: datetime
    ) -> None:
        frontier = list(roots)
        while frontier:
            rows = await session.execute(
                select(TaskDependency.task_id).where(
                    TaskDependency.depends_on_id.in_(frontier)  # type: ignore[attr-defined]
                )
            )
            children = [int(r) for r in rows.scalars().all()]
            if not children:
                return
            await session.execute(
                update(Task)
                .where(Task.id.in_(children), Task.status == TaskStatus.queued)  # type: ignore[union-attr]
                .values(
                    status=status,
                    error="a task it depends on did not succeed",
                    finished_at=now,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            frontier = children

    async def reap_expired(self, *, now: datetime | None = None) -> list[Task]:
        """Re-queue running tasks whose lease expired (their worker died); fail exhausted ones."""
        now = now or utcnow()
        async with self._sessions() as session:
            rows = await session.execute(
                select(Task)
                .where(Task.status == TaskStatus.running, Task.lease_expires_at < now)  # type: ignore[operator]
                .with_for_update(skip_locked=True)
            )
            reaped = list(rows.scalars().all())
            for task in reaped:
                task.lease_owner = None
                task.lease_expires_at = None
                task.updated_at = now
                task.partial = None
                task.partial_at = None
                if task.attempts >= task.max_attempts:
                    task.status = TaskStatus.failed
                    task.error = "worker_lost"
                    task.finished_at = now
                    await self._close_dependents(session, [task.id or 0], TaskStatus.failed, now)
                else:
                    task.status = TaskStatus.queued
                    task.error = "worker_lost"
                    task.progress = 0.0
                session.add(task)
            await session.commit()
            return reaped
