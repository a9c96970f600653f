"""Inbound requests and the tasks stored with them, in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from storage.repo.base import (
    CreatedRequest,
    new_delivery,
)
from storage.repo.tasks import TaskReads
from storage.schemas import RequestCreate, TaskCreate
from storage.tables import (
    TERMINAL_STATUSES,
    Request,
    Task,
    TaskDependency,
    TaskStatus,
    utcnow,
)


class Requests(TaskReads):
    """Inbound requests and the tasks stored with them, in one transaction."""

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
                session.add(new_delivery(row, next_attempt_at=hold_delivery_until))
            await session.commit()
            return CreatedRequest(row, created, True)

    async def get_request(self, request_id: int) -> Request | None:
        """A request by id."""
        async with self._sessions() as session:
            return await session.get(Request, request_id)
