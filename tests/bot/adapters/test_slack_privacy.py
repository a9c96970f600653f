"""Slack's privacy commands against the fake Slack: ``/atom forget`` deletes everything held
for the channel and says what went, ``/atom privacy`` says what is kept; both are answered at
once (ephemeral) and never reach the classifier."""

from __future__ import annotations

from typing import Any

from bot.adapters.slack.inbound import ChatCommand, chat_command
from bot.texts import t
from bot.types import OTHER_REASON, Action, ActionEvent
from handlers.forgetting import forgotten_text
from storage.repository import Removal
from tests.bot.adapters import test_slack as wiring
from tests.bot.adapters.test_slack import ANA, BEN, CHANNEL, Slack, SlackFactory
from tests.storage.test_retention_marker import MARKER, OTHER, columns_holding

fake = wiring.fake
make_slack = wiring.make_slack
slack = wiring.slack

ELSEWHERE = "C0RANDOM"


def test_only_the_whole_command_is_a_channel_command() -> None:
    assert chat_command("forget") == ChatCommand("forget")
    assert chat_command(" Forget ") == ChatCommand("forget")
    assert chat_command("遗忘") == ChatCommand("forget")
    assert chat_command("forget the email to Dana") is None
    assert chat_command("privacy") == ChatCommand("privacy")
    assert chat_command("隐私") == ChatCommand("privacy")
    assert chat_command("privacy off") == ChatCommand("privacy")
    assert chat_command("privacy policy for vendors, email it to Dana") is None
    assert chat_command("training off") == ChatCommand("training", "off")
    assert chat_command("summarize this channel") is None


async def answer_to(bot: Slack, text: str, *, user: str = ANA, channel: str = CHANNEL) -> Any:
    """Send ``/atom <text>``; the ack's body and the one ephemeral answer that followed."""
    before = len(bot.fake.response_url_posts)
    response = await bot.post(bot.fake.signed_slash_command(text, user_id=user, channel_id=channel))
    assert response.status == 200
    (answer,) = bot.fake.response_url_posts[before:]
    assert answer.error is None and answer.body["response_type"] == "ephemeral"
    return response.text, str(answer.body["text"])


async def fill_channel(bot: Slack, channel: str, word: str) -> int:
    """Requests, a result and a vote with a comment, each holding ``word``; the task id."""
    repo = bot.app.repo
    known = {x.id for x in await bot.tasks()}
    await bot.post(
        bot.fake.signed_slash_command(
            f"draft an email to Dana about the {word} shipment", channel_id=channel
        )
    )
    [task] = [x for x in await bot.tasks() if x.id not in known]
    [claimed] = await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    await repo.complete(task_id=claimed.id or 0, worker_id="w", result=f"Dear Dana, {word}")

    def press(action: Action, **extra: str) -> ActionEvent:
        return ActionEvent(
            platform="slack",
            tenant=bot.fake.team_id,
            channel=channel,
            user=BEN,
            action=action,
            task_id=task.id or 0,
            event_id=f"{channel}:{action}",
            **extra,
        )

    router = bot.app.router
    await router.handle_action(press(Action.rate_down))
    await router.handle_action(press(Action.why, choice=OTHER_REASON))
    await router.handle_action(press(Action.note, comment=f"too stiff for {word}"))
    return task.id or 0


async def test_atom_forget_deletes_all_text_of_the_channel_and_says_what_it_deleted(
    slack: Slack,
) -> None:
    await fill_channel(slack, CHANNEL, MARKER)
    other_task = await fill_channel(slack, ELSEWHERE, OTHER)
    repo = slack.app.repo
    before = await columns_holding(repo, MARKER)
    assert {"request.text", "task.inputs", "task.result", "feedback.comment"} <= set(before)
    other_before = await columns_holding(repo, OTHER)

    ack, answer = await answer_to(slack, "forget")

    assert ack == ""  # no "working out the tasks": nothing is routed
    assert await columns_holding(repo, MARKER) == {}
    assert await columns_holding(repo, OTHER) == other_before
    assert await repo.get_task(other_task) is not None
    [entry] = await repo.audit_entries(action="forget")
    assert entry.actor == ANA and entry.subject == f"chat:slack/{slack.fake.team_id}/{CHANNEL}"
    counts = entry.detail["counts"]
    assert counts["request"] == 1 and counts["task"] == 1 and counts["feedback"] == 1
    assert answer == forgotten_text(Removal(counts=counts), "en")
    assert "1 request(s)" in answer and "1 vote(s) and comment(s)" in answer
    # Slack keeps no channel messages, so forgetting switches nothing off for later.
    where = {"platform": "slack", "tenant": slack.fake.team_id, "channel": CHANNEL}
    assert not await repo.memory_opted_out(**where)
    assert [x.id for x in await slack.tasks()] == [other_task]

    assert (await answer_to(slack, "遗忘"))[1] == t("privacy.forgotten_nothing", "zh")


async def test_atom_privacy_says_what_is_kept_for_how_long_and_how_to_forget_it(
    make_slack: SlackFactory,
) -> None:
    bot = await make_slack(retention_days=30)
    await fill_channel(bot, CHANNEL, MARKER)

    ack, answer = await answer_to(bot, "privacy")

    assert ack == ""
    assert answer.splitlines() == [
        t("slack.privacy.kept_days", "en", days=30),
        t(
            "slack.privacy.holding",
            "en",
            what="1 request(s), 1 task(s) with their results, 1 vote(s) and comment(s)",
        ),
        t("slack.privacy.forget", "en", forget="/atom forget"),
        t("training.in", "en", off="/atom training off"),
    ]
    assert len(await bot.tasks()) == 1  # the command itself made no task
    assert await bot.app.repo.audit_entries(action="forget") == []  # only counted

    _, chinese = await answer_to(bot, "隐私", channel=ELSEWHERE)
    assert chinese.splitlines()[:2] == [
        t("slack.privacy.kept_days", "zh", days=30),
        t("slack.privacy.holding_nothing", "zh"),
    ]


async def test_without_a_retention_period_privacy_says_it_keeps_until_forgotten(
    slack: Slack,
) -> None:
    _, answer = await answer_to(slack, "privacy")
    assert answer.splitlines()[:2] == [
        t("slack.privacy.kept", "en"),
        t("slack.privacy.holding_nothing", "en"),
    ]
