"""Every action a person takes in a chat is in the audit log with its actor, and no row of
it holds the words they wrote."""

from __future__ import annotations

import json

from bot.router import Router
from bot.types import OTHER_REASON, Action, ActionEvent, Inbound
from models.intents import IntentClassifier
from models.intents.spec import OOS
from storage.repository import Repository

WORDS = "draft an email to Dana about the Vexhollow shipment"


def press(action: Action, task_id: int, user: str, **extra: str) -> ActionEvent:
    return ActionEvent(
        platform="slack",
        tenant="T1",
        channel="C1",
        user=user,
        action=action,
        task_id=task_id,
        event_id=f"{action}:{user}:{extra}",
        **extra,
    )


async def test_requests_votes_corrections_regenerates_and_cancels_are_audited_by_actor(
    repo: Repository, parser: IntentClassifier
) -> None:
    router = Router(repo=repo, parser=parser)
    reply = await router.handle(
        Inbound(platform="slack", tenant="T1", channel="C1", user="U1", text=WORDS, event_id="e1")
    )
    [task_id] = reply.task_ids
    [claimed] = await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    await repo.complete(task_id=claimed.id or 0, worker_id="w", result="Dear Dana")

    await router.handle_action(press(Action.rate_up, task_id, "U2"))
    await router.handle_action(press(Action.rate_down, task_id, "U3"))
    await router.handle_action(press(Action.why, task_id, "U3", choice=OTHER_REASON))
    await router.handle_action(press(Action.note, task_id, "U3", comment="Vexhollow is wrong"))
    await router.handle_action(press(Action.why, task_id, "U3", choice="too_long"))
    await router.handle_action(press(Action.replan, task_id, "U3", choice=OOS))
    regenerated = await router.handle_action(press(Action.regenerate, task_id, "U2"))
    [new_id] = regenerated.task_ids
    await router.handle_action(press(Action.cancel, new_id, "U2"))

    entries = await repo.audit_entries(tenant="T1")
    assert [(e.actor, e.action, e.subject) for e in entries] == [
        ("U1", "request.accepted", f"request:{reply.request_id}"),
        ("U2", "vote", f"task:{task_id}"),
        ("U3", "vote", f"task:{task_id}"),
        ("U3", "vote.comment", f"task:{task_id}"),
        ("U3", "vote.reason", f"task:{task_id}"),
        ("U3", "correction", f"task:{task_id}"),
        ("U2", "task.regenerated", f"task:{task_id}"),
        ("U2", "task.cancelled", f"task:{new_id}"),
    ]
    assert entries[0].detail == {"channel": "C1", "tasks": [task_id], "kinds": ["email.draft"]}
    assert entries[1].detail["score"] == 1 and entries[2].detail["score"] == -1
    assert entries[3].detail["chars"] == len("Vexhollow is wrong")
    assert entries[5].detail["right_kind"] == OOS and entries[5].detail["wrong_kind"] == (
        "email.draft"
    )
    assert all(e.platform == "slack" for e in entries)
    assert "Vexhollow" not in json.dumps([e.detail for e in entries])
