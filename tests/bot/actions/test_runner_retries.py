"""The action runner's failures: transient ones (and exceptions while preparing) retried
with exponential backoff up to a bounded number of attempts, permanent ones failing the
task with the reason shown."""

from __future__ import annotations

from datetime import timedelta

import time_machine

from bot.actions.base import ActionFailed
from bot.render import render_request
from bot.types import Action
from storage.repository import Repository
from storage.tables import ActionState, TaskStatus, utcnow
from tests.bot.actions.actions_support import (
    FakePerformer,
    drafted_action,
    kinds_with,
    press,
    router_for,
    runner_for,
)


async def test_a_transient_failure_is_retried_with_backoff_and_then_succeeds(
    repo: Repository,
) -> None:
    performer = FakePerformer(failures=[ActionFailed("421 try later", permanent=False)])
    runner = runner_for(repo, performer, backoff_seconds=30.0)
    task = await drafted_action(repo)
    await runner.tick()
    await router_for(repo).handle_action(press(task.id or 0, Action.approve))
    await runner.tick()  # fails once
    run = await repo.action_run(task.id or 0)
    assert run is not None and run.state == ActionState.approved and run.attempts == 1
    assert run.next_attempt_at is not None
    await runner.tick()  # the backoff has not passed: nothing happens
    assert performer.performed == []
    with time_machine.travel(utcnow() + timedelta(seconds=31), tick=True):
        await runner.tick()
    assert len(performer.performed) == 1
    done = await repo.get_task(task.id or 0)
    assert done is not None and done.status == TaskStatus.succeeded
    assert "action.retry" in [a.action for a in await repo.audit_entries()]


async def test_transient_failures_stop_after_the_bounded_attempts(repo: Repository) -> None:
    failures = [ActionFailed("451 busy", permanent=False) for _ in range(5)]
    performer = FakePerformer(failures=failures)
    runner = runner_for(repo, performer, backoff_seconds=0.001, max_attempts=3)
    task = await drafted_action(repo)
    await runner.tick()
    await router_for(repo).handle_action(press(task.id or 0, Action.approve))
    for minutes in range(6):
        with time_machine.travel(utcnow() + timedelta(minutes=minutes), tick=True):
            await runner.tick()
    failed = await repo.get_task(task.id or 0)
    assert failed is not None and failed.status == TaskStatus.failed
    assert failed.error == "action_failed: 451 busy"
    assert len(performer.contexts) == 3 and performer.performed == []


async def test_a_permanent_failure_fails_the_task_with_its_reason_shown(repo: Repository) -> None:
    reason = "550 mailbox unavailable"
    performer = FakePerformer(failures=[ActionFailed(reason, permanent=True)])
    runner = runner_for(repo, performer)
    task = await drafted_action(repo)
    await runner.tick()
    await router_for(repo).handle_action(press(task.id or 0, Action.approve))
    await runner.tick()
    await runner.tick()
    failed = await repo.get_task(task.id or 0)
    assert failed is not None and failed.status == TaskStatus.failed
    view = render_request([failed], "en", now=utcnow(), kinds=kinds_with())
    assert "could not be carried out: 550 mailbox unavailable" in view.text
    assert len(performer.contexts) == 1
    [entry] = [a for a in await repo.audit_entries() if a.action == "action.failed"]
    assert entry.detail["permanent"] is True and entry.subject == f"task:{task.id}"


async def test_an_exception_while_preparing_is_retried_with_backoff_then_fails_the_task(
    repo: Repository,
) -> None:
    errors: list[Exception] = [ConnectionError("address book down") for _ in range(5)]
    performer = FakePerformer(prepare_errors=errors)
    runner = runner_for(repo, performer, backoff_seconds=30.0, max_attempts=3)
    task = await drafted_action(repo)
    await runner.tick()
    run = await repo.action_run(task.id or 0)
    assert run is not None and run.state == ActionState.new and run.attempts == 1
    await runner.tick()  # the backoff (30 s) has not passed: not prepared again
    assert performer.prepared == 1
    for minutes in range(1, 6):
        with time_machine.travel(utcnow() + timedelta(minutes=minutes), tick=True):
            await runner.tick()
    assert performer.prepared == 3  # bounded: max_attempts, not forever
    failed = await repo.get_task(task.id or 0)
    assert failed is not None and failed.status == TaskStatus.failed
    view = render_request([failed], "en", now=utcnow(), kinds=kinds_with())
    assert "could not be carried out: preparing it failed (ConnectionError)" in view.text
    assert "address book down" not in view.text  # no internals in the chat
    delays = [a.detail["delay"] for a in await repo.audit_entries() if a.action == "action.retry"]
    assert delays == [30.0, 60.0]
    assert performer.performed == []


async def test_a_prepare_that_fails_once_then_works_asks_for_approval(repo: Repository) -> None:
    performer = FakePerformer(prepare_errors=[RuntimeError("blip")])
    runner = runner_for(repo, performer, backoff_seconds=0.001)
    task = await drafted_action(repo)
    await runner.tick()
    with time_machine.travel(utcnow() + timedelta(seconds=1), tick=True):
        await runner.tick()
    waiting = await repo.get_task(task.id or 0)
    assert waiting is not None and waiting.status == TaskStatus.awaiting_approval
    assert performer.prepared == 2
