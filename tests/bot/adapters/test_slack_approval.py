"""An action awaiting approval in Slack: its message shows the text to be sent with
Approve / Edit / Reject buttons, Approve by the requester carries it out once, another
user's press is refused, and Edit opens a prefilled modal whose text replaces the draft."""

from __future__ import annotations

import pytest

from bot.adapters.slack.blocks import NOTE_ACTION, NOTE_BLOCK
from bot.types import Action, Button
from storage.schemas import RequestCreate, TaskCreate
from storage.tables import Task, TaskStatus
from tests.bot.actions.actions_support import DRAFT, FakePerformer, FixedParser, runner_for
from tests.bot.adapters import test_slack as wiring
from tests.bot.adapters.test_slack import ANA, BEN, CHANNEL, Slack

fake = wiring.fake
make_slack = wiring.make_slack
slack = wiring.slack


@pytest.fixture
def parser() -> FixedParser:
    """No message is classified in these tests (the action task is stored directly)."""
    return FixedParser([])


def data(action: Action, task_id: int, choice: str | None = None) -> str:
    return Button("", action, task_id, choice).data


async def awaiting(bot: Slack, performer: FakePerformer) -> tuple[Task, str]:
    stored = await bot.app.repo.create_request(
        request=RequestCreate(
            platform="slack",
            tenant=bot.fake.team_id,
            channel=CHANNEL,
            user=ANA,
            text="email Dana about the shipment",
            event_id="Ev1",
        ),
        tasks=[
            TaskCreate(kind="email.draft", status="succeeded", result=DRAFT),
            TaskCreate(kind="email.send", inputs={"recipients": ["Dana"]}, depends_on=(0,)),
        ],
    )
    await runner_for(bot.app.repo, performer).tick()
    await bot.deliver()
    (message,) = bot.fake.bot_messages(CHANNEL)
    return stored.tasks[1], message.ts


async def test_the_approval_message_has_its_buttons_and_approve_sends_once(slack: Slack) -> None:
    performer = FakePerformer()
    task, ts = await awaiting(slack, performer)
    task_id = task.id or 0
    blocks = str(slack.fake.message(CHANNEL, ts).blocks)
    assert "waiting for approval" in blocks and "shipment is late" in blocks
    for wanted in (
        data(Action.approve, task_id, "v1"),
        data(Action.edit, task_id),
        data(Action.reject, task_id),
    ):
        slack.fake.find_button(CHANNEL, ts, wanted)  # raises LookupError when missing

    press = slack.fake.block_actions(
        channel_id=CHANNEL, message_ts=ts, action_id=data(Action.approve, task_id, "v1")
    )
    response = await slack.post(slack.fake.signed_interaction(press))
    assert response.status == 200
    await runner_for(slack.app.repo, performer).tick()
    await slack.deliver()
    assert len(performer.performed) == 1
    done = await slack.app.repo.get_task(task_id)
    assert done is not None and done.status == TaskStatus.succeeded
    assert "Sent to dana@example.com" in str(slack.fake.message(CHANNEL, ts).blocks)


async def test_another_users_approve_is_refused(slack: Slack) -> None:
    performer = FakePerformer()
    task, ts = await awaiting(slack, performer)
    press = slack.fake.block_actions(
        channel_id=CHANNEL,
        message_ts=ts,
        action_id=data(Action.approve, task.id or 0, "v1"),
        user_id=BEN,
    )
    await slack.post(slack.fake.signed_interaction(press))
    await runner_for(slack.app.repo, performer).tick()
    assert performer.performed == []
    assert any("Only the person who asked" in e.text for e in slack.fake.ephemerals)


async def test_edit_opens_a_prefilled_modal_whose_text_replaces_the_draft(slack: Slack) -> None:
    performer = FakePerformer()
    task, ts = await awaiting(slack, performer)
    press = slack.fake.block_actions(
        channel_id=CHANNEL, message_ts=ts, action_id=data(Action.edit, task.id or 0)
    )
    await slack.post(slack.fake.signed_interaction(press))
    (view,) = slack.fake.opened_views
    (field,) = [b["element"] for b in view["blocks"] if b["type"] == "input"]
    assert "shipment is late" in field["initial_value"]
    submitted = slack.fake.view_submission(
        view, values={NOTE_BLOCK: {NOTE_ACTION: "Hi Dana, it ships Friday."}}
    )
    await slack.post(slack.fake.signed_interaction(submitted))
    run = await slack.app.repo.action_run(task.id or 0)
    assert run is not None and run.version == 2 and run.draft == "Hi Dana, it ships Friday."
    await slack.deliver()
    slack.fake.find_button(CHANNEL, ts, data(Action.approve, task.id or 0, "v2"))
