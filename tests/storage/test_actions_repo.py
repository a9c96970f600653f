"""Action runs in the repository: one run per task, opened only once its draft succeeded,
transitions guarded by state / lease / version, and the sweep of expired approvals."""

from __future__ import annotations

from datetime import timedelta

from storage.repo.actions import TaskChange
from storage.repository import Repository
from storage.schemas import RequestCreate, TaskCreate
from storage.tables import ActionState, TaskStatus, utcnow


async def action_after(repo: Repository, *, draft_status: str = "queued") -> tuple[int, int]:
    stored = await repo.create_request(
        request=RequestCreate(
            platform="console", tenant="t1", channel="c1", user="ana", text="x", event_id="e1"
        ),
        tasks=[
            TaskCreate(kind="email.draft", status=draft_status, result="Subject: A\n\nB"),
            TaskCreate(kind="email.send", depends_on=(0,)),
        ],
    )
    return stored.tasks[0].id or 0, stored.tasks[1].id or 0


async def test_a_run_opens_once_only_after_the_draft_succeeded(repo: Repository) -> None:
    draft_id, action_id = await action_after(repo)
    assert await repo.open_action_runs(kinds=["email.send"]) == []
    await repo.claim(worker_id="w", limit=1, lease_seconds=30, kinds=["email.draft"])
    await repo.complete(task_id=draft_id, worker_id="w", result="Subject: A\n\nB")
    [run] = await repo.open_action_runs(kinds=["email.send"])
    assert (run.task_id, run.state, run.draft, run.requester) == (
        action_id,
        ActionState.new,
        "Subject: A\n\nB",
        "ana",
    )
    assert await repo.open_action_runs(kinds=["email.send"]) == []
    task = await repo.get_task(action_id)
    assert task is not None and task.status == TaskStatus.running
    # The worker never claims it, and the reaper leaves it alone (no task lease).
    assert await repo.claim(worker_id="w", limit=5, lease_seconds=30) == []
    assert await repo.reap_expired(now=utcnow() + timedelta(days=1)) == []


async def test_moves_are_guarded_by_state_lease_version_and_task_status(repo: Repository) -> None:
    _, action_id = await action_after(repo, draft_status="succeeded")
    [run] = await repo.open_action_runs(kinds=["email.send"])
    assert len(await repo.claim_action_runs(owner="a", lease_seconds=30)) == 1
    assert await repo.claim_action_runs(owner="b", lease_seconds=30) == []
    moved = await repo.move_action(
        run_id=run.id or 0, from_states=("new",), to_state="awaiting", owner="b"
    )
    assert moved is None  # b holds no lease
    moved = await repo.move_action(
        run_id=run.id or 0,
        from_states=("new",),
        to_state="awaiting",
        owner="a",
        task=TaskChange(status=TaskStatus.awaiting_approval, approval={"version": 1}),
    )
    assert moved is not None and moved.lease_owner is None
    assert (
        await repo.move_action(
            run_id=run.id or 0, from_states=("awaiting",), to_state="approved", version=2
        )
        is None
    )
    await repo.cancel(task_id=action_id, reason="cancelled by user")
    assert (
        await repo.move_action(
            run_id=run.id or 0,
            from_states=("awaiting",),
            to_state="approved",
            task=TaskChange(status=TaskStatus.running, require=(TaskStatus.awaiting_approval,)),
        )
        is None
    )
    task = await repo.get_task(action_id)
    assert task is not None and task.status == TaskStatus.cancelled


async def test_the_sweep_expires_waiting_runs_and_closes_cancelled_ones(repo: Repository) -> None:
    _, action_id = await action_after(repo, draft_status="succeeded")
    [run] = await repo.open_action_runs(kinds=["email.send"])
    await repo.move_action(
        run_id=run.id or 0,
        from_states=("new",),
        to_state="awaiting",
        run={"expires_at": utcnow() + timedelta(hours=1)},
        task=TaskChange(status=TaskStatus.awaiting_approval, result="preview"),
    )
    assert await repo.sweep_actions() == []
    [expired] = await repo.sweep_actions(now=utcnow() + timedelta(hours=2))
    assert expired.state == ActionState.expired
    task = await repo.get_task(action_id)
    assert task is not None and task.status == TaskStatus.failed
    assert task.error == "approval_expired" and task.result is None
