"""Live results in Slack end to end: a mention in a thread, the real worker on the tiny
model, the real delivery job and the Slack adapter's chat streaming, against the fake
Slack platform (expiry, 429s)."""

from __future__ import annotations

from bot.adapters.slack.blocks import feedback_action_id
from models.generation.base import Generator
from storage.tables import Task, TaskStatus
from tests.bot.adapters import test_slack as wiring
from tests.bot.adapters.test_slack import ANA, CHANNEL, Slack, SlackFactory
from tests.fakes.slack_api import Message

fake = wiring.fake
make_slack = wiring.make_slack
working_slack = wiring.working_slack


async def ask_in_thread(bot: Slack, request: str) -> Message:
    """``@atombot <request>`` in a fresh thread; returns the thread's first message."""
    root = bot.fake.seed_message(CHANNEL, "Dana's rent is late again", user=ANA)
    mention = bot.fake.app_mention(request, user_id=ANA, thread_ts=root.ts)
    assert (await bot.post(bot.fake.signed_event(mention))).status == 200
    return root


async def deliver_until_done(bot: Slack) -> list[Task]:
    """Open the stream while the tasks wait, let the worker finish, deliver the rest."""
    await bot.deliver()
    await bot.run_worker()
    for _ in range(3):
        await bot.deliver()
    return await bot.tasks()


def shown(message: Message) -> str:
    """Everything the message shows (its fallback text and its blocks)."""
    return message.text + str(message.blocks)


def result_in(bot: Slack, result: str) -> bool:
    """Whether the bot's messages in the channel (a long result continues in further
    parts) show the result's opening words."""
    words = " ".join(result.split()[:20])
    return words in " ".join(" ".join(shown(m).split()) for m in bot.fake.bot_messages(CHANNEL))


async def test_a_result_in_a_thread_is_streamed_then_replaced_by_the_whole_result(
    working_slack: Slack,
) -> None:
    bot = working_slack
    root = await ask_in_thread(bot, "draft an email to Dana about the rent")

    await bot.deliver()
    (opened,) = bot.fake.streams(CHANNEL)
    tasks = await deliver_until_done(bot)

    (task,) = tasks
    assert task.status == TaskStatus.succeeded and task.result
    message, *more_parts = bot.fake.bot_messages(CHANNEL)
    assert message.ts == opened.ts and message.thread_ts == root.ts
    assert all(part.thread_ts == root.ts for part in more_parts)
    assert message.stream is not None and message.stream.state == "stopped"
    assert result_in(bot, task.result)
    feedback = [
        b for m in (message, *more_parts) for b in m.blocks if b["type"] == "context_actions"
    ]
    assert [b["elements"][0]["action_id"] for b in feedback] == [feedback_action_id(task.id or 0)]
    assert len(bot.fake.streams(CHANNEL)) == 1


async def test_an_expired_stream_ends_as_one_edited_message_with_the_whole_result(
    working_slack: Slack,
) -> None:
    bot = working_slack
    await ask_in_thread(bot, "draft an email to Dana about the rent")
    await bot.deliver()
    bot.fake.expire_streams()

    (task,) = await deliver_until_done(bot)

    assert task.status == TaskStatus.succeeded and task.result
    message, *_ = bot.fake.bot_messages(CHANNEL)
    assert message.stream is not None and message.stream.state == "expired"
    assert bot.fake.calls_to("chat.update", ok=True)
    assert len(bot.fake.streams(CHANNEL)) == 1
    assert result_in(bot, task.result)


async def test_429s_on_the_stream_methods_are_waited_out_end_to_end(working_slack: Slack) -> None:
    bot = working_slack
    for method in ("chat.startStream", "chat.appendStream", "chat.stopStream"):
        bot.fake.force_rate_limit(method, times=1, retry_after=0)
    await ask_in_thread(bot, "draft an email to Dana about the rent")

    (task,) = await deliver_until_done(bot)

    message, *_ = bot.fake.bot_messages(CHANNEL)
    assert [c.status for c in bot.fake.calls_to("chat.startStream")] == [429, 200]
    assert message.stream is not None and message.stream.state == "stopped"
    assert task.result and result_in(bot, task.result)


async def test_a_native_thumbs_up_on_a_streamed_result_records_the_vote(
    working_slack: Slack,
) -> None:
    bot = working_slack
    await ask_in_thread(bot, "draft an email to Dana about the rent")
    (task,) = await deliver_until_done(bot)
    (message,) = bot.fake.streams(CHANNEL)

    press = bot.fake.feedback_actions(
        channel_id=CHANNEL,
        message_ts=message.ts,
        action_id=feedback_action_id(task.id or 0),
        positive=True,
    )
    assert (await bot.post(bot.fake.signed_interaction(press))).status == 200
    await bot.deliver()

    votes = await bot.app.repo.feedback_of(task.id or 0)
    assert [(v.user, v.score) for v in votes] == [(ANA, 1)]
    assert f"<@{ANA}>" in str(bot.fake.message(CHANNEL, message.ts).blocks)


async def test_a_new_process_finishes_a_stream_the_last_one_left_open(
    make_slack: SlackFactory, generator: Generator
) -> None:
    # The first bot opens the stream and its worker finishes the task, then it is gone
    # before delivering the result; a second bot on the same database (nothing in memory)
    # must finish that stream: one message, the whole result, no second post.
    first = await make_slack(generator=generator)
    await ask_in_thread(first, "draft an email to Dana about the rent")
    await first.deliver()
    await first.run_worker()
    (opened,) = first.fake.streams(CHANNEL)

    second = await make_slack()
    for _ in range(3):
        await second.deliver()

    (task,) = await second.tasks()
    message, *_ = second.fake.bot_messages(CHANNEL)
    assert message.ts == opened.ts
    assert message.stream is not None and message.stream.state == "stopped"
    assert len(second.fake.streams(CHANNEL)) == 1
    assert task.result and result_in(second, task.result)
