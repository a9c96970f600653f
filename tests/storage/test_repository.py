"""The task state machine, leases, retries, dedupe and feedback, on the real database."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

import pytest
from sqlalchemy import event

from storage.repository import Repository
from storage.schemas import RequestCreate, TaskCreate
from storage.tables import TaskStatus, utcnow


def a_request(event_id: str = "e1", user: str = "ana") -> RequestCreate:
    return RequestCreate(
        platform="console", tenant="t1", channel="c1", user=user, text="hi", event_id=event_id
    )


async def make_tasks(repo: Repository, *tasks: TaskCreate, event_id: str = "e1") -> list[int]:
    created = await repo.create_request(request=a_request(event_id), tasks=list(tasks))
    return [t.id or 0 for t in created.tasks]


async def test_a_request_and_its_tasks_are_stored_together_queued(repo: Repository) -> None:
    ids = await make_tasks(repo, TaskCreate(kind="email.draft"), TaskCreate(kind="summarize"))
    tasks = await repo.tasks_by_ids(ids)
    assert [t.status for t in tasks] == [TaskStatus.queued, TaskStatus.queued]
    assert tasks[0].request_id == tasks[1].request_id


async def test_the_same_event_twice_stores_one_request_and_no_new_tasks(repo: Repository) -> None:
    first = await repo.create_request(
        request=a_request("dup"), tasks=[TaskCreate(kind="summarize")]
    )
    second = await repo.create_request(
        request=a_request("dup"), tasks=[TaskCreate(kind="summarize")]
    )
    assert first.created and not second.created
    assert second.request.id == first.request.id
    assert [t.id for t in second.tasks] == [t.id for t in first.tasks]
    assert len(await repo.list_tasks()) == 1


async def test_claim_leases_a_task_to_one_worker_and_completion_stores_the_result(
    repo: Repository,
) -> None:
    [task_id] = await make_tasks(repo, TaskCreate(kind="email.draft"))
    claimed = await repo.claim(worker_id="w1", limit=5, lease_seconds=30)
    assert [t.id for t in claimed] == [task_id]
    assert claimed[0].status == TaskStatus.running and claimed[0].attempts == 1
    assert await repo.claim(worker_id="w2", limit=5, lease_seconds=30) == []
    assert await repo.complete(task_id=task_id, worker_id="w1", result="Dear Dana")
    task = await repo.get_task(task_id)
    assert task is not None and task.status == TaskStatus.succeeded and task.result == "Dear Dana"
    assert task.progress == 1.0 and task.lease_owner is None


async def test_a_worker_that_lost_its_lease_cannot_complete_the_task(repo: Repository) -> None:
    [task_id] = await make_tasks(repo, TaskCreate(kind="email.draft"))
    await repo.claim(worker_id="w1", limit=1, lease_seconds=30)
    await repo.reap_expired(now=utcnow() + timedelta(seconds=31))
    assert not await repo.complete(task_id=task_id, worker_id="w1", result="late")
    task = await repo.get_task(task_id)
    assert task is not None and task.status == TaskStatus.queued and task.result is None


async def test_an_expired_lease_requeues_the_task_for_another_worker(repo: Repository) -> None:
    [task_id] = await make_tasks(repo, TaskCreate(kind="summarize"))
    await repo.claim(worker_id="dead", limit=1, lease_seconds=1)
    assert await repo.reap_expired(now=utcnow()) == []  # not expired yet
    reaped = await repo.reap_expired(now=utcnow() + timedelta(seconds=2))
    assert [t.id for t in reaped] == [task_id]
    again = await repo.claim(worker_id="alive", limit=1, lease_seconds=30)
    assert [t.id for t in again] == [task_id] and again[0].attempts == 2


async def test_heartbeats_keep_a_lease_alive(repo: Repository) -> None:
    [task_id] = await make_tasks(repo, TaskCreate(kind="summarize"))
    await repo.claim(worker_id="w1", limit=1, lease_seconds=1)
    assert await repo.heartbeat(worker_id="w1", task_ids=[task_id], lease_seconds=60) == 1
    assert await repo.reap_expired(now=utcnow() + timedelta(seconds=5)) == []


async def test_a_failed_attempt_waits_out_its_backoff_before_the_retry(repo: Repository) -> None:
    [task_id] = await make_tasks(repo, TaskCreate(kind="summarize", max_attempts=2))
    await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    task = await repo.fail(
        task_id=task_id, worker_id="w", error="generation_failed: boom", backoff_seconds=60
    )
    assert task is not None and task.status == TaskStatus.queued and task.not_before is not None
    assert await repo.claim(worker_id="w", limit=1, lease_seconds=30) == []


async def test_retries_stop_after_max_attempts(repo: Repository) -> None:
    [task_id] = await make_tasks(repo, TaskCreate(kind="summarize", max_attempts=2))
    await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    await repo.fail(
        task_id=task_id, worker_id="w", error="generation_failed: one", backoff_seconds=0
    )
    [again] = await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    assert again.attempts == 2
    task = await repo.fail(
        task_id=task_id, worker_id="w", error="generation_failed: two", backoff_seconds=0
    )
    assert (
        task is not None
        and task.status == TaskStatus.failed
        and task.error == "generation_failed: two"
    )
    assert await repo.fail(task_id=task_id, worker_id="w", error="x") is None  # no longer held


async def test_the_last_attempt_fails_the_task_and_its_dependents(repo: Repository) -> None:
    first, second = await make_tasks(
        repo,
        TaskCreate(kind="summarize", max_attempts=1),
        TaskCreate(kind="email.draft", depends_on=(0,)),
    )
    [claimed] = await repo.claim(worker_id="w", limit=5, lease_seconds=30)
    assert claimed.id == first  # the email waits for the summary
    task = await repo.fail(task_id=first, worker_id="w", error="generation_failed: boom")
    assert task is not None and task.status == TaskStatus.failed
    dependent = await repo.get_task(second)
    assert dependent is not None and dependent.status == TaskStatus.failed


async def test_a_dependent_task_is_claimed_only_after_its_dependency_succeeded(
    repo: Repository,
) -> None:
    first, second = await make_tasks(
        repo, TaskCreate(kind="summarize"), TaskCreate(kind="email.draft", depends_on=(0,))
    )
    assert [t.id for t in await repo.claim(worker_id="w", limit=5, lease_seconds=30)] == [first]
    assert await repo.claim(worker_id="w", limit=5, lease_seconds=30) == []
    await repo.complete(task_id=first, worker_id="w", result="summary")
    assert [t.id for t in await repo.claim(worker_id="w", limit=5, lease_seconds=30)] == [second]
    assert await repo.results_of([first]) == {first: "summary"}


async def test_higher_priority_is_claimed_first_then_oldest(repo: Repository) -> None:
    low, high, low2 = await make_tasks(
        repo,
        TaskCreate(kind="summarize"),
        TaskCreate(kind="summarize", priority=5),
        TaskCreate(kind="summarize"),
    )
    claimed = await repo.claim(worker_id="w", limit=3, lease_seconds=30)
    assert [t.id for t in claimed] == [high, low, low2]


async def test_claim_only_takes_the_kinds_asked_for(repo: Repository) -> None:
    await make_tasks(repo, TaskCreate(kind="reminder.create"))
    assert await repo.claim(worker_id="w", limit=5, lease_seconds=30, kinds=["summarize"]) == []


async def test_cancel_stops_a_queued_task_and_its_dependents(repo: Repository) -> None:
    first, second = await make_tasks(
        repo, TaskCreate(kind="summarize"), TaskCreate(kind="email.draft", depends_on=(0,))
    )
    cancelled = await repo.cancel(task_id=first)
    assert cancelled is not None and cancelled.status == TaskStatus.cancelled
    dependent = await repo.get_task(second)
    assert dependent is not None and dependent.status == TaskStatus.cancelled


async def test_a_cancelled_running_task_cannot_report_progress_or_complete(
    repo: Repository,
) -> None:
    [task_id] = await make_tasks(repo, TaskCreate(kind="summarize"))
    await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    assert await repo.set_progress(task_id=task_id, worker_id="w", progress=0.3)
    await repo.cancel(task_id=task_id)
    assert not await repo.set_progress(task_id=task_id, worker_id="w", progress=0.6)
    assert not await repo.complete(task_id=task_id, worker_id="w", result="too late")


async def test_release_returns_a_task_without_using_up_an_attempt(repo: Repository) -> None:
    [task_id] = await make_tasks(repo, TaskCreate(kind="summarize"))
    await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    assert await repo.release(task_id=task_id, worker_id="w")
    task = await repo.get_task(task_id)
    assert task is not None and task.status == TaskStatus.queued and task.attempts == 0


async def test_one_vote_per_user_and_a_new_vote_replaces_the_old(repo: Repository) -> None:
    [task_id] = await make_tasks(repo, TaskCreate(kind="summarize"))
    _, changed = await repo.record_feedback(task_id=task_id, user="ana", score=1)
    assert changed
    _, changed = await repo.record_feedback(task_id=task_id, user="ana", score=1)
    assert not changed
    await repo.record_feedback(task_id=task_id, user="ana", score=-1)
    await repo.record_feedback(task_id=task_id, user="bo", score=1)
    votes = await repo.feedback_of(task_id)
    assert sorted((v.user, v.score) for v in votes) == [("ana", -1), ("bo", 1)]
    tally = (await repo.tallies([task_id]))[task_id]
    assert (tally.up, tally.down) == (1, 1)


async def test_a_vote_must_be_plus_or_minus_one(repo: Repository) -> None:
    [task_id] = await make_tasks(repo, TaskCreate(kind="summarize"))
    with pytest.raises(ValueError):
        await repo.record_feedback(task_id=task_id, user="ana", score=5)


async def test_changed_since_returns_only_tasks_updated_after_the_cursor(repo: Repository) -> None:
    first, _second = await make_tasks(
        repo, TaskCreate(kind="summarize"), TaskCreate(kind="summarize")
    )
    cursor = utcnow()
    await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    changed = await repo.changed_since(cursor=cursor)
    assert [t.id for t in changed] == [first]


async def test_progress_writes_cancelled_midway_log_no_errors_and_leave_the_pool_healthy(
    repo: Repository, caplog: pytest.LogCaptureFixture
) -> None:
    # The worker cancels its progress writer whenever a task finishes; with a fast model
    # that often lands in the middle of a write (COMMIT included).
    (task_id,) = await make_tasks(repo, TaskCreate(kind="email.draft"))
    await repo.claim(worker_id="w", limit=1, lease_seconds=60)
    caplog.set_level(logging.WARNING)
    invalidated: list[object] = []
    event.listen(repo.engine.sync_engine, "invalidate", lambda *args: invalidated.append(args))
    for i in range(200):
        write = asyncio.create_task(repo.set_progress(task_id=task_id, worker_id="w", progress=0.5))
        await asyncio.sleep((i % 20) * 0.0002)
        write.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await write
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    assert invalidated == [], "a cancelled statement cost its connection"
    assert await repo.set_progress(task_id=task_id, worker_id="w", progress=0.7)
    task = await repo.get_task(task_id)
    assert task is not None and task.progress == pytest.approx(0.7)


async def test_chat_messages_of_a_window_since_and_until(repo: Repository) -> None:
    from storage.tables import ChatMessage

    now = utcnow()
    for i, days_ago in enumerate((5, 3, 1, 0)):
        await repo.remember_message(
            ChatMessage(
                platform="telegram",
                tenant="7",
                channel="-100",
                message_id=str(i),
                author="Ann",
                text=f"{days_ago} days ago",
                sent_at=now - timedelta(days=days_ago, minutes=1),
            )
        )
    rows = await repo.chat_messages(
        platform="telegram",
        tenant="7",
        channel="-100",
        since=now - timedelta(days=4),
        until=now - timedelta(days=1),
    )
    assert [r.text for r in rows] == ["3 days ago", "1 days ago"]
