"""``atombot audit``: read the audit log (who did what, when, in which tenant), and the
helpers admin commands use to record what they did."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.config import Settings
from bot.export import ExportError, parse_since, parse_tenant
from bot.texts import t
from storage.tables import AuditEntry

log = logging.getLogger(__name__)

_AGE = re.compile(r"(\d+)\s*([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def cli_actor() -> str:
    """Who runs an admin command: ``cli:<login name>`` (``cli`` when it cannot be told)."""
    try:
        name = getpass.getuser()
    except Exception:  # no login name in a bare container
        return "cli"
    return f"cli:{name}"[:128]


async def record(settings: Settings, *, action: str, **fields: Any) -> None:
    """Record one admin command in the audit log. A failure is reported on stderr, not
    raised: the command itself already happened."""
    from storage.builder import open_repository

    try:
        repo = await open_repository(settings.resolved_database_url())
        try:
            await repo.audit(actor=cli_actor(), action=action, **fields)
        finally:
            await repo.dispose()
    except Exception as exc:
        print(t("audit.cli.failed", "en", action=action, reason=exc), file=sys.stderr)


def record_sync(settings: Settings, *, action: str, **fields: Any) -> None:
    """:func:`record` for the commands that are not coroutines."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(record(settings, action=action, **fields))
        return
    # Called from code that runs an event loop already (a test, an embedding program).
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, record(settings, action=action, **fields)).result()


def parse_when(text: str, *, now: datetime | None = None) -> datetime:
    """``--since``: a date, an ISO 8601 time, or an age (``7d``, ``12h``, ``30m``)."""
    match = _AGE.fullmatch(text.strip().lower())
    if match:
        delta = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        return (now or datetime.now(UTC)) - delta
    try:
        return parse_since(text)
    except ExportError:
        raise ExportError("audit.cli.bad_since", value=text) from None


def entry_dict(row: AuditEntry) -> dict[str, Any]:
    """One audit row as JSON."""
    at = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)
    return {
        "id": row.id,
        "at": at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "platform": row.platform,
        "tenant": row.tenant,
        "actor": row.actor,
        "action": row.action,
        "subject": row.subject,
        "detail": row.detail,
    }


def entry_line(row: AuditEntry) -> str:
    """One audit row as a tab-separated line: time, tenant, actor, action, subject, detail."""
    data = entry_dict(row)
    scope = f"{row.platform}:{row.tenant}" if row.platform else (row.tenant or "-")
    detail = json.dumps(row.detail, ensure_ascii=False, sort_keys=True) if row.detail else ""
    return "\t".join(
        [data["at"][:19] + "Z", scope, row.actor, row.action, row.subject or "-", detail]
    )


async def show_audit(args: argparse.Namespace, settings: Settings) -> int:
    """Print the audit rows matching the filters; 2 for a bad argument."""
    from storage.builder import open_repository

    try:
        since = parse_when(args.since) if args.since else None
        platform, tenant = parse_tenant(args.tenant) if args.tenant else (None, None)
    except ExportError as exc:
        print(t("privacy.cli.error", "en", reason=exc.text()), file=sys.stderr)
        return 2
    repo = await open_repository(settings.resolved_database_url())
    try:
        rows = await repo.audit_entries(
            since=since,
            actor=args.user,
            platform=platform,
            tenant=tenant,
            action=args.action,
            limit=args.limit,
        )
    finally:
        await repo.dispose()
    if args.json:
        print(json.dumps([entry_dict(r) for r in rows], ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print(t("audit.cli.none", "en"))
    for row in rows:
        print(entry_line(row))
    return 0


def register(subparsers: Any) -> None:
    """Add ``atombot audit``."""
    audit = subparsers.add_parser(
        "audit",
        help="show the audit log: who did what, when, in which tenant",
        description="Show the audit log, oldest first: requests accepted, cancels, votes, "
        "corrections, exports, forgets, purges, classifier versions, admin commands and "
        "approvals. Rows hold ids and counts, never message text.",
    )
    audit.add_argument(
        "--since", default=None, help="from this date, ISO 8601 time, or age (7d, 12h)"
    )
    audit.add_argument("--user", default=None, help="only what this user id (or cli:NAME) did")
    audit.add_argument(
        "--tenant", default=None, help="only this PLATFORM:TENANT (e.g. slack:T0123ABCD)"
    )
    audit.add_argument(
        "--action", default=None, help="only this action (vote also finds vote.reason)"
    )
    audit.add_argument("--limit", type=int, default=1000, help="the latest N rows (default 1000)")
    audit.add_argument("--json", action="store_true", help="print JSON")
    audit.set_defaults(func=show_audit, is_async=True)
