"""Exactly once across a crash: an approved email.send is carried out by a worker process
(the real runner and performer, email_crash_worker.py) that is SIGKILLed the moment the
SMTP server has stored the message, before the worker can hear the 250 and record it.
A restarted runner then settles the run without sending again: one message in all."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from bot.actions.approval import ApprovalPolicy, Approvals
from bot.actions.email import EmailSendPerformer
from bot.actions.registry import ActionRegistry
from bot.actions.runner import ActionRunner
from bot.types import Action, ActionEvent
from handlers.kinds import build_registry
from storage.repository import Repository
from storage.schemas import RequestCreate, TaskCreate
from storage.tables import ActionState, TaskStatus
from tests.bot.actions.smtp_support import SmtpServer

ROOT = Path(__file__).resolve().parents[3]
DRAFT = "Subject: Shipment delayed\n\nHi Dana,\n\nthe shipment arrives on Friday.\n\nAna"
ANA = "U0ANA"


async def approved_email(repo: Repository, registry: ActionRegistry) -> int:
    """A succeeded email.draft and its email.send, prepared and approved by the requester;
    returns the email.send task's id."""
    created = await repo.create_request(
        request=RequestCreate(
            platform="slack",
            tenant="T1",
            channel="C1",
            user=ANA,
            text="summarize this thread and email dana@example.com the outcome",
            event_id="Ev1",
        ),
        tasks=[
            TaskCreate(kind="email.draft", status=TaskStatus.succeeded, result=DRAFT),
            TaskCreate(
                kind="email.send", inputs={"recipients": ["dana@example.com"]}, depends_on=(0,)
            ),
        ],
    )
    send = created.tasks[1].id or 0
    await ActionRunner(repo, registry, owner="preparer").tick()
    task = await repo.get_task(send)
    assert task is not None and task.status == TaskStatus.awaiting_approval
    approvals = Approvals(repo, build_registry(actions=registry.kinds), ApprovalPolicy())
    press = ActionEvent(
        platform="slack",
        tenant="T1",
        channel="C1",
        user=ANA,
        action=Action.approve,
        task_id=send,
        event_id="press-1",
    )
    await approvals.handle(press, "en")
    run = await repo.action_run(send)
    assert run is not None and run.state == ActionState.approved
    return send


async def test_a_worker_killed_right_after_the_smtp_transaction_sends_once(
    repo: Repository, database_url: str, server: SmtpServer
) -> None:
    registry = ActionRegistry([EmailSendPerformer(server.config())])
    send = await approved_email(repo, registry)

    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.bot.actions.email_crash_worker",
            database_url,
            str(server.port),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    server.handler.on_stored = lambda: os.kill(worker.pid, signal.SIGKILL)
    try:
        status = await asyncio.to_thread(worker.wait, 240)
    finally:
        if worker.poll() is None:
            worker.kill()
    _, errors = worker.communicate()
    assert status == -signal.SIGKILL, errors.decode(errors="replace")[-2000:]

    (received,) = server.received
    assert received.message["Message-ID"] == f"<atombot-{send}-1@example.com>"
    assert received.message["Subject"] == "Shipment delayed"
    run = await repo.action_run(send)
    assert run is not None and run.state == ActionState.committing  # died past commit()

    restarted = ActionRunner(repo, registry, owner="restarted", lease_seconds=5.0)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while loop.time() < deadline:
        await restarted.tick()
        task = await repo.get_task(send)
        if task is not None and task.status == TaskStatus.succeeded:
            break
        await asyncio.sleep(0.1)

    task = await repo.get_task(send)
    run = await repo.action_run(send)
    assert task is not None and task.status == TaskStatus.succeeded
    assert run is not None and run.state == ActionState.done and run.attempts == 1
    assert len(server.received) == 1
    assert server.handler.commands.count("DATA") == 1
    audited = [e.action for e in await repo.audit_entries(subject=f"task:{send}")]
    assert "action.assumed_done" in audited
