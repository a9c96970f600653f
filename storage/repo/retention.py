"""Retention and forgetting: delete what is past the retention period, or everything a chat
left behind, in every table, following the foreign keys.

Which rows go is found by introspecting :data:`SQLModel.metadata`, not from a hand-written
list: a *root* is a row of a table with ``platform``/``tenant``/``channel`` columns (forget)
or a row older than the cutoff (purge); every row whose non-null foreign key points at a
doomed row is doomed too (tasks of a request, votes, reminders and dependencies of a task,
...), and a nullable foreign key that points at a doomed row from a row that stays is set
to NULL (a regenerated task's ``retry_of``, a kept correction's ``task_id``). So a table
added later is covered as long as it links to what it belongs to. The audit log and the
per-chat settings are kept: they hold no message text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Table, and_, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from storage.repo.base import RepoBase
from storage.tables import (
    TERMINAL_STATUSES,
    AuditEntry,
    ChatMessage,
    Correction,
    Notice,
    NoticeStatus,
    Reminder,
    Request,
    Task,
)

#: Tables never deleted from: the audit log (ids and redacted text only, kept as evidence).
KEPT_TABLES = frozenset({"auditentry"})
#: Per-chat configuration (no message text): kept unless forgetting is asked to drop them too
#: (a forgotten chat keeps its memory opt-out, or it would start keeping messages again).
SETTINGS_TABLES = frozenset({"chatsetting", "digestsubscription"})
#: How many ids go into one ``IN (...)`` (SQLite allows 32,766 parameters; stay well below).
CHUNK = 500
_CHAT_COLUMNS = ("platform", "tenant", "channel")


@dataclass
class Removal:
    """What a purge or a forget removed (or, with ``dry_run``, would remove): rows per table,
    only tables with rows; ``unlinked`` counts kept rows whose link to a removed row was
    cleared (``table.column``)."""

    counts: dict[str, int] = field(default_factory=dict)
    unlinked: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False

    @property
    def total(self) -> int:
        """Rows removed in all tables."""
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (what the audit row and ``--json`` hold)."""
        return {
            "counts": dict(sorted(self.counts.items())),
            "unlinked": dict(sorted(self.unlinked.items())),
            "total": self.total,
            "dry_run": self.dry_run,
        }


def _single_pk(table: Table) -> Column[Any] | None:
    keys = list(table.primary_key.columns)
    return keys[0] if len(keys) == 1 else None


def _chunks(ids: Iterable[Any]) -> Iterable[list[Any]]:
    batch = sorted(ids)
    for start in range(0, len(batch), CHUNK):
        yield batch[start : start + CHUNK]


class _Plan:
    """The rows to delete, per table, closed over the foreign keys."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.tables: Sequence[Table] = SQLModel.metadata.sorted_tables
        self.doomed: dict[str, set[Any]] = {}
        self.link_rows: dict[str, int] = {}

    async def add(self, table: Table, query: Any) -> None:
        """Doom the rows whose primary key ``query`` selects (and, later, what hangs on them)."""
        ids = set((await self.session.execute(query)).scalars())
        self.doomed.setdefault(table.name, set()).update(ids)

    async def close(self) -> None:
        """Add every row that cannot outlive a doomed row (non-null foreign key to it)."""
        fresh = {name: set(ids) for name, ids in self.doomed.items() if ids}
        while fresh:
            found: dict[str, set[Any]] = {}
            for child in self.tables:
                pk = _single_pk(child)
                if pk is None or child.name in KEPT_TABLES:
                    continue
                for column in child.columns:
                    for fk in column.foreign_keys:
                        parent = fk.column.table.name
                        if column.nullable or not fresh.get(parent):
                            continue
                        for batch in _chunks(fresh[parent]):
                            rows = await self.session.execute(select(pk).where(column.in_(batch)))
                            new = set(rows.scalars()) - self.doomed.get(child.name, set())
                            if new:
                                found.setdefault(child.name, set()).update(new)
            for name, ids in found.items():
                self.doomed.setdefault(name, set()).update(ids)
            fresh = found

    def _link_conditions(self, table: Table) -> list[Any]:
        """For a table without a single primary key (a link table): its rows pointing at a
        doomed row, one condition per foreign-key column and id batch."""
        conditions: list[Any] = []
        for column in table.columns:
            for fk in column.foreign_keys:
                ids = self.doomed.get(fk.column.table.name)
                if ids:
                    conditions.extend(column.in_(batch) for batch in _chunks(ids))
        return conditions

    async def count_links(self) -> None:
        for table in self.tables:
            if _single_pk(table) is not None or table.name in KEPT_TABLES:
                continue
            conditions = self._link_conditions(table)
            if conditions:
                n = await self.session.scalar(
                    select(func.count()).select_from(table).where(or_(*conditions))
                )
                if n:
                    self.link_rows[table.name] = int(n)

    async def unlink(self, *, apply: bool) -> dict[str, int]:
        """Clear nullable foreign keys pointing at doomed rows from rows that stay (and from
        doomed ones too, so deletes in batches never trip a self-reference)."""
        cleared: dict[str, int] = {}
        for child in self.tables:
            pk = _single_pk(child)
            if pk is None or child.name in KEPT_TABLES:
                continue
            staying = self.doomed.get(child.name, set())
            for column in child.columns:
                if not column.nullable:
                    continue
                for fk in column.foreign_keys:
                    ids = self.doomed.get(fk.column.table.name)
                    if not ids:
                        continue
                    for batch in _chunks(ids):
                        rows = set(
                            (await self.session.execute(select(pk).where(column.in_(batch))))
                            .scalars()
                            .all()
                        )
                        kept = len(rows - staying)
                        if kept:
                            key = f"{child.name}.{column.name}"
                            cleared[key] = cleared.get(key, 0) + kept
                        if apply and rows:
                            await self.session.execute(
                                update(child).where(column.in_(batch)).values({column.name: None})
                            )
        return cleared

    async def apply(self) -> None:
        """Delete children before parents (the reverse of the dependency order)."""
        for table in reversed(self.tables):
            if table.name in KEPT_TABLES:
                continue
            pk = _single_pk(table)
            if pk is None:
                conditions = self._link_conditions(table)
                if conditions:
                    await self.session.execute(delete(table).where(or_(*conditions)))
                continue
            for batch in _chunks(self.doomed.get(table.name, ())):
                await self.session.execute(delete(table).where(pk.in_(batch)))

    def counts(self) -> dict[str, int]:
        counts = {name: len(ids) for name, ids in self.doomed.items() if ids}
        counts.update(self.link_rows)
        return counts


class Retention(RepoBase):
    """Purging what is past the retention period, and forgetting a chat entirely."""

    async def _finish(
        self,
        plan: _Plan,
        *,
        dry_run: bool,
        audit: AuditEntry | None,
        audit_empty: bool = True,
    ) -> Removal:
        await plan.close()
        await plan.count_links()
        unlinked = await plan.unlink(apply=not dry_run)
        removal = Removal(counts=plan.counts(), unlinked=unlinked, dry_run=dry_run)
        if dry_run:
            await plan.session.rollback()
            return removal
        await plan.apply()
        if audit is not None and (removal.total or audit_empty):
            audit.detail = {**audit.detail, **removal.as_dict()}
            plan.session.add(audit)
        await plan.session.commit()
        return removal

    async def forget_chat_data(
        self,
        *,
        platform: str,
        tenant: str,
        channel: str,
        dry_run: bool = False,
        settings: bool = False,
        actor: str | None = None,
    ) -> Removal:
        """Delete everything held for one chat: its requests with their tasks (inputs,
        results, partial text, prompts), deliveries, votes and comments, corrections,
        reminders, notices and kept messages — in one transaction.

        ``settings`` also drops the chat's settings and digest subscription (which hold no
        text). With ``actor`` the deletion is recorded in the audit log (action ``forget``,
        counts only) in the same transaction. ``dry_run`` deletes nothing and says what would go.
        """
        async with self._sessions() as session:
            plan = _Plan(session)
            for table in plan.tables:
                if table.name in KEPT_TABLES or (table.name in SETTINGS_TABLES and not settings):
                    continue
                pk = _single_pk(table)
                if pk is None or not all(name in table.c for name in _CHAT_COLUMNS):
                    continue
                await plan.add(
                    table,
                    select(pk).where(
                        table.c.platform == platform,
                        table.c.tenant == tenant,
                        table.c.channel == channel,
                    ),
                )
            audit = (
                AuditEntry(
                    actor=actor,
                    action="forget",
                    platform=platform,
                    tenant=tenant,
                    subject=chat_subject(platform, tenant, channel),
                    detail={"settings": settings},
                )
                if actor is not None
                else None
            )
            return await self._finish(plan, dry_run=dry_run, audit=audit)

    async def chat_tenants(self, *, platform: str, channel: str) -> list[str]:
        """The tenants in which a chat id of ``platform`` has any rows (for ``atombot
        forget`` without ``--tenant``), sorted."""
        found: set[str] = set()
        async with self._sessions() as session:
            for table in SQLModel.metadata.sorted_tables:
                if table.name in KEPT_TABLES or not all(n in table.c for n in _CHAT_COLUMNS):
                    continue
                rows = await session.execute(
                    select(table.c.tenant)
                    .where(table.c.platform == platform, table.c.channel == channel)
                    .distinct()
                )
                found.update(str(x) for x in rows.scalars())
        return sorted(found)

    async def purge_expired(
        self,
        *,
        older_than: datetime,
        dry_run: bool = False,
        actor: str | None = None,
        audit_empty: bool = True,
    ) -> Removal:
        """Apply the retention period: delete requests (with everything hanging on them),
        kept chat messages, sent or failed notices and corrections from before ``older_than``.

        A request stays while any of its tasks is unfinished, changed after the cutoff, or
        holds an active reminder (a weekly reminder set long ago must keep firing). With
        ``actor`` the purge is recorded in the audit log (action ``purge``, counts only) in
        the same transaction (``audit_empty`` False: only when it removed anything).
        ``dry_run`` deletes nothing and says what would go.
        """
        live_task = exists().where(
            Task.request_id == Request.id,
            or_(
                Task.status.not_in([str(s) for s in TERMINAL_STATUSES]),  # type: ignore[attr-defined]
                Task.updated_at >= older_than,  # type: ignore[operator]
            ),
        )
        live_reminder = exists().where(
            and_(
                Task.request_id == Request.id,
                Reminder.task_id == Task.id,
                Reminder.active.is_(True),  # type: ignore[attr-defined]
            )
        )
        async with self._sessions() as session:
            plan = _Plan(session)
            tables = SQLModel.metadata.tables
            await plan.add(
                tables["request"],
                select(Request.id).where(
                    Request.created_at < older_than,  # type: ignore[operator]
                    ~live_task,
                    ~live_reminder,
                ),
            )
            await plan.add(
                tables["chatmessage"],
                select(ChatMessage.id).where(ChatMessage.sent_at < older_than),  # type: ignore[operator]
            )
            await plan.add(
                tables["notice"],
                select(Notice.id).where(
                    Notice.created_at < older_than,  # type: ignore[operator]
                    Notice.status.in_([NoticeStatus.sent, NoticeStatus.failed]),  # type: ignore[attr-defined]
                ),
            )
            await plan.add(
                tables["correction"],
                select(Correction.id).where(Correction.created_at < older_than),  # type: ignore[operator]
            )
            audit = (
                AuditEntry(
                    actor=actor,
                    action="purge",
                    subject="retention",
                    detail={"older_than": older_than.isoformat()},
                )
                if actor is not None
                else None
            )
            return await self._finish(plan, dry_run=dry_run, audit=audit, audit_empty=audit_empty)


def chat_subject(platform: str, tenant: str, channel: str) -> str:
    """How the audit log names a chat: ``chat:<platform>/<tenant>/<channel>``."""
    return f"chat:{platform}/{tenant}/{channel}"
