"""The audit log: who did what, when, in which tenant (ids and redacted text only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlmodel import col

from storage.repo.base import RepoBase, where_given
from storage.tables import AuditEntry, Task


class AuditLog(RepoBase):
    """Append-only rows of actions; callers pass ids and redacted text, never raw messages."""

    async def audit(
        self,
        *,
        actor: str,
        action: str,
        platform: str | None = None,
        tenant: str | None = None,
        subject: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Record one action."""
        row = AuditEntry(
            actor=actor,
            action=action,
            platform=platform,
            tenant=tenant,
            subject=subject,
            detail=detail or {},
        )
        async with self._sessions() as session:
            session.add(row)
            await session.commit()
            await session.refresh(row)
            return row

    async def audit_entries(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        actor: str | None = None,
        platform: str | None = None,
        tenant: str | None = None,
        action: str | None = None,
        subject: str | None = None,
        limit: int = 1000,
    ) -> list[AuditEntry]:
        """The latest ``limit`` audit rows matching every given field (``action`` also
        matches its dotted sub-actions: ``vote`` finds ``vote.reason``), oldest first."""
        query = where_given(
            select(AuditEntry),
            AuditEntry,
            since=since,
            stamp="at",
            actor=actor,
            platform=platform,
            tenant=tenant,
            subject=subject,
        )
        if until is not None:
            query = query.where(AuditEntry.at < until)  # type: ignore[arg-type]
        if action is not None:
            query = query.where(
                or_(
                    AuditEntry.action == action,
                    col(AuditEntry.action).startswith(action + ".", autoescape=True),
                )
            )
        query = query.order_by(AuditEntry.id.desc()).limit(limit)  # type: ignore[union-attr]
        async with self._sessions() as session:
            return list(reversed((await session.execute(query)).scalars().all()))


def audit_of_tasks(channel: str, tasks: Sequence[Task]) -> dict[str, Any]:
    """An audit row's detail for stored tasks: the chat id, task ids and kinds (no text)."""
    return {
        "channel": channel,
        "tasks": [task.id for task in tasks],
        "kinds": [task.kind for task in tasks],
    }
