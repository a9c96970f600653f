"""Who may approve, edit or reject an action, expiry, and the edit path (through the
router, on the real database)."""

from __future__ import annotations

import asyncio

from bot.types import Action
from storage.repository import Repository
from storage.tables import ActionState, TaskStatus
from tests.bot.actions.actions_support import (
    FakePerformer,
    drafted_action,
    press,
    router_for,
    runner_for,
)


async def test_someone_elses_approval_is_refused_and_changes_nothing(repo: Repository) -> None:
    performer = FakePerformer()
    task = await drafted_action(repo, user="ana")
    await runner_for(repo, performer).tick()
    router = router_for(repo)
    for action in (Action.approve, Action.reject, Action.edit):
        reply = await router.handle_action(press(task.id or 0, action, user="mallory"))
        assert "Only the person who asked for" in reply.text and reply.ephemeral
        assert not reply.ask_comment
    await runner_for(repo, performer).tick()
    waiting = await repo.get_task(task.id or 0)
    assert waiting is not None and waiting.status == TaskStatus.awaiting_approval
    assert performer.performed == []
    refused = [a for a in await repo.audit_entries() if a.action == "approval.refused"]
    assert len(refused) == 3 and {a.actor for a in refused} == {"mallory"}


async def test_an_approver_from_the_settings_may_approve(repo: Repository) -> None:
    performer = FakePerformer()
    task = await drafted_action(repo, user="ana")
    runner = runner_for(repo, performer)
    await runner.tick()
    router = router_for(repo, approvers="boss, console:lead")
    assert (
        "Approved"
        in (await router.handle_action(press(task.id or 0, Action.approve, user="boss"))).text
    )
    await runner.tick()
    assert len(performer.performed) == 1
    run = await repo.action_run(task.id or 0)
    assert run is not None and run.approved_by == "boss"


async def test_a_platform_scoped_approver_is_one_only_on_that_platform(repo: Repository) -> None:
    task = await drafted_action(repo, user="ana")
    await runner_for(repo, FakePerformer()).tick()
    scoped = router_for(repo, approvers="slack:lead")
    reply = await scoped.handle_action(press(task.id or 0, Action.approve, user="lead"))
    assert "Only the person" in reply.text
    allowed = router_for(repo, approvers="console:lead")
    reply = await allowed.handle_action(press(task.id or 0, Action.approve, user="lead"))
    assert "Approved" in reply.text


async def test_reject_means_it_is_never_performed(repo: Repository) -> None:
    performer = FakePerformer()
    task = await drafted_action(repo)
    runner = runner_for(repo, performer)
    await runner.tick()
    reply = await router_for(repo).handle_action(press(task.id or 0, Action.reject))
    assert "Rejected" in reply.text
    for _ in range(2):
        await runner.tick()
    assert performer.performed == [] and performer.contexts == []
    rejected = await repo.get_task(task.id or 0)
    assert rejected is not None and rejected.status == TaskStatus.cancelled
    later = await router_for(repo).handle_action(press(task.id or 0, Action.approve))
    assert "not waiting" in later.text
    assert "approval.rejected" in [a.action for a in await repo.audit_entries()]


async def test_an_expired_approval_cannot_be_used(repo: Repository) -> None:
    performer = FakePerformer()
    task = await drafted_action(repo)
    hours = 0.05 / 3600  # 50 ms
    runner = runner_for(repo, performer)
    runner.policy = router_for(repo, hours=hours).approvals.policy
    await runner.tick()
    await asyncio.sleep(0.1)
    reply = await router_for(repo, hours=hours).handle_action(press(task.id or 0, Action.approve))
    assert "expired" in reply.text
    await runner.tick()
    assert performer.performed == []
    expired = await repo.get_task(task.id or 0)
    assert expired is not None and expired.status == TaskStatus.failed
    assert expired.error == "approval_expired"
    run = await repo.action_run(task.id or 0)
    assert run is not None and run.state == ActionState.expired


async def test_the_sweep_expires_approvals_nobody_answered(repo: Repository) -> None:
    performer = FakePerformer()
    task = await drafted_action(repo)
    runner = runner_for(repo, performer)
    runner.policy = router_for(repo, hours=0.05 / 3600).approvals.policy
    await runner.tick()
    await asyncio.sleep(0.1)
    assert await runner.sweep() == 1
    expired = await repo.get_task(task.id or 0)
    assert expired is not None and expired.status == TaskStatus.failed
    [entry] = [a for a in await repo.audit_entries() if a.action == "approval.expired"]
    assert entry.actor == "system"


async def test_edit_replaces_the_text_and_asks_again(repo: Repository) -> None:
    performer = FakePerformer()
    task = await drafted_action(repo)
    runner = runner_for(repo, performer)
    router = router_for(repo)
    await runner.tick()
    opened = await router.handle_action(press(task.id or 0, Action.edit))
    assert opened.ask_comment and opened.ask_action == Action.edit
    assert opened.ask_prefill is not None and "shipment is late" in opened.ask_prefill
    new_text = "Subject: Shipment\n\nHi Dana, it arrives Friday."
    edited = await router.handle_action(
        press(task.id or 0, Action.edit, comment=new_text, event="p2")
    )
    assert "approve again" in edited.text
    waiting = await repo.get_task(task.id or 0)
    assert waiting is not None and waiting.status == TaskStatus.awaiting_approval
    assert "it arrives Friday" in (waiting.result or "")
    assert waiting.inputs["approval"]["version"] == 2
    # The Approve button shown for the old text no longer works.
    stale = await router.handle_action(press(task.id or 0, Action.approve, choice="v1"))
    assert "changed" in stale.text
    await runner.tick()
    assert performer.performed == []
    await router.handle_action(press(task.id or 0, Action.approve, choice="v2", event="p3"))
    await runner.tick()
    assert performer.performed == [(f"atombot-{task.id}-2", new_text)]
    [entry] = [a for a in await repo.audit_entries() if a.action == "approval.edited"]
    assert entry.detail["chars"] == len(new_text)
    assert "Friday" not in str(entry.detail)  # the audit log holds no message text
