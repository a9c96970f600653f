"""Digest subscriptions, reminders, and the notices they send exactly once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update

from storage.repo.base import (
    RepoBase,
    commit_with_notice,
    per_chat,
)
from storage.tables import (
    DigestSubscription,
    Notice,
    NoticeStatus,
    Reminder,
    Request,
    Task,
    utcnow,
)


class Schedules(RepoBase):
    """Digest subscriptions, reminders, and the notices they send exactly once."""

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
            row = await per_chat(session, DigestSubscription, platform, tenant, channel)
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
            row = await per_chat(session, DigestSubscription, platform, tenant, channel)
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
            return await commit_with_notice(session, bool(result.rowcount), notice)  # type: ignore[attr-defined]

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
            return await commit_with_notice(session, bool(result.rowcount), notice)  # type: ignore[attr-defined]

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
