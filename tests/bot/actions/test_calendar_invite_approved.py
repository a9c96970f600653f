"""The performers wired by the settings and run by the real action runner: nothing is on by
default; with SMTP settings an approved calendar.invite reaches the local SMTP server once,
with its .ics, and a rejected one never does."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from icalendar import Calendar

from bot.actions.approval import ApprovalPolicy, Approvals
from bot.actions.registry import ActionRegistry, build_action_registry
from bot.actions.runner import ActionRunner
from bot.adapters.console import ConsoleAdapter
from bot.config import Settings
from bot.types import Action, ActionEvent
from handlers.kinds import build_registry
from storage.repository import Repository
from storage.schemas import RequestCreate, TaskCreate
from storage.tables import TaskStatus
from tests.bot.actions.smtp_support import SmtpServer

ANA = "U0ANA"
DRAFT = "Subject: Shipment review\n\nLet's go through the delayed shipment."


async def invitation_awaiting_approval(
    repo: Repository, runner: ActionRunner, *, when: str = "2026-12-03T15:00:00+01:00"
) -> int:
    created = await repo.create_request(
        request=RequestCreate(
            platform="console",
            tenant="local",
            channel="console",
            user=ANA,
            text="invite dana@example.com to a shipment review on Dec 3 at 3pm",
            event_id="Ev-invite",
            timezone="Europe/Berlin",
        ),
        tasks=[
            TaskCreate(kind="email.draft", status=TaskStatus.succeeded, result=DRAFT),
            TaskCreate(
                kind="calendar.invite",
                inputs={"recipients": ["dana@example.com"], "when": when},
                depends_on=(0,),
            ),
        ],
    )
    invite = created.tasks[1].id or 0
    await runner.tick()
    task = await repo.get_task(invite)
    assert task is not None and task.status == TaskStatus.awaiting_approval
    assert "dana@example.com" in (task.result or "")
    return invite


async def press(repo: Repository, registry: ActionRegistry, task_id: int, action: Action) -> None:
    approvals = Approvals(repo, build_registry(actions=registry.kinds), ApprovalPolicy())
    event = ActionEvent(
        platform="console",
        tenant="local",
        channel="console",
        user=ANA,
        action=action,
        task_id=task_id,
        event_id=f"press-{action.value}",
    )
    await approvals.handle(event, "en")


@pytest.mark.usefixtures("no_env")
def test_no_action_is_offered_by_default_and_each_turns_on_with_its_settings(
    smtp_settings: Settings,
) -> None:
    assert build_action_registry(Settings(), {}).kinds == ()
    console = ConsoleAdapter()
    assert build_action_registry(Settings(), {"console": console}).kinds == ("reply.post",)
    assert set(build_action_registry(smtp_settings, {}).kinds) == {
        "email.send",
        "calendar.invite",
    }


@pytest.mark.usefixtures("no_env")
async def test_an_approved_invitation_is_received_once_with_its_ics(
    repo: Repository, server: SmtpServer, smtp_settings: Settings
) -> None:
    registry = build_action_registry(smtp_settings, {})
    runner = ActionRunner(repo, registry)
    invite = await invitation_awaiting_approval(repo, runner)
    assert server.received == []

    await press(repo, registry, invite, Action.approve)
    await runner.tick()
    await runner.tick()

    (received,) = server.received
    message = received.message
    assert message["Subject"] == "Shipment review"
    (attachment,) = list(message.iter_attachments())
    (event,) = Calendar.from_ical(attachment.get_content()).walk("VEVENT")
    assert str(event["UID"]) == f"atombot-{invite}-1@example.com"
    assert event.decoded("DTSTART") == datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
    task = await repo.get_task(invite)
    assert task is not None and task.status == TaskStatus.succeeded
    assert task.result == "Invitation sent to dana@example.com."


@pytest.mark.usefixtures("no_env")
async def test_a_rejected_invitation_is_never_sent(
    repo: Repository, server: SmtpServer, smtp_settings: Settings
) -> None:
    registry = build_action_registry(smtp_settings, {})
    runner = ActionRunner(repo, registry)
    invite = await invitation_awaiting_approval(repo, runner)

    await press(repo, registry, invite, Action.reject)
    await runner.tick()

    assert server.received == []
    assert server.handler.commands == []


@pytest.mark.usefixtures("no_env")
async def test_a_time_without_an_offset_is_in_the_requests_timezone(
    repo: Repository, server: SmtpServer, smtp_settings: Settings
) -> None:
    registry = build_action_registry(smtp_settings, {})
    runner = ActionRunner(repo, registry)
    # The request was made in Europe/Berlin (UTC+1 in December): 15:00 there is 14:00 UTC.
    invite = await invitation_awaiting_approval(repo, runner, when="2026-12-03T15:00:00")
    task = await repo.get_task(invite)
    assert task is not None and "2026-12-03 15:00–15:30 Europe/Berlin" in (task.result or "")

    await press(repo, registry, invite, Action.approve)
    await runner.tick()

    (received,) = server.received
    (attachment,) = list(received.message.iter_attachments())
    (event,) = Calendar.from_ical(attachment.get_content()).walk("VEVENT")
    assert event.decoded("DTSTART") == datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
