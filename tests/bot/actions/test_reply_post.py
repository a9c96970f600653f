"""reply.post against the fake Slack platform (the real Slack adapter and slack_sdk): the
approved reply lands once in the thread it answers, as the bot, naming the person it is
posted for; a post Slack may or may not have applied is looked up instead of repeated.
(The app routes no messages here: the parser is a fixed one, no classifier is trained.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from bot.actions.base import ActionContext, ActionFailed
from bot.actions.reply import ReplyPostPerformer, attributed, build_performer
from bot.adapters.base import Services
from bot.adapters.slack import SlackAdapter
from bot.app import App, build_app
from bot.config import Settings
from bot.types import Action, ActionEvent, Target
from storage.schemas import RequestCreate, TaskCreate
from storage.tables import TaskStatus
from tests.bot.actions.actions_support import FixedParser
from tests.fakes.slack_api import FakeSlack

CHANNEL = "C0GENERAL"
ANA = "U0ANA"
REPLY = "Thanks Ben, Friday works for us. I'll confirm the slot tomorrow."


@dataclass
class Slack:
    app: App
    adapter: SlackAdapter
    fake: FakeSlack


@pytest.fixture
async def slack(settings: Settings) -> AsyncIterator[Slack]:
    async with FakeSlack() as fake:
        config = settings.model_copy(
            update={
                "slack_bot_token": fake.bot_token,
                "slack_signing_secret": fake.signing_secret,
                "slack_api_url": fake.api_url,
            }
        )
        adapter = SlackAdapter(config, host="127.0.0.1", port=0, min_edit_interval=0.0)
        app = await build_app(config, parser=FixedParser([]), adapters=[adapter], with_worker=False)
        await adapter.start(Services(router=app.router, repo=app.repo, notify=app.notify))
        try:
            yield Slack(app, adapter, fake)
        finally:
            await app.stop()


def context(thread: str, **overrides: Any) -> ActionContext:
    values: dict[str, Any] = {
        "task_id": 12,
        "kind": "reply.post",
        "key": "atombot-12-1",
        "draft": REPLY,
        "slots": {},
        "requester": ANA,
        "target": Target(platform="slack", tenant="T1", channel=CHANNEL, thread=thread, user=ANA),
        "requester_name": "ana",
    }
    values.update(overrides)
    return ActionContext(**values)


class Commits:
    def __init__(self, fake: FakeSlack) -> None:
        self.fake = fake
        self.posts_before: list[int] = []

    async def __call__(self) -> None:
        self.posts_before.append(len(self.fake.calls_to("chat.postMessage")))


async def test_the_reply_is_posted_in_its_thread_as_the_bot_with_attribution(
    slack: Slack,
) -> None:
    root = slack.fake.seed_thread(CHANNEL, "Can we move the delivery?", [("U0BEN", "Friday?")])
    performer = build_performer(slack.app.settings, {"slack": slack.adapter})
    assert performer is not None and performer.available()
    commits = Commits(slack.fake)

    outcome = await performer.perform(context(root.ts), commits)

    (posted,) = slack.fake.bot_messages(CHANNEL)
    assert posted.thread_ts == root.ts and posted.is_reply
    assert posted.text == f"{REPLY}\n\n— on behalf of @ana"
    assert posted.metadata is not None
    assert commits.posts_before == [0]
    assert outcome.summary == "Posted the reply in the thread."
    assert outcome.detail["thread"] == root.ts


async def test_approved_in_the_app_the_reply_goes_into_the_requests_thread_once(
    slack: Slack,
) -> None:
    root = slack.fake.seed_thread(CHANNEL, "Can we move the delivery?", [("U0BEN", "Friday?")])
    runner = slack.app.actions
    assert runner is not None and "reply.post" in runner.performers.kinds
    created = await slack.app.repo.create_request(
        request=RequestCreate(
            platform="slack",
            tenant=slack.fake.team_id,
            channel=CHANNEL,
            thread=root.ts,
            user=ANA,
            text="draft a reply saying Friday works and post it",
            event_id="Ev-reply",
            context={"user_name": "ana"},
        ),
        tasks=[
            TaskCreate(kind="reply.draft", status=TaskStatus.succeeded, result=REPLY),
            TaskCreate(kind="reply.post", depends_on=(0,)),
        ],
    )
    post = created.tasks[1].id or 0
    await runner.tick()
    assert slack.fake.calls_to("chat.postMessage") == []  # nothing before approval
    press = ActionEvent(
        platform="slack",
        tenant=slack.fake.team_id,
        channel=CHANNEL,
        user=ANA,
        action=Action.approve,
        task_id=post,
        event_id="press-approve",
    )
    assert "Approved" in (await slack.app.router.handle_action(press)).text
    for _ in range(3):
        await runner.tick()

    (posted,) = slack.fake.bot_messages(CHANNEL)
    assert posted.thread_ts == root.ts and posted.is_reply
    assert posted.text == f"{REPLY}\n\n— on behalf of @ana"
    done = await slack.app.repo.get_task(post)
    assert done is not None and done.status == TaskStatus.succeeded


async def test_a_private_request_still_answers_in_the_open_thread(slack: Slack) -> None:
    root = slack.fake.seed_thread(CHANNEL, "Can we move the delivery?", ["Friday?"])
    performer = ReplyPostPerformer.for_adapters({"slack": slack.adapter})
    target = Target(
        platform="slack", tenant="T1", channel=CHANNEL, thread=root.ts, user=ANA, private=True
    )

    await performer.perform(context(root.ts, target=target), Commits(slack.fake))

    (posted,) = slack.fake.bot_messages(CHANNEL)
    assert posted.thread_ts == root.ts


async def test_a_post_slack_may_have_applied_is_found_not_repeated(slack: Slack) -> None:
    root = slack.fake.seed_thread(CHANNEL, "Can we move the delivery?", ["Friday?"])
    slack.fake.fail_after_apply("chat.postMessage")
    performer = ReplyPostPerformer.for_adapters({"slack": slack.adapter})

    outcome = await performer.perform(context(root.ts), Commits(slack.fake))

    assert len(slack.fake.bot_messages(CHANNEL)) == 1
    assert outcome.summary == "Posted the reply in the thread."


async def test_a_refused_post_fails_with_the_platforms_reason(slack: Slack) -> None:
    root = slack.fake.seed_thread(CHANNEL, "Can we move the delivery?", ["Friday?"])
    slack.fake.force_error("chat.postMessage", "channel_not_found")
    performer = ReplyPostPerformer.for_adapters({"slack": slack.adapter})

    with pytest.raises(ActionFailed) as failed:
        await performer.perform(context(root.ts), Commits(slack.fake))

    assert failed.value.permanent is True
    assert "channel_not_found" in failed.value.reason
    assert slack.fake.bot_messages(CHANNEL) == []


async def test_nothing_is_posted_when_perform_stops_at_commit(slack: Slack) -> None:
    root = slack.fake.seed_thread(CHANNEL, "Can we move the delivery?", ["Friday?"])

    async def refuse() -> None:
        raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError):
        await ReplyPostPerformer.for_adapters({"slack": slack.adapter}).perform(
            context(root.ts), refuse
        )

    assert slack.fake.bot_messages(CHANNEL) == []


async def test_an_empty_reply_is_refused_before_approval() -> None:
    async def post(target: Target, text: str, *, client_id: str | None = None) -> None:
        raise AssertionError("nothing to post")

    with pytest.raises(ActionFailed) as failed:
        await ReplyPostPerformer(post).prepare(context("1.0", draft="  \n"))
    assert failed.value.permanent
    slots = await ReplyPostPerformer(post).prepare(context("1.0"))
    assert slots["preview"] == "Posted in the thread as the bot, on behalf of @ana"


@pytest.mark.usefixtures("no_env")
def test_the_attribution_is_in_the_requests_language() -> None:
    assert attributed("好的，周五可以。", "@ana", "zh") == "好的，周五可以。\n\n——代 @ana 发送"
    assert build_performer(Settings(), {}) is None
