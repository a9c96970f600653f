"""Corrections: a person's fix of a misread request, kept as a training example of its tenant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, exists, false, func, or_, select, update

from storage.repo.base import RepoBase, where_given
from storage.tables import (
    ChatSetting,
    Correction,
    CorrectionStatus,
    Feedback,
    Request,
    Task,
    TaskStatus,
)


@dataclass(frozen=True)
class AcceptedReading:
    """A task the classifier planned that nobody said was the wrong kind: its clause's text
    and the intent it was read as, a training example of its tenant (implicit feedback)."""

    task_id: int
    text: str
    intent: str
    created_at: datetime


class Corrections(RepoBase):
    """Corrections of misread requests, each a training example of its tenant."""

    async def add_correction(
        self,
        *,
        platform: str,
        tenant: str,
        channel: str,
        user: str,
        text: str,
        right_kind: str,
        wrong_kind: str | None = None,
        task_id: int | None = None,
        status: str = CorrectionStatus.active,
    ) -> Correction:
        """Store a correction (``status`` pending when corrections wait for review)."""
        row = Correction(
            platform=platform,
            tenant=tenant,
            channel=channel,
            user=user,
            text=text,
            right_kind=right_kind,
            wrong_kind=wrong_kind,
            task_id=task_id,
            status=status,
        )
        async with self._sessions() as session:
            session.add(row)
            await session.commit()
            await session.refresh(row)
            return row

    async def get_correction(self, correction_id: int) -> Correction | None:
        """One correction by id."""
        async with self._sessions() as session:
            return await session.get(Correction, correction_id)

    async def corrections(
        self,
        *,
        platform: str | None = None,
        tenant: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        after_id: int | None = None,
        task_id: int | None = None,
        user: str | None = None,
    ) -> list[Correction]:
        """Corrections, oldest first: of one tenant, one status, newer than a time or id,
        of one task, by one person."""
        query = where_given(
            select(Correction),
            Correction,
            since=since,
            task_id=task_id,
            user=user,
            platform=platform,
            tenant=tenant,
            status=status,
        )
        if after_id is not None:
            query = query.where(Correction.id > after_id)
        async with self._sessions() as session:
            rows = await session.execute(query.order_by(Correction.id))
            return list(rows.scalars().all())

    async def count_corrections(
        self, *, status: str = CorrectionStatus.active, after_id: int | None = None
    ) -> int:
        """How many corrections of a status there are (newer than ``after_id`` when given)."""
        query = select(func.count()).select_from(Correction).where(Correction.status == status)
        if after_id is not None:
            query = query.where(Correction.id > after_id)
        async with self._sessions() as session:
            return int((await session.execute(query)).scalar_one())

    async def approve_correction(self, correction_id: int) -> bool:
        """Make a pending correction active; False when there is no such pending correction."""
        async with self._sessions() as session:
            result = await session.execute(
                update(Correction)
                .where(
                    Correction.id == correction_id, Correction.status == CorrectionStatus.pending
                )
                .values(status=CorrectionStatus.active)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
            return bool(result.rowcount)

    async def drop_correction(self, correction_id: int) -> bool:
        """Delete a correction; False when there is none with that id."""
        async with self._sessions() as session:
            result = await session.execute(delete(Correction).where(Correction.id == correction_id))
            await session.commit()
            return bool(result.rowcount)

    def _accepted(self, before: datetime):  # type: ignore[no-untyped-def]
        """Tasks read by the classifier, finished, first attempts, older than ``before``, with
        no correction and no "wrong kind" 👎, in chats that did not opt out of training."""
        setting = and_(
            ChatSetting.platform == Request.platform,
            ChatSetting.tenant == Request.tenant,
            ChatSetting.channel == Request.channel,
        )
        return (
            select(Task.id, Task.platform, Task.tenant, Task.inputs, Task.created_at)
            .join(Request, Request.id == Task.request_id)  # type: ignore[arg-type]
            .outerjoin(ChatSetting, setting)
            .where(
                Task.status == TaskStatus.succeeded,
                Task.retry_of.is_(None),  # type: ignore[union-attr]
                Task.created_at <= before,  # type: ignore[arg-type]
                or_(
                    ChatSetting.training_opt_out.is_(None),  # type: ignore[attr-defined]
                    ChatSetting.training_opt_out == false(),
                ),
                ~exists().where(Correction.task_id == Task.id),
                ~exists().where(Feedback.task_id == Task.id, Feedback.reason == "wrong_kind"),
            )
        )

    async def accepted_readings(
        self, *, platform: str, tenant: str, before: datetime, limit: int = 20_000
    ) -> list[AcceptedReading]:
        """The newest ``limit`` accepted readings of one tenant (see :meth:`_accepted`),
        oldest first; one per message clause."""
        query = (
            self._accepted(before)
            .where(Task.platform == platform, Task.tenant == tenant)
            .order_by(Task.id.desc())  # type: ignore[union-attr]
            .limit(limit)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        readings: dict[tuple[str, str], AcceptedReading] = {}
        for task_id, _, _, inputs, created_at in reversed(rows):
            text, intent = inputs.get("request_text"), inputs.get("intent")
            if not isinstance(text, str) or not isinstance(intent, str):
                continue  # not planned from a classifier reading (commands, older tasks)
            text = text.strip()
            if not text or text.startswith("/"):
                continue
            readings.setdefault((text, intent), AcceptedReading(task_id, text, intent, created_at))
        return list(readings.values())

    async def accepted_scopes(self, *, before: datetime) -> list[tuple[str, str]]:
        """The (platform, tenant) pairs that have accepted readings older than ``before``."""
        inner = self._accepted(before).subquery()
        query = select(inner.c.platform, inner.c.tenant).distinct()
        async with self._sessions() as session:
            return [(str(p), str(t)) for p, t in (await session.execute(query)).all()]
