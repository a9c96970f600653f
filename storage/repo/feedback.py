"""Votes on results: one per user and task, changeable; tallies."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from storage.repo.base import (
    RepoBase,
    Tally,
)
from storage.tables import (
    Feedback,
    Task,
    utcnow,
)


class FeedbackVotes(RepoBase):
    """Votes on results: one per user and task, changeable; tallies."""

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
