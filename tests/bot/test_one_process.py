"""One ``atombot run`` serves Slack and Telegram together, over one store: each platform's
request goes all the way to its own result, and nothing of one reaches the other."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.bot.running import RunningBot, bot_env, until

if TYPE_CHECKING:
    from models.intents import IntentClassifier

SLACK_TEXT = "draft an email to Dana about the Halvorsen renewal"
TELEGRAM_TEXT = "draft an email to Omar about the Kestrel contract"
TELEGRAM_TOKEN = "7000002:AAOneProcessTelegramToken_abcdef"
SLACK_SIGNING = "one-process-signing-secret-9f8e7d"
TELEGRAM_USER = 1001


def feedback_pair(blocks: list[dict[str, object]]) -> bool:
    """Whether Slack blocks hold 👍/👎 (the native feedback element or atombot's buttons)."""
    dumped = json.dumps(blocks)
    return "feedback_buttons" in dumped or "thumbs" in dumped


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_slack_and_telegram_in_one_process_each_get_their_own_result(
    database_url: str, tmp_path: Path, parser: IntentClassifier, tiny_model: Path
) -> None:
    from storage.db import create_engine
    from storage.repository import Repository
    from tests.fakes.slack_api import FakeSlack
    from tests.fakes.telegram_api import FakeTelegram, RateLimits, free_port

    data_dir = tmp_path / "data"
    parser.save(data_dir / "intents")
    repo = Repository(create_engine(database_url))
    async with (
        FakeSlack(signing_secret=SLACK_SIGNING) as slack,
        FakeTelegram(token=TELEGRAM_TOKEN, rate_limits=RateLimits.unlimited()) as telegram,
    ):
        slack_port = free_port()
        env = bot_env(
            database_url,
            data_dir,
            ATOMBOT_MODEL=str(tiny_model),
            ATOMBOT_MAX_NEW_TOKENS="24",
            SLACK_BOT_TOKEN=slack.bot_token,
            SLACK_SIGNING_SECRET=SLACK_SIGNING,
            SLACK_API_URL=slack.api_url,
            TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN,
            TELEGRAM_API_URL=telegram.base_url,
        )
        bot = await RunningBot.start(["run", "--slack-port", str(slack_port)], env)
        try:
            await until(lambda: telegram.calls_to("getUpdates"), "Telegram polling")
            await until(lambda: slack.calls_to("auth.test"), "Slack auth.test")
            mention = slack.app_mention(SLACK_TEXT)
            answer = await slack.post_to_app(
                f"http://127.0.0.1:{slack_port}/slack/events",
                slack.signed_event(mention),
                within_s=60,
            )
            assert answer.status == 200
            await telegram.private_message(TELEGRAM_TEXT, user_id=TELEGRAM_USER)

            async def both_succeeded() -> None:
                while True:
                    tasks = await repo.list_tasks(limit=10)
                    if len(tasks) == 2 and all(x.status == "succeeded" for x in tasks):
                        return
                    await asyncio.sleep(0.2)

            await asyncio.wait_for(both_succeeded(), 300)
            # Each result is shown once in its own chat, with its rating buttons.
            slack_results = await until(
                lambda: [
                    m
                    for m in slack.bot_messages(mention["channel"])
                    if m.thread_ts == mention["ts"] and feedback_pair(m.blocks)
                ],
                "the Slack result with its feedback buttons",
            )
            telegram_results = await until(
                lambda: [
                    m for m in telegram.bot_messages(TELEGRAM_USER) if "👍" in m.button_texts()
                ],
                "the Telegram result with its buttons",
            )
            tasks = {task.platform: task for task in await repo.list_tasks(limit=10)}
        finally:
            _, stderr = await bot.stop()
            await repo.dispose()
    assert len(slack_results) == 1 and len(telegram_results) == 1, stderr[-3000:]
    assert set(tasks) == {"slack", "telegram"}
    assert tasks["slack"].tenant != tasks["telegram"].tenant
    # The Omar draft went to Telegram only, the Dana draft to Slack only.
    assert tasks["slack"].inputs["recipients"] == ["Dana"]
    assert tasks["telegram"].inputs["recipients"] == ["Omar"]
    assert not any("Omar" in m.text for m in slack.bot_messages())
    assert not any("Dana" in m.text for m in telegram.bot_messages(TELEGRAM_USER))
