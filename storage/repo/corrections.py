"""Corrections: a person's fix of a misread request, kept as a training example of its tenant."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update

from storage.repo.base import RepoBase
from storage.tables import Correction, CorrectionStatus


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
        query = select(Correction)
        if task_id is not None:
            query = query.where(Correction.task_id == task_id)
        if user is not None:
            query = query.where(Correction.user == user)
        if platform is not None:
            query = query.where(Correction.platform == platform)
        if tenant is not None:
            query = query.where(Correction.tenant == tenant)
        if status is not None:
            query = query.where(Correction.status == status)
        if since is not None:
            query = query.where(Correction.created_at >= since)
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
