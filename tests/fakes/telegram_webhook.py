"""Driving atombot's Telegram webhook from outside: raw HTTP posts and stored-row counts.

:class:`WebhookBot` is a wired atombot (real router, repository, python-telegram-bot) whose
only adapter is Telegram in webhook mode against :class:`~tests.fakes.telegram_api.FakeTelegram`.
Tests post arbitrary bytes to it (:meth:`WebhookBot.post`), as Telegram or an attacker would,
and count what the database holds (:meth:`WebhookBot.stored_rows`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from sqlalchemy import func, select
from sqlmodel import SQLModel

from bot.adapters.base import Services
from bot.adapters.telegram import FloodLimiter, TelegramAdapter
from bot.app import App, build_app
from bot.config import Settings
from models.intents.spec import IntentParser
from storage.db import create_engine
from tests.fakes.telegram_api import DEFAULT_TOKEN, SECRET_HEADER, FakeTelegram, free_port

WEBHOOK_SECRET = "webhook-secret_42"


@dataclass
class Posted:
    """The answer to one webhook request."""

    status: int
    body: bytes


@dataclass
class WebhookBot:
    """atombot with the Telegram adapter serving its webhook on 127.0.0.1."""

    fake: FakeTelegram
    app: App
    adapter: TelegramAdapter
    url: str
    session: aiohttp.ClientSession
    database_url: str

    async def post(
        self,
        body: bytes,
        *,
        secret: str | None = WEBHOOK_SECRET,
        headers: Mapping[str, str] | None = None,
    ) -> Posted:
        """POST raw ``body`` (``secret`` None: no secret header); the status and body."""
        sent = {"Content-Type": "application/json", **(headers or {})}
        if secret is not None:
            sent[SECRET_HEADER] = secret
        async with self.session.post(
            self.url, data=body, headers=sent, timeout=aiohttp.ClientTimeout(total=60)
        ) as response:
            return Posted(response.status, await response.read())

    async def settle(self) -> None:
        """Wait until every queued update has been handled."""
        application = self.adapter.application
        processor = application.update_processor
        idle_rounds = 0
        while idle_rounds < 3:
            busy = not application.update_queue.empty() or processor.current_concurrent_updates
            idle_rounds = 0 if busy else idle_rounds + 1
            await asyncio.sleep(0.005)

    async def stored_rows(self) -> dict[str, int]:
        """Rows per table (after :meth:`settle`), Alembic's own table left out."""
        await self.settle()
        engine = create_engine(self.database_url)
        try:
            async with engine.connect() as conn:
                counts = {}
                for table in SQLModel.metadata.sorted_tables:
                    result = await conn.execute(select(func.count()).select_from(table))
                    counts[table.name] = int(result.scalar_one())
                return counts
        finally:
            await engine.dispose()


def unpaced() -> FloodLimiter:
    """No client-side pacing (the fake Telegram is unlimited in these tests)."""
    return FloodLimiter.unlimited()


@contextlib.asynccontextmanager
async def webhook_bot(
    settings: Settings,
    parser: IntentParser,
    fake: FakeTelegram,
    **overrides: Any,
) -> AsyncIterator[WebhookBot]:
    """Start atombot in Telegram webhook mode (no worker: tasks stay queued)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/hook"
    configured = settings.model_copy(
        update={
            "telegram_bot_token": DEFAULT_TOKEN,
            "telegram_api_url": fake.base_url,
            "telegram_webhook_url": url,
            "telegram_webhook_secret": WEBHOOK_SECRET,
            **overrides,
        }
    )
    adapter = TelegramAdapter(
        configured,
        webhook_listen="127.0.0.1",
        webhook_port=port,
        rate_limiter=unpaced(),
    )
    adapter.min_edit_interval = 0.0
    app = await build_app(
        configured, parser=parser, adapters=[adapter], with_worker=False, migrate=False
    )
    await adapter.start(Services(router=app.router, repo=app.repo, notify=app.notify))
    session = aiohttp.ClientSession()
    try:
        yield WebhookBot(fake, app, adapter, url, session, configured.resolved_database_url())
    finally:
        await session.close()
        await app.stop()
