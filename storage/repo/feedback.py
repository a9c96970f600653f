"""Votes on results: one per user and task, changeable; tallies."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.repo.base import (
    RepoBase,
    Tally,
)
from storage.tables import (
    FEEDBACK_REASONS,
    Feedback,
    Task,
    utcnow,
)


def _check_reason(reason: str | None) -> None:
    if reason is not None and reason not in FEEDBACK_REASONS:
        raise ValueError(f"unknown feedback reason {reason!r}")


class FeedbackVotes(RepoBase):
    """Votes on results: one per user and task, changeable; tallies."""

    async def record_feedback(
        self,
        *,
        task_id: int,
        user: str,
        score: int,
        reason: str | None = None,
        comment: str | None = None,
    ) -> tuple[Feedback, bool]:
        """Store ``user``'s vote on a task; a second vote replaces the first.

        ``reason`` (one of ``FEEDBACK_REASONS``) and ``comment`` explain a 👎; turning a vote
        into a 👍 clears them. Returns the vote and whether anything changed (False for a
        repeated identical vote).
        """
        if score not in (1, -1):
            raise ValueError("score must be +1 or -1")
        _check_reason(reason)
        now = utcnow()
        async with self._sessions() as session:
            existing = await self._vote(session, task_id, user)
            # Touch the task so the delivery job re-renders its tally.
            await session.execute(
                update(Task)
                .where(Task.id == task_id)
                .values(updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if existing is not None:
                before = (existing.score, existing.reason, existing.comment)
                existing.score = score
                if score > 0:
                    existing.reason, existing.comment = None, None
                if reason is not None:
                    existing.reason = reason
                if comment is not None:
                    existing.comment = comment
                changed = before != (existing.score, existing.reason, existing.comment)
                existing.updated_at = now
                session.add(existing)
                await session.commit()
                return existing, changed
            vote = Feedback(task_id=task_id, user=user, score=score, reason=reason, comment=comment)
            session.add(vote)
            try:
                await session.commit()
            except IntegrityError:
                # A concurrent press of the same button stored the vote first.
                await session.rollback()
                return await self.record_feedback(
                    task_id=task_id, user=user, score=score, reason=reason, comment=comment
                )
            return vote, True

    async def vote_of(self, task_id: int, user: str) -> Feedback | None:
        """``user``'s vote on a task, if they voted."""
        async with self._sessions() as session:
            return await self._vote(session, task_id, user)

    async def set_vote_reason(
        self,
        *,
        task_id: int,
        user: str,
        reason: str | None = None,
        comment: str | None = None,
    ) -> Feedback | None:
        """Explain ``user``'s own 👎 on a task: its reason code and/or their words.

        Only what is given is replaced. Returns the vote, or None when ``user`` has no 👎
        on the task (nobody explains someone else's vote, nor a 👍).
        """
        _check_reason(reason)
        async with self._sessions() as session:
            vote = await self._vote(session, task_id, user)
            if vote is None or vote.score != -1:
                return None
            if reason is not None:
                vote.reason = reason
            if comment is not None:
                vote.comment = comment
            vote.updated_at = utcnow()
            session.add(vote)
            await session.commit()
            await session.refresh(vote)
            return vote

    @staticmethod
    async def _vote(session: AsyncSession, task_id: int, user: str) -> Feedback | None:
        rows = await session.execute(
            select(Feedback).where(Feedback.task_id == task_id, Feedback.user == user)
        )
        return rows.scalars().first()

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
