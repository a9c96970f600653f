"""email.send end to end against a real local SMTP server (aiosmtpd): the real runner, the
real performer wired from the settings, and the real Approve / Reject handling. Approve
delivers exactly one message with the drafted subject and body; reject, someone else's
approval and an expired approval deliver none; a 4xx is retried, a 5xx fails the task with
the server's reason shown in the chat."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from bot.actions.approval import ApprovalPolicy, Approvals
from bot.actions.registry import ActionRegistry, build_action_registry
from bot.actions.runner import ActionRunner
from bot.config import Settings
from bot.render import render_request
from bot.types import Action, ActionEvent, Reply
from handlers.kinds import build_registry
from storage.repository import Repository
from storage.schemas import RequestCreate, TaskCreate
from storage.tables import ActionState, TaskStatus, utcnow
from tests.bot.actions.smtp_support import SmtpServer

pytestmark = pytest.mark.usefixtures("no_env")

ANA = "U0ANA"
MALLORY = "U0MAL"
DRAFT = "Subject: Shipment delayed\n\nHi Dana,\n\nthe shipment arrives on Friday.\n\nAna"


class Email:
    """One email.send task on the real runner, and the presses a person can make."""

    def __init__(self, repo: Repository, registry: ActionRegistry) -> None:
        self.repo = repo
        self.registry = registry
        self.runner = ActionRunner(repo, registry, backoff_seconds=30.0)
        self.task_id = 0

    async def awaiting_approval(self) -> int:
        created = await self.repo.create_request(
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
        self.task_id = created.tasks[1].id or 0
        await self.runner.tick()
        assert (await self.status()) == TaskStatus.awaiting_approval
        return self.task_id

    async def press(self, action: Action, *, user: str = ANA, hours: float = 24.0) -> Reply:
        kinds = build_registry(actions=self.registry.kinds)
        approvals = Approvals(self.repo, kinds, ApprovalPolicy(hours=hours))
        event = ActionEvent(
            platform="slack",
            tenant="T1",
            channel="C1",
            user=user,
            action=action,
            task_id=self.task_id,
            event_id=f"press-{action.value}-{user}",
        )
        return await approvals.handle(event, "en")

    async def status(self) -> TaskStatus:
        task = await self.repo.get_task(self.task_id)
        assert task is not None
        return task.status

    async def shown(self) -> str:
        task = await self.repo.get_task(self.task_id)
        assert task is not None
        kinds = build_registry(actions=self.registry.kinds)
        return render_request([task], "en", now=utcnow(), kinds=kinds).text


@pytest.fixture
def mail(repo: Repository, smtp_settings: Settings) -> Email:
    return Email(repo, build_action_registry(smtp_settings, {}))


async def test_approve_delivers_one_message_with_the_drafted_subject_and_body(
    mail: Email, server: SmtpServer
) -> None:
    send = await mail.awaiting_approval()
    assert server.received == []  # nothing goes out before approval

    assert "Approved" in (await mail.press(Action.approve)).text
    for _ in range(3):
        await mail.runner.tick()

    (received,) = server.received
    assert received.recipients == ["dana@example.com"]
    message = received.message
    assert message["Subject"] == "Shipment delayed"
    assert message["Message-ID"] == f"<atombot-{send}-1@example.com>"
    assert message.get_content().strip() == "Hi Dana,\n\nthe shipment arrives on Friday.\n\nAna"
    assert await mail.status() == TaskStatus.succeeded
    audited = [e.action for e in await mail.repo.audit_entries(subject=f"task:{send}")]
    assert "approval.approved" in audited and "action.done" in audited


async def test_reject_delivers_nothing(mail: Email, server: SmtpServer) -> None:
    await mail.awaiting_approval()
    assert "Rejected" in (await mail.press(Action.reject)).text
    for _ in range(2):
        await mail.runner.tick()
    assert server.received == [] and server.handler.commands == []
    assert await mail.status() == TaskStatus.cancelled


async def test_someone_elses_approval_is_refused_and_delivers_nothing(
    mail: Email, server: SmtpServer
) -> None:
    await mail.awaiting_approval()
    reply = await mail.press(Action.approve, user=MALLORY)
    assert "Only the person who asked for" in reply.text and reply.ephemeral
    for _ in range(2):
        await mail.runner.tick()
    assert server.received == [] and server.handler.commands == []
    assert await mail.status() == TaskStatus.awaiting_approval


async def test_an_expired_approval_cannot_be_used(mail: Email, server: SmtpServer) -> None:
    await mail.awaiting_approval()
    with time_machine.travel(utcnow() + timedelta(hours=25), tick=True):
        assert "expired" in (await mail.press(Action.approve)).text
        for _ in range(2):
            await mail.runner.tick()
    assert server.received == [] and server.handler.commands == []
    assert await mail.status() == TaskStatus.failed
    run = await mail.repo.action_run(mail.task_id)
    assert run is not None and run.state == ActionState.expired


async def test_a_4xx_is_retried_with_backoff_and_one_message_arrives(
    mail: Email, server: SmtpServer
) -> None:
    server.handler.data_answers.append("451 4.3.0 Temporary failure, try again later")
    await mail.awaiting_approval()
    await mail.press(Action.approve)
    await mail.runner.tick()  # the 451
    run = await mail.repo.action_run(mail.task_id)
    assert run is not None and run.state == ActionState.approved and run.attempts == 1
    assert server.received == [] and await mail.status() == TaskStatus.running

    with time_machine.travel(utcnow() + timedelta(seconds=31), tick=True):
        await mail.runner.tick()

    assert len(server.received) == 1 and server.handler.commands.count("DATA") == 2
    assert await mail.status() == TaskStatus.succeeded
    run = await mail.repo.action_run(mail.task_id)
    assert run is not None and run.attempts == 2


async def test_a_5xx_fails_the_task_with_the_servers_reason_shown(
    mail: Email, server: SmtpServer
) -> None:
    server.handler.data_answers.append("554 5.7.1 Message rejected as spam")
    await mail.awaiting_approval()
    await mail.press(Action.approve)
    for minutes in range(3):
        with time_machine.travel(utcnow() + timedelta(minutes=minutes), tick=True):
            await mail.runner.tick()

    assert server.received == [] and server.handler.commands.count("DATA") == 1  # not retried
    assert await mail.status() == TaskStatus.failed
    shown = await mail.shown()
    assert "could not be carried out" in shown and "554 5.7.1 Message rejected as spam" in shown
