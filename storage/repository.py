"""Every query atombot runs. Callers pass keyword arguments; each method is one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import aliased

from storage.db import session_factory
from storage.schemas import RequestCreate, TaskCreate
from storage.tables import (
    TERMINAL_STATUSES,
    ChatMessage,
    ChatSetting,
    Delivery,
    DigestSubscription,
    Feedback,
    Notice,
    NoticeStatus,
    Reminder,
    Request,
    Task,
    TaskDependency,
    TaskStatus,
    utcnow,
)

ACTIVE_STATUSES = (TaskStatus.queued, TaskStatus.running)
ChatRowT = TypeVar("ChatRowT", DigestSubscription, ChatSetting)


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


async def _per_chat(
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


def _new_delivery(request: Request, *, next_attempt_at: datetime | None = None) -> Delivery:
    """A fresh delivery record for a stored request (its chat, nothing shown yet)."""
    return Delivery(
        request_id=request.id or 0,
        platform=request.platform,
        tenant=request.tenant,
        channel=request.channel,
        thread=request.thread,
        next_attempt_at=next_attempt_at,
    )


async def _commit_with_notice(session: AsyncSession, claimed: bool, notice: Notice | None) -> bool:
    """Commit a claim together with the message it is for; nothing is stored when not claimed."""
    if not claimed:
        await session.rollback()
        return False
    if notice is not None:
        session.add(notice)
    await session.commit()
    return True


class Repository:
    """The one place that builds queries. Safe to share between coroutines."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = session_factory(engine)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    async def dispose(self) -> None:
        """Close all pooled connections."""
        await self.engine.dispose()

    # ------------------------------------------------------------------ requests
    async def find_request(self, *, platform: str, tenant: str, event_id: str) -> Request | None:
        """The stored request for an inbound event, if it was seen before."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(Request).where(
                    Request.platform == platform,
                    Request.tenant == tenant,
                    Request.event_id == event_id,
                )
            )
            return rows.scalars().first()

    async def create_request(
        self,
        *,
        request: RequestCreate,
        tasks: Sequence[TaskCreate],
        hold_delivery_until: datetime | None = None,
    ) -> CreatedRequest:
        """Store a request and its tasks in one transaction; a duplicate event stores nothing.

        ``hold_delivery_until`` also creates the request's delivery record, held until then,
        in the same transaction: the adapter is about to post the message the delivery job
        will edit (see :meth:`adopt_message`).
        """
        async with self._sessions() as session:
            row = Request(**request.__dict__)
            session.add(row)
            try:
                await session.flush()
            except IntegrityError:
                await session.rollback()
                existing = await self.find_request(
                    platform=request.platform, tenant=request.tenant, event_id=request.event_id
                )
                if existing is None:  # pragma: no cover - the constraint said it exists
                    raise
                return CreatedRequest(
                    existing, await self.tasks_of_request(existing.id or 0), False
                )
            now = utcnow()
            created: list[Task] = []
            for position, spec in enumerate(tasks):
                dep_ids = [created[i].id for i in spec.depends_on if 0 <= i < len(created)]
                task = Task(
                    request_id=row.id or 0,
                    position=position,
                    kind=spec.kind,
                    status=spec.status,
                    inputs=spec.inputs,
                    result=spec.result,
                    priority=spec.priority,
                    max_attempts=spec.max_attempts,
                    depends_on=[d for d in dep_ids if d is not None],
                    retry_of=spec.retry_of,
                    platform=request.platform,
                    tenant=request.tenant,
                    user=request.user,
                    created_at=now,
                    updated_at=now,
                    finished_at=now if spec.status in TERMINAL_STATUSES else None,
                    progress=1.0 if spec.status == TaskStatus.succeeded else 0.0,
                )
                session.add(task)
                await session.flush()
                created.append(task)
                for dep in task.depends_on:
                    session.add(TaskDependency(task_id=task.id or 0, depends_on_id=dep))
            if hold_delivery_until is not None and created:
                session.add(_new_delivery(row, next_attempt_at=hold_delivery_until))
            await session.commit()
            return CreatedRequest(row, created, True)

    async def get_request(self, request_id: int) -> Request | None:
        """A request by id."""
        async with self._sessions() as session:
            return await session.get(Request, request_id)

    # --------------------------------------------------------------------- tasks
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
                    Task.lease_owner == worker_id,
                    Task.status == TaskStatus.running,
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
                    Task.lease_owner == worker_id,
                    Task.status == TaskStatus.running,
                )
                .values(progress=progress, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            await session.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def complete(self, *, task_id: int, worker_id: str, result: str) -> bool:
        """Store the result and mark the task succeeded, if ``worker_id`` still holds it."""
        now = utcnow()
        async with self._sessions() as session:
            done = await session.execute(
                update(Task)
                .where(
                    Task.id == task_id,
                    Task.lease_owner == worker_id,
                    Task.status == TaskStatus.running,
                )
                .values(
                    status=TaskStatus.succeeded,
                    result=result,
                    progress=1.0,
                    error=None,
                    lease_owner=None,
                    lease_expires_at=None,
                    finished_at=now,
                    updated_at=now,
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
                            Task.lease_owner == worker_id,
                            Task.status == TaskStatus.running,
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
                    Task.lease_owner == worker_id,
                    Task.status == TaskStatus.running,
                )
                .values(
                    status=TaskStatus.queued,
                    lease_owner=None,
                    lease_expires_at=None,
                    attempts=Task.attempts - 1,
                    progress=0.0,
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

    # ------------------------------------------------------------------ feedback
    async def record_feedback(
        self, *, task_id: int, user: str, score: int, reason: str | None = None
    ) -> tuple[Feedback, bool]:
        """Store ``user``'s vote on a task; a second vote replaces the first.

        Returns the vote and whether anything changed (False for a repeated identical vote).
        """
        if score not in (1, -1):
            raise ValueError("score must be +1 or -1")
        now = utcnow()
        async with self._sessions() as session:
            existing = (
                (
                    await session.execute(
                        select(Feedback).where(Feedback.task_id == task_id, Feedback.user == user)
                    )
                )
                .scalars()
                .first()
            )
            # Touch the task so the delivery job re-renders its tally.
            await session.execute(
                update(Task)
                .where(Task.id == task_id)
                .values(updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if existing is not None:
                changed = existing.score != score or (
                    reason is not None and existing.reason != reason
                )
                existing.score = score
                if reason is not None:
                    existing.reason = reason
                existing.updated_at = now
                session.add(existing)
                await session.commit()
                return existing, changed
            vote = Feedback(task_id=task_id, user=user, score=score, reason=reason)
            session.add(vote)
            try:
                await session.commit()
            except IntegrityError:
                # A concurrent press of the same button stored the vote first.
                await session.rollback()
                return await self.record_feedback(
                    task_id=task_id, user=user, score=score, reason=reason
                )
            return vote, True

    async def feedback_of(self, task_id: int) -> list[Feedback]:
        """Every vote on a task."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(Feedback).where(Feedback.task_id == task_id).order_by(Feedback.id)
            )
            return list(rows.scalars().all())

    async def tallies(self, task_ids: Sequence[int]) -> dict[int, Tally]:
        """👍/👎 counts per task."""
        if not task_ids:
            return {}
        async with self._sessions() as session:
            rows = await session.execute(
                select(Feedback.task_id, Feedback.score, func.count())
                .where(Feedback.task_id.in_(list(task_ids)))  # type: ignore[attr-defined]
                .group_by(Feedback.task_id, Feedback.score)
            )
            counts: dict[int, dict[int, int]] = {}
            for task_id, score, n in rows.all():
                counts.setdefault(task_id, {})[score] = n
        return {tid: Tally(up=c.get(1, 0), down=c.get(-1, 0)) for tid, c in counts.items()}

    # ---------------------------------------------------------------- deliveries
    async def delivery_for(self, request_id: int) -> Delivery | None:
        """The delivery record of a request, if one exists."""
        async with self._sessions() as session:
            rows = await session.execute(select(Delivery).where(Delivery.request_id == request_id))
            return rows.scalars().first()

    async def ensure_delivery(self, *, request: Request) -> Delivery:
        """The delivery record of a request, created on first use."""
        found = await self.delivery_for(request.id or 0)
        if found is not None:
            return found
        async with self._sessions() as session:
            row = _new_delivery(request)
            session.add(row)
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                again = await self.delivery_for(request.id or 0)
                assert again is not None
                return again
            return row

    async def adopt_message(self, *, request_id: int, message_id: str | None) -> bool:
        """Make an already posted message the one the delivery job edits, and lift its hold.

        ``message_id`` None (the post failed) only lifts the hold, so the delivery job posts
        its own message at once. False when the delivery job had already posted one.
        """
        async with self._sessions() as session:
            rows = await session.execute(
                select(Delivery).where(Delivery.request_id == request_id).with_for_update()
            )
            delivery = rows.scalars().first()
            if delivery is None or delivery.message_id is not None or delivery.posting is not None:
                return False  # the delivery job posted (or may be posting) its own message
            now = utcnow()
            delivery.next_attempt_at = None
            delivery.updated_at = now
            if message_id is not None:
                delivery.message_id = message_id
                delivery.last_edit_at = now
            await session.commit()
            return message_id is not None

    async def save_delivery(self, delivery: Delivery) -> None:
        """Persist changes to a delivery record."""
        delivery.updated_at = utcnow()
        async with self._sessions() as session:
            session.add(delivery)
            await session.commit()

    async def pending_deliveries(
        self, *, platforms: Sequence[str], limit: int = 200
    ) -> list[Delivery]:
        """Deliveries not yet done, for adapters that are running."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(Delivery)
                .where(
                    Delivery.done.is_(False),  # type: ignore[attr-defined]
                    Delivery.platform.in_(list(platforms)),  # type: ignore[attr-defined]
                )
                .order_by(Delivery.id)
                .limit(limit)
            )
            return list(rows.scalars().all())

    # ------------------------------------------------------------------- digests
    async def subscribe_digest(
        self,
        *,
        platform: str,
        tenant: str,
        channel: str,
        user: str,
        cron: dict[str, Any],
        timezone: str,
        locale: str,
        scope: str = "channel",
    ) -> DigestSubscription:
        """Create or replace the digest subscription of a channel."""
        async with self._sessions() as session:
            row = await _per_chat(session, DigestSubscription, platform, tenant, channel)
            if row is None:
                row = DigestSubscription(
                    platform=platform, tenant=tenant, channel=channel, user=user
                )
            row.cron = cron
            row.timezone = timezone
            row.locale = locale
            row.scope = scope
            row.user = user
            session.add(row)
            await session.commit()
            await session.refresh(row)
            return row

    async def unsubscribe_digest(self, *, platform: str, tenant: str, channel: str) -> bool:
        """Remove a channel's digest; False when there was none."""
        async with self._sessions() as session:
            row = await _per_chat(session, DigestSubscription, platform, tenant, channel)
            if row is None:
                return False
            await session.delete(row)
            await session.commit()
            return True

    async def list_digests(self) -> list[DigestSubscription]:
        """Every digest subscription."""
        async with self._sessions() as session:
            rows = await session.execute(select(DigestSubscription).order_by(DigestSubscription.id))
            return list(rows.scalars().all())

    async def get_digest(self, digest_id: int) -> DigestSubscription | None:
        """A digest subscription by id."""
        async with self._sessions() as session:
            return await session.get(DigestSubscription, digest_id)

    async def advance_digest_window(
        self,
        *,
        digest_id: int,
        previous_end: datetime | None,
        new_end: datetime,
        notice: Notice | None = None,
    ) -> bool:
        """Move a digest's window end forward, only if nobody else did (compare-and-set).

        ``notice`` (the digest message) is stored in the same transaction when the move
        succeeds, so a claimed window always has its message to send.
        """
        cond = (
            DigestSubscription.last_window_end.is_(None)  # type: ignore[union-attr]
            if previous_end is None
            else DigestSubscription.last_window_end == previous_end
        )
        async with self._sessions() as session:
            result = await session.execute(
                update(DigestSubscription)
                .where(DigestSubscription.id == digest_id, cond)
                .values(last_window_end=new_end)
                .execution_options(synchronize_session=False)
            )
            return await _commit_with_notice(session, bool(result.rowcount), notice)  # type: ignore[attr-defined]

    async def tasks_in_window(
        self, *, platform: str, tenant: str, channel: str, start: datetime | None, end: datetime
    ) -> list[Task]:
        """Tasks requested in a channel within ``[start, end)``."""
        query = (
            select(Task)
            .join(Request, Request.id == Task.request_id)  # type: ignore[arg-type]
            .where(
                Request.platform == platform,
                Request.tenant == tenant,
                Request.channel == channel,
                Request.created_at < end,  # type: ignore[operator]
            )
        )
        if start is not None:
            query = query.where(Request.created_at >= start)  # type: ignore[operator]
        async with self._sessions() as session:
            rows = await session.execute(query.order_by(Task.id))
            return list(rows.scalars().all())

    # ----------------------------------------------------------------- reminders
    async def create_reminder(self, reminder: Reminder) -> Reminder:
        """Store a reminder."""
        async with self._sessions() as session:
            session.add(reminder)
            await session.commit()
            await session.refresh(reminder)
            return reminder

    async def due_reminders(self, *, now: datetime, limit: int = 100) -> list[Reminder]:
        """Active reminders whose time has come."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(Reminder)
                .where(Reminder.active.is_(True), Reminder.next_fire_at <= now)  # type: ignore[attr-defined, operator]
                .order_by(Reminder.next_fire_at)
                .limit(limit)
            )
            return list(rows.scalars().all())

    async def advance_reminder(
        self,
        *,
        reminder_id: int,
        fired_at: datetime,
        next_fire_at: datetime | None,
        notice: Notice | None = None,
    ) -> bool:
        """Claim one firing of a reminder (compare-and-set on its due time).

        Returns False when another scheduler already fired it; a reminder with no next
        time becomes inactive. ``notice`` (the reminder message) is stored in the same
        transaction when the claim succeeds.
        """
        values: dict[str, Any] = {"fired_count": Reminder.fired_count + 1}
        if next_fire_at is None:
            values["active"] = False
        else:
            values["next_fire_at"] = next_fire_at
        async with self._sessions() as session:
            result = await session.execute(
                update(Reminder)
                .where(
                    Reminder.id == reminder_id,
                    Reminder.active.is_(True),  # type: ignore[attr-defined]
                    Reminder.next_fire_at == fired_at,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            return await _commit_with_notice(session, bool(result.rowcount), notice)  # type: ignore[attr-defined]

    async def reminder_of_task(self, task_id: int) -> Reminder | None:
        """The reminder a ``reminder.create`` task set."""
        async with self._sessions() as session:
            rows = await session.execute(select(Reminder).where(Reminder.task_id == task_id))
            return rows.scalars().first()

    # ------------------------------------------------------------------- notices
    async def due_notices(self, *, now: datetime, limit: int = 100) -> list[Notice]:
        """Notices to (re)try now: refused ones whose backoff passed, and interrupted ones.

        A notice being sent carries ``next_attempt_at`` = its takeover time, so one whose
        sender died becomes due then (and is reconciled before anything is posted again).
        """
        async with self._sessions() as session:
            rows = await session.execute(
                select(Notice)
                .where(
                    Notice.status.in_([NoticeStatus.pending, NoticeStatus.sending]),  # type: ignore[attr-defined]
                    or_(Notice.next_attempt_at.is_(None), Notice.next_attempt_at <= now),  # type: ignore[union-attr, operator]
                )
                .order_by(Notice.id)
                .limit(limit)
            )
            return list(rows.scalars().all())

    async def claim_notice(self, notice: Notice, *, now: datetime, hold_until: datetime) -> bool:
        """Take one attempt at ``notice`` (compare-and-set on its status and attempt count).

        On success ``notice`` is updated in place: ``sending``, one more attempt, and held
        (``next_attempt_at``) until ``hold_until`` against other schedulers.
        """
        async with self._sessions() as session:
            result = await session.execute(
                update(Notice)
                .where(
                    Notice.id == notice.id,
                    Notice.status == notice.status,
                    Notice.attempts == notice.attempts,
                )
                .values(
                    status=NoticeStatus.sending,
                    attempts=notice.attempts + 1,
                    next_attempt_at=hold_until,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        if not result.rowcount:  # type: ignore[attr-defined]
            return False
        notice.status = NoticeStatus.sending
        notice.attempts += 1
        notice.next_attempt_at = hold_until
        notice.updated_at = now
        return True

    async def save_notice(self, notice: Notice) -> None:
        """Persist changes to a notice."""
        notice.updated_at = utcnow()
        async with self._sessions() as session:
            session.add(notice)
            await session.commit()

    async def get_notice(self, notice_id: int) -> Notice | None:
        """A notice by id."""
        async with self._sessions() as session:
            return await session.get(Notice, notice_id)

    async def notices(self, *, key_prefix: str = "") -> list[Notice]:
        """Every notice whose key starts with ``key_prefix``, oldest first."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(Notice)
                .where(Notice.key.startswith(key_prefix))  # type: ignore[attr-defined]
                .order_by(Notice.id)
            )
            return list(rows.scalars().all())

    # --------------------------------------------------------------- chat memory
    async def memory_opted_out(self, *, platform: str, tenant: str, channel: str) -> bool:
        """Whether a chat asked atombot not to keep its messages."""
        async with self._sessions() as session:
            row = await _per_chat(session, ChatSetting, platform, tenant, channel)
            return bool(row and row.memory_opt_out)

    async def set_memory_opt_out(
        self, *, platform: str, tenant: str, channel: str, opt_out: bool
    ) -> None:
        """Switch chat memory off (and forget what was kept) or back on."""
        async with self._sessions() as session:
            row = await _per_chat(session, ChatSetting, platform, tenant, channel)
            if row is None:
                row = ChatSetting(platform=platform, tenant=tenant, channel=channel)
            row.memory_opt_out = opt_out
            row.updated_at = utcnow()
            session.add(row)
            await session.commit()
        if opt_out:
            await self.forget_chat(platform=platform, tenant=tenant, channel=channel)

    async def remember_message(self, message: ChatMessage) -> bool:
        """Keep a chat message for later summaries, unless the chat opted out or it is known."""
        if await self.memory_opted_out(
            platform=message.platform, tenant=message.tenant, channel=message.channel
        ):
            return False
        async with self._sessions() as session:
            session.add(message)
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                return False
            return True

    async def chat_messages(
        self,
        *,
        platform: str,
        tenant: str,
        channel: str,
        since: datetime | None = None,
        until: datetime | None = None,
        thread: str | None = None,
        limit: int = 1000,
    ) -> list[ChatMessage]:
        """Remembered messages of a chat (optionally of one thread / in ``[since, until)``),
        the latest ``limit`` of them, oldest first."""
        query = select(ChatMessage).where(
            ChatMessage.platform == platform,
            ChatMessage.tenant == tenant,
            ChatMessage.channel == channel,
        )
        if since is not None:
            query = query.where(ChatMessage.sent_at >= since)  # type: ignore[operator]
        if until is not None:
            query = query.where(ChatMessage.sent_at < until)  # type: ignore[operator]
        if thread is not None:
            query = query.where(or_(ChatMessage.thread == thread, ChatMessage.message_id == thread))
        async with self._sessions() as session:
            rows = await session.execute(
                query.order_by(ChatMessage.sent_at.desc(), ChatMessage.id.desc()).limit(limit)  # type: ignore[attr-defined, union-attr]
            )
            return list(reversed(rows.scalars().all()))

    async def forget_chat(self, *, platform: str, tenant: str, channel: str) -> int:
        """Delete every remembered message of a chat; returns how many."""
        from sqlalchemy import delete

        async with self._sessions() as session:
            result = await session.execute(
                delete(ChatMessage).where(
                    ChatMessage.platform == platform,  # type: ignore[arg-type]
                    ChatMessage.tenant == tenant,  # type: ignore[arg-type]
                    ChatMessage.channel == channel,  # type: ignore[arg-type]
                )
            )
            await session.commit()
            return int(result.rowcount)  # type: ignore[attr-defined]

    async def purge_chat_memory(self, *, older_than: datetime) -> int:
        """Apply the retention period: delete remembered messages older than ``older_than``."""
        from sqlalchemy import delete

        async with self._sessions() as session:
            result = await session.execute(
                delete(ChatMessage).where(ChatMessage.sent_at < older_than)  # type: ignore[arg-type, operator]
            )
            await session.commit()
            return int(result.rowcount)  # type: ignore[attr-defined]

    # ------------------------------------------------- scheduler leadership (PostgreSQL)
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
