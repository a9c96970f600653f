"""A stream left open by a bot that is gone, and expired on Slack's side by the time a new
bot (same database, nothing in memory) comes to it: the new bot edits that message with
``chat.update``; it never posts a second message beside the half-written one. In the
assistant pane, a result that fell back to edits clears the thread's status like a stop.

The real Slack adapter and delivery job against the fake Slack (which expires streams); the
worker's part is played through the repository, so the stream is caught mid-result.
"""

from __future__ import annotations

import pytest

from storage.repository import Repository
from storage.tables import TaskStatus
from tests.bot.adapters import test_slack as wiring
from tests.bot.adapters.test_slack import CHANNEL, Slack, SlackFactory
from tests.bot.adapters.test_slack_assistant import REQUEST, ask, open_pane
from tests.bot.adapters.test_slack_stream_delivery import ask_in_thread, shown
from tests.fakes.slack_api import Message
from tests.fakes.slack_assistant import SET_STATUS

fake = wiring.fake
make_slack = wiring.make_slack

FIRST_WORDS = "Hi Dana, about the rent"
RESULT = "Hi Dana, about the rent: it is late again. Could you pay by Friday? Ana"


async def open_stream_with_first_words(bot: Slack) -> tuple[int, Message]:
    """The bot opens the stream and appends the first words of the running task."""
    await bot.deliver()
    (task,) = await bot.tasks()
    repo: Repository = bot.app.repo
    assert await repo.claim(worker_id="w1", limit=1, lease_seconds=300)
    await repo.set_partial(task_id=task.id or 0, worker_id="w1", text=FIRST_WORDS, progress=0.2)
    await bot.deliver()
    (message,) = bot.fake.streams(CHANNEL)
    assert message.stream is not None and message.stream.markdown == FIRST_WORDS
    return task.id or 0, message


@pytest.mark.parametrize("finished", [False, True], ids=["still running", "finished meanwhile"])
async def test_a_restarted_bot_edits_the_expired_stream_it_finds_and_posts_nothing_beside_it(
    make_slack: SlackFactory, finished: bool
) -> None:
    first = await make_slack()
    await ask_in_thread(first, "draft an email to Dana about the rent")
    task_id, opened = await open_stream_with_first_words(first)
    repo: Repository = first.app.repo
    if finished:  # the worker finished the task while the bot was down
        await repo.complete(task_id=task_id, worker_id="w1", result=RESULT)
    first.fake.expire_streams()  # Slack ended the stream while no bot was there

    second = await make_slack()
    await second.deliver()
    if not finished:
        await repo.complete(task_id=task_id, worker_id="w1", result=RESULT)
    for _ in range(2):
        await second.deliver()

    (message,) = second.fake.bot_messages(CHANNEL)
    assert message.ts == opened.ts and message.stream is not None
    assert message.stream.state == "expired"
    assert second.fake.calls_to("chat.postMessage") == []
    assert second.fake.calls_to("chat.update", ok=True)
    assert RESULT in shown(message)
    delivery = await repo.delivery_for(1)
    assert (
        delivery is not None and delivery.done and delivery.message_id == (f"{CHANNEL}/{opened.ts}")
    )
    (task,) = await second.tasks()
    assert task.status == TaskStatus.succeeded


async def test_a_pane_result_that_falls_back_to_edits_clears_the_thread_status(
    make_slack: SlackFactory,
) -> None:
    bot = await make_slack()
    bot.adapter.min_stream_interval = 0.0  # no pacing between the test's steps
    where = await open_pane(bot)
    await ask(bot, where, REQUEST)
    await bot.deliver()
    (task,) = await bot.tasks()
    repo: Repository = bot.app.repo
    assert await repo.claim(worker_id="w1", limit=1, lease_seconds=300)
    await repo.set_partial(task_id=task.id or 0, worker_id="w1", text=FIRST_WORDS, progress=0.2)
    await bot.deliver()
    working = bot.fake.assistant.status(*where)
    assert working, "the status follows the streamed task"
    bot.fake.expire_streams()
    more = f"{FIRST_WORDS}: it is late"
    await repo.set_partial(task_id=task.id or 0, worker_id="w1", text=more, progress=0.4)

    await bot.deliver()  # the append is refused: the stream's message is edited from now on
    assert more in shown(bot.fake.message(where[0], bot.fake.streams(where[0])[0].ts))
    assert bot.fake.assistant.status(*where) == working, "still being worked on"
    await repo.complete(task_id=task.id or 0, worker_id="w1", result=RESULT)
    await bot.deliver()

    (streamed,) = bot.fake.streams(where[0])
    assert streamed.stream is not None and streamed.stream.state == "expired"
    assert RESULT in shown(bot.fake.message(where[0], streamed.ts))
    assert bot.fake.calls_to("chat.stopStream") == []
    assert bot.fake.assistant.status(*where) is None
    cleared = [c for c in bot.fake.calls_to(SET_STATUS, ok=True) if c.args["status"] == ""]
    assert len(cleared) == 1
