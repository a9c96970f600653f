"""``atombot feedback export``: ratings and corrections as training data (JSONL).

``atombot feedback export --format sft|dpo|intents [--since DATE] [--tenant PLATFORM:TENANT]
--out FILE`` writes the rows described in :mod:`bot.export`, atomically (a temporary file in
the target's directory, renamed over it at the end), and prints what it wrote and skipped to
stderr. A bad argument or an unwritable target is one line on stderr and exit status 2, with
nothing written and the database untouched.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bot.cli_audit import record
from bot.config import Settings
from bot.export import FORMATS, Export, ExportError, atomic_target, parse_since, parse_tenant
from bot.texts import t
from storage.health import describe, is_outage

EXPORT_HELP = (
    "write rated results (sft, dpo) or corrections (intents) as JSONL for training; "
    "chats that opted out are never exported"
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``feedback export`` to the ``atombot`` parser."""
    feedback = subparsers.add_parser("feedback", help="training data from ratings and corrections")
    sub = feedback.add_subparsers(dest="feedback_command", required=True)
    export = sub.add_parser("export", help=EXPORT_HELP, description=EXPORT_HELP)
    export.add_argument(
        "--format",
        choices=FORMATS,
        required=True,
        help="sft: chat messages of 👍 results; dpo: prompt/chosen/rejected from 👍/👎 pairs; "
        'intents: corrections as {"text", "label"} rows',
    )
    export.add_argument(
        "--since",
        metavar="DATE",
        help="only tasks / corrections created at or after DATE (YYYY-MM-DD or ISO 8601, UTC; "
        "default: all time)",
    )
    export.add_argument(
        "--tenant",
        metavar="PLATFORM:TENANT",
        help="only one workspace, e.g. slack:T0123ABCD or telegram:<bot id> (default: all)",
    )
    export.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="FILE",
        help="JSONL to write (replaced if it exists; readable by its owner only)",
    )
    export.set_defaults(func=export_feedback, is_async=True)


async def _collect(fmt: str, settings: Settings, **scope: Any) -> Export:
    from bot.export import dpo_rows, intents_rows, sft_rows
    from storage.builder import open_repository

    repo = await open_repository(settings.resolved_database_url())
    try:
        if fmt == "intents":
            found = await repo.export_corrections(**scope)
            export = intents_rows(found.corrections)
            export.skip("pending_review", found.pending)
            export.skip("opted_out", found.opted_out)
            return export
        rated = await repo.rated_results(**scope)
        export = (sft_rows if fmt == "sft" else dpo_rows)(rated.results)
        export.skip("opted_out", rated.opted_out)
        return export
    finally:
        await repo.dispose()


async def export_feedback(args: argparse.Namespace, settings: Settings) -> int:
    """Write one export; 0 when written (even with no rows), 2 for a bad argument or target."""
    from bot.export import write_rows

    try:
        since = parse_since(args.since) if args.since else None
        platform, tenant = parse_tenant(args.tenant) if args.tenant else (None, None)
        with atomic_target(args.out) as handle:
            try:
                export = await _collect(
                    args.format, settings, since=since, platform=platform, tenant=tenant
                )
            except Exception as exc:
                # Not the target's fault: say so, rather than "cannot write FILE".
                if not is_outage(exc):
                    raise
                raise ExportError("export.no_database", reason=describe(exc)) from None
            write_rows(handle, export.rows)
    except ExportError as exc:
        print(t("export.error", "en", reason=exc.text()), file=sys.stderr)
        return 2
    except OSError as exc:
        reason = t("export.cannot_write", "en", out=args.out, reason=exc.strerror or exc)
        print(t("export.error", "en", reason=reason), file=sys.stderr)
        return 2
    await record(
        settings,
        action="export",
        platform=platform,
        tenant=tenant,
        subject=f"export:{args.format}",
        detail={
            "format": args.format,
            "rows": len(export.rows),
            "since": since.isoformat() if since else None,
            "skipped": dict(export.skipped),
        },
    )
    print(export.summary(args.format, args.out), file=sys.stderr)
    return 0
