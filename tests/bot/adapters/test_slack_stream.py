"""Live results in Slack: the adapter's stream methods (chat.startStream / appendStream /
stopStream) against the fake Slack platform, with its limits (12,000 characters per call,
recipients in channels, stream expiry, rate tiers), the plan of a request's tasks, Slack's
native feedback buttons and the fallback to chat.update."""

from __future__ import annotations

import pytest

from bot.adapters.base import StreamingAdapter, StreamUnavailable
from bot.adapters.slack.blocks import feedback_action_id
from bot.adapters.slack.stream import MAX_STREAM_TEXT, text_pieces
from bot.types import Action, Button, PlanItem, PlanStatus, Section, StreamUpdate, Target, View
from tests.bot.adapters import test_slack as wiring
from tests.bot.adapters.test_slack import ANA, CHANNEL, Slack
from tests.fakes.slack_api import Message, validate_blocks

fake = wiring.fake
make_slack = wiring.make_slack
slack = wiring.slack
working_slack = wiring.working_slack


def in_thread(bot: Slack, *, user: str | None = ANA) -> Target:
    """A target in a fresh thread of the general channel, asked for by ``user``."""
    root = bot.fake.seed_message(CHANNEL, "can someone draft this?", user=ANA)
    return Target(
        platform="slack", tenant=bot.fake.team_id, channel=CHANNEL, thread=root.ts, user=user
    )


def one_task(text: str, status: PlanStatus = PlanStatus.running) -> tuple[PlanItem, ...]:
    return (PlanItem(task_id=7, title="email draft", status=status),)


def result_view(text: str, task_id: int = 7) -> View:
    return View(
        sections=(Section(text, title=f"Email draft #{task_id}"),),
        buttons=(
            (
                Button("👍", Action.rate_up, task_id),
                Button("👎", Action.rate_down, task_id),
                Button("Regenerate", Action.regenerate, task_id),
            ),
        ),
    )


def stream_message(bot: Slack, stream_id: str) -> Message:
    channel, _, ts = stream_id.rpartition("/")
    return bot.fake.message(channel, ts)


async def test_a_result_streams_start_appends_stop_then_shows_the_whole_result(
    slack: Slack,
) -> None:
    target = in_thread(slack)
    adapter = slack.adapter
    assert isinstance(adapter, StreamingAdapter) and adapter.can_stream(target)

    stream_id = await adapter.stream_start(
        target,
        StreamUpdate(plan=one_task(""), text="Dear Dana,", delta="Dear Dana,"),
        client_id="c1",
    )
    for delta in (" the shipment", " is late."):
        await adapter.stream_append(
            target, stream_id, StreamUpdate(plan=one_task(""), text="", delta=delta)
        )
    streamed = stream_message(slack, stream_id).stream
    assert streamed is not None and streamed.markdown == "Dear Dana, the shipment is late."
    assert streamed.state == "streaming"

    final = await adapter.stream_stop(
        target, stream_id, result_view("Dear Dana, the shipment is late."), client_id="c2"
    )

    message = stream_message(slack, stream_id)
    assert final == stream_id
    assert message.thread_ts == target.thread
    assert message.stream is not None and message.stream.state == "stopped"
    assert [m for m, _ in message.stream.calls] == [
        "chat.startStream",
        "chat.appendStream",
        "chat.appendStream",
        "chat.stopStream",
    ]
    # The result replaces what was streamed, whole, with Slack's own 👍/👎.
    assert "Dear Dana, the shipment is late." in message.text
    assert validate_blocks(message.blocks) == []
    (feedback,) = [b for b in message.blocks if b["type"] == "context_actions"]
    (pair,) = feedback["elements"]
    assert pair["type"] == "feedback_buttons"
    assert pair["positive_button"]["value"] == Button("", Action.rate_up, 7).data
    assert pair["negative_button"]["value"] == Button("", Action.rate_down, 7).data
    (actions,) = [b for b in message.blocks if b["type"] == "actions"]
    assert [e["value"] for e in actions["elements"]] == [Button("", Action.regenerate, 7).data]
    start = slack.fake.calls_to("chat.startStream")[0].args
    assert (start["recipient_user_id"], start["recipient_team_id"]) == (ANA, slack.fake.team_id)


async def dana_stream(bot: Slack) -> tuple[Target, str]:
    """A stream opened in a fresh thread with the first words of the Dana draft."""
    target = in_thread(bot)
    stream_id = await bot.adapter.stream_start(
        target,
        StreamUpdate(plan=one_task(""), text="Dear Dana,", delta="Dear Dana,"),
        client_id="c1",
    )
    return target, stream_id


async def finish_in_place(bot: Slack, target: Target, stream_id: str) -> None:
    """Stop the Dana stream as the core does when it holds the start of the one result."""
    await bot.adapter.stream_stop(
        target,
        stream_id,
        result_view("Dear Dana, the shipment is late."),
        client_id="c2",
        rest=" the shipment is late.",
    )


async def test_a_stream_holding_the_start_of_the_result_is_finished_in_place_in_one_call(
    slack: Slack,
) -> None:
    target, stream_id = await dana_stream(slack)
    updates_before = len(slack.fake.calls_to("chat.update"))

    await finish_in_place(slack, target, stream_id)

    message = stream_message(slack, stream_id)
    assert message.stream is not None and message.stream.state == "stopped"
    assert message.stream.markdown == "Dear Dana, the shipment is late."
    assert [m for m, _ in message.stream.calls] == ["chat.startStream", "chat.stopStream"]
    assert len(slack.fake.calls_to("chat.update")) == updates_before, "no replacing edit"
    # Below the text: the title, Slack's 👍/👎 and Regenerate; the text is not repeated.
    assert validate_blocks(message.blocks) == []
    assert "Email draft #7" in str(message.blocks)
    assert "shipment" not in str(message.blocks)
    assert any(b["type"] == "context_actions" for b in message.blocks)


async def test_a_stream_that_expired_before_its_in_place_finish_is_edited_to_the_result(
    slack: Slack,
) -> None:
    target, stream_id = await dana_stream(slack)
    slack.fake.expire_streams()

    await finish_in_place(slack, target, stream_id)

    message = stream_message(slack, stream_id)
    assert "Dear Dana, the shipment is late." in message.text
    assert slack.fake.calls_to("chat.update", ok=True)


async def test_text_over_twelve_thousand_characters_goes_in_pieces_and_nothing_is_lost(
    slack: Slack,
) -> None:
    target = in_thread(slack)
    first = "a" * (MAX_STREAM_TEXT + 5)
    more = "".join(chr(ord("b") + i % 20) for i in range(2 * MAX_STREAM_TEXT + 1))

    stream_id = await slack.adapter.stream_start(
        target, StreamUpdate(plan=one_task(""), text=first, delta=first), client_id="c1"
    )
    await slack.adapter.stream_append(
        target, stream_id, StreamUpdate(plan=one_task(""), text=first + more, delta=more)
    )

    streamed = stream_message(slack, stream_id).stream
    assert streamed is not None and streamed.markdown == first + more
    sizes = [len(args.get("markdown_text", "")) for _, args in streamed.calls]
    assert max(sizes) <= MAX_STREAM_TEXT and len(sizes) == 5
    assert all(c.ok for c in slack.fake.calls if c.method.endswith("Stream"))
    assert "".join(text_pieces(more, 7)) == more


async def test_several_tasks_show_as_a_plan_whose_statuses_change_in_order(slack: Slack) -> None:
    target = in_thread(slack)
    titles = {1: "email draft", 2: "summary"}

    def plan(*statuses: PlanStatus) -> tuple[PlanItem, ...]:
        return tuple(PlanItem(i, titles[i], s) for i, s in zip((1, 2), statuses, strict=True))

    queued = plan(PlanStatus.queued, PlanStatus.queued)
    stream_id = await slack.adapter.stream_start(
        target, StreamUpdate(plan=queued, text=""), client_id="c1"
    )
    steps = [
        (plan(PlanStatus.running, PlanStatus.queued), "Dear", (0,)),
        (plan(PlanStatus.done, PlanStatus.running), " Dana.", (0, 1)),
        (plan(PlanStatus.done, PlanStatus.done), "\n\nKey points", (1,)),
    ]
    for items, delta, changed in steps:
        update = StreamUpdate(
            plan=items, text="", delta=delta, changed=tuple(items[i] for i in changed)
        )
        await slack.adapter.stream_append(target, stream_id, update)

    streamed = stream_message(slack, stream_id).stream
    assert streamed is not None and streamed.task_display_mode == "plan"
    assert streamed.statuses(1) == ["pending", "in_progress", "complete"]
    assert streamed.statuses(2) == ["pending", "in_progress", "complete"]
    assert streamed.tasks["2"]["title"] == "summary"
    assert streamed.markdown == "Dear Dana.\n\nKey points"


async def test_failed_and_cancelled_tasks_show_as_errors_told_apart_by_their_details(
    slack: Slack,
) -> None:
    target = in_thread(slack)
    items = (PlanItem(1, "email", PlanStatus.failed), PlanItem(2, "summary", PlanStatus.cancelled))

    stream_id = await slack.adapter.stream_start(
        target, StreamUpdate(plan=items, text=""), client_id="c1"
    )

    streamed = stream_message(slack, stream_id).stream
    assert streamed is not None
    assert [streamed.tasks[i]["status"] for i in ("1", "2")] == ["error", "error"]
    assert streamed.tasks["1"]["details"] != streamed.tasks["2"]["details"]


async def test_an_expired_stream_falls_back_to_chat_update_of_its_message_losing_nothing(
    slack: Slack,
) -> None:
    target = in_thread(slack)
    adapter = slack.adapter
    stream_id = await adapter.stream_start(
        target, StreamUpdate(plan=one_task(""), text="Dear", delta="Dear"), client_id="c1"
    )
    slack.fake.expire_streams()

    with pytest.raises(StreamUnavailable) as refused:
        await adapter.stream_append(
            target, stream_id, StreamUpdate(plan=one_task(""), text="", delta=" Dana,")
        )
    assert refused.value.message_id == stream_id
    assert slack.fake.calls_to("chat.appendStream")[-1].error == "message_not_in_streaming_state"

    # What the core does then: edit the message the stream left behind.
    await adapter.edit(target, stream_id, result_view("Dear Dana, it is late."))
    # A stop repeated after a restart still answers with the same message.
    assert (
        await adapter.stream_stop(
            target, stream_id, result_view("Dear Dana, it is late."), client_id="c2"
        )
        == stream_id
    )

    message = stream_message(slack, stream_id)
    assert "Dear Dana, it is late." in message.text
    assert [m.ts for m in slack.fake.bot_messages(CHANNEL)] == [message.ts]


async def test_stopping_twice_returns_the_same_message(slack: Slack) -> None:
    target = in_thread(slack)
    stream_id = await slack.adapter.stream_start(
        target, StreamUpdate(plan=one_task(""), text="Hi", delta="Hi"), client_id="c1"
    )
    view = result_view("Hi")

    first = await slack.adapter.stream_stop(target, stream_id, view, client_id="c2")
    again = await slack.adapter.stream_stop(target, stream_id, view, client_id="c2")

    assert first == again == stream_id
    assert len(slack.fake.bot_messages(CHANNEL)) == 1


async def test_no_thread_or_no_recipient_means_no_stream(slack: Slack) -> None:
    threaded = in_thread(slack)
    top_level = Target(platform="slack", tenant=slack.fake.team_id, channel=CHANNEL, user=ANA)
    no_user = Target(platform="slack", tenant=slack.fake.team_id, channel=CHANNEL, thread="1.2")
    private_of_channel = Target(
        platform="slack",
        tenant=slack.fake.team_id,
        channel=CHANNEL,
        thread=threaded.thread,
        user=ANA,
        private=True,
    )

    assert slack.adapter.can_stream(threaded)
    assert not slack.adapter.can_stream(top_level)
    assert not slack.adapter.can_stream(no_user)
    assert not slack.adapter.can_stream(private_of_channel)
    with pytest.raises(StreamUnavailable) as refused:
        await slack.adapter.stream_start(no_user, StreamUpdate(plan=(), text="x"), client_id="c")
    assert refused.value.message_id is None
    assert slack.fake.calls_to("chat.startStream") == []


async def test_a_dm_thread_streams_in_the_dm(slack: Slack) -> None:
    dm = slack.fake.dm_channel_id(ANA)
    root = slack.fake.seed_message(dm, "summarize my week", user=ANA)
    target = Target(
        platform="slack",
        tenant=slack.fake.team_id,
        channel=dm,
        thread=root.ts,
        user=ANA,
        private=True,
    )

    stream_id = await slack.adapter.stream_start(
        target, StreamUpdate(plan=one_task(""), text="Mon", delta="Mon"), client_id="c"
    )

    assert stream_id.startswith(f"{dm}/")
    assert stream_message(slack, stream_id).thread_ts == root.ts


async def test_a_refused_recipient_falls_back_without_a_message(slack: Slack) -> None:
    target = in_thread(slack)
    slack.fake.force_error("chat.startStream", "missing_recipient_user_id")

    with pytest.raises(StreamUnavailable) as refused:
        await slack.adapter.stream_start(
            target, StreamUpdate(plan=one_task(""), text="x", delta="x"), client_id="c"
        )

    assert refused.value.message_id is None
    assert slack.adapter.can_stream(target)  # only this message; streaming stays on


async def test_a_workspace_without_streaming_turns_streaming_off(slack: Slack) -> None:
    target = in_thread(slack)
    slack.fake.force_error("chat.startStream", "not_allowed")

    with pytest.raises(StreamUnavailable):
        await slack.adapter.stream_start(
            target, StreamUpdate(plan=one_task(""), text="x", delta="x"), client_id="c"
        )

    assert not slack.adapter.can_stream(target)


async def test_429s_on_every_stream_method_are_waited_out_and_nothing_is_lost(
    slack: Slack,
) -> None:
    target = in_thread(slack)
    for method in ("chat.startStream", "chat.appendStream", "chat.stopStream"):
        slack.fake.force_rate_limit(method, times=1, retry_after=0)

    stream_id = await slack.adapter.stream_start(
        target, StreamUpdate(plan=one_task(""), text="one", delta="one"), client_id="c1"
    )
    await slack.adapter.stream_append(
        target, stream_id, StreamUpdate(plan=one_task(""), text="", delta=" two")
    )
    await slack.adapter.stream_stop(target, stream_id, result_view("one two"), client_id="c2")

    for method in ("chat.startStream", "chat.appendStream", "chat.stopStream"):
        assert [c.status for c in slack.fake.calls_to(method)] == [429, 200]
    message = stream_message(slack, stream_id)
    assert message.stream is not None and message.stream.markdown == "one two"
    assert len(slack.fake.streams(CHANNEL)) == 1
    assert "one two" in message.text


async def test_native_feedback_presses_record_votes(working_slack: Slack) -> None:
    bot = working_slack
    task, _ = await wiring.finished_result(bot)
    task_id = task.id or 0
    target = in_thread(bot)
    stream_id = await bot.adapter.stream_start(
        target, StreamUpdate(plan=one_task(""), text="Hi", delta="Hi"), client_id="c1"
    )
    await bot.adapter.stream_stop(target, stream_id, result_view("Hi", task_id), client_id="c2")
    ts = stream_id.rpartition("/")[2]

    for user, positive in ((ANA, True), (wiring.BEN, False)):
        press = bot.fake.feedback_actions(
            channel_id=CHANNEL,
            message_ts=ts,
            action_id=feedback_action_id(task_id),
            positive=positive,
            user_id=user,
        )
        assert (await bot.post(bot.fake.signed_interaction(press))).status == 200

    votes = await bot.app.repo.feedback_of(task_id)
    assert sorted((v.user, v.score) for v in votes) == sorted([(ANA, 1), (wiring.BEN, -1)])
