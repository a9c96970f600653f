"""ATOMBOT_LOG_FORMAT=json in the real processes: every stderr line is a JSON object, in
console mode, Slack over HTTP, Telegram polling and ``atombot worker``, and a marker sent in
a message never reaches the log at INFO."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.texts import t
from tests.bot.running import ROOT, RunningBot, bot_env, until

MARKER = "Zanzibar"
SLACK_TEXT = f"draft an email to Dana about the {MARKER} acquisition"
TELEGRAM_TEXT = f"draft an email to Omar about the {MARKER} contract"
TELEGRAM_TOKEN = "7000001:AAJsonLogsTelegramTokenNeverLogged_xyz"
SLACK_SIGNING = "json-logs-signing-secret-0a1b2c3d"


def json_lines(stderr: str) -> list[dict[str, Any]]:
    """Every stderr line as a JSON object; fails naming the first line that is not one."""
    lines = []
    for number, line in enumerate(stderr.splitlines(), 1):
        try:
            parsed = json.loads(line)
        except ValueError:
            pytest.fail(f"stderr line {number} is not JSON: {line!r}")
        assert isinstance(parsed, dict), line
        assert {"ts", "level", "logger", "message"} <= set(parsed), line
        lines.append(parsed)
    return lines


def base_env(database_url: str, data_dir: Path, model: Path) -> dict[str, str]:
    return bot_env(database_url, data_dir, ATOMBOT_MODEL=str(model), ATOMBOT_LOG_FORMAT="json")


@pytest.fixture
def data_dir(tmp_path: Path, parser: Any) -> Path:
    """A data directory holding the session's trained classifier (no retraining)."""
    data = tmp_path / "data"
    parser.save(data / "intents")
    return data


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_console_mode_keeps_the_chat_on_stdout_and_json_on_stderr(
    database_url: str, data_dir: Path, tiny_model: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        input=SLACK_TEXT + "\n",
        capture_output=True,
        text=True,
        env=base_env(database_url, data_dir, tiny_model),
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[0] == "Queued #1 draft email."
    assert "✅ #1 draft email" in done.stdout
    lines = json_lines(done.stderr)
    messages = [x["message"] for x in lines]
    assert t("console.greeting", "en") in messages  # the notes are log lines now
    worker_lines = [x for x in lines if x.get("task_id") == 1]
    assert worker_lines and all(x["platform"] == "console" for x in worker_lines)
    assert any(x.get("request_id") == 1 for x in lines)
    assert MARKER not in done.stderr


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_slack_http_telegram_polling_and_the_worker_log_json_without_message_text(
    database_url: str, data_dir: Path, tiny_model: Path
) -> None:
    from storage.db import create_engine
    from storage.repository import Repository
    from tests.fakes.slack_api import FakeSlack
    from tests.fakes.telegram_api import FakeTelegram, RateLimits, free_port

    repo = Repository(create_engine(database_url))
    async with (
        FakeSlack(signing_secret=SLACK_SIGNING) as slack,
        FakeTelegram(token=TELEGRAM_TOKEN, rate_limits=RateLimits.unlimited()) as telegram,
    ):
        env = base_env(database_url, data_dir, tiny_model) | {
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_SIGNING_SECRET": SLACK_SIGNING,
            "SLACK_API_URL": slack.api_url,
            "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
            "TELEGRAM_API_URL": telegram.base_url,
        }
        slack_port = free_port()
        bot = await RunningBot.start(["run", "--no-worker", "--slack-port", str(slack_port)], env)
        worker = await RunningBot.start(["worker"], env)
        try:
            await until(lambda: telegram.calls_to("getUpdates"), "Telegram polling")
            await until(lambda: slack.calls_to("auth.test"), "Slack auth.test")
            answer = await slack.post_to_app(
                f"http://127.0.0.1:{slack_port}/slack/events",
                slack.signed_slash_command(SLACK_TEXT),
                within_s=60,
            )
            assert answer.status == 200
            await telegram.private_message(TELEGRAM_TEXT)

            done: list[bool] = []

            async def finished() -> None:
                while True:
                    tasks = await repo.list_tasks(limit=10)
                    if len(tasks) >= 2 and all(x.status == "succeeded" for x in tasks):
                        return
                    await asyncio.sleep(0.2)

            await asyncio.wait_for(finished(), 300)
            done.append(True)
            await until(lambda: telegram.bot_messages(1001), "the Telegram result")
        finally:
            _, bot_stderr = await bot.stop()
            _, worker_stderr = await worker.stop()
            await repo.dispose()
    bot_lines = json_lines(bot_stderr)
    worker_lines = json_lines(worker_stderr)
    assert {x.get("platform") for x in bot_lines} >= {"slack", "telegram"}
    assert any(x.get("request_id") for x in bot_lines)
    generated = [x for x in worker_lines if x.get("task_id")]
    assert {x["platform"] for x in generated} == {"slack", "telegram"}
    assert all(x.get("request_id") and x.get("tenant") for x in generated)
    for name, stderr in (("bot", bot_stderr), ("worker", worker_stderr)):
        assert MARKER not in stderr, f"message text in the {name}'s INFO log"
        assert TELEGRAM_TOKEN not in stderr and SLACK_SIGNING not in stderr
