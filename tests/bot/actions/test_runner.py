"""The action runner's state machine on the real database: prepare → awaiting approval →
approved → performed exactly once; retries with backoff; permanent failures; audit rows."""

from __future__ import annotations

from bot.render import render_request
from bot.types import Action
from storage.repository import Repository
from storage.tables import ActionState, TaskStatus, utcnow
from tests.bot.actions.actions_support import (
    DRAFT,
    FakePerformer,
    drafted_action,
    kinds_with,
    press,
    router_for,
    runner_for,
)


async def test_an_action_waits_for_approval_after_its_draft_and_is_shown_with_its_buttons(
    repo: Repository,
) -> None:
    performer = FakePerformer()
    task = await drafted_action(repo)
    await runner_for(repo, performer).tick()

    waiting = await repo.get_task(task.id or 0)
    assert waiting is not None and waiting.status == TaskStatus.awaiting_approval
    assert performer.prepared == 1 and performer.performed == []
    view = render_request([waiting], "en", now=utcnow(), kinds=kinds_with())
    assert "waiting for approval" in view.text
    assert "To: dana@example.com" in view.text and "Hi Dana, the shipment is late" in view.text
    [row] = view.buttons
    assert [b.action for b in row] == [Action.approve, Action.edit, Action.reject]
    assert row[0].choice == "v1"
    # Ticking again does not perform or prepare anything while it waits.
    await runner_for(repo, performer).tick()
    assert performer.prepared == 1 and performer.performed == []


async def test_approved_by_the_requester_it_is_performed_exactly_once(repo: Repository) -> None:
    performer = FakePerformer()
    runner = runner_for(repo, performer)
    task = await drafted_action(repo)
    await runner.tick()
    reply = await router_for(repo).handle_action(press(task.id or 0, Action.approve, choice="v1"))
    assert "Approved" in reply.text
    for _ in range(3):
        await runner.tick()

    assert performer.performed == [(f"atombot-{task.id}-1", DRAFT)]
    done = await repo.get_task(task.id or 0)
    assert done is not None and done.status == TaskStatus.succeeded
    assert done.result == "Sent to dana@example.com"
    run = await repo.action_run(task.id or 0)
    assert run is not None and run.state == ActionState.done and run.approved_by == "ana"
    ctx = performer.contexts[0]
    assert ctx.requester == "ana" and ctx.requester_name == "Ana" and ctx.target.channel == "c1"
    entries = await repo.audit_entries(tenant="t1")
    actions = [a.action for a in entries if a.action.startswith(("action.", "approval."))]
    assert actions == ["action.awaiting_approval", "approval.approved", "action.done"]
    # Pressing Approve again changes nothing.
    again = await router_for(repo).handle_action(press(task.id or 0, Action.approve, choice="v1"))
    assert "not waiting" in again.text
    await runner.tick()
    assert len(performer.performed) == 1


async def test_a_task_cancelled_while_waiting_is_never_performed(repo: Repository) -> None:
    performer = FakePerformer()
    runner = runner_for(repo, performer)
    task = await drafted_action(repo)
    await runner.tick()
    reply = await router_for(repo).handle_action(press(task.id or 0, Action.cancel))
    assert "ancel" in reply.text
    await runner.tick()
    cancelled = await repo.get_task(task.id or 0)
    assert cancelled is not None and cancelled.status == TaskStatus.cancelled
    approve = await router_for(repo).handle_action(press(task.id or 0, Action.approve))
    assert "not waiting" in approve.text
    await runner.tick()
    assert performer.performed == []
    run = await repo.action_run(task.id or 0)
    assert run is not None and run.state == ActionState.cancelled


async def test_a_missing_address_is_asked_once_and_the_answer_is_used(repo: Repository) -> None:
    performer = FakePerformer(ask=True)
    runner = runner_for(repo, performer)
    router = router_for(repo)
    task = await drafted_action(repo)
    await runner.tick()
    asking = await repo.get_task(task.id or 0)
    assert asking is not None and asking.status == TaskStatus.awaiting_approval
    view = render_request([asking], "en", now=utcnow(), kinds=kinds_with())
    assert "I don't know Dana's email address" in view.text
    assert [b.action for b in view.buttons[0]] == [Action.edit, Action.cancel]
    opened = await router.handle_action(press(task.id or 0, Action.edit))
    assert opened.ask_comment and opened.ask_action == Action.edit
    assert opened.comment_task == task.id
    answered = await router.handle_action(
        press(task.id or 0, Action.edit, comment="dana@example.org", event="p2")
    )
    assert "Thanks" in answered.text
    await runner.tick()
    waiting = await repo.get_task(task.id or 0)
    assert waiting is not None and waiting.status == TaskStatus.awaiting_approval
    assert "To: dana@example.org" in (waiting.result or "")
    await router.handle_action(press(task.id or 0, Action.approve, event="p3"))
    await runner.tick()
    assert performer.contexts[0].slots["recipients"] == ["dana@example.org"]
    assert len(performer.performed) == 1


async def test_an_answer_that_still_does_not_resolve_fails_instead_of_asking_again(
    repo: Repository,
) -> None:
    performer = FakePerformer(ask=True)
    runner = runner_for(repo, performer)
    task = await drafted_action(repo)
    await runner.tick()
    await router_for(repo).handle_action(press(task.id or 0, Action.edit, comment="no idea"))
    await runner.tick()
    failed = await repo.get_task(task.id or 0)
    assert failed is not None and failed.status == TaskStatus.failed
    assert "no idea" in (failed.error or "") and performer.performed == []
