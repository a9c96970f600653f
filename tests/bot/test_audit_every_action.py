"""The audit log shows every kind of action issue 17 names — request accepted, task
cancelled, vote, correction, export, forget, retention purge, configuration and classifier
version change, admin commands (the chat switches among them), approval — each with its
actor, as ``atombot audit --json`` prints it, and never the words anyone wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli_audit import cli_actor
from bot.config import Settings
from bot.learning import remember_scope
from bot.router import Router
from bot.training_optout import training_command
from bot.types import Action, ActionEvent, Inbound
from handlers import privacy
from models.intents import IntentClassifier
from models.intents.spec import OOS
from models.intents.versions import VersionStore
from storage.repository import Repository
from tests.bot.actions.actions_support import FakePerformer, drafted_action, router_for, runner_for
from tests.bot.actions.actions_support import press as console_press
from tests.bot.test_cli_audit import printed, run

SECRET = "Vexhollow"
CHAT = {"platform": "slack", "tenant": "T1", "channel": "C1"}


def said(text: str, user: str, event_id: str) -> Inbound:
    return Inbound(**CHAT, user=user, text=text, event_id=event_id)


def pressed(action: Action, task_id: int, user: str, **extra: str) -> ActionEvent:
    return ActionEvent(
        **CHAT, user=user, action=action, task_id=task_id, event_id=f"{action}:{user}", **extra
    )


async def test_every_kind_of_action_is_in_the_audit_log_with_its_actor_and_no_words(
    repo: Repository,
    parser: IntentClassifier,
    settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    router = Router(repo=repo, parser=parser)
    # In a chat: a request, votes, a correction, a cancel, a digest subscription.
    email = await router.handle(said(f"draft an email to Dana about {SECRET}", "U1", "e1"))
    [task_id] = email.task_ids
    [claimed] = await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    await repo.complete(task_id=claimed.id or 0, worker_id="w", result=f"Dear Dana, {SECRET}")
    await router.handle_action(pressed(Action.rate_down, task_id, "U2"))
    await router.handle_action(pressed(Action.note, task_id, "U2", comment=f"not {SECRET}"))
    await router.handle_action(pressed(Action.replan, task_id, "U2", choice=OOS))
    reply = await router.handle(said(f"draft a reply to Bo about {SECRET}", "U1", "e2"))
    await router.handle_action(pressed(Action.cancel, reply.task_ids[0], "U1"))
    digest = await router.handle(said("send a daily digest of this channel at 8am", "U4", "e3"))
    assert not digest.task_ids, digest.text
    await router.handle(said("stop the daily digest of this channel", "U8", "e4"))

    # The chat switches (admin commands anyone in the chat may give).
    await training_command(
        repo, **CHAT, argument="off", locale="en", command="/atom training", user="U5"
    )
    await privacy.privacy(
        repo, **CHAT, argument="off", locale="en", days=7, user="U6"
    )  # the memory switch (Telegram's /privacy off)

    # An approval of an action.
    action = await drafted_action(repo, user="ana")
    await runner_for(repo, FakePerformer()).tick()
    await router_for(repo).handle_action(console_press(action.id or 0, Action.approve))

    # The operator: a classifier version change, a correction dropped, an export, a forget
    # (here the chat's own /atom forget), a retention purge.
    versions = VersionStore.for_scope(settings.data_dir, "slack:T1")
    remember_scope(versions.root, "slack:T1")
    versions.promote(versions.save(parser).version)
    versions.save(parser, parent="v0001")
    assert await run(settings, "intents", "rollback", "v0002", "--tenant", "slack:T1") == 0
    [correction] = await repo.corrections(tenant="T1")
    assert await run(settings, "corrections", "drop", str(correction.id)) == 0
    out = tmp_path / "sft.jsonl"
    assert await run(settings, "feedback", "export", "--format", "sft", "--out", str(out)) == 0
    await privacy.forget(repo, **CHAT, locale="en", user="U7", stop_keeping=False)
    assert await run(settings, "purge", "--days", "30") == 0
    capsys.readouterr()

    assert await run(settings, "audit", "--json") == 0
    rows = printed(capsys)

    done = {(row["action"], row["actor"]) for row in rows}
    operator = cli_actor()
    assert {
        ("request.accepted", "U1"),
        ("vote", "U2"),
        ("vote.comment", "U2"),
        ("correction", "U2"),
        ("task.cancelled", "U1"),
        ("config.digest.subscribed", "U4"),
        ("config.digest.unsubscribed", "U8"),
        ("admin.training.off", "U5"),
        ("admin.memory.off", "U6"),
        ("approval.approved", "ana"),
        ("classifier.rollback", operator),
        ("admin.correction.dropped", operator),
        ("export", operator),
        ("forget", "U7"),
        ("purge", operator),
    } <= done, done
    switches = [r for r in rows if r["action"].startswith("admin.") and r["actor"] != operator]
    assert all(r["subject"] == "chat:slack/T1/C1" for r in switches)
    assert all(r["detail"]["opt_out"] is True for r in switches)
    assert SECRET not in json.dumps(rows)
