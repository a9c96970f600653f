"""atombot in Slack: the real slack-bolt app served over HTTP (and Socket Mode) against the
local fake Slack platform, wired by the real ``build_app``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from bot.adapters.base import Services
from bot.adapters.slack import SlackAdapter, manifest
from bot.adapters.slack.blocks import MAX_MESSAGE_BLOCKS, message_blocks
from bot.adapters.slack.manifest import SHORTCUT_DRAFT_REPLY, SHORTCUT_SUMMARIZE
from bot.app import App, build_app
from bot.config import Settings
from bot.types import Action, Button, Section, View
from models.generation.base import Generator
from models.intents.spec import IntentParser
from storage.tables import Task, TaskStatus
from tests.fakes.slack_api import FakeSlack, validate_blocks

CHANNEL = "C0GENERAL"
ANA = "U0ANA"
BEN = "U0BEN"


@dataclass
class Slack:
    """One wired bot: the app, its Slack adapter and the fake workspace it talks to."""

    app: App
    adapter: SlackAdapter
    fake: FakeSlack

    async def post(self, request: Any) -> Any:
        """Deliver a signed request like Slack does (3 s deadline), then let listeners finish."""
        response = await self.fake.post_to_app(self.adapter.url, request)
        await asyncio.wait_for(self.adapter.wait_idle(), 30)
        return response

    async def tasks(self) -> list[Task]:
        return list(reversed(await self.app.repo.list_tasks(platform="slack", limit=100)))

    async def run_worker(self) -> None:
        assert self.app.worker is not None
        await self.app.worker.run_until_idle()

    async def deliver(self) -> None:
        await self.app.jobs.deliverer.tick()


SlackFactory = Callable[..., Awaitable[Slack]]


def slack_settings(settings: Settings, fake: FakeSlack, **overrides: Any) -> Settings:
    return settings.model_copy(
        update={
            "slack_bot_token": fake.bot_token,
            "slack_signing_secret": fake.signing_secret,
            "slack_api_url": fake.api_url,
            **overrides,
        }
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        yield server


@pytest.fixture
async def make_slack(
    settings: Settings, parser: IntentParser, fake: FakeSlack
) -> AsyncIterator[SlackFactory]:
    """Build the bot on demand; the worker and delivery job are driven by the test."""
    built: list[Slack] = []

    async def make(*, generator: Generator | None = None, **overrides: Any) -> Slack:
        config = slack_settings(settings, fake, **overrides)
        adapter = SlackAdapter(config, host="127.0.0.1", port=0, min_edit_interval=0.0)
        app = await build_app(
            config,
            parser=parser,
            generator=generator,
            adapters=[adapter],
            with_worker=generator is not None,
        )
        await adapter.start(Services(router=app.router, repo=app.repo, notify=app.notify))
        bot = Slack(app, adapter, fake)
        built.append(bot)
        return bot

    yield make
    for bot in built:
        await bot.app.stop()


@pytest.fixture
async def slack(make_slack: SlackFactory) -> Slack:
    return await make_slack()


@pytest.fixture
async def working_slack(make_slack: SlackFactory, generator: Generator) -> Slack:
    return await make_slack(generator=generator)


# --- slash command -------------------------------------------------------------------------


async def test_slash_command_is_acked_with_a_receipt_listing_the_tasks(slack: Slack) -> None:
    request = slack.fake.signed_slash_command(
        "draft an email to Dana about the delayed shipment", user_id=ANA
    )

    response = await slack.post(request)

    tasks = await slack.tasks()
    assert response.status == 200
    assert [x.kind for x in tasks] == ["email.draft"]
    assert f"#{tasks[0].id}" in response.json()["text"]
    assert tasks[0].user == ANA and tasks[0].tenant == slack.fake.team_id


async def test_empty_slash_command_answers_with_help(slack: Slack) -> None:
    response = await slack.post(slack.fake.signed_slash_command(""))

    assert response.status == 200
    assert "summarize" in response.json()["text"].lower()
    assert await slack.tasks() == []


async def test_slow_classification_acks_first_and_sends_the_receipt_after(
    make_slack: SlackFactory,
) -> None:
    bot = await make_slack()
    bot.adapter.ack_budget = 0.0

    response = await bot.post(bot.fake.signed_slash_command("draft an email to Dana about rent"))

    (task,) = await bot.tasks()
    assert response.status == 200
    assert f"#{task.id}" not in response.json()["text"]
    (followup,) = [p for p in bot.fake.response_url_posts if p.error is None]
    assert f"#{task.id}" in followup.body["text"]


async def test_slash_command_progress_then_result_with_buttons(working_slack: Slack) -> None:
    bot = working_slack
    await bot.post(bot.fake.signed_slash_command("draft an email to Dana about the delay"))
    await bot.deliver()
    (progress,) = bot.fake.bot_messages(CHANNEL)
    assert "#1" in progress.text

    await bot.run_worker()
    await bot.deliver()

    (message,) = bot.fake.bot_messages(CHANNEL)
    assert message.ts == progress.ts and message.edits
    (task,) = await bot.tasks()
    assert task.status == TaskStatus.succeeded
    action_ids = {
        element["action_id"]
        for block in message.blocks
        if block["type"] == "actions"
        for element in block["elements"]
    }
    assert action_ids == {
        Button("", action, task.id or 0).data
        for action in (Action.rate_up, Action.rate_down, Action.regenerate)
    }


# --- verification --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "signing", [{"bad_signature": True}, {"stale": True}], ids=["bad", "stale"]
)
async def test_unverified_requests_get_401_and_store_nothing(
    slack: Slack, signing: dict[str, bool]
) -> None:
    request = slack.fake.signed_slash_command("draft an email to Dana", signing=signing)

    response = await slack.post(request)

    assert response.status == 401
    assert await slack.tasks() == []
    assert slack.fake.ephemerals == []


async def test_malformed_body_gets_400_and_stores_nothing(slack: Slack) -> None:
    request = slack.fake.signed_json({"type": "event_callback"})
    garbage = type(request)(b"{not json", request.headers, {})

    response = await slack.post(garbage)

    assert response.status == 400
    assert await slack.tasks() == []


async def test_url_verification_echoes_the_challenge(slack: Slack) -> None:
    response = await slack.post(slack.fake.signed_json(slack.fake.url_verification("c-123")))

    assert response.status == 200
    assert response.json() == {"challenge": "c-123"}


# --- mentions, DMs, retries ----------------------------------------------------------------


async def test_mention_in_a_thread_summarizes_that_thread(slack: Slack) -> None:
    root = slack.fake.seed_thread(
        CHANNEL,
        "The payment service is down since 9:00",
        [(BEN, "rolled back release 4.2"), ("U0CHO", "errors gone, postmortem on friday")],
    )
    mention = slack.fake.app_mention("summarize this thread", user_id=ANA, thread_ts=root.ts)

    response = await slack.post(slack.fake.signed_event(mention))

    (task,) = await slack.tasks()
    assert response.status == 200
    assert task.kind == "summarize"
    assert "rolled back release 4.2" in task.inputs["material"]
    assert "postmortem on friday" in task.inputs["material"]
    replies = slack.fake.calls_to("conversations.replies")
    assert replies and replies[0].args["ts"] == root.ts
    (receipt,) = slack.fake.ephemerals
    assert receipt.user == ANA and receipt.thread_ts == root.ts and f"#{task.id}" in receipt.text


async def test_redelivered_event_creates_no_second_task(slack: Slack) -> None:
    first = slack.fake.signed_event(slack.fake.app_mention("draft an email to Dana about rent"))
    await slack.post(first)

    again = await slack.post(slack.fake.redelivery(first, retry_num=1))

    assert again.status == 200
    assert len(await slack.tasks()) == 1
    assert len(slack.fake.ephemerals) == 1


async def test_direct_message_creates_a_private_task_answered_in_the_dm(slack: Slack) -> None:
    event = slack.fake.direct_message("draft an email to Dana about the offsite", user_id=BEN)

    await slack.post(slack.fake.signed_event(event))

    (task,) = await slack.tasks()
    request = await slack.app.repo.get_request(task.request_id)
    dm = slack.fake.dm_channel_id(BEN)
    assert request is not None and request.channel == dm and request.private
    assert task.user == BEN
    assert any(f"#{task.id}" in m.text for m in slack.fake.bot_messages(dm))


async def test_summarize_a_channel_since_yesterday_reads_its_history_page_by_page(
    slack: Slack,
) -> None:
    slack.fake.add_channel("C0SALES", "sales")
    for n in range(250):
        slack.fake.seed_message("C0SALES", f"deal {n} closed", user=BEN)
    mention = slack.fake.app_mention("summarize <#C0SALES|sales> since yesterday", user_id=ANA)

    await slack.post(slack.fake.signed_event(mention))

    history = slack.fake.calls_to("conversations.history")
    assert len(history) >= 2 and all(c.args["channel"] == "C0SALES" for c in history)
    assert history[0].args.get("oldest")
    material = "\n".join(x.inputs.get("material", "") for x in await slack.tasks())
    assert "deal 0 closed" in material and "deal 249 closed" in material


# --- shortcuts and buttons -----------------------------------------------------------------


async def test_summarize_thread_shortcut_acks_and_sends_an_ephemeral_receipt(slack: Slack) -> None:
    root = slack.fake.seed_thread(CHANNEL, "Launch plan?", [(BEN, "ship on monday")])
    payload = slack.fake.message_action(
        callback_id=SHORTCUT_SUMMARIZE, channel_id=CHANNEL, message_ts=root.ts, user_id=ANA
    )

    response = await slack.post(slack.fake.signed_interaction(payload))

    (task,) = await slack.tasks()
    assert response.status == 200
    assert task.kind == "summarize" and "ship on monday" in task.inputs["material"]
    assert any(f"#{task.id}" in e.text for e in slack.fake.ephemerals)


async def test_draft_reply_shortcut_creates_a_reply_draft(slack: Slack) -> None:
    message = slack.fake.seed_message(CHANNEL, "Can you send the Q3 numbers?", user=BEN)
    payload = slack.fake.message_action(
        callback_id=SHORTCUT_DRAFT_REPLY, channel_id=CHANNEL, message_ts=message.ts, user_id=ANA
    )

    await slack.post(slack.fake.signed_interaction(payload))

    (task,) = await slack.tasks()
    assert task.kind == "reply.draft"
    assert "Q3 numbers" in task.inputs.get("conversation", "")


async def finished_result(bot: Slack, user: str = ANA) -> tuple[Task, str]:
    """A delivered, succeeded email draft asked for by ``user``; returns it and its message ts."""
    await bot.post(bot.fake.signed_slash_command("draft an email to Dana about rent", user_id=user))
    await bot.run_worker()
    await bot.deliver()
    (task,) = await bot.tasks()
    (message,) = bot.fake.bot_messages(CHANNEL)
    return task, message.ts


async def test_thumbs_up_records_the_vote_and_updates_the_message(working_slack: Slack) -> None:
    bot = working_slack
    task, ts = await finished_result(bot)
    press = bot.fake.block_actions(
        channel_id=CHANNEL, message_ts=ts, action_id=Button("", Action.rate_up, task.id or 0).data
    )

    response = await bot.post(bot.fake.signed_interaction(press))
    await bot.deliver()

    assert response.status == 200
    votes = await bot.app.repo.feedback_of(task.id or 0)
    assert [(v.user, v.score) for v in votes] == [(ANA, 1)]
    assert f"👍 by <@{ANA}>" in str(bot.fake.message(CHANNEL, ts).blocks)
    assert any(f"#{task.id}" in e.text for e in bot.fake.ephemerals)


async def test_a_double_click_counts_one_vote(working_slack: Slack) -> None:
    bot = working_slack
    task, ts = await finished_result(bot)
    action_id = Button("", Action.rate_up, task.id or 0).data

    for _ in range(2):
        press = bot.fake.block_actions(channel_id=CHANNEL, message_ts=ts, action_id=action_id)
        await bot.post(bot.fake.signed_interaction(press))

    assert len(await bot.app.repo.feedback_of(task.id or 0)) == 1


async def test_regenerate_creates_one_new_attempt_linked_to_the_first(working_slack: Slack) -> None:
    bot = working_slack
    task, ts = await finished_result(bot)
    action_id = Button("", Action.regenerate, task.id or 0).data

    for _ in range(2):
        press = bot.fake.block_actions(channel_id=CHANNEL, message_ts=ts, action_id=action_id)
        await bot.post(bot.fake.signed_interaction(press))

    first, retry = await bot.tasks()
    assert first.id == task.id
    assert retry.retry_of == task.id


async def test_a_user_of_another_workspace_cannot_cancel_a_task(slack: Slack) -> None:
    await slack.post(slack.fake.signed_slash_command("draft an email to Dana about rent"))
    await slack.deliver()
    (task,) = await slack.tasks()
    (message,) = slack.fake.bot_messages(CHANNEL)
    press = slack.fake.block_actions(
        channel_id=CHANNEL,
        message_ts=message.ts,
        action_id=Button("", Action.cancel, task.id or 0).data,
        user_id=BEN,
        team_id="T0OTHER",
    )

    await slack.post(slack.fake.signed_interaction(press))

    (after,) = await slack.tasks()
    assert after.status == TaskStatus.queued


# --- outbound limits -----------------------------------------------------------------------


async def test_a_long_result_is_split_into_thread_messages_without_losing_text(
    slack: Slack,
) -> None:
    await slack.post(slack.fake.signed_slash_command("draft an email to Dana about rent"))
    assert len(await slack.tasks()) == 1
    paragraphs = [f"Paragraph {n}: " + "lorem ipsum dolor sit amet " * 12 for n in range(40)]
    result = "\n\n".join(paragraphs)
    (claimed,) = await slack.app.repo.claim(worker_id="test", limit=1, lease_seconds=30)
    await slack.app.repo.complete(task_id=claimed.id or 0, worker_id="test", result=result)

    await slack.deliver()

    messages = slack.fake.bot_messages(CHANNEL)
    assert len(result) > 4_000 and len(messages) >= 3
    assert all(len(m.text) <= 4_000 for m in messages)
    shown = "\n".join(m.text for m in messages)
    assert all(p.strip() in shown for p in paragraphs)
    assert all(c.ok for c in slack.fake.calls if c.method.startswith("chat."))


async def test_a_429_on_an_edit_is_retried_after_retry_after(working_slack: Slack) -> None:
    bot = working_slack
    await bot.post(bot.fake.signed_slash_command("draft an email to Dana about the delay"))
    await bot.deliver()
    await bot.run_worker()
    bot.fake.force_rate_limit("chat.update", times=1, retry_after=1)

    await bot.deliver()

    assert [c.status for c in bot.fake.calls_to("chat.update")] == [429, 200]
    (message,) = bot.fake.bot_messages(CHANNEL)
    assert any(b["type"] == "actions" for b in message.blocks)


def test_many_tasks_still_fit_into_fifty_valid_blocks() -> None:
    view = View(
        sections=tuple(Section(text="result " * 50, title=f"#{n} summary") for n in range(40)),
        buttons=tuple(
            (Button("👍", Action.rate_up, n), Button("👎", Action.rate_down, n)) for n in range(40)
        ),
    )

    blocks = message_blocks(view)

    assert len(blocks) <= MAX_MESSAGE_BLOCKS
    assert validate_blocks(blocks) == []


# --- App Home, Socket Mode, manifest -------------------------------------------------------


async def test_app_home_lists_the_users_tasks(slack: Slack) -> None:
    await slack.post(slack.fake.signed_slash_command("draft an email to Dana about rent"))
    (task,) = await slack.tasks()

    await slack.post(slack.fake.signed_event(slack.fake.app_home_opened(user_id=ANA)))

    home = slack.fake.home_views[ANA]
    assert f"#{task.id}" in str(home["blocks"])


async def test_socket_mode_acks_a_slash_command_with_its_receipt(make_slack: SlackFactory) -> None:
    bot = await make_slack(slack_app_token="xapp-fake-app-token")
    await bot.fake.wait_for_socket_connections(1)

    envelope = await bot.fake.push_slash_command("draft an email to Dana about rent")
    ack = await bot.fake.wait_for_ack(envelope)

    (task,) = await bot.tasks()
    assert f"#{task.id}" in ack["payload"]["text"]


async def test_socket_mode_reconnects_after_disconnect(make_slack: SlackFactory) -> None:
    bot = await make_slack(slack_app_token="xapp-fake-app-token")
    await bot.fake.wait_for_socket_connections(1)

    await bot.fake.socket_disconnect("refresh_requested")
    await bot.fake.wait_for_socket_connections(2)
    envelope = await bot.fake.push_event(bot.fake.app_mention("draft an email to Dana about rent"))
    await bot.fake.wait_for_ack(envelope)
    await bot.fake.wait_for_calls("chat.postEphemeral")

    assert len(await bot.tasks()) == 1


def test_manifest_switches_socket_mode_with_the_app_token(settings: Settings) -> None:
    http = manifest(settings, request_url="https://bot.example.com/slack/events")
    socket = manifest(settings.model_copy(update={"slack_app_token": "xapp-1"}))

    assert http["settings"]["socket_mode_enabled"] is False
    assert http["settings"]["event_subscriptions"]["request_url"].endswith("/slack/events")
    assert socket["settings"]["socket_mode_enabled"] is True
    assert "request_url" not in socket["settings"]["interactivity"]
    assert [c["command"] for c in http["features"]["slash_commands"]] == [settings.slack_command]
    callbacks = {s["callback_id"] for s in http["features"]["shortcuts"]}
    assert callbacks == {SHORTCUT_SUMMARIZE, SHORTCUT_DRAFT_REPLY}
