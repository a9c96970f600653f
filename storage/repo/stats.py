"""What the learning loop reads: votes per prompt variant, and the outcome of every task."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import aliased

from storage.repo.base import RepoBase, Tally
from storage.tables import Feedback, Task


@dataclass(frozen=True)
class TaskOutcome:
    """One task as ``atombot stats`` counts it: its kind and variant, its times, its votes.

    ``up``/``down``: votes on it; ``regenerated``: some later task is a regenerate of it.
    """

    id: int
    kind: str
    variant: str | None
    status: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    tokens: int | None
    retry_of: int | None
    up: int
    down: int
    regenerated: bool


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands timestamps back without their zone; every timestamp is stored in UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


class TaskStats(RepoBase):
    """What the learning loop reads: votes per prompt variant, and the outcome of every task."""

    async def variant_votes(
        self, *, platform: str, tenant: str, kinds: Sequence[str] | None = None
    ) -> dict[tuple[str, str], Tally]:
        """👍/👎 counts of one tenant's tasks by ``(kind, variant)`` (tasks with a variant).

        One query grouped by kind, variant and score; it reads the tenant's tasks through
        ``ix_task_owner``.
        """
        query = (
            select(Task.kind, Task.variant, Feedback.score, func.count())
            .join(Feedback, Feedback.task_id == Task.id)  # type: ignore[arg-type]
            .where(
                Task.platform == platform,
                Task.tenant == tenant,
                Task.variant.is_not(None),  # type: ignore[union-attr]
            )
            .group_by(Task.kind, Task.variant, Feedback.score)
        )
        if kinds is not None:
            query = query.where(Task.kind.in_(list(kinds)))  # type: ignore[attr-defined]
        counts: dict[tuple[str, str], dict[int, int]] = {}
        async with self._sessions() as session:
            for kind, variant, score, n in (await session.execute(query)).all():
                counts.setdefault((kind, variant), {})[int(score)] = int(n)
        return {key: Tally(up=c.get(1, 0), down=c.get(-1, 0)) for key, c in counts.items()}

    async def task_outcomes(
        self,
        *,
        since: datetime | None = None,
        platform: str | None = None,
        tenant: str | None = None,
    ) -> list[TaskOutcome]:
        """Every task created since ``since`` (of one tenant when given), oldest first.

        Votes and regenerates are counted whenever they happened.
        """
        votes = (
            select(
                Feedback.task_id.label("task_id"),  # type: ignore[attr-defined]
                func.sum(case((Feedback.score > 0, 1), else_=0)).label("up"),
                func.sum(case((Feedback.score < 0, 1), else_=0)).label("down"),
            )
            .group_by(Feedback.task_id)
            .subquery()
        )
        retry = aliased(Task)
        retries = (
            select(retry.retry_of.label("original"), func.count().label("n"))  # type: ignore[union-attr]
            .where(retry.retry_of.is_not(None))  # type: ignore[union-attr]
            .group_by(retry.retry_of)
            .subquery()
        )
        query = (
            select(
                Task.id,
                Task.kind,
                Task.variant,
                Task.status,
                Task.created_at,
                Task.started_at,
                Task.finished_at,
                Task.tokens,
                Task.retry_of,
                func.coalesce(votes.c.up, 0),
                func.coalesce(votes.c.down, 0),
                func.coalesce(retries.c.n, 0),
            )
            .outerjoin(votes, votes.c.task_id == Task.id)
            .outerjoin(retries, retries.c.original == Task.id)
            .order_by(Task.id)
        )
        if since is not None:
            query = query.where(Task.created_at >= since)  # type: ignore[operator]
        if platform is not None:
            query = query.where(Task.platform == platform)
        if tenant is not None:
            query = query.where(Task.tenant == tenant)
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        outcomes = []
        for row in rows:
            created = _aware(row[4])
            assert created is not None
            outcomes.append(
                TaskOutcome(
                    id=int(row[0]),
                    kind=row[1],
                    variant=row[2],
                    status=str(row[3]),
                    created_at=created,
                    started_at=_aware(row[5]),
                    finished_at=_aware(row[6]),
                    tokens=row[7],
                    retry_of=row[8],
                    up=int(row[9]),
                    down=int(row[10]),
                    regenerated=int(row[11]) > 0,
                )
            )
        return outcomes
