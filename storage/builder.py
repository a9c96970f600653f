"""The one way to open atombot's storage: migrate, then a repository on a fresh engine."""

from __future__ import annotations

import asyncio

from storage.db import create_engine
from storage.migrate import upgrade
from storage.repository import Repository


async def open_repository(database_url: str, *, migrate: bool = True) -> Repository:
    """A :class:`Repository` on ``database_url``, brought up to the newest schema first.

    Used by the app and by every CLI command, so all of them see the same schema and engine
    settings. Call :meth:`Repository.dispose` when done.
    """
    if migrate:
        await asyncio.to_thread(upgrade, database_url)
    return Repository(create_engine(database_url))
