"""``atombot stats``: how each task kind and prompt variant does (ratings, speed, tokens)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from bot.config import Settings
from bot.stats import kind_stats, parse_since, render_table
from bot.texts import t
from storage.health import describe, is_outage
from storage.tables import utcnow

HELP = (
    "per task kind and prompt variant: tasks, rated share, up-vote rate with a 95%% interval, "
    "regenerate and failure rates, queue wait and generation time (p50/p95), tokens"
)


def register(subparsers: Any) -> None:
    """Add ``stats [--json] [--since DATE|7d] [--tenant PLATFORM:TENANT]`` to the parser."""
    stats = subparsers.add_parser("stats", help=HELP, description=HELP.replace("%%", "%"))
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.add_argument(
        "--since",
        metavar="DATE|AGE",
        help="only tasks created since a date (2026-11-30, UTC), a date-time, or an age "
        "(24h, 7d, 2w) (default: all time)",
    )
    stats.add_argument(
        "--tenant",
        metavar="PLATFORM:TENANT",
        help="only one workspace, e.g. slack:T0123 or telegram:<bot id> (default: all)",
    )
    stats.set_defaults(func=show_stats, is_async=True)


def _workspace(text: str) -> tuple[str, str]:
    platform, sep, tenant = text.partition(":")
    if not sep or not platform or not tenant:
        raise ValueError(f"--tenant {text!r}: write PLATFORM:TENANT, e.g. slack:T0123")
    return platform, tenant


def _generative(settings: Settings) -> Any:
    """The kind registry, to leave out kinds answered at once (help, status, reminders)."""
    from handlers.kinds import build_registry
    from models.intents import IntentsFileError, load_intents

    try:
        return build_registry(load_intents(settings.intents))
    except (IntentsFileError, OSError) as exc:
        print(f"warning: {exc}; counting the built-in kinds only", file=sys.stderr)
        return build_registry()


async def show_stats(args: argparse.Namespace, settings: Settings) -> int:
    """Print the figures as a table, or as JSON with ``--json``."""
    from storage.builder import open_repository

    try:
        since: datetime | None = parse_since(args.since, utcnow()) if args.since else None
        platform, tenant = _workspace(args.tenant) if args.tenant else (None, None)
    except ValueError as exc:
        print(f"atombot stats: {exc}", file=sys.stderr)
        return 2
    registry = _generative(settings)
    try:
        repo = await open_repository(settings.resolved_database_url())
        try:
            outcomes = await repo.task_outcomes(since=since, platform=platform, tenant=tenant)
        finally:
            await repo.dispose()
    except Exception as exc:
        if not is_outage(exc):
            raise
        print(
            f"atombot stats: {t('export.no_database', 'en', reason=describe(exc))}", file=sys.stderr
        )
        return 2
    # A kind the registry no longer knows (removed from the intents file) is still shown.
    kept = [o for o in outcomes if o.kind not in registry or o.kind in registry.generative_kinds]
    rows = kind_stats(kept)
    if args.json:
        data = {
            "since": since.isoformat() if since is not None else None,
            "tenant": args.tenant,
            "kinds": [row.as_dict() for row in rows],
        }
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    scope = f"workspace {args.tenant}" if args.tenant else "all workspaces"
    window = f"since {since:%Y-%m-%d %H:%M} UTC" if since is not None else "all time"
    print(f"tasks created {window}, {scope}")
    print(render_table(rows) if rows else "no tasks")
    return 0
