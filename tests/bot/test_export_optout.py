"""The chat switch for training exports: ``/training`` in Telegram, ``/atom training`` in
Slack, against the fake platforms; and what a chat that opted out contributes to an export."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from bot.adapters.base import Services
from bot.adapters.slack import SlackAdapter
from bot.adapters.telegram import FloodLimiter, TelegramAdapter
from bot.app import App, build_app
from bot.config import Settings
from bot.texts import EN, ZH
from bot.training_optout import training_argument
from models.intents.spec import IntentParser
from storage.repository import Repository
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeTelegram, RateLimits

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning"
)

GROUP = -1001234567890
BOT_ID = DEFAULT_TOKEN.split(":")[0]


async def eventually(check: Callable[[], Any], within: float = 15.0) -> None:
    for _ in range(int(within / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_only_the_whole_training_command_is_the_switch() -> None:
    assert training_argument("training") == ""
    assert training_argument("Training OFF") == "off"
    assert training_argument("训练 关闭") == "关闭"
    assert training_argument("training plan for new hires, email it to Dana") is None
    assert training_argument("training maybe") is None


# -- Telegram -----------------------------------------------------------------------------------


@pytest.fixture
async def telegram(
    settings: Settings, parser: IntentParser
) -> AsyncIterator[tuple[FakeTelegram, App]]:
    async with FakeTelegram(rate_limits=RateLimits.unlimited()) as fake:
        configured = settings.model_copy(
            update={"telegram_bot_token": DEFAULT_TOKEN, "telegram_api_url": fake.base_url}
        )
        adapter = TelegramAdapter(
            configured, poll_timeout=1.0, rate_limiter=FloodLimiter.unlimited()
        )
        app = await build_app(
            configured, parser=parser, adapters=[adapter], with_worker=False, migrate=False
        )
        await adapter.start(Services(router=app.router, repo=app.repo, notify=app.notify))
        try:
            yield fake, app
        finally:
            await app.stop()


async def said(fake: FakeTelegram, command: str, args: str = "", n: int = 1) -> str:
    """Send a command in the group and wait for the bot's ``n``-th message there."""
    await fake.command(command, args, chat_id=GROUP)
    await eventually(lambda: len(fake.bot_messages(GROUP)) >= n)
    return str(fake.bot_messages(GROUP)[n - 1].text)


async def test_training_off_in_telegram_keeps_the_chat_out_and_on_lets_it_back(
    telegram: tuple[FakeTelegram, App],
) -> None:
    fake, app = telegram
    chat = {"platform": "telegram", "tenant": BOT_ID, "channel": str(GROUP)}

    assert await said(fake, "training") == EN["training.in"].format(off="/training off")
    assert await said(fake, "training", "off", n=2) == EN["training.out"].format(on="/training on")
    assert await app.repo.training_opted_out(**chat)
    assert not await app.repo.memory_opted_out(**chat)  # memory is a switch of its own
    assert await said(fake, "training", "on", n=3) == EN["training.in"].format(off="/training off")
    assert not await app.repo.training_opted_out(**chat)
    assert await said(fake, "training", "sometimes", n=4) == EN["training.usage"].format(
        command="/training"
    )


async def test_a_telegram_chat_without_memory_is_out_of_training_too(
    telegram: tuple[FakeTelegram, App],
) -> None:
    fake, _ = telegram
    await said(fake, "privacy", "off")
    answer = await said(fake, "training", n=2)
    assert answer == EN["training.out_memory"].format(privacy="/privacy on")


async def test_the_training_command_is_in_the_telegram_menu(
    telegram: tuple[FakeTelegram, App],
) -> None:
    fake, _ = telegram
    assert "training" in fake.my_commands()
    assert "training" in fake.my_commands(language_code="zh")


# -- Slack --------------------------------------------------------------------------------------


Post = Callable[[str], Awaitable[str]]


@pytest.fixture
async def slack(
    settings: Settings, parser: IntentParser
) -> AsyncIterator[tuple[Post, Repository, str]]:
    async with FakeSlack() as fake:
        config = settings.model_copy(
            update={
                "slack_bot_token": fake.bot_token,
                "slack_signing_secret": fake.signing_secret,
                "slack_api_url": fake.api_url,
            }
        )
        adapter = SlackAdapter(config, host="127.0.0.1", port=0, min_edit_interval=0.0)
        app = await build_app(config, parser=parser, adapters=[adapter], with_worker=False)
        await adapter.start(Services(router=app.router, repo=app.repo, notify=app.notify))

        async def post(text: str) -> str:
            before = len(fake.response_url_posts)
            response = await fake.post_to_app(adapter.url, fake.signed_slash_command(text))
            assert response.status == 200
            await asyncio.wait_for(adapter.wait_idle(), 30)
            (answer,) = fake.response_url_posts[before:]
            return str(answer.body["text"])

        try:
            yield post, app.repo, fake.team_id
        finally:
            await app.stop()


async def test_atom_training_off_in_slack_switches_the_channel_and_creates_no_task(
    slack: tuple[Post, Repository, str],
) -> None:
    post, repo, team = slack
    channel = {"platform": "slack", "tenant": team, "channel": "C0GENERAL"}
    assert await post("training off") == EN["training.out"].format(on="/atom training on")
    assert await repo.training_opted_out(**channel)
    assert await post("训练") == ZH["training.out"].format(on="/atom training on")
    assert await post("training on") == EN["training.in"].format(off="/atom training off")
    assert not await repo.training_opted_out(**channel)
    assert await repo.list_tasks(platform="slack") == []
