"""``atombot purge`` and ``atombot forget``: dry runs change nothing, real runs say what they
deleted per table and are audited."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import time_machine

from bot.cli import build_arg_parser
from bot.config import Settings
from bot.scheduler import Jobs, Scheduler
from storage.repository import Repository
from storage.schemas import RequestCreate, TaskCreate
from storage.tables import ChatMessage, utcnow


async def run(settings: Settings, *argv: str) -> int:
    args = build_arg_parser().parse_args(list(argv))
    return int(await args.func(args, settings))


def printed(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


async def rated_request(
    repo: Repository, event_id: str, *, channel: str = "C1", tenant: str = "T1"
) -> int:
    created = await repo.create_request(
        request=RequestCreate(
            platform="slack", tenant=tenant, channel=channel, user="U1", text="x", event_id=event_id
        ),
        tasks=[TaskCreate(kind="email.draft")],
    )
    task_id = created.tasks[0].id or 0
    await repo.claim(worker_id="w", limit=10, lease_seconds=30)
    await repo.complete(task_id=task_id, worker_id="w", result="Dear Dana")
    await repo.record_feedback(task_id=task_id, user="U1", score=1)
    return task_id


async def old_message(repo: Repository, channel: str = "C1") -> None:
    await repo.remember_message(
        ChatMessage(
            platform="slack",
            tenant="T1",
            channel=channel,
            message_id="m1",
            author="U1",
            text="lunch?",
            sent_at=utcnow() - timedelta(days=90),
        )
    )


async def test_purge_dry_run_deletes_nothing_then_purge_deletes_and_is_audited(
    repo: Repository, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with time_machine.travel(utcnow() - timedelta(days=3), tick=True):
        old = await rated_request(repo, "e1")
    new = await rated_request(repo, "e2")
    await old_message(repo)
    await repo.audit(actor="x", action="noop")  # the audit log is never purged
    later = settings.model_copy(update={"retention_days": 2})

    assert await run(later, "purge", "--dry-run", "--json") == 0
    dry = printed(capsys)
    assert dry["dry_run"] and dry["days"] == 2
    assert dry["counts"] == {"chatmessage": 1, "feedback": 1, "request": 1, "task": 1}
    assert await run(later, "purge", "--dry-run") == 0
    assert "nothing was deleted" in capsys.readouterr().out
    assert await repo.get_task(old) is not None and await repo.audit_entries(action="purge") == []

    assert await run(later, "purge") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("purged 4 row(s) from before")
    assert lines[1:] == ["  chatmessage: 1", "  feedback: 1", "  request: 1", "  task: 1"]
    assert await repo.get_task(old) is None and await repo.get_task(new) is not None
    [purge] = await repo.audit_entries(action="purge")
    assert purge.actor.startswith("cli") and purge.detail["total"] == 4
    assert len(await repo.audit_entries(action="noop")) == 1

    assert await run(settings, "purge", "--days", "1", "--json") == 0
    assert printed(capsys)["counts"] == {}


async def test_purge_without_a_retention_period_refuses(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run(settings, "purge") == 2
    assert "ATOMBOT_RETENTION_DAYS=0" in capsys.readouterr().err


async def test_forget_says_what_it_deleted_per_table_and_leaves_other_chats(
    repo: Repository, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = await rated_request(repo, "e1", channel="C1")
    theirs = await rated_request(repo, "e2", channel="C2")
    await old_message(repo, "C1")

    assert await run(settings, "forget", "--platform", "slack", "--chat", "C1", "--dry-run") == 0
    assert "would delete 4 row(s)" in capsys.readouterr().out
    assert await repo.get_task(mine) is not None

    argv = ["forget", "--platform", "slack", "--chat", "C1", "--tenant", "T1", "--json"]
    assert await run(settings, *argv) == 0
    report = printed(capsys)
    assert report["counts"] == {"chatmessage": 1, "feedback": 1, "request": 1, "task": 1}
    assert (report["platform"], report["tenant"], report["chat"]) == ("slack", "T1", "C1")
    assert await repo.get_task(mine) is None and await repo.get_task(theirs) is not None
    [entry] = await repo.audit_entries(action="forget")
    assert entry.actor.startswith("cli") and entry.subject == "chat:slack/T1/C1"


async def test_forget_asks_for_the_tenant_when_the_chat_id_is_in_several(
    repo: Repository, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    await rated_request(repo, "e1", channel="C1", tenant="T1")
    await rated_request(repo, "e2", channel="C1", tenant="T2")
    assert await run(settings, "forget", "--platform", "slack", "--chat", "C1") == 2
    assert "T1, T2" in capsys.readouterr().err
    assert len(await repo.list_tasks()) == 2


async def test_the_daily_job_purges_past_retention_and_audits_only_real_purges(
    repo: Repository,
) -> None:
    task_id = await rated_request(repo, "e1")
    jobs = Jobs(repo=repo, adapters={}, scheduler=Scheduler(), retention_days=30)

    assert (await jobs.purge_expired()).total == 0  # type: ignore[union-attr]
    removal = await jobs.purge_expired(now=utcnow() + timedelta(days=31))

    assert removal is not None and removal.counts == {"feedback": 1, "request": 1, "task": 1}
    assert await repo.get_task(task_id) is None
    [entry] = await repo.audit_entries(action="purge")
    assert entry.actor == "system" and entry.detail["total"] == 3
    off = Jobs(repo=repo, adapters={}, scheduler=Scheduler())
    assert await off.purge_expired() is None
    off.install(poll_seconds=1.0, lease_seconds=60.0)
    jobs.install(poll_seconds=1.0, lease_seconds=60.0)
    assert "retention" not in off.scheduler.job_ids()
    assert "retention" in jobs.scheduler.job_ids()
