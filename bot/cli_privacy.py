"""``atombot purge`` (apply the retention period) and ``atombot forget`` (delete everything
held for one chat), both with ``--dry-run``; each says what it deleted, per table, and is
recorded in the audit log."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.cli_audit import cli_actor
from bot.config import Settings
from bot.export import PLATFORMS
from bot.texts import t
from storage.repo.retention import chat_subject
from storage.repository import Removal


def _print_removal(removal: Removal, head: str, as_json: bool, extra: dict[str, Any]) -> None:
    if as_json:
        print(json.dumps({**extra, **removal.as_dict()}, ensure_ascii=False, indent=2))
        return
    print(head)
    for table, n in sorted(removal.counts.items()):
        print(t("privacy.cli.row", "en", table=table, n=n))
    for column, n in sorted(removal.unlinked.items()):
        print(t("privacy.cli.unlinked", "en", column=column, n=n))


async def purge(args: argparse.Namespace, settings: Settings) -> int:
    """Delete (or with ``--dry-run`` count) what is older than the retention period."""
    from storage.builder import open_repository

    days = args.days if args.days is not None else settings.retention_days
    if days <= 0:
        print(t("privacy.cli.retention_off", "en"), file=sys.stderr)
        return 2
    cutoff = datetime.now(UTC) - timedelta(days=days)
    repo = await open_repository(settings.resolved_database_url())
    try:
        removal = await repo.purge_expired(
            older_than=cutoff,
            dry_run=args.dry_run,
            actor=None if args.dry_run else cli_actor(),
        )
    finally:
        await repo.dispose()
    key = "privacy.cli.would_purge" if args.dry_run else "privacy.cli.purged"
    shown = cutoff.strftime("%Y-%m-%d %H:%M UTC")
    head = t(key, "en", total=removal.total, cutoff=shown)
    _print_removal(removal, head, args.json, {"older_than": cutoff.isoformat(), "days": days})
    return 0


async def forget(args: argparse.Namespace, settings: Settings) -> int:
    """Delete (or with ``--dry-run`` count) everything held for one chat."""
    from handlers.forgetting import forget_everything
    from storage.builder import open_repository

    repo = await open_repository(settings.resolved_database_url())
    try:
        tenant = args.tenant
        if tenant is None:
            tenants = await repo.chat_tenants(platform=args.platform, channel=args.chat)
            if len(tenants) > 1:
                print(
                    t(
                        "privacy.cli.many_tenants",
                        "en",
                        platform=args.platform,
                        chat=args.chat,
                        tenants=", ".join(tenants),
                    ),
                    file=sys.stderr,
                )
                return 2
            tenant = tenants[0] if tenants else ""
        removal = await forget_everything(
            repo,
            platform=args.platform,
            tenant=tenant,
            channel=args.chat,
            actor=cli_actor(),
            settings=args.settings,
            dry_run=args.dry_run,
        )
    finally:
        await repo.dispose()
    chat = chat_subject(args.platform, tenant, args.chat)
    key = "privacy.cli.would_forget" if args.dry_run else "privacy.cli.forgot"
    head = t(key, "en", chat=chat, total=removal.total)
    extra = {"platform": args.platform, "tenant": tenant, "chat": args.chat}
    _print_removal(removal, head, args.json, extra)
    return 0


def register(subparsers: Any) -> None:
    """Add ``atombot purge`` and ``atombot forget``."""
    purge_cmd = subparsers.add_parser(
        "purge",
        help="delete what is older than the retention period (ATOMBOT_RETENTION_DAYS)",
        description="Delete requests with their tasks, results, votes and progress messages, "
        "corrections, sent reminder/digest messages and kept chat messages older than the "
        "retention period. A request with an unfinished task or an active reminder stays.",
    )
    purge_cmd.add_argument(
        "--days", type=int, default=None, help="this many days instead of ATOMBOT_RETENTION_DAYS"
    )
    purge_cmd.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
    purge_cmd.add_argument("--json", action="store_true", help="print JSON")
    purge_cmd.set_defaults(func=purge, is_async=True)

    forget_cmd = subparsers.add_parser(
        "forget",
        help="delete everything held for one chat (what /forget does in the chat)",
        description="Delete every request, task, result, vote, comment, correction, reminder, "
        "notice and kept message of one chat, and say what was deleted per table. The audit "
        "log keeps a row saying it happened (counts only).",
    )
    forget_cmd.add_argument("--platform", required=True, choices=PLATFORMS)
    forget_cmd.add_argument(
        "--chat", required=True, help="the chat id (Slack channel id, Telegram chat id)"
    )
    forget_cmd.add_argument(
        "--tenant",
        default=None,
        help="the workspace (Slack team id, Telegram bot id); needed only when the chat id "
        "is known in several",
    )
    forget_cmd.add_argument(
        "--settings",
        action="store_true",
        help="also drop the chat's settings (opt-outs) and digest subscription",
    )
    forget_cmd.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
    forget_cmd.add_argument("--json", action="store_true", help="print JSON")
    forget_cmd.set_defaults(func=forget, is_async=True)
