"""Retention and forgetting on the real database: what goes, what stays, dry runs."""

from __future__ import annotations

from datetime import timedelta

from storage.repository import Repository
from storage.schemas import RequestCreate, TaskCreate
from storage.tables import ChatMessage, TaskStatus, utcnow


def a_request(event_id: str, *, channel: str = "c1", text: str = "hi") -> RequestCreate:
    return RequestCreate(
        platform="telegram", tenant="t1", channel=channel, user="ana", text=text, event_id=event_id
    )


async def finished(repo: Repository, event_id: str, *, channel: str = "c1") -> int:
    """A request with one task the worker finished and ana rated 👎 with a comment."""
    created = await repo.create_request(
        request=a_request(event_id, channel=channel), tasks=[TaskCreate(kind="email.draft")]
    )
    task_id = created.tasks[0].id or 0
    [claimed] = await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    assert claimed.id == task_id
    await repo.complete(task_id=task_id, worker_id="w", result="Dear Dana")
    await repo.record_feedback(task_id=task_id, user="ana", score=-1)
    await repo.set_vote_reason(task_id=task_id, user="ana", comment="too stiff")
    return task_id


async def keep_message(
    repo: Repository, message_id: str, *, days_ago: float, channel: str = "c1"
) -> None:
    await repo.remember_message(
        ChatMessage(
            platform="telegram",
            tenant="t1",
            channel=channel,
            message_id=message_id,
            author="ana",
            text="lunch at noon",
            sent_at=utcnow() - timedelta(days=days_ago),
        )
    )


async def test_past_retention_a_request_goes_with_its_tasks_results_votes_and_kept_messages(
    repo: Repository,
) -> None:
    old = await finished(repo, "old")
    await keep_message(repo, "m-old", days_ago=40)
    cutoff = utcnow()
    new = await finished(repo, "new")
    await keep_message(repo, "m-new", days_ago=0)

    removal = await repo.purge_expired(older_than=cutoff, actor="system")

    assert removal.counts == {
        "request": 1,
        "task": 1,
        "feedback": 1,
        "chatmessage": 1,
    }
    assert await repo.get_task(old) is None and await repo.feedback_of(old) == []
    assert await repo.get_task(new) is not None and len(await repo.feedback_of(new)) == 1
    kept = await repo.chat_messages(platform="telegram", tenant="t1", channel="c1")
    assert [m.message_id for m in kept] == ["m-new"]
    [entry] = await repo.audit_entries(action="purge")
    assert entry.actor == "system"
    assert entry.detail["counts"] == removal.counts and entry.detail["total"] == 4
    assert entry.detail["older_than"] == cutoff.isoformat()


async def test_a_dry_run_deletes_nothing_and_says_what_a_purge_would(repo: Repository) -> None:
    task_id = await finished(repo, "old")
    await keep_message(repo, "m-old", days_ago=40)
    cutoff = utcnow()

    dry = await repo.purge_expired(older_than=cutoff, dry_run=True, actor="system")

    assert dry.dry_run and dry.total == 4
    assert await repo.get_task(task_id) is not None
    assert len(await repo.chat_messages(platform="telegram", tenant="t1", channel="c1")) == 1
    assert await repo.audit_entries() == []  # nothing happened, nothing to record
    real = await repo.purge_expired(older_than=cutoff)
    assert real.counts == dry.counts and not real.dry_run


async def test_unfinished_work_and_active_reminders_outlive_the_retention_period(
    repo: Repository,
) -> None:
    queued = await repo.create_request(
        request=a_request("queued"), tasks=[TaskCreate(kind="email.draft")]
    )
    from storage.tables import Reminder

    reminder = await repo.create_request(
        request=a_request("reminder"),
        tasks=[TaskCreate(kind="reminder.create", status=TaskStatus.succeeded, result="ok")],
    )
    await repo.create_reminder(
        Reminder(
            task_id=reminder.tasks[0].id or 0,
            platform="telegram",
            tenant="t1",
            channel="c1",
            user="ana",
            what="water the plants",
            next_fire_at=utcnow() + timedelta(days=7),
            recurrence={"day_of_week": "mon", "hour": 9},
        )
    )

    removal = await repo.purge_expired(older_than=utcnow() + timedelta(seconds=1))

    assert removal.counts == {}
    assert await repo.get_task(queued.tasks[0].id or 0) is not None
    assert await repo.reminder_of_task(reminder.tasks[0].id or 0) is not None


async def test_a_newer_attempt_of_an_expired_task_stays_and_loses_only_its_link(
    repo: Repository,
) -> None:
    old = await finished(repo, "old")
    cutoff = utcnow()
    retry = await repo.create_request(
        request=a_request("regen"), tasks=[TaskCreate(kind="email.draft", retry_of=old)]
    )

    removal = await repo.purge_expired(older_than=cutoff)

    assert removal.counts["task"] == 1 and removal.unlinked == {"task.retry_of": 1}
    kept = await repo.get_task(retry.tasks[0].id or 0)
    assert kept is not None and kept.retry_of is None


async def test_forgetting_a_chat_leaves_other_chats_and_its_own_opt_out_alone(
    repo: Repository,
) -> None:
    mine = await finished(repo, "mine", channel="c1")
    theirs = await finished(repo, "theirs", channel="c2")
    await keep_message(repo, "m1", days_ago=0, channel="c1")
    await keep_message(repo, "m2", days_ago=0, channel="c2")
    await repo.set_memory_opt_out(platform="telegram", tenant="t1", channel="c1", opt_out=True)

    dry = await repo.forget_chat_data(platform="telegram", tenant="t1", channel="c1", dry_run=True)
    assert await repo.get_task(mine) is not None
    removal = await repo.forget_chat_data(
        platform="telegram", tenant="t1", channel="c1", actor="ana"
    )

    # The opt-out already forgot the kept message of c1.
    assert (
        removal.counts
        == dry.counts
        == {
            "request": 1,
            "task": 1,
            "feedback": 1,
        }
    )
    assert await repo.get_task(mine) is None
    assert await repo.get_task(theirs) is not None and len(await repo.feedback_of(theirs)) == 1
    assert len(await repo.chat_messages(platform="telegram", tenant="t1", channel="c2")) == 1
    assert await repo.memory_opted_out(platform="telegram", tenant="t1", channel="c1")
    [entry] = await repo.audit_entries(action="forget")
    assert (entry.actor, entry.platform, entry.tenant) == ("ana", "telegram", "t1")
    assert entry.subject == "chat:telegram/t1/c1" and entry.detail["counts"] == removal.counts


async def test_forgetting_with_settings_drops_the_chats_switches_and_digest_too(
    repo: Repository,
) -> None:
    await repo.set_training_opt_out(platform="telegram", tenant="t1", channel="c1", opt_out=True)
    await repo.subscribe_digest(
        platform="telegram",
        tenant="t1",
        channel="c1",
        user="ana",
        cron={"hour": 9},
        timezone="UTC",
        locale="en",
    )

    removal = await repo.forget_chat_data(
        platform="telegram", tenant="t1", channel="c1", settings=True
    )

    assert removal.counts == {"chatsetting": 1, "digestsubscription": 1}
    assert not await repo.training_opted_out(platform="telegram", tenant="t1", channel="c1")
    assert await repo.list_digests() == []


async def test_the_tenants_of_a_chat_id_are_found_for_an_admin(repo: Repository) -> None:
    await finished(repo, "a", channel="c1")
    await repo.create_request(
        request=RequestCreate(
            platform="telegram", tenant="t2", channel="c1", user="bo", text="x", event_id="b"
        ),
        tasks=[],
    )
    assert await repo.chat_tenants(platform="telegram", channel="c1") == ["t1", "t2"]
    assert await repo.chat_tenants(platform="slack", channel="c1") == []
