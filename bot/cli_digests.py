"""``atombot digests``: list digest subscriptions with their next run, or send one now."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.config import Settings
from models.intents.spec import KindTraits, TaskSpec
from storage.tables import DigestSubscription, utcnow

LIST_HELP = "list digest subscriptions and when each runs next"
RUN_HELP = "send one digest now, covering the time since the last one (for operators and tests)"


def register(subparsers: Any) -> None:
    """Add ``digests [--json]`` and ``digests run DIGEST_ID`` to the ``atombot`` parser."""
    digests = subparsers.add_parser("digests", help=LIST_HELP, description=LIST_HELP)
    digests.add_argument("--json", action="store_true", help="print JSON")
    digests.set_defaults(func=list_digests, is_async=True)
    digests_sub = digests.add_subparsers(dest="digests_command")
    run = digests_sub.add_parser("run", help=RUN_HELP, description=RUN_HELP)
    run.add_argument("digest_id", type=int, metavar="DIGEST_ID")
    run.set_defaults(func=run_digest, is_async=True)


def _local(when: datetime | None, timezone: str) -> str | None:
    if when is None:
        return None
    return when.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M %Z")


def digest_dict(sub: DigestSubscription, now: datetime) -> dict[str, Any]:
    """One subscription as shown by ``atombot digests`` (times in ISO 8601 UTC)."""
    from bot.scheduler import digest_schedule

    schedule = digest_schedule(sub, now)
    return {
        "id": sub.id,
        "platform": sub.platform,
        "tenant": sub.tenant,
        "channel": sub.channel,
        "user": sub.user,
        "cron": sub.cron,
        "timezone": sub.timezone,
        "locale": sub.locale,
        "last_window_end": sub.last_window_end.isoformat() if sub.last_window_end else None,
        "next_run": schedule.next_run.isoformat() if schedule.next_run else None,
        "next_run_local": _local(schedule.next_run, sub.timezone),
        "overdue": schedule.overdue.isoformat() if schedule.overdue else None,
    }


async def list_digests(args: argparse.Namespace, settings: Settings) -> int:
    """Print every subscription and its next run (a missed, unsent run is shown as due)."""
    from handlers.digest import describe_schedule
    from storage.builder import open_repository

    repo = await open_repository(settings.resolved_database_url())
    try:
        now = utcnow()
        subs = await repo.list_digests()
        if args.json:
            listing = [digest_dict(sub, now) for sub in subs]
            print(json.dumps(listing, ensure_ascii=False, indent=2))
            return 0
        if not subs:
            print("no digest subscriptions")
        for sub in subs:
            data = digest_dict(sub, now)
            line = (
                f"#{sub.id}\t{sub.platform}/{sub.channel}\t"
                f"{describe_schedule(sub.cron, 'en')} ({sub.timezone})\t"
                f"next {data['next_run_local']}"
            )
            if data["overdue"]:
                line += f"\tmissed {_local(datetime.fromisoformat(data['overdue']), sub.timezone)}"
            print(line)
        return 0
    finally:
        await repo.dispose()


class _NoParser:
    """Sending a digest classifies nothing, so the classifier is not loaded."""

    def parse(
        self,
        text: str,
        *,
        now_iso: str | None = None,
        timezone: str = "UTC",
        traits: KindTraits | None = None,
    ) -> list[TaskSpec]:
        return []


async def run_digest(args: argparse.Namespace, settings: Settings) -> int:
    """Send digest ``DIGEST_ID`` now through its platform's adapter (the console prints it)."""
    from bot.adapters.base import ChatAdapter, Services
    from bot.app import build_app

    app = await build_app(settings, parser=_NoParser(), with_worker=False)
    started: list[ChatAdapter] = []
    try:
        sub = await app.repo.get_digest(args.digest_id)
        if sub is None:
            print(f"no digest #{args.digest_id}", file=sys.stderr)
            return 1
        adapter = app.adapters.get(sub.platform)
        if adapter is None:
            print(
                f"digest #{args.digest_id} goes to {sub.platform}, which is not configured "
                f"here (configured: {', '.join(sorted(app.adapters)) or 'none'})",
                file=sys.stderr,
            )
            return 1
        # The console writes without starting (starting it would read stdin as requests).
        if sub.platform != "console":
            await adapter.start(Services(router=app.router, repo=app.repo, notify=lambda: None))
            started.append(adapter)
        if not await app.jobs.run_digest(args.digest_id, force=True):
            print(f"digest #{args.digest_id} could not be sent (see the log)", file=sys.stderr)
            return 1
        print(f"digest #{args.digest_id} sent", file=sys.stderr)
        return 0
    finally:
        for adapter in started:
            await adapter.stop()
        await app.repo.dispose()
