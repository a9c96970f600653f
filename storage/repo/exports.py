"""Training exports: rated results and corrections, never from a chat that opted out.

A chat is left out when it switched training exports off (``ChatSetting.training_opt_out``)
or chat memory off (``memory_opt_out``): a chat that asked atombot not to keep its messages
is not asked again before its requests become training data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select

from storage.repo.base import RepoBase
from storage.tables import (
    ChatSetting,
    Correction,
    CorrectionStatus,
    Feedback,
    Request,
    Task,
    TaskStatus,
)

#: The 👎 reason that faults the kind of task chosen, not the text written.
WRONG_KIND = "wrong_kind"


@dataclass(frozen=True)
class RatedResult:
    """A succeeded task that got at least one vote, with what the model was given.

    ``first_attempt`` is the task its regenerate chain started from (``retry_of`` followed to
    the end; the task itself when it is no retry).
    """

    task_id: int
    kind: str
    platform: str
    tenant: str
    channel: str
    prompt: list[dict[str, Any]] | None
    result: str
    up: int
    down: int
    first_attempt: int
    #: 👎 votes that only said "wrong kind of task" (nothing about the text itself).
    wrong_kind: int
    variant: str | None
    created_at: datetime


@dataclass(frozen=True)
class RatedResults:
    """The rated results to export, and how many were left out because their chat opted out."""

    results: list[RatedResult]
    opted_out: int


@dataclass(frozen=True)
class ExportCorrections:
    """Active corrections to export; how many were left out (opted-out chat, pending review)."""

    corrections: list[Correction]
    opted_out: int
    pending: int


def _opted_out(platform: Any, tenant: Any, channel: Any) -> ColumnElement[bool]:
    """Whether the chat ``(platform, tenant, channel)`` keeps itself out of training data."""
    return exists().where(
        ChatSetting.platform == platform,
        ChatSetting.tenant == tenant,
        ChatSetting.channel == channel,
        or_(ChatSetting.training_opt_out, ChatSetting.memory_opt_out),  # type: ignore[arg-type]
    )


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


class Exports(RepoBase):
    """Reads for ``atombot feedback export``: rated results and corrections, opt-outs left out."""

    async def rated_results(
        self,
        *,
        since: datetime | None = None,
        platform: str | None = None,
        tenant: str | None = None,
    ) -> RatedResults:
        """Succeeded, voted-on tasks (created at or after ``since``, of one tenant), oldest
        first, with their 👍/👎 counts; tasks of opted-out chats are only counted."""
        votes = (
            select(
                Feedback.task_id.label("task_id"),  # type: ignore[attr-defined]
                func.sum(case((Feedback.score > 0, 1), else_=0)).label("up"),
                func.sum(case((Feedback.score < 0, 1), else_=0)).label("down"),
                func.sum(
                    case((and_(Feedback.score < 0, Feedback.reason == WRONG_KIND), 1), else_=0)
                ).label("wrong_kind"),
            )
            .group_by(Feedback.task_id)
            .subquery()
        )
        conditions: list[ColumnElement[bool]] = [Task.status == TaskStatus.succeeded]  # type: ignore[list-item]
        if since is not None:
            conditions.append(Task.created_at >= _utc(since))  # type: ignore[arg-type, operator]
        if platform is not None:
            conditions.append(Task.platform == platform)  # type: ignore[arg-type]
        if tenant is not None:
            conditions.append(Task.tenant == tenant)  # type: ignore[arg-type]
        opted = _opted_out(Request.platform, Request.tenant, Request.channel)
        base = (
            select(Task, Request.channel, votes.c.up, votes.c.down, votes.c.wrong_kind)
            .join(votes, votes.c.task_id == Task.id)
            .join(Request, Request.id == Task.request_id)  # type: ignore[arg-type]
            .where(and_(*conditions))
        )
        counted = (
            select(func.count())
            .select_from(Task)
            .join(votes, votes.c.task_id == Task.id)
            .join(Request, Request.id == Task.request_id)  # type: ignore[arg-type]
            .where(and_(*conditions), opted)
        )
        async with self._sessions() as session:
            rows = (await session.execute(base.where(~opted).order_by(Task.id))).all()  # type: ignore[arg-type]
            left_out = int((await session.execute(counted)).scalar_one())
            retry_query = select(Task.id, Task.retry_of).where(Task.retry_of.is_not(None))  # type: ignore[union-attr]
            if platform is not None:
                retry_query = retry_query.where(Task.platform == platform)
            if tenant is not None:
                retry_query = retry_query.where(Task.tenant == tenant)
            retry_of = {int(a): int(b) for a, b in (await session.execute(retry_query)).all()}
        results = [
            RatedResult(
                task_id=task.id or 0,
                kind=task.kind,
                platform=task.platform,
                tenant=task.tenant,
                channel=str(channel),
                prompt=task.prompt,
                result=task.result or "",
                up=int(up or 0),
                down=int(down or 0),
                first_attempt=_first_attempt(task.id or 0, retry_of),
                wrong_kind=int(wrong_kind or 0),
                variant=task.variant,
                created_at=_utc(task.created_at),
            )
            for task, channel, up, down, wrong_kind in rows
        ]
        return RatedResults(results=results, opted_out=left_out)

    async def export_corrections(
        self,
        *,
        since: datetime | None = None,
        platform: str | None = None,
        tenant: str | None = None,
    ) -> ExportCorrections:
        """Active corrections (created at or after ``since``, of one tenant), oldest first;
        those of opted-out chats and those awaiting review are only counted."""
        conditions: list[ColumnElement[bool]] = []
        if since is not None:
            conditions.append(Correction.created_at >= _utc(since))  # type: ignore[arg-type, operator]
        if platform is not None:
            conditions.append(Correction.platform == platform)  # type: ignore[arg-type]
        if tenant is not None:
            conditions.append(Correction.tenant == tenant)  # type: ignore[arg-type]
        opted = _opted_out(Correction.platform, Correction.tenant, Correction.channel)
        active = Correction.status == CorrectionStatus.active
        async with self._sessions() as session:
            rows = await session.execute(
                select(Correction).where(*conditions, active, ~opted).order_by(Correction.id)  # type: ignore[arg-type]
            )
            found = list(rows.scalars().all())
            left_out = await session.execute(
                select(func.count()).select_from(Correction).where(*conditions, opted)
            )
            pending = await session.execute(
                select(func.count())
                .select_from(Correction)
                .where(*conditions, ~opted, Correction.status == CorrectionStatus.pending)
            )
            return ExportCorrections(
                corrections=found,
                opted_out=int(left_out.scalar_one()),
                pending=int(pending.scalar_one()),
            )


def _first_attempt(task_id: int, retry_of: dict[int, int]) -> int:
    """Follow ``retry_of`` from ``task_id`` to the attempt its chain started from."""
    current, seen = task_id, {task_id}
    while current in retry_of and retry_of[current] not in seen:
        current = retry_of[current]
        seen.add(current)
    return current
