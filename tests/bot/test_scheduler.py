"""Digests and reminders: the right instant in the right timezone, once, across restarts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from bot.adapters.base import DeliveryError
from bot.notices import MAX_NOTICE_ATTEMPTS
from bot.posting import TAKEOVER_GRACE
from bot.scheduler import Jobs, Scheduler, digest_schedule, last_cron_time, next_cron_time
from storage.db import create_engine
from storage.repository import Repository
from storage.schemas import RequestCreate, TaskCreate
from storage.tables import NoticeStatus, Reminder, TaskStatus, utcnow
from tests.fakes.recording import Chat, Crash

BERLIN = "Europe/Berlin"
EIGHT_AM = {"hour": 8, "minute": 0}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


class Bot:
    """One atombot process (its own connection pool and jobs) sharing the chat and database."""

    def __init__(self, database_url: str, chat: Chat) -> None:
        self.repo = Repository(create_engine(database_url))
        self.jobs = Jobs(repo=self.repo, adapters={"fake": chat}, scheduler=Scheduler())

    async def close(self) -> None:
        await self.repo.dispose()


@pytest.fixture
def chat() -> Chat:
    return Chat()


@pytest.fixture
async def bots(database_url: str, chat: Chat) -> AsyncIterator[list[Bot]]:
    """Two processes on one database: a bot and the same bot after a restart (or a replica)."""
    started = [Bot(database_url, chat), Bot(database_url, chat)]
    yield started
    for bot in started:
        await bot.close()


async def subscribe(repo: Repository, *, timezone: str = BERLIN) -> int:
    sub = await repo.subscribe_digest(
        platform="fake",
        tenant="t",
        channel="c",
        user="u",
        cron=dict(EIGHT_AM),
        timezone=timezone,
        locale="en",
    )
    return sub.id or 0


async def a_request(repo: Repository, event_id: str, *, channel: str = "c") -> int:
    created = await repo.create_request(
        request=RequestCreate(
            platform="fake", tenant="t", channel=channel, user="u", text="x", event_id=event_id
        ),
        tasks=[TaskCreate(kind="email.draft", status=TaskStatus.succeeded, result="done")],
    )
    return created.tasks[0].id or 0


# --------------------------------------------------------------------------- cron & DST
@pytest.mark.parametrize(
    ("after", "expected"),
    [
        # Spring forward on 2026-03-29: 08:00 CET is 07:00 UTC, 08:00 CEST is 06:00 UTC.
        (utc(2026, 3, 27, 12), [utc(2026, 3, 28, 7), utc(2026, 3, 29, 6), utc(2026, 3, 30, 6)]),
        # Fall back on 2026-10-25: 08:00 CEST is 06:00 UTC, 08:00 CET is 07:00 UTC.
        (utc(2026, 10, 23, 12), [utc(2026, 10, 24, 6), utc(2026, 10, 25, 7), utc(2026, 10, 26, 7)]),
    ],
    ids=["spring-forward", "fall-back"],
)
def test_a_daily_8am_berlin_cron_fires_at_the_right_utc_instant_across_dst(
    after: datetime, expected: list[datetime]
) -> None:
    fires: list[datetime] = []
    when = after
    for _ in expected:
        nxt = next_cron_time(EIGHT_AM, BERLIN, when)
        assert nxt is not None
        fires.append(nxt.astimezone(UTC))
        when = nxt
    assert fires == expected


def test_the_latest_fire_time_of_a_window_is_found_however_long_ago_it_began() -> None:
    now = utc(2026, 10, 25, 9)
    assert last_cron_time(EIGHT_AM, BERLIN, after=utc(2025, 1, 1), until=now) == utc(
        2026, 10, 25, 7
    )
    assert last_cron_time(EIGHT_AM, BERLIN, after=utc(2026, 10, 25, 7), until=now) is None
    monthly = {"day": 1, "hour": 9}
    assert last_cron_time(monthly, "UTC", after=utc(2026, 1, 15), until=now) == utc(2026, 10, 1, 9)


@pytest.mark.parametrize(
    ("created", "first_fire", "second_fire", "header"),
    [
        (
            utc(2026, 3, 27, 12),
            utc(2026, 3, 28, 7),
            utc(2026, 3, 29, 6),
            "📰 Digest for 2026-03-28 08:00 – 2026-03-29 08:00",
        ),
        (
            utc(2026, 10, 23, 12),
            utc(2026, 10, 24, 6),
            utc(2026, 10, 25, 7),
            "📰 Digest for 2026-10-24 08:00 – 2026-10-25 08:00",
        ),
    ],
    ids=["spring-forward", "fall-back"],
)
async def test_digest_windows_end_at_8am_local_time_on_both_sides_of_a_dst_change(
    bots: list[Bot],
    chat: Chat,
    created: datetime,
    first_fire: datetime,
    second_fire: datetime,
    header: str,
) -> None:
    jobs, repo = bots[0].jobs, bots[0].repo
    with time_machine.travel(created, tick=False) as clock:
        digest_id = await subscribe(repo)
        clock.move_to(first_fire + timedelta(seconds=1))
        assert await jobs.run_digest(digest_id)
        clock.move_to(second_fire - timedelta(seconds=1))
        assert not await jobs.run_digest(digest_id), "not 08:00 in Berlin yet"
        clock.move_to(second_fire + timedelta(seconds=1))
        assert await jobs.run_digest(digest_id)
    assert len(chat.notes) == 2
    assert chat.notes[1].splitlines()[0] == header
    sub = await repo.get_digest(digest_id)
    assert sub is not None and sub.last_window_end == second_fire


# ------------------------------------------------------------------- once per window
async def test_a_digest_window_is_never_sent_twice_even_after_a_restart(
    bots: list[Bot], chat: Chat
) -> None:
    before, after = bots
    with time_machine.travel(utc(2026, 5, 4, 12), tick=False) as clock:
        digest_id = await subscribe(before.repo)
        clock.move_to(utc(2026, 5, 5, 6, 0, 2))
        assert await before.jobs.run_digest(digest_id)
        clock.move_to(utc(2026, 5, 5, 6, 0, 9))
        assert not await after.jobs.run_digest(digest_id)
        assert await after.jobs.sync_digests() == 0
    assert len(chat.notes) == 1


async def test_two_schedulers_racing_for_one_window_send_it_once(
    bots: list[Bot], chat: Chat
) -> None:
    digest_id = await subscribe(bots[0].repo)
    now = utc(2026, 5, 5, 6, 0, 1)
    await bots[0].repo.advance_digest_window(
        digest_id=digest_id, previous_end=None, new_end=now - timedelta(days=1)
    )
    results = await asyncio.gather(*(b.jobs.run_digest(digest_id, now=now) for b in bots))
    assert sorted(results) == [False, True]
    assert len(chat.notes) == 1


async def test_a_digest_missed_while_the_bot_was_down_is_sent_once_late_with_its_real_window(
    bots: list[Bot], chat: Chat
) -> None:
    crashed, restarted = bots
    with time_machine.travel(utc(2026, 5, 4, 12), tick=False) as clock:
        digest_id = await subscribe(crashed.repo)
        await a_request(crashed.repo, "inside")
        clock.move_to(utc(2026, 5, 5, 7))  # 09:00 Berlin: the 08:00 digest was missed
        await a_request(restarted.repo, "after-the-fire-time")
        clock.move_to(utc(2026, 5, 5, 7, 30))
        assert await restarted.jobs.sync_digests() == 1
        assert await restarted.jobs.sync_digests() == 0
        assert not await restarted.jobs.run_digest(digest_id)
        late = chat.notes[0].splitlines()
        assert late[0] == "📰 Digest for 2026-05-04 14:00 – 2026-05-05 08:00"
        assert late[1].startswith("Tasks: 1 done"), "the task after 08:00 is the next window's"
        clock.move_to(utc(2026, 5, 6, 6, 0, 1))
        assert await restarted.jobs.run_digest(digest_id)
    following = chat.notes[1].splitlines()
    assert following[0] == "📰 Digest for 2026-05-05 08:00 – 2026-05-06 08:00"
    assert following[1].startswith("Tasks: 1 done")
    assert len(chat.notes) == 2


async def test_a_long_outage_sends_one_catch_up_digest_not_one_per_missed_day(
    bots: list[Bot], chat: Chat
) -> None:
    digest_id = await subscribe(bots[0].repo, timezone="UTC")
    await bots[0].repo.advance_digest_window(
        digest_id=digest_id, previous_end=None, new_end=utc(2026, 5, 1, 8)
    )
    assert await bots[1].jobs.sync_digests(now=utc(2026, 5, 4, 10)) == 1
    assert await bots[1].jobs.sync_digests(now=utc(2026, 5, 4, 10, 1)) == 0
    assert chat.notes[0].splitlines()[0] == "📰 Digest for 2026-05-01 08:00 – 2026-05-04 08:00"


async def test_an_operator_can_send_a_digest_now_and_the_next_one_starts_there(
    bots: list[Bot], chat: Chat
) -> None:
    jobs = bots[0].jobs
    with time_machine.travel(utc(2026, 5, 4, 12), tick=False) as clock:
        digest_id = await subscribe(bots[0].repo, timezone="UTC")
        clock.move_to(utc(2026, 5, 4, 15))
        assert not await jobs.run_digest(digest_id), "nothing is due before 08:00"
        assert await jobs.run_digest(digest_id, force=True)
        clock.move_to(utc(2026, 5, 5, 8, 0, 1))
        assert await jobs.run_digest(digest_id)
    assert chat.notes[1].splitlines()[0] == "📰 Digest for 2026-05-04 15:00 – 2026-05-05 08:00"


async def test_each_subscription_becomes_one_cron_job_and_an_unsubscribe_removes_it(
    bots: list[Bot],
) -> None:
    jobs, repo = bots[0].jobs, bots[0].repo
    digest_id = await subscribe(repo)
    await jobs.sync_digests()
    await jobs.sync_digests()
    assert jobs.scheduler.job_ids() == [f"digest-{digest_id}"]
    await repo.unsubscribe_digest(platform="fake", tenant="t", channel="c")
    await jobs.sync_digests()
    assert jobs.scheduler.job_ids() == []


async def test_the_schedule_shows_the_next_run_and_a_missed_one(bots: list[Bot]) -> None:
    repo = bots[0].repo
    with time_machine.travel(utc(2026, 3, 28, 12), tick=False):
        digest_id = await subscribe(repo)
    sub = await repo.get_digest(digest_id)
    assert sub is not None
    on_time = digest_schedule(sub, utc(2026, 3, 28, 20))
    assert on_time.next_run == utc(2026, 3, 29, 6) and on_time.overdue is None
    missed = digest_schedule(sub, utc(2026, 3, 29, 9))
    assert missed.overdue == utc(2026, 3, 29, 6) and missed.next_run == utc(2026, 3, 30, 6)


# ------------------------------------------------------------------------- reminders
async def a_reminder(
    repo: Repository,
    *,
    first: datetime,
    recurrence: dict[str, Any] | None = None,
    timezone: str = BERLIN,
) -> int:
    created = await repo.create_request(
        request=RequestCreate(
            platform="fake", tenant="t", channel="c", user="u", text="remind", event_id="r"
        ),
        tasks=[TaskCreate(kind="reminder.create", status=TaskStatus.succeeded, result="ok")],
    )
    reminder = await repo.create_reminder(
        Reminder(
            task_id=created.tasks[0].id or 0,
            platform="fake",
            tenant="t",
            channel="c",
            user="u",
            what="send the report",
            next_fire_at=first,
            recurrence=recurrence,
            timezone=timezone,
        )
    )
    return reminder.id or 0


async def reminder_row(repo: Repository, reminder_id: int) -> Reminder:
    task = await repo.tasks_of_request(1)
    found = await repo.reminder_of_task(task[0].id or 0)
    assert found is not None and found.id == reminder_id
    return found


async def test_a_recurring_reminder_follows_its_cron_in_its_own_timezone_across_dst(
    bots: list[Bot], chat: Chat
) -> None:
    jobs, repo = bots[0].jobs, bots[0].repo
    daily_nine = {"hour": 9, "minute": 0}
    reminder_id = await a_reminder(repo, first=utc(2026, 3, 28, 8), recurrence=daily_nine)
    assert await jobs.fire_reminders(now=utc(2026, 3, 28, 8, 0, 1)) == 1
    assert (await reminder_row(repo, reminder_id)).next_fire_at == utc(2026, 3, 29, 7)
    assert await jobs.fire_reminders(now=utc(2026, 3, 29, 7, 0, 1)) == 1
    assert (await reminder_row(repo, reminder_id)).next_fire_at == utc(2026, 3, 30, 7)
    assert chat.notes == ["⏰ Reminder for u: send the report"] * 2


async def test_a_restart_between_ticks_neither_loses_nor_repeats_a_reminder(
    bots: list[Bot], chat: Chat
) -> None:
    before, after = bots
    await a_reminder(before.repo, first=utc(2026, 6, 1, 7), recurrence={"hour": 9})
    assert await before.jobs.fire_reminders(now=utc(2026, 6, 1, 7, 0, 1)) == 1
    assert await after.jobs.fire_reminders(now=utc(2026, 6, 1, 7, 0, 3)) == 0, "not repeated"
    assert await after.jobs.fire_reminders(now=utc(2026, 6, 2, 6, 59, 59)) == 0
    assert await after.jobs.fire_reminders(now=utc(2026, 6, 2, 7, 0, 1)) == 1, "not lost"
    assert len(chat.notes) == 2


async def test_a_reminder_due_while_the_bot_was_down_fires_once_after_the_restart(
    bots: list[Bot], chat: Chat
) -> None:
    reminder_id = await a_reminder(bots[0].repo, first=utc(2026, 6, 1, 7))
    assert await bots[1].jobs.fire_reminders(now=utc(2026, 6, 1, 11)) == 1
    assert await bots[1].jobs.fire_reminders(now=utc(2026, 6, 1, 11, 0, 2)) == 0
    assert not (await reminder_row(bots[1].repo, reminder_id)).active
    assert len(chat.notes) == 1


async def test_a_recurring_reminder_missed_for_days_fires_once_then_resumes_its_schedule(
    bots: list[Bot], chat: Chat
) -> None:
    reminder_id = await a_reminder(bots[0].repo, first=utc(2026, 6, 1, 7), recurrence={"hour": 9})
    assert await bots[1].jobs.fire_reminders(now=utc(2026, 6, 4, 12)) == 1
    assert (await reminder_row(bots[1].repo, reminder_id)).next_fire_at == utc(2026, 6, 5, 7)
    assert len(chat.notes) == 1


async def test_two_schedulers_firing_the_same_reminder_at_once_send_it_once(
    bots: list[Bot], chat: Chat
) -> None:
    await a_reminder(bots[0].repo, first=utc(2026, 6, 1, 7))
    now = utc(2026, 6, 1, 7, 0, 1)
    sent = await asyncio.gather(*(b.jobs.fire_reminders(now=now) for b in bots))
    assert sorted(sent) == [0, 1]
    assert len(chat.notes) == 1


# ------------------------------------------- at least once, and never twice once sent
REFUSED = DeliveryError("ratelimited", retry_after=5.0)


async def test_a_reminder_whose_send_fails_is_retried_later_and_sent_once(
    bots: list[Bot], chat: Chat
) -> None:
    jobs = bots[0].jobs
    await a_reminder(bots[0].repo, first=utc(2026, 6, 1, 7))
    chat.fail_next = [REFUSED]
    assert await jobs.fire_reminders(now=utc(2026, 6, 1, 7, 0, 1)) == 0
    assert chat.notes == []
    assert await jobs.retry_notices() == 0, "not before the platform's Retry-After"
    assert await jobs.retry_notices(now=utcnow() + timedelta(seconds=6)) == 1
    assert await jobs.retry_notices(now=utcnow() + timedelta(hours=1)) == 0
    assert chat.notes == ["⏰ Reminder for u: send the report"]


async def test_a_failed_digest_is_retried_by_the_restarted_bot_with_its_window_and_sent_once(
    bots: list[Bot], chat: Chat
) -> None:
    crashed, restarted = bots
    digest_id = await subscribe(crashed.repo, timezone="UTC")
    await crashed.repo.advance_digest_window(
        digest_id=digest_id, previous_end=None, new_end=utc(2026, 5, 3, 8)
    )
    chat.fail_next = [DeliveryError("chat.postMessage: internal_error")]
    assert not await crashed.jobs.run_digest(digest_id, now=utc(2026, 5, 4, 8, 0, 1))
    assert not await restarted.jobs.run_digest(digest_id, now=utc(2026, 5, 4, 8, 0, 2))
    assert await restarted.jobs.retry_notices(now=utcnow() + timedelta(minutes=1)) == 1
    assert len(chat.notes) == 1
    assert chat.notes[0].splitlines()[0] == "📰 Digest for 2026-05-03 08:00 – 2026-05-04 08:00"


async def test_a_crash_after_a_reminder_went_out_does_not_send_it_again(
    bots: list[Bot], chat: Chat
) -> None:
    crashed, restarted = bots
    await a_reminder(crashed.repo, first=utc(2026, 6, 1, 7))
    chat.crash_after_next_note = True
    with pytest.raises(Crash):
        await crashed.jobs.fire_reminders(now=utc(2026, 6, 1, 7, 0, 1))
    assert await restarted.jobs.retry_notices() == 0, "held while the dead process may post"
    later = utcnow() + TAKEOVER_GRACE + timedelta(seconds=1)
    assert await restarted.jobs.retry_notices(now=later) == 1, "found by its client id"
    assert await restarted.jobs.retry_notices(now=later + timedelta(hours=1)) == 0
    assert len(chat.notes) == 1
    (notice,) = await restarted.repo.notices(key_prefix="reminder:")
    assert notice.status == NoticeStatus.sent and notice.message_id == "n1"


async def test_where_the_platform_cannot_tell_an_interrupted_reminder_is_sent_again_not_lost(
    bots: list[Bot], chat: Chat
) -> None:
    crashed, restarted = bots
    chat.searchable = False
    await a_reminder(crashed.repo, first=utc(2026, 6, 1, 7))
    chat.crash_after_next_note = True
    with pytest.raises(Crash):
        await crashed.jobs.fire_reminders(now=utc(2026, 6, 1, 7, 0, 1))
    later = utcnow() + TAKEOVER_GRACE + timedelta(seconds=1)
    assert await restarted.jobs.retry_notices(now=later) == 1
    assert len(chat.notes) == 2, "at least once: the one window a duplicate is possible"


async def test_a_reminder_refused_for_good_is_given_up_and_logged_once(
    bots: list[Bot], chat: Chat, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = bots[0].jobs
    await a_reminder(bots[0].repo, first=utc(2026, 6, 1, 7))
    chat.fail_next = [DeliveryError("channel_not_found", retryable=False)]
    assert await jobs.fire_reminders(now=utc(2026, 6, 1, 7, 0, 1)) == 0
    assert await jobs.retry_notices(now=utcnow() + timedelta(days=1)) == 0
    (notice,) = await bots[0].repo.notices()
    assert notice.status == NoticeStatus.failed and notice.error == "channel_not_found"
    assert [r.levelname for r in caplog.records if "giving up" in r.getMessage()] == ["ERROR"]


async def test_retries_are_bounded(bots: list[Bot], chat: Chat) -> None:
    jobs = bots[0].jobs
    await a_reminder(bots[0].repo, first=utc(2026, 6, 1, 7))
    chat.fail_next = [DeliveryError("ratelimited", retry_after=0.0)] * (MAX_NOTICE_ATTEMPTS + 5)
    await jobs.fire_reminders(now=utc(2026, 6, 1, 7, 0, 1))
    for _ in range(MAX_NOTICE_ATTEMPTS + 3):
        await jobs.retry_notices(now=utcnow() + timedelta(seconds=1))
    (notice,) = await bots[0].repo.notices()
    assert notice.status == NoticeStatus.failed and notice.attempts == MAX_NOTICE_ATTEMPTS
    assert chat.notes == []
