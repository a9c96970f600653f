"""An action awaiting approval in Telegram: the message shows the text to be sent with
Approve / Edit / Reject, an Approve press from the requester carries it out once, a press
from someone else is refused, and Edit takes the next reply as the new text."""

from __future__ import annotations

import pytest

from bot.types import Action, Button
from storage.repository import Repository
from storage.schemas import RequestCreate, TaskCreate
from storage.tables import Task, TaskStatus
from tests.bot.actions.actions_support import DRAFT, FakePerformer, FixedParser, runner_for
from tests.bot.adapters import test_telegram as wiring
from tests.bot.adapters.test_telegram import BOT_ID, OTHER_USER, USER, Harness, Start, eventually
from tests.fakes.telegram_api import StoredMessage

fake = wiring.fake
start = wiring.start

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning"
)


@pytest.fixture
def parser() -> FixedParser:
    """No message is classified in these tests (the action task is stored directly)."""
    return FixedParser([])


def data(action: Action, task_id: int, choice: str | None = None) -> str:
    return Button("", action, task_id, choice).data


async def awaiting(h: Harness, performer: FakePerformer) -> tuple[Task, StoredMessage]:
    repo: Repository = h.app.repo
    await h.fake.private_message("hello", user_id=USER)  # the chat exists once they wrote
    await eventually(lambda: h.fake.bot_messages(USER))
    stored = await repo.create_request(
        request=RequestCreate(
            platform="telegram",
            tenant=BOT_ID,
            channel=str(USER),
            user=str(USER),
            text="email Dana about the shipment",
            event_id="u1",
            private=True,
        ),
        tasks=[
            TaskCreate(kind="email.draft", status="succeeded", result=DRAFT),
            TaskCreate(kind="email.send", inputs={"recipients": ["Dana"]}, depends_on=(0,)),
        ],
    )
    task = stored.tasks[1]
    await runner_for(repo, performer).tick()
    await h.deliver()
    approve = data(Action.approve, task.id or 0, "v1")
    await eventually(lambda: any(approve in m.callback_data() for m in h.fake.bot_messages(USER)))
    [message] = [m for m in h.fake.bot_messages(USER) if approve in m.callback_data()]
    return task, message


async def press(h: Harness, message: StoredMessage, wanted: str, user: int) -> None:
    update = await h.fake.press_button(
        chat_id=USER, message_id=message.message_id, data=wanted, user_id=user
    )
    query = h.fake.callback_queries[update["callback_query"]["id"]]
    await eventually(lambda: query.answered)


async def test_the_approval_message_shows_the_text_and_an_approve_press_sends_it_once(
    start: Start,
) -> None:
    h = await start()
    performer = FakePerformer()
    task, message = await awaiting(h, performer)
    task_id = task.id or 0
    assert "waiting for approval" in message.text and "shipment is late" in message.text
    mine = [d for d in message.callback_data() if d.endswith((f":{task_id}", ":v1"))]
    assert mine == [
        data(Action.approve, task_id, "v1"),
        data(Action.edit, task_id),
        data(Action.reject, task_id),
    ]
    await press(h, message, data(Action.approve, task_id, "v1"), USER)

    async def approved() -> bool:
        run = await h.app.repo.action_run(task_id)
        return run is not None and run.approved_by == str(USER)

    await eventually(approved)
    await runner_for(h.app.repo, performer).tick()
    await h.deliver()
    assert len(performer.performed) == 1
    done = await h.app.repo.get_task(task_id)
    assert done is not None and done.status == TaskStatus.succeeded
    await eventually(
        lambda: "Sent to dana@example.com" in h.fake.chat(USER).messages[message.message_id].text
    )


async def test_an_approve_press_by_someone_else_is_refused(start: Start) -> None:
    h = await start()
    performer = FakePerformer()
    task, message = await awaiting(h, performer)
    await press(h, message, data(Action.approve, task.id or 0, "v1"), OTHER_USER)
    await runner_for(h.app.repo, performer).tick()
    assert performer.performed == []
    still = await h.app.repo.get_task(task.id or 0)
    assert still is not None and still.status == TaskStatus.awaiting_approval


async def test_edit_takes_the_next_reply_as_the_new_text(start: Start) -> None:
    h = await start()
    performer = FakePerformer()
    task, message = await awaiting(h, performer)
    await press(h, message, data(Action.edit, task.id or 0), USER)
    await eventually(
        lambda: any((m.reply_markup or {}).get("force_reply") for m in h.fake.bot_messages(USER))
    )
    [prompt] = [m for m in h.fake.bot_messages(USER) if (m.reply_markup or {}).get("force_reply")]
    await h.fake.private_message(
        "Hi Dana, it ships Friday.", user_id=USER, reply_to=prompt.message_id
    )

    async def edited() -> bool:
        run = await h.app.repo.action_run(task.id or 0)
        return run is not None and run.version == 2

    await eventually(edited)
    run = await h.app.repo.action_run(task.id or 0)
    assert run is not None and run.draft == "Hi Dana, it ships Friday."
    await h.deliver()
    approve_v2 = data(Action.approve, task.id or 0, "v2")
    await eventually(
        lambda: approve_v2 in h.fake.chat(USER).messages[message.message_id].callback_data()
    )
