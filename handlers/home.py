"""What a person's home screen shows (Slack's App Home): their recent tasks and digest
subscriptions, already labelled in their language; and the votes a result message lists.

The adapters render this data; they never query the repository themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.texts import t
from handlers.digest import describe_schedule
from handlers.kinds import KindRegistry
from storage.repository import Repository

#: Recent tasks a home screen lists.
HOME_TASKS = 15


@dataclass(frozen=True)
class HomeTask:
    """One of the person's recent tasks, labelled."""

    id: int
    kind: str
    status: str


@dataclass(frozen=True)
class HomeDigest:
    """One of the person's digest subscriptions, its schedule in words."""

    channel: str
    schedule: str
    timezone: str


@dataclass(frozen=True)
class HomeData:
    """Everything a home screen shows, in ``locale``."""

    locale: str
    tasks: tuple[HomeTask, ...]
    digests: tuple[HomeDigest, ...]


async def home_data(
    repo: Repository,
    kinds: KindRegistry,
    *,
    platform: str,
    tenant: str,
    user: str,
    limit: int = HOME_TASKS,
) -> HomeData:
    """``user``'s recent visible tasks and digest subscriptions on ``platform``/``tenant``.

    The language is that of their latest task (English when they have none).
    """
    tasks = await repo.list_tasks(platform=platform, tenant=tenant, user=user, limit=limit)
    tasks = [x for x in tasks if kinds.visible(x.kind)]
    locale = str(tasks[0].inputs.get("locale", "en")) if tasks else "en"
    digests = [
        d
        for d in await repo.list_digests()
        if d.platform == platform and d.tenant == tenant and d.user == user
    ]
    return HomeData(
        locale=locale,
        tasks=tuple(
            HomeTask(
                id=x.id or 0,
                kind=kinds.label(x.kind, locale),
                status=t(f"state.{x.status}", locale),
            )
            for x in tasks
        ),
        digests=tuple(
            HomeDigest(
                channel=d.channel,
                schedule=describe_schedule(d.cron, locale),
                timezone=d.timezone,
            )
            for d in digests
        ),
    )


async def votes_of(repo: Repository, task_ids: Iterable[int]) -> dict[int, list[tuple[str, int]]]:
    """(voter, score) of every vote on each task, for the "👍 by …" line under a result."""
    votes: dict[int, list[tuple[str, int]]] = {}
    for task_id in sorted(set(task_ids)):
        votes[task_id] = [(f.user, f.score) for f in await repo.feedback_of(task_id)]
    return votes
