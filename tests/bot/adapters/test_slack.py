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
from bot.texts import t
from bot.types import Action, Button, Section, View
from models.generation.base import Generator
from models.intents.spec import IntentParser
from storage.tables import Task, TaskStatus
from tests.fakes.slack_api import FakeSlack, SignedRequest, validate_blocks

CHANNEL = "C0GENERAL"
WORKING = t("slack.ack.working", "en")
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


async def test_slash_command_is_acked_at_once_then_gets_a_receipt_listing_the_tasks(
    slack: Slack,
) -> None:
    request = slack.fake.signed_slash_command(
        "draft an email to Dana about the delayed shipment", user_id=ANA
    )

    response = await slack.post(request)

    tasks = await slack.tasks()
    assert response.status == 200
    assert response.json() == {"text": WORKING, "response_type": "ephemeral"}
    assert [x.kind for x in tasks] == ["email.draft"]
    assert tasks[0].user == ANA and tasks[0].tenant == slack.fake.team_id
    (receipt,) = [p for p in slack.fake.response_url_posts if p.error is None]
    assert f"#{tasks[0].id}" in receipt.body["text"]
    assert [e.text for e in slack.fake.ephemerals] == [receipt.body["text"]]


async def test_empty_slash_command_answers_with_help(slack: Slack) -> None:
    response = await slack.post(slack.fake.signed_slash_command(""))

    assert response.status == 200
    (answer,) = slack.fake.ephemerals
    assert "summarize" in answer.text.lower()
    assert await slack.tasks() == []


async def test_a_chinese_slash_command_is_acked_in_chinese(slack: Slack) -> None:
    response = await slack.post(slack.fake.signed_slash_command("给Dana写一封关于延迟发货的邮件"))

    assert response.json()["text"] == t("slack.ack.working", "zh")


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


async def test_malformed_body_gets_400_signed_and_401_unsigned_and_stores_nothing(
    slack: Slack,
) -> None:
    request = slack.fake.signed_json({"type": "event_callback"})
    forged = SignedRequest(b"{not json", request.headers, {})

    unsigned_answer = await slack.post(forged)
    signed_answer = await slack.post(signed_raw(slack.fake, b"{not json"))

    assert (unsigned_answer.status, signed_answer.status) == (401, 400)
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


async def test_socket_mode_acks_a_slash_command_then_sends_its_receipt(
    make_slack: SlackFactory,
) -> None:
    bot = await make_slack(slack_app_token="xapp-fake-app-token")
    await bot.fake.wait_for_socket_connections(1)

    envelope = await bot.fake.push_slash_command("draft an email to Dana about rent")
    ack = await bot.fake.wait_for_ack(envelope)
    await bot.fake.wait_until(lambda: bool(bot.fake.ephemerals))
    await asyncio.wait_for(bot.adapter.wait_idle(), 30)

    (task,) = await bot.tasks()
    assert ack["payload"]["text"] == WORKING
    assert f"#{task.id}" in bot.fake.ephemerals[0].text


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


# --- bad input at the edge -----------------------------------------------------------------

SECRET_TEXT = "zq-private-request-7731"


def unsigned(body: bytes, timestamp: str, content_type: str = "application/json") -> SignedRequest:
    """A request whose timestamp header is ``timestamp`` and whose signature is made up."""
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": "v0=" + "0" * 64,
    }
    return SignedRequest(body, headers, {})


def signed_raw(
    fake: FakeSlack, body: bytes, content_type: str = "application/json"
) -> SignedRequest:
    """``body`` exactly as given, correctly signed."""
    return SignedRequest(body, fake.sign(body, content_type=content_type), {})


async def nothing_stored(bot: Slack) -> bool:
    return await bot.tasks() == [] and await bot.app.repo.list_digests() == []


@pytest.mark.parametrize("timestamp", ["", "abc", "12.5", "1e9", "0x10", " 1", "١٢٣"])
async def test_a_non_integer_timestamp_gets_401(slack: Slack, timestamp: str) -> None:
    body = slack.fake.signed_slash_command("draft an email to Dana").body

    response = await slack.post(unsigned(body, timestamp, "application/x-www-form-urlencoded"))

    assert response.status == 401
    assert await nothing_stored(slack)


@pytest.mark.parametrize("signature", ["", "v0=", "v0=zz", "v1=" + "a" * 64, "v0=é" + "a" * 63])
async def test_a_malformed_signature_gets_401(slack: Slack, signature: str) -> None:
    request = slack.fake.signed_slash_command("draft an email to Dana")
    headers = {**request.headers, "X-Slack-Signature": signature}

    response = await slack.post(SignedRequest(request.body, headers, {}))

    assert response.status == 401
    assert await nothing_stored(slack)


async def test_deeply_nested_json_is_refused_signed_or_not(slack: Slack) -> None:
    body = b'{"type": "event_callback", "event": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    now = str(int(slack.fake.clock()))

    forged = await slack.post(unsigned(body, now))
    signed = await slack.post(signed_raw(slack.fake, body))

    assert (forged.status, signed.status) == (401, 400)
    assert await nothing_stored(slack)


async def test_a_body_over_the_size_limit_gets_413(slack: Slack) -> None:
    body = b'{"type": "event_callback", "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}'

    response = await slack.post(signed_raw(slack.fake, body))

    assert response.status == 413
    assert await nothing_stored(slack)


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe{not utf-8}", b'{"type": "event_callback", "event": {"type": "app_mention"', b"[]"],
    ids=["invalid-utf8", "truncated", "not-an-object"],
)
async def test_a_signed_unparsable_body_gets_400(slack: Slack, body: bytes) -> None:
    response = await slack.post(signed_raw(slack.fake, body))

    assert response.status == 400
    assert await nothing_stored(slack)


async def test_a_signed_slash_command_without_user_id_gets_400_stores_and_logs_nothing(
    slack: Slack, caplog: pytest.LogCaptureFixture
) -> None:
    form = dict(slack.fake.slash_command_payload(f"draft an email to Dana {SECRET_TEXT}"))
    del form["user_id"]
    caplog.set_level("DEBUG")

    response = await slack.post(slack.fake.signed_form(form))

    assert response.status == 400
    assert await nothing_stored(slack)
    assert SECRET_TEXT not in caplog.text


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "event_callback", "event_id": "Ev1", "team_id": "T0FAKE", "event": []},
        {"type": "event_callback", "event_id": "Ev2", "event": {"type": "app_mention"}},
        {"type": "event_callback", "event_id": "Ev3", "event": {"type": 5, "user": "U0ANA"}},
        {"type": "url_verification", "challenge": {"a": 1}},
    ],
    ids=["event-is-a-list", "mention-without-user", "type-not-a-string", "odd-challenge"],
)
async def test_a_signed_malformed_event_gets_400(slack: Slack, payload: dict[str, Any]) -> None:
    response = await slack.post(slack.fake.signed_json(payload))

    assert response.status == 400
    assert await nothing_stored(slack)


async def test_signed_block_actions_with_actions_not_a_list_gets_400(slack: Slack) -> None:
    payload = {"type": "block_actions", "user": {"id": ANA}, "team": {"id": "T0FAKE"}, "actions": 5}

    response = await slack.post(slack.fake.signed_interaction(payload))

    assert response.status == 400
    assert await nothing_stored(slack)


async def test_an_unknown_well_formed_event_is_acked_and_ignored_without_logging_it(
    slack: Slack, caplog: pytest.LogCaptureFixture
) -> None:
    event = {"type": "reaction_added", "user": ANA, "reaction": SECRET_TEXT, "event_ts": "1.2"}
    caplog.set_level("DEBUG")

    response = await slack.post(slack.fake.signed_event(event))

    assert response.status == 200
    assert await nothing_stored(slack)
    assert SECRET_TEXT not in caplog.text


async def test_a_slash_command_whose_text_says_payload_is_still_a_command(slack: Slack) -> None:
    # bolt reads any form body containing "payload" as an interactivity payload.
    request = slack.fake.signed_slash_command("draft an email to Dana about the payload limits")

    response = await slack.post(request)

    assert response.status == 200
    assert [x.kind for x in await slack.tasks()] == ["email.draft"]


async def test_a_valid_request_still_works_after_bad_ones(slack: Slack) -> None:
    for body in (b"[" * 20_000, b"\xff", b"{}"):
        await slack.post(signed_raw(slack.fake, body))

    response = await slack.post(slack.fake.signed_slash_command("draft an email to Dana"))

    assert response.status == 200
    assert len(await slack.tasks()) == 1


async def test_socket_mode_acks_and_ignores_malformed_envelopes(make_slack: SlackFactory) -> None:
    bot = await make_slack(slack_app_token="xapp-fake-app-token")
    await bot.fake.wait_for_socket_connections(1)
    no_user = dict(bot.fake.slash_command_payload(f"draft an email {SECRET_TEXT}"))
    del no_user["user_id"]
    bad = {
        "no-user": ("slash_commands", no_user),
        "event-list": ("events_api", {"type": "event_callback", "event_id": "Ev9", "event": []}),
        "actions-5": ("interactive", {"type": "block_actions", "user": {"id": ANA}, "actions": 5}),
    }
    envelopes = {}
    for name, (kind, payload) in bad.items():
        envelopes[name] = await bot.fake.socket_push(kind, payload)  # type: ignore[arg-type]
    await bot.fake.socket_push_raw(
        '{"envelope_id": "deep", "type": "events_api", "payload": ' + "[" * 20_000
    )
    await bot.fake.socket_push_raw("\x00 not json")

    acks = {name: await bot.fake.wait_for_ack(e) for name, e in envelopes.items()}
    envelope = await bot.fake.push_slash_command("draft an email to Dana about rent")
    await bot.fake.wait_for_ack(envelope)
    await asyncio.wait_for(bot.adapter.wait_idle(), 30)

    assert all("payload" not in ack for ack in acks.values())
    assert len(await bot.tasks()) == 1
    assert len(bot.fake.socket_connections) == 1 and bot.fake.open_socket_connections()


# --- digests ---------------------------------------------------------------------------------


async def test_a_digest_of_a_linked_channel_stores_the_channel_id(slack: Slack) -> None:
    slack.fake.add_channel("C0SALES", "sales")
    mention = slack.fake.app_mention("send a daily digest of <#C0SALES|sales> at 8am", user_id=ANA)

    await slack.post(slack.fake.signed_event(mention))

    (digest,) = await slack.app.repo.list_digests()
    assert digest.channel == "C0SALES"


async def test_a_signed_slash_command_with_a_stray_event_field_gets_400(slack: Slack) -> None:
    # bolt's middleware reads body["event"] of every request as an object.
    form = {**slack.fake.slash_command_payload("draft an email to Dana"), "event": "[]"}

    response = await slack.post(slack.fake.signed_form(form))

    assert response.status == 400
    assert await nothing_stored(slack)


async def test_a_button_press_without_a_response_url_is_still_acked_at_once(slack: Slack) -> None:
    # A listener error right after ack() made bolt drop the ack and answer 404 after 3 s.
    press = {
        "type": "block_actions",
        "user": {"id": ANA, "team_id": slack.fake.team_id},
        "team": {"id": slack.fake.team_id},
        "container": {"channel_id": CHANNEL, "message_ts": "1700000000.000100"},
        "actions": [{"action_id": Button("", Action.regenerate, 999).data}],
    }

    response = await slack.fake.post_to_app(
        slack.adapter.url, slack.fake.signed_interaction(press), within_s=1.0
    )
    await asyncio.wait_for(slack.adapter.wait_idle(), 30)

    assert response.status == 200
    assert await nothing_stored(slack)


async def test_summarize_this_thread_as_a_slash_command_says_how_to_ask_in_a_thread(
    slack: Slack,
) -> None:
    slack.fake.seed_message(CHANNEL, "an old channel message nobody asked about")

    response = await slack.post(slack.fake.signed_slash_command("summarize this thread"))

    assert response.status == 200
    assert await slack.tasks() == []
    (answer,) = [p for p in slack.fake.response_url_posts if p.error is None]
    assert answer.body["text"] == t("summarize.thread_from_command", "en")
    assert answer.body["response_type"] == "ephemeral"
    assert slack.fake.calls_to("conversations.history") == []
