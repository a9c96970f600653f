"""Task kinds that exist only in an operator's intents file (a ``task:`` block, no Python):
classified, queued, generated, delivered with buttons, rated, listed and counted — through
the console CLI and through Slack against the fake platform. Follow-ups in a result's thread
consume that result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from bot.adapters.base import Services
from bot.adapters.slack import SlackAdapter
from bot.app import App, build_app
from bot.config import Settings
from bot.types import Action, Button
from models.generation.base import (
    GenerationRequest,
    GenerationResult,
    Generator,
)
from storage.tables import Task, TaskStatus
from tests.fakes.generators import FakeGenerator
from tests.fakes.slack_api import FakeSlack

if TYPE_CHECKING:
    from models.intents import IntentClassifier

CHANNEL = "C0GENERAL"
ANA = "U0ANA"

TEAM_INTENTS = """\
version: "1"
nlu:
  - intent: report.draft
    description: Write a status or weekly report.
    slots: [topic]
    task:
      label: {en: status report, zh: 状态报告}
      prompt: |
        Write a concise status report about {topic} with sections Done, In progress, Risks, Next.
      format: markdown
      max_tokens: 48
      required:
        topic: {en: "What should the report cover?", zh: "报告要涵盖什么内容？"}
    examples: |
      - write the weekly status report for the data platform team
      - draft a status report on the billing migration
      - put together this week's progress report for the mobile app
      - status update report for the search project please
      - write a weekly report about the hiring pipeline
      - prepare the monthly status report for the infrastructure team
      - I need a progress report on the website redesign
      - compile a status report for the Q3 roadmap
      - write up a report on how the data warehouse project is going
      - weekly report for the security audit
      - write a status report
      - 写一份数据平台团队的周报
      - 帮我起草一份关于账单迁移的状态报告
  - intent: result.revise
    description: Change the last result in this thread.
    task:
      label: {en: revision, zh: 修改}
      prompt: |
        Rewrite the text below as the person asks.
        Text: {previous}
        What to change: {request}
      consumes: thread
      max_tokens: 48
    examples: |
      - make it shorter
      - more formal please
      - translate it into Chinese
      - add a subject line
      - shorten that
      - can you make it friendlier
      - rewrite it in a more casual tone
      - make this one more concise
      - turn it into bullet points
      - cut it down to three sentences
      - 改短一点
      - 翻译成英文
  - intent: email.draft
    description: Draft an email.
    slots: [recipients, topic]
    examples: |
      - draft an email to Dana about the delayed shipment
      - write an email to Tom about the launch
      - email the finance team about the Q3 budget
      - send an email to Priya about the hiring plan
      - compose an email to the client explaining the outage
      - draft a follow-up email to the candidate
      - write a short email to Lee about the offsite
      - email Chris that the meeting moved to Thursday
      - 给王经理写一封邮件，说明发货延迟的原因
      - 帮我给张三写封邮件，关于下周的产品发布
  - intent: help
    description: What the bot can do.
    examples: |
      - help
      - what can you do
      - how do I use this bot
      - show me the commands
      - what are your features
      - help me understand what you do
      - list what you can do
      - how does this work
      - 帮助
      - 你能做什么
  - intent: oos
    examples: |
      - what's the weather tomorrow
      - tell me a joke
      - who won the football game
      - what is the capital of France
      - order a pizza
      - play some music
      - how tall is mount everest
      - book a flight to Paris
      - what's 2 plus 2
      - recommend a movie
      - 今天天气怎么样
      - 讲个笑话
"""
REPORT = "write the weekly status report for the data platform team"


@pytest.fixture(scope="module")
def team_intents(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("team") / "intents.yaml"
    path.write_text(TEAM_INTENTS, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def team_parser(team_intents: Path, tmp_path_factory: pytest.TempPathFactory) -> IntentClassifier:
    """The real classifier, trained on the team's own intents file."""
    from models.intents import IntentClassifier

    cache = Path(os.environ.get("ATOMBOT_TEST_CACHE", tmp_path_factory.mktemp("cls")))
    return IntentClassifier.load_or_train(intents_path=team_intents, cache_dir=cache / "team")


@dataclass
class RecordingGenerator(FakeGenerator):
    """A backend that records each prompt and answers with a numbered draft (GPU stand-in)."""

    def answer(self, request: GenerationRequest) -> GenerationResult:
        return GenerationResult(text=f"DRAFT {len(self.prompts)}: Done, In progress, Risks, Next.")


@dataclass
class Slack:
    app: App
    adapter: SlackAdapter
    fake: FakeSlack

    async def post(self, request: Any) -> Any:
        response = await self.fake.post_to_app(self.adapter.url, request)
        await self.adapter.wait_idle()
        return response

    async def mention(self, text: str, *, thread_ts: str | None = None) -> dict[str, Any]:
        event = self.fake.app_mention(text, user_id=ANA, thread_ts=thread_ts)
        await self.post(self.fake.signed_event(event))
        return event

    async def tasks(self) -> list[Task]:
        return list(reversed(await self.app.repo.list_tasks(platform="slack", limit=100)))

    async def work_and_deliver(self) -> None:
        assert self.app.worker is not None
        await self.app.worker.run_until_idle(timeout=120)
        await self.app.jobs.deliverer.tick()


SlackFactory = Callable[[Generator], Awaitable[Slack]]


@pytest.fixture
async def make_slack(
    settings: Settings, team_parser: IntentClassifier, team_intents: Path
) -> AsyncIterator[SlackFactory]:
    built: list[Slack] = []
    async with FakeSlack() as fake:

        async def make(generator: Generator) -> Slack:
            config = settings.model_copy(
                update={
                    "intents": team_intents,
                    "slack_bot_token": fake.bot_token,
                    "slack_signing_secret": fake.signing_secret,
                    "slack_api_url": fake.api_url,
                }
            )
            adapter = SlackAdapter(config, host="127.0.0.1", port=0, min_edit_interval=0.0)
            app = await build_app(
                config, parser=team_parser, generator=generator, adapters=[adapter]
            )
            await adapter.start(Services(router=app.router, repo=app.repo, notify=app.notify))
            bot = Slack(app, adapter, fake)
            built.append(bot)
            return bot

        yield make
        for bot in built:
            await bot.app.stop()


def button_ids(blocks: list[dict[str, Any]]) -> set[str]:
    return {
        element["action_id"]
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
    }


async def test_a_yaml_only_kind_runs_end_to_end_in_slack_with_the_tiny_model(
    make_slack: SlackFactory, generator: Generator
) -> None:
    bot = await make_slack(generator)
    digest = await bot.app.repo.subscribe_digest(
        platform="slack",
        tenant=bot.fake.team_id,
        channel=CHANNEL,
        user=ANA,
        cron={"hour": 8, "minute": 0},
        timezone="UTC",
        locale="en",
    )

    await bot.mention(REPORT)

    (task,) = await bot.tasks()
    assert task.kind == "report.draft" and task.status == TaskStatus.queued
    assert task.inputs["topic"] == "data platform team", "the declared slot is filled"
    (receipt,) = bot.fake.ephemerals
    assert f"#{task.id} status report" in receipt.text

    await bot.work_and_deliver()

    (done,) = await bot.tasks()
    assert done.status == TaskStatus.succeeded and done.result
    (message,) = bot.fake.bot_messages(CHANNEL)
    assert f"#{done.id} status report" in str(message.blocks)
    assert button_ids(message.blocks) == {
        Button("", action, done.id or 0).data
        for action in (Action.rate_up, Action.rate_down, Action.regenerate)
    }

    press = bot.fake.block_actions(
        channel_id=CHANNEL,
        message_ts=message.ts,
        action_id=Button("", Action.rate_up, done.id or 0).data,
    )
    await bot.post(bot.fake.signed_interaction(press))
    votes = await bot.app.repo.feedback_of(done.id or 0)
    assert [(v.user, v.score) for v in votes] == [(ANA, 1)]

    await bot.post(bot.fake.signed_event(bot.fake.app_home_opened(user_id=ANA)))
    assert f"#{done.id}" in str(bot.fake.home_views[ANA]["blocks"])
    assert "status report" in str(bot.fake.home_views[ANA]["blocks"])

    assert await bot.app.jobs.run_digest(digest.id or 0, force=True)
    sent = [m.text for m in bot.fake.messages(CHANNEL) if "1 done" in m.text]
    assert sent and f"#{done.id} status report" in sent[-1]


async def test_regenerate_works_for_a_yaml_kind(make_slack: SlackFactory) -> None:
    bot = await make_slack(RecordingGenerator())
    await bot.mention(REPORT)
    await bot.work_and_deliver()
    (task,) = await bot.tasks()
    (message,) = bot.fake.bot_messages(CHANNEL)

    press = bot.fake.block_actions(
        channel_id=CHANNEL,
        message_ts=message.ts,
        action_id=Button("", Action.regenerate, task.id or 0).data,
    )
    await bot.post(bot.fake.signed_interaction(press))

    first, retry = await bot.tasks()
    assert retry.kind == "report.draft" and retry.retry_of == first.id


async def test_make_it_shorter_in_the_results_thread_consumes_that_result(
    make_slack: SlackFactory,
) -> None:
    gen = RecordingGenerator()
    bot = await make_slack(gen)
    asked = await bot.mention(REPORT)
    await bot.work_and_deliver()
    (report,) = await bot.tasks()

    await bot.mention("make it shorter", thread_ts=asked["ts"])

    _, revision = await bot.tasks()
    assert revision.kind == "result.revise"
    assert revision.inputs["results_of"] == [report.id]
    await bot.work_and_deliver()
    prompt = gen.prompts[-1].messages[-1]["content"]
    text_at = prompt.index("Text: <<<DATA\n")
    assert prompt[text_at:].startswith(f"Text: <<<DATA\n{report.result}\nDATA>>>")
    assert "What to change: <<<DATA\nmake it shorter\nDATA>>>" in prompt
    revised = await bot.app.repo.get_task(revision.id or 0)
    assert revised is not None and revised.status == TaskStatus.succeeded


async def test_a_follow_up_with_no_earlier_result_gets_a_helpful_answer(
    make_slack: SlackFactory,
) -> None:
    bot = await make_slack(RecordingGenerator())
    await bot.mention(REPORT)
    await bot.work_and_deliver()

    await bot.mention("make it shorter")  # a new thread of the same channel

    assert [t.kind for t in await bot.tasks()] == ["report.draft"]
    assert "no earlier result" in bot.fake.ephemerals[-1].text


async def test_a_missing_required_slot_is_asked_for_and_makes_no_task(
    make_slack: SlackFactory,
) -> None:
    bot = await make_slack(RecordingGenerator())

    await bot.mention("write a status report")

    assert await bot.tasks() == []
    assert "What should the report cover?" in bot.fake.ephemerals[-1].text


# --- the console, through the real CLI ------------------------------------------------------


def test_a_yaml_only_kind_runs_end_to_end_through_the_console(
    team_intents: Path, database_url: str, tiny_model: Path, tmp_path: Path
) -> None:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TELEGRAM_", "ATOMBOT_"))
    }
    env = {
        **base,
        "DATABASE_URL": database_url,
        "ATOMBOT_DATA_DIR": str(tmp_path / "data"),
        "ATOMBOT_INTENTS": str(team_intents),
        "ATOMBOT_MODEL": str(tiny_model),
        "ATOMBOT_POLL_SECONDS": "0.1",
        "ATOMBOT_OPS_PORT": "0",
        "HF_HUB_OFFLINE": "1",
    }

    def atombot(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            cwd=Path(__file__).resolve().parents[2],
        )

    run = atombot("run", stdin=REPORT + "\n")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "Queued #1 status report."
    result_at = lines.index("✅ #1 status report")
    assert "".join(lines[result_at + 1 :]).strip(), "the generated report follows"

    rated = atombot("run", stdin="/rate 1 up\n")
    assert rated.returncode == 0, rated.stderr
    assert "👍 recorded for #1" in rated.stdout

    kinds = atombot("intents", "kinds")
    assert kinds.returncode == 0, kinds.stderr
    assert f"report.draft\t{team_intents}:3\tstatus report / 状态报告" in kinds.stdout
    assert "email.draft\tbuilt-in" in kinds.stdout
    listed = {row["kind"]: row for row in json.loads(atombot("intents", "kinds", "--json").stdout)}
    assert listed["result.revise"]["consumes"] == "thread"
    assert listed["report.draft"]["required"]["topic"]["zh"] == "报告要涵盖什么内容？"
    assert listed["summarize.partial"]["visible"] is False
