"""A SIGKILL of the bot in the middle of a live answer, then a restart on the same database,
gives exactly one complete final result on each platform.

The real ``atombot run`` process (router, in-process worker on the tiny model, delivery job)
talks to the fake Slack (a mention in a thread: a chat stream) and the fake Telegram (a
private chat: drafts). Once both answers show generated words and neither is finished, the
process is killed; a second one on the same database finishes them: in Slack the one
streamed message ends holding the whole result (no second message beside it), in Telegram
one final message holds it.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from storage.db import create_engine
from storage.repository import Repository
from storage.tables import TERMINAL_STATUSES, Task, TaskStatus
from tests.bot.running import RunningBot, bot_env, until
from tests.fakes.slack_api import FakeSlack, Message
from tests.fakes.telegram_api import FakeTelegram, RateLimits, free_port

CHANNEL = "C0GENERAL"
ANA = "U0ANA"
TG_USER = 1001
TELEGRAM_TOKEN = "7000001:AAStreamKillTelegramToken_abcdef12"
SIGNING = "stream-kill-signing-secret-0a1b2c3d"
# "short": the smallest token budget of email.draft, so each generation is quick.
SLACK_TEXT = "draft a short email to Dana about the rent"
TELEGRAM_TEXT = "draft a short email to Omar about the contract"
_WORD = re.compile(r"\w+")


def words(text: str) -> str:
    """The text's words, space-separated (markup and line breaks do not matter)."""
    return " ".join(_WORD.findall(text))


@pytest.fixture
def data_dir(tmp_path: Path, parser: Any) -> Path:
    """A data directory holding the session's trained classifier (no retraining)."""
    data = tmp_path / "data"
    parser.save(data / "intents")
    return data


def shown(message: Message) -> str:
    return message.text + " " + str(message.blocks)


async def progress(repo: Repository, task: Task) -> str:
    """ "live": generating, its stream open and showing generated words; "over": the task or
    its stream is finished; "coming": not yet either."""
    delivery = await repo.delivery_for(task.request_id)
    if task.status in TERMINAL_STATUSES or (
        delivery is not None and (delivery.done or delivery.stream_state not in (None, "open"))
    ):
        return "over"
    if delivery is None or delivery.stream_id is None or delivery.posting is not None:
        return "coming"
    chars = int((delivery.streamed or {}).get("chars", 0))
    return "live" if task.status == TaskStatus.running and chars > 0 else "coming"


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_a_bot_killed_mid_stream_and_restarted_gives_one_complete_final_result(
    database_url: str, data_dir: Path, tiny_model: Path
) -> None:
    repo = Repository(create_engine(database_url))
    async with (
        FakeSlack(signing_secret=SIGNING) as slack,
        FakeTelegram(token=TELEGRAM_TOKEN, rate_limits=RateLimits.unlimited()) as telegram,
    ):
        port = free_port()
        env = bot_env(database_url, data_dir, ATOMBOT_MODEL=str(tiny_model)) | {
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_SIGNING_SECRET": SIGNING,
            "SLACK_API_URL": slack.api_url,
            "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
            "TELEGRAM_API_URL": telegram.base_url,
            # The killed worker's lease runs out soon, so the restarted one takes the tasks.
            "ATOMBOT_LEASE_SECONDS": "3",
        }
        args = ["run", "--slack-port", str(port)]
        threads: dict[int, str] = {}  # the n-th Slack request -> its thread

        async def ask(platform: str) -> None:
            if platform == "telegram":
                await telegram.private_message(TELEGRAM_TEXT, user_id=TG_USER)
                return
            root = slack.seed_message(CHANNEL, "Dana's rent is late again", user=ANA)
            mention = slack.app_mention(SLACK_TEXT, user_id=ANA, thread_ts=root.ts)
            url = f"http://127.0.0.1:{port}/slack/events"
            answer = await slack.post_to_app(url, slack.signed_event(mention), within_s=60)
            assert answer.status == 200
            threads[len(threads)] = root.ts

        bot = await RunningBot.start(args, env)
        try:
            await until(lambda: telegram.calls_to("getUpdates"), "Telegram polling")
            await until(lambda: slack.calls_to("auth.test"), "Slack auth.test")
            for platform in ("slack", "telegram"):
                await ask(platform)
            # Kill once both answers are being written. A random-weight model may end an
            # answer after a few words: that platform is asked again (at most twice).
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 300
            asked = {"slack": 1, "telegram": 1}
            while True:
                tasks_now = sorted(await repo.list_tasks(limit=20), key=lambda t: t.id or 0)
                latest = {t.platform: t for t in tasks_now}
                counts = {p: sum(t.platform == p for t in tasks_now) for p in asked}
                states = {
                    p: await progress(repo, t) if counts[p] == asked[p] else "coming"
                    for p, t in latest.items()
                }
                assert loop.time() < deadline, f"the answers never streamed together: {states}"
                if len(states) == 2 and set(states.values()) == {"live"}:
                    break
                for platform, state in states.items():
                    if state == "over":
                        assert asked[platform] < 3, "the model kept ending its answers at once"
                        asked[platform] += 1
                        await ask(platform)
                await asyncio.sleep(0.05)
            os.kill(bot.process.pid, signal.SIGKILL)
            await bot.stop()
            killed = {p: t.request_id for p, t in latest.items()}
            for request_id in killed.values():
                delivery = await repo.delivery_for(request_id)
                assert delivery is not None and delivery.stream_state == "open"
                assert not delivery.done

            restarted = await RunningBot.start(args, env)
            try:

                async def delivered() -> None:
                    while True:
                        tasks = await repo.list_tasks(limit=20)
                        done = [await repo.delivery_for(t.request_id) for t in tasks]
                        if all(d is not None and d.done for d in done):
                            return
                        await asyncio.sleep(0.2)

                await asyncio.wait_for(delivered(), 600)
                await asyncio.sleep(0.5)  # nothing more may follow
            finally:
                _, errors = await restarted.stop()
        finally:
            if bot.process.returncode is None:  # the test failed before the kill
                await bot.stop(within_s=5)
        tasks = {t.request_id: t for t in await repo.list_tasks(limit=20)}
        await repo.dispose()

        assert all(t.status == TaskStatus.succeeded for t in tasks.values()), errors[-3000:]
        # Slack: in the killed request's thread, the one message the stream opened holds the
        # whole result; no message beside it.
        slack_task = tasks[killed["slack"]]
        slack_ids = sorted(t.request_id for t in tasks.values() if t.platform == "slack")
        thread = threads[slack_ids.index(killed["slack"])]
        replies = [m for m in slack.thread(CHANNEL, thread)[1:] if m.bot_id]
        (message,) = [m for m in replies if m.stream is not None]
        assert words(slack_task.result or "") in words(shown(message))
        result_words = words(slack_task.result or "")[:60]
        assert [m for m in replies if result_words in words(shown(m))] == [message]

        # Telegram: exactly one message holds the killed request's whole result.
        telegram_task = tasks[killed["telegram"]]
        result_words = words(telegram_task.result or "")
        finals = [m for m in telegram.bot_messages(TG_USER) if result_words in words(m.text)]
        assert len(finals) == 1 and finals[0].reply_markup, [
            m.text for m in telegram.bot_messages(TG_USER)
        ]
