"""APScheduler behind a small facade, plus atombot's periodic jobs.

Jobs are thin ``async def`` callbacks; every exception goes to the one error funnel
(:func:`bot.errors.report`) instead of vanishing into APScheduler's logger.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.adapters.base import ChatAdapter
from bot.delivery import Deliverer
from bot.errors import report
from bot.leader import Leader
from bot.metrics import Metrics
from bot.notices import Notifier, new_notice
from bot.retrain import Retrainer
from bot.texts import t
from bot.types import Target
from handlers.digest import recap_task
from handlers.kinds import KindRegistry, build_registry
from storage.health import OutageLog, is_outage
from storage.repository import Removal, Repository
from storage.schemas import RequestCreate
from storage.tables import DigestSubscription, Reminder, TaskStatus, utcnow

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[Any]]

#: The retention job runs once a day (and at start, so a long-stopped bot catches up).
RETENTION_SECONDS = 86_400.0


class Scheduler:
    """Owns the AsyncIOScheduler, its timezone and shutdown.

    With a ``leader``, every job runs only while this process is the active scheduler
    (see :mod:`bot.leader`); without one, this process is assumed to be the only one.
    """

    def __init__(self, timezone: str = "UTC", *, leader: Leader | None = None) -> None:
        self._scheduler = AsyncIOScheduler(timezone=ZoneInfo(timezone))
        self._running: set[asyncio.Task[Any]] = set()
        #: Jobs running now, and those woken (``run_soon``) meanwhile: they run once more.
        self._busy: set[str] = set()
        self._again: set[str] = set()
        self.leader = leader
        self._outage = OutageLog(log, "scheduler")
        _quiet_overlap_warnings()

    def every(self, seconds: float, job: Job, *, job_id: str) -> None:
        """Run ``job`` every ``seconds`` (never two runs of it at once)."""
        self._scheduler.add_job(
            self._guard(job, job_id),
            "interval",
            seconds=seconds,
            id=job_id,
            name=job_id,
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(ZoneInfo("UTC")),
        )

    def cron(self, fields: Mapping[str, Any], timezone: str, job: Job, *, job_id: str) -> None:
        """Run ``job`` on a cron schedule in ``timezone``."""
        self._scheduler.add_job(
            self._guard(job, job_id),
            CronTrigger(timezone=ZoneInfo(timezone), **fields),
            id=job_id,
            name=job_id,
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=3600,
        )

    def run_soon(self, job_id: str) -> None:
        """Bring an interval job's next run forward to now (no-op if it is not scheduled;
        a run already going on is not doubled: the job runs once more after it)."""
        if job_id in self._busy:
            # APScheduler would skip a run due while one is going on (max_instances=1) and
            # the wake-up would wait for the next interval: run again when this one ends.
            self._again.add(job_id)
            return
        job = self._scheduler.get_job(job_id) if self._scheduler.running else None
        if job is not None:
            job.modify(next_run_time=datetime.now(ZoneInfo("UTC")))

    def remove(self, job_id: str) -> None:
        """Drop a job if it exists."""
        if self._scheduler.get_job(job_id) is not None:
            self._scheduler.remove_job(job_id)

    @property
    def running(self) -> bool:
        """Whether jobs are being fired (between :meth:`start` and :meth:`shutdown`)."""
        return bool(self._scheduler.running)

    def job_ids(self) -> list[str]:
        """Ids of the scheduled jobs."""
        return [j.id for j in self._scheduler.get_jobs()]

    def start(self) -> None:
        """Start firing jobs (needs a running event loop)."""
        self._scheduler.start()

    async def shutdown(self, timeout: float = 10.0) -> None:
        """Stop firing jobs and let the running ones finish (bounded by ``timeout``)."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        if self._running:
            await asyncio.wait(set(self._running), timeout=timeout)
        if self.leader is not None:
            await self.leader.release()

    def _guard(self, job: Job, job_id: str) -> Job:
        async def run() -> None:
            current = asyncio.current_task()
            if current is not None:
                self._running.add(current)
            self._busy.add(job_id)
            try:
                if self.leader is None or await self.leader.confirm():
                    await job()
                    self._outage.ok()
            except Exception as exc:
                if is_outage(exc):  # logged once per outage; the next tick tries again
                    self._outage.failed(exc)
                else:
                    report(exc, where=f"scheduled job {job_id}")
            finally:
                self._busy.discard(job_id)
                if current is not None:
                    self._running.discard(current)
                if job_id in self._again:
                    self._again.discard(job_id)
                    if current is not None:  # once APScheduler counts this run as over
                        current.add_done_callback(lambda _: self.run_soon(job_id))

        return run


class _DropOverlapWarnings(logging.Filter):
    """A fast interval job still running at its next tick is expected, not a warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


def _quiet_overlap_warnings() -> None:
    target = logging.getLogger("apscheduler.scheduler")
    if not any(isinstance(f, _DropOverlapWarnings) for f in target.filters):
        target.addFilter(_DropOverlapWarnings())


def next_cron_time(fields: Mapping[str, Any], timezone: str, after: datetime) -> datetime | None:
    """The first time after ``after`` that matches the cron ``fields`` in ``timezone`` (UTC)."""
    trigger = CronTrigger(timezone=ZoneInfo(timezone), **fields)
    nxt: datetime | None = trigger.get_next_fire_time(None, after + timedelta(seconds=1))
    return nxt.astimezone(UTC) if nxt is not None else None


#: How far back :func:`last_cron_time` looks first; widened until a fire time is found.
_LOOKBACKS = (timedelta(hours=2), timedelta(days=2), timedelta(days=9), timedelta(days=33))


def last_cron_time(
    fields: Mapping[str, Any], timezone: str, *, after: datetime, until: datetime
) -> datetime | None:
    """The latest time in ``(after, until]`` matching the cron ``fields`` in ``timezone`` (UTC).

    This is the fire time a late or missed run belongs to. APScheduler 3 cannot step a
    cron backwards, so scan forwards from a recent point, widening the look-back until a
    fire time is found (a daily cron needs a few steps however long the bot was down).
    """
    trigger = CronTrigger(timezone=ZoneInfo(timezone), **fields)
    for begin in [*(until - back for back in _LOOKBACKS), after]:
        begin = max(begin, after)
        found: datetime | None = None
        nxt: datetime | None = trigger.get_next_fire_time(None, begin + timedelta(microseconds=1))
        while nxt is not None and nxt <= until:
            found = nxt
            nxt = trigger.get_next_fire_time(nxt, nxt + timedelta(seconds=1))
        if found is not None or begin == after:
            # Stored times are UTC: SQLite compares them as text.
            return found.astimezone(UTC) if found is not None else None
    return None  # pragma: no cover - the loop always returns at ``begin == after``


@dataclass(frozen=True)
class DigestSchedule:
    """When a digest runs: its next fire time, and the missed one not yet sent (if any)."""

    next_run: datetime | None
    overdue: datetime | None


def digest_schedule(sub: DigestSubscription, now: datetime) -> DigestSchedule:
    """The schedule of ``sub`` as of ``now``."""
    start = sub.last_window_end or sub.created_at
    return DigestSchedule(
        next_run=next_cron_time(sub.cron, sub.timezone, now),
        overdue=last_cron_time(sub.cron, sub.timezone, after=start, until=now),
    )


class Jobs:
    """atombot's periodic work: deliveries, the lease reaper, reminders, digests, retention."""

    def __init__(
        self,
        *,
        repo: Repository,
        adapters: Mapping[str, ChatAdapter],
        scheduler: Scheduler,
        memory_days: int = 7,
        retention_days: int = 0,
        kinds: KindRegistry | None = None,
        metrics: Metrics | None = None,
        retrainer: Retrainer | None = None,
    ) -> None:
        self.repo = repo
        self.adapters = adapters
        #: The classifier retraining job (nightly and after enough new corrections), if on.
        self.retrainer = retrainer
        self.scheduler = scheduler
        #: The task-kind registry (the built-in kinds when none is given).
        self.kinds = kinds if kinds is not None else build_registry()
        self.deliverer = Deliverer(repo, adapters, self.kinds, metrics=metrics)
        self.notifier = Notifier(repo, adapters)
        self.memory_days = memory_days
        #: Days everything a chat left is kept (0: until forgotten); see :meth:`purge_expired`.
        self.retention_days = retention_days
        self._digest_jobs: dict[int, tuple[str, str]] = {}

    def install(self, *, poll_seconds: float, lease_seconds: float) -> None:
        """Register the periodic jobs on the scheduler."""
        self.scheduler.every(poll_seconds, self.deliver, job_id="deliver")
        self.scheduler.every(max(lease_seconds / 4, 1.0), self.reap, job_id="reap")
        self.scheduler.every(max(poll_seconds, 1.0), self.fire_reminders, job_id="reminders")
        self.scheduler.every(max(poll_seconds, 1.0), self.retry_notices, job_id="notices")
        self.scheduler.every(30.0, self.sync_digests, job_id="digests")
        self.scheduler.every(3600.0, self.purge_memory, job_id="memory-retention")
        if self.retention_days > 0:
            self.scheduler.every(RETENTION_SECONDS, self.purge_expired, job_id="retention")
        if self.retrainer is not None:
            self.retrainer.install(self.scheduler)

    async def deliver(self) -> None:
        """Post/edit progress and result messages."""
        await self.deliverer.tick()

    async def reap(self) -> None:
        """Re-queue tasks whose worker died (lease expired)."""
        reaped = await self.repo.reap_expired()
        for task in reaped:
            log.warning("task %s lease expired: %s", task.id, task.status)

    async def retry_notices(self, *, now: datetime | None = None) -> int:
        """Retry the reminders and digests whose send failed or was interrupted."""
        return await self.notifier.retry_due(now=now)

    async def fire_reminders(self, *, now: datetime | None = None) -> int:
        """Send every due reminder once, and schedule the next one of recurring reminders.

        A recurring reminder's next time follows its cron in its own timezone, counted from
        now: after downtime a missed reminder is sent once, late, not once per missed time.
        Claiming a firing stores its message (a notice) in the same transaction, so a send
        that fails is retried (:meth:`retry_notices`), never lost. Returns how many were sent.
        """
        now = now or utcnow()
        sent = 0
        for reminder in await self.repo.due_reminders(now=now):
            adapter = self.adapters.get(reminder.platform)
            if adapter is None:
                continue
            nxt = (
                next_cron_time(
                    reminder.recurrence, reminder.timezone, max(now, reminder.next_fire_at)
                )
                if reminder.recurrence
                else None
            )
            notice = new_notice(
                f"reminder:{reminder.id}:{reminder.next_fire_at.astimezone(UTC).isoformat()}",
                target_of_channel(reminder),
                t("reminder.fire", reminder.locale, user=reminder.user, what=reminder.what),
                now=utcnow(),
            )
            # Claim the firing with its message (compare-and-set), so two schedulers never
            # both send it and a claimed firing is never lost.
            if not await self.repo.advance_reminder(
                reminder_id=reminder.id or 0,
                fired_at=reminder.next_fire_at,
                next_fire_at=nxt,
                notice=notice,
            ):
                continue
            if await self.notifier.send_claimed(notice):
                sent += 1
        return sent

    async def sync_digests(self, *, now: datetime | None = None) -> int:
        """Keep one cron job per digest subscription in step with the database.

        Also sends, once and late, each digest whose fire time passed while no scheduler
        ran (the bot was down); returns how many such digests were sent.
        """
        now = now or utcnow()
        subs = {s.id or 0: s for s in await self.repo.list_digests() if s.platform in self.adapters}
        for digest_id in list(self._digest_jobs):
            if digest_id not in subs:
                self.scheduler.remove(f"digest-{digest_id}")
                del self._digest_jobs[digest_id]
        caught_up = 0
        for digest_id, sub in subs.items():
            signature = (repr(sorted(sub.cron.items())), sub.timezone)
            if self._digest_jobs.get(digest_id) != signature:

                async def job(digest_id: int = digest_id) -> None:
                    await self.run_digest(digest_id)

                self.scheduler.cron(sub.cron, sub.timezone, job, job_id=f"digest-{digest_id}")
                self._digest_jobs[digest_id] = signature
            if digest_schedule(sub, now).overdue is not None and await self.run_digest(
                digest_id, now=now
            ):
                caught_up += 1
        return caught_up

    async def run_digest(
        self, digest_id: int, *, now: datetime | None = None, force: bool = False
    ) -> bool:
        """Send the digest whose fire time is due; False if nothing was sent.

        The window runs from the end of the last one to the latest cron fire time at or
        before ``now`` (in the subscription's timezone), so a late run still covers its
        real window. ``force`` (an operator's "send one now") ends the window at ``now``.
        The window end is claimed by compare-and-set together with the digest's message (a
        notice), so a window is never sent twice — by a second scheduler, a restart, or a
        catch-up racing the cron job — and a send that fails is retried, never lost.
        """
        sub = await self.repo.get_digest(digest_id)
        if sub is None or sub.platform not in self.adapters:
            return False
        now = now or utcnow()
        start = sub.last_window_end or sub.created_at
        end = now if force else last_cron_time(sub.cron, sub.timezone, after=start, until=now)
        if end is None or end <= start:
            return False  # not due yet, or this window was already sent
        notice = new_notice(
            f"digest:{digest_id}:{end.astimezone(UTC).isoformat()}",
            target_of_channel(sub),
            await self._digest_text(sub, digest_id, start, end),
            now=utcnow(),
        )
        if not await self.repo.advance_digest_window(
            digest_id=digest_id, previous_end=sub.last_window_end, new_end=end, notice=notice
        ):
            return False  # another scheduler sent this window
        return await self.notifier.send_claimed(notice)

    async def _digest_text(
        self, sub: DigestSubscription, digest_id: int, start: datetime, end: datetime
    ) -> str:
        locale = sub.locale
        tasks = [
            x
            for x in await self.repo.tasks_in_window(
                platform=sub.platform, tenant=sub.tenant, channel=sub.channel, start=start, end=end
            )
            if self.kinds.in_digest(x.kind)
        ]
        tallies = await self.repo.tallies([x.id or 0 for x in tasks])
        done = sum(1 for x in tasks if x.status == TaskStatus.succeeded)
        failed = sum(1 for x in tasks if x.status == TaskStatus.failed)
        pending = sum(1 for x in tasks if x.status in (TaskStatus.queued, TaskStatus.running))
        tz = ZoneInfo(sub.timezone)
        lines = [
            t(
                "digest.header",
                locale,
                start=start.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                end=end.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            ),
            t(
                "digest.counts",
                locale,
                done=done,
                pending=pending,
                failed=failed,
                up=sum(x.up for x in tallies.values()),
                down=sum(x.down for x in tallies.values()),
            ),
        ]
        lines += [
            t(
                "digest.task",
                locale,
                id=x.id,
                kind=self.kinds.label(x.kind, locale),
                status=t(f"state.{x.status}", locale),
            )
            for x in tasks[:20]
        ]
        messages = [
            m
            for m in await self.repo.chat_messages(
                platform=sub.platform, tenant=sub.tenant, channel=sub.channel, since=start
            )
            if m.sent_at < end
        ]
        if messages:
            material = "\n".join(f"{m.author}: {m.text}" for m in messages)
            # The event id makes the recap request idempotent per window.
            stored = await self.repo.create_request(
                request=RequestCreate(
                    platform=sub.platform,
                    tenant=sub.tenant,
                    channel=sub.channel,
                    user=sub.user,
                    text="digest",
                    event_id=f"digest:{digest_id}:{end.isoformat()}",
                    locale=locale,
                    timezone=sub.timezone,
                ),
                tasks=[recap_task(material, locale)],
            )
            lines.append(t("digest.recap_pending", locale, id=stored.tasks[0].id))
        elif not tasks:
            lines.append(t("digest.quiet", locale))
        return "\n".join(lines)

    async def purge_memory(self) -> None:
        """Forget chat messages older than the retention period."""
        if self.memory_days > 0:
            await self.repo.purge_chat_memory(
                older_than=utcnow() - timedelta(days=self.memory_days)
            )

    async def purge_expired(self, *, now: datetime | None = None) -> Removal | None:
        """Delete what is older than the retention period (requests with their tasks,
        results and votes, corrections, notices, kept messages); a purge that removed
        anything is recorded in the audit log with its counts. None when retention is off."""
        if self.retention_days <= 0:
            return None
        cutoff = (now or utcnow()) - timedelta(days=self.retention_days)
        removal = await self.repo.purge_expired(
            older_than=cutoff, actor="system", audit_empty=False
        )
        if removal.total:
            log.info("retention: %d row(s) from before %s deleted", removal.total, cutoff)
        return removal


def target_of_channel(where: Reminder | DigestSubscription) -> Target:
    """The chat a reminder or digest is sent to."""
    thread = where.thread if isinstance(where, Reminder) else None
    return Target(
        platform=where.platform, tenant=where.tenant, channel=where.channel, thread=thread
    )
