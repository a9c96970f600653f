"""Slack's assistant pane (the Messages tab): the real bolt app and its ``AsyncAssistant``
against the fake Slack, wired by the real ``build_app``.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from bot.adapters.slack import manifest
from bot.adapters.slack.assistant import suggested_prompts
from bot.adapters.slack.manifest import BOT_EVENTS, BOT_SCOPES
from bot.config import Settings
from bot.texts import t
from handlers.kinds import build_registry
from tests.bot.adapters import test_slack as wiring
from tests.bot.adapters.test_slack import ANA, Slack, SlackFactory
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_assistant import SET_PROMPTS, SET_STATUS, SET_TITLE

# The wired bot of the Slack adapter's tests, reused (the fixtures by name).
fake = wiring.fake
make_slack = wiring.make_slack
slack = wiring.slack
working_slack = wiring.working_slack

LI = "U0LI"
REQUEST = "draft an email to Dana about the delayed shipment"


async def open_pane(bot: Slack, user: str = ANA) -> tuple[str, str]:
    """The user opens the assistant pane; returns its thread (channel, thread_ts)."""
    event = bot.fake.assistant.thread_started(user_id=user)
    response = await bot.post(bot.fake.signed_event(event))
    assert response.status == 200
    thread = event["assistant_thread"]
    return str(thread["channel_id"]), str(thread["thread_ts"])


async def ask(bot: Slack, where: tuple[str, str], text: str) -> None:
    """The user writes ``text`` into the pane's thread."""
    channel, thread_ts = where
    event = bot.fake.assistant.user_message(text, channel=channel, thread_ts=thread_ts)
    response = await bot.post(bot.fake.signed_event(event))
    assert response.status == 200


# --- opening the pane ----------------------------------------------------------------------


async def test_opening_the_pane_greets_and_suggests_prompts_from_the_task_kinds(
    slack: Slack,
) -> None:
    where = await open_pane(slack)

    pane = slack.fake.assistant.thread(*where)
    kinds = slack.app.router.kinds
    assert pane.prompts == suggested_prompts(kinds, "en")
    assert [p["title"] for p in pane.prompts or []] == [
        "Draft email",
        "Draft reply",
        "Summary",
        "Reminder",
    ]
    assert pane.prompts_title == t("pane.prompts_title", "en")
    (greeting,) = [m for m in slack.fake.thread(*where) if m.bot_id]
    assert greeting.text == t("pane.greeting", "en")


async def test_a_person_with_a_chinese_slack_gets_chinese_prompts(slack: Slack) -> None:
    slack.fake.add_user(LI).locale = "zh-CN"

    where = await open_pane(slack, user=LI)

    pane = slack.fake.assistant.thread(*where)
    assert pane.prompts == suggested_prompts(slack.app.router.kinds, "zh")
    assert [p["title"] for p in pane.prompts or []] == ["起草邮件", "起草回复", "总结", "提醒"]
    assert pane.prompts_title == t("pane.prompts_title", "zh")
    (greeting,) = [m for m in slack.fake.thread(*where) if m.bot_id]
    assert greeting.text == t("pane.greeting", "zh")


@pytest.mark.parametrize("locale", ["en", "zh"])
def test_every_suggested_prompt_names_a_kind_people_ask_for(locale: str) -> None:
    kinds = build_registry()

    prompts = suggested_prompts(kinds, locale)

    assert 1 <= len(prompts) <= 4
    labels = {k.label.get(locale).lower(): k for k in kinds}
    for prompt in prompts:
        kind = labels[prompt["title"].lower()]
        assert kind.planned and kind.visible
        assert prompt["message"] == t(f"pane.prompt.{kind.name}", locale)


@pytest.mark.parametrize("locale", ["en", "zh"])
async def test_a_suggested_prompt_sent_back_creates_a_task_of_its_kind(
    slack: Slack, locale: str
) -> None:
    kinds = slack.app.router.kinds
    by_label = {k.label.get(locale).lower(): k.name for k in kinds}
    where = await open_pane(slack)

    for prompt in suggested_prompts(kinds, locale):
        await ask(slack, where, prompt["message"])

    asked = [by_label[p["title"].lower()] for p in suggested_prompts(kinds, locale)]
    made = [x.kind for x in await slack.tasks()]
    assert made == asked


async def test_the_pane_over_socket_mode_gets_its_prompts(
    make_slack: SlackFactory, fake: FakeSlack
) -> None:
    bot = await make_slack(slack_app_token=fake.app_token)
    await bot.fake.wait_for_socket_connections(1)
    event = bot.fake.assistant.thread_started(user_id=ANA)
    thread = event["assistant_thread"]

    envelope = await bot.fake.push_event(event)
    await bot.fake.wait_for_ack(envelope)
    await bot.fake.wait_for_calls(SET_PROMPTS)
    await asyncio.wait_for(bot.adapter.wait_idle(), 30)

    pane = bot.fake.assistant.thread(thread["channel_id"], thread["thread_ts"])
    assert pane.prompts == suggested_prompts(bot.app.router.kinds, "en")


async def test_a_context_change_is_acked_and_costs_no_web_api_call(slack: Slack) -> None:
    where = await open_pane(slack)
    before = len(slack.fake.calls)

    event = slack.fake.assistant.context_changed(*where, context_channel="C0SALES")
    response = await slack.post(slack.fake.signed_event(event))

    assert response.status == 200
    assert slack.fake.calls[before:] == []


# --- a request in the pane -----------------------------------------------------------------


async def test_a_request_in_the_pane_is_routed_into_its_thread_with_title_and_status(
    slack: Slack,
) -> None:
    where = await open_pane(slack)

    await ask(slack, where, REQUEST)

    (task,) = await slack.tasks()
    assert task.kind == "email.draft"
    request = await slack.app.repo.get_request(task.request_id)
    assert request is not None
    assert (request.channel, request.thread, request.private) == (*where, False)
    pane = slack.fake.assistant.thread(*where)
    assert pane.title == REQUEST
    statuses = slack.fake.assistant.statuses(*where)
    assert statuses[0] == t("pane.status.thinking", "en")
    assert statuses[-1] == t("pane.status.working", "en", done=0, total=1)
    # The receipt went into the thread; the status set after it is still shown.
    receipt = [m for m in slack.fake.thread(*where) if m.bot_id][-1]
    assert f"#{task.id}" in receipt.text
    assert slack.fake.assistant.status(*where) == statuses[-1]
    (status_call,) = [
        c for c in slack.fake.calls_to(SET_STATUS) if c.args["status"] == statuses[-1]
    ]
    assert receipt.text in status_call.args["loading_messages"][0]


async def test_the_title_comes_from_the_first_request_only(slack: Slack) -> None:
    where = await open_pane(slack)

    await ask(slack, where, REQUEST)
    await ask(slack, where, "remind me tomorrow at 9am to send the report")

    assert len(slack.fake.calls_to(SET_TITLE, ok=True)) == 1
    assert slack.fake.assistant.thread(*where).title == REQUEST


async def test_an_answer_without_tasks_leaves_no_status(slack: Slack) -> None:
    where = await open_pane(slack)

    await ask(slack, where, "help")

    assert slack.fake.assistant.statuses(*where) == [t("pane.status.thinking", "en")]
    # The answer posted into the thread cleared the status (Slack does so on a post).
    answer = [m for m in slack.fake.thread(*where) if m.bot_id][-1]
    assert answer.text.startswith(t("help", "en"))
    assert slack.fake.assistant.status(*where) is None


async def test_statuses_follow_the_tasks_and_are_cleared_when_the_result_is_in(
    working_slack: Slack,
) -> None:
    bot = working_slack
    where = await open_pane(bot)
    await ask(bot, where, REQUEST)

    await bot.deliver()
    await bot.run_worker()
    await bot.deliver()

    (task,) = await bot.tasks()
    assert task.status == "succeeded"
    assert bot.fake.assistant.status(*where) is None
    result = [m for m in bot.fake.thread(*where) if m.bot_id][-1]
    assert result.blocks and result.ts != where[1]
    calls = [c for c in bot.fake.calls_to(SET_STATUS) if c.ok]
    shown = [(c.args["status"], tuple(c.args.get("loading_messages") or ())) for c in calls]
    assert shown[0][0] == t("pane.status.thinking", "en")
    assert any(s.startswith(t("pane.status.working", "en", done=0, total=1)) for s, _ in shown)
    # While the result streams, the loading messages name the request's tasks (its plan).
    assert any(loading and loading[0].startswith(f"#{task.id} ") for _, loading in shown)
    # The result is in: the status is cleared, once.
    assert shown[-1] == ("", ())
    # Only changes are sent: never the same status twice in a row.
    assert all(a != b for a, b in itertools.pairwise(shown))


async def test_a_429_on_set_status_is_waited_out(slack: Slack) -> None:
    where = await open_pane(slack)
    slack.fake.force_rate_limit(SET_STATUS, times=1, retry_after=1)

    await ask(slack, where, REQUEST)

    calls = slack.fake.calls_to(SET_STATUS)
    assert [c.status for c in calls[:2]] == [429, 200]
    assert calls[0].args == calls[1].args
    assert slack.fake.assistant.statuses(*where)[0] == t("pane.status.thinking", "en")
    assert slack.fake.assistant.status(*where) == t("pane.status.working", "en", done=0, total=1)


# --- the manifest ----------------------------------------------------------------------------


def test_the_manifest_declares_the_assistant_pane(settings: Settings) -> None:
    app = manifest(settings)

    assert "assistant:write" in BOT_SCOPES
    assert app["oauth_config"]["scopes"]["bot"] == list(BOT_SCOPES)
    assert app["features"]["assistant_view"]["assistant_description"]
    assert app["features"]["app_home"]["messages_tab_enabled"] is True
    for event in ("assistant_thread_started", "assistant_thread_context_changed", "message.im"):
        assert event in BOT_EVENTS
        assert event in app["settings"]["event_subscriptions"]["bot_events"]
