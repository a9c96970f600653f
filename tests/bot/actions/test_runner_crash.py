"""Exactly once across a crash: a new runner over the same database finds a run in
``committing`` and counts it as done (never performs it again); a run that died before its
point of no return (``prepared``) is performed again with the same key."""

from __future__ import annotations

import asyncio

import pytest

from bot.types import Action
from storage.db import create_engine
from storage.repository import Repository
from storage.tables import ActionState, TaskStatus
from tests.bot.actions.actions_support import (
    Crash,
    FakePerformer,
    drafted_action,
    press,
    router_for,
    runner_for,
)


async def approved_then_crashed(repo: Repository, performer: FakePerformer, lease: float) -> int:
    task = await drafted_action(repo)
    runner = runner_for(repo, performer, lease_seconds=lease)
    await runner.tick()
    await router_for(repo).handle_action(press(task.id or 0, Action.approve))
    with pytest.raises(Crash):
        await runner.tick()
    return task.id or 0


async def test_a_crash_after_the_point_of_no_return_is_not_performed_again(
    repo: Repository, database_url: str
) -> None:
    first = FakePerformer(crash="after")
    task_id = await approved_then_crashed(repo, first, lease=0.1)
    run = await repo.action_run(task_id)
    assert run is not None and run.state == ActionState.committing
    assert len(first.performed) == 1

    await asyncio.sleep(0.15)  # the dead runner's lease runs out
    restarted = Repository(create_engine(database_url))
    try:
        second = FakePerformer()
        await runner_for(restarted, second).tick()
        await runner_for(restarted, second).tick()
        assert second.performed == [] and second.contexts == []
        task = await restarted.get_task(task_id)
        assert task is not None and task.status == TaskStatus.succeeded
        assert "probably carried out" in (task.result or "")
        assert "confirm with the recipient" in (task.result or "").lower()
        entries = [a.action for a in await restarted.audit_entries()]
        assert entries[-1] == "action.assumed_done"
    finally:
        await restarted.dispose()


async def test_a_crash_before_the_point_of_no_return_is_performed_again_with_the_same_key(
    repo: Repository, database_url: str
) -> None:
    first = FakePerformer(crash="before")
    task_id = await approved_then_crashed(repo, first, lease=0.1)
    run = await repo.action_run(task_id)
    assert run is not None and run.state == ActionState.prepared
    assert first.performed == []

    await asyncio.sleep(0.15)
    restarted = Repository(create_engine(database_url))
    try:
        second = FakePerformer()
        await runner_for(restarted, second).tick()
        assert second.performed == [(f"atombot-{task_id}-1", first.contexts[0].draft)]
        assert first.contexts[0].key == second.contexts[0].key
        task = await restarted.get_task(task_id)
        assert task is not None and task.status == TaskStatus.succeeded
    finally:
        await restarted.dispose()


async def test_a_live_runner_keeps_its_lease_so_no_other_runner_takes_the_run_over(
    repo: Repository,
) -> None:
    task = await drafted_action(repo)
    performer = FakePerformer()
    runner = runner_for(repo, performer, lease_seconds=30.0)
    await runner.tick()
    await router_for(repo).handle_action(press(task.id or 0, Action.approve))
    claimed = await repo.claim_action_runs(owner="me", lease_seconds=30.0)
    assert [r.task_id for r, _ in claimed] == [task.id]
    other = FakePerformer()
    await runner_for(repo, other).tick()  # the run is leased to "me": nothing to do
    assert other.contexts == []
