"""``atombot doctor [--json]``: check the configuration and the connections."""

from __future__ import annotations

import argparse
import json
from typing import Any

from bot.config import Settings

HELP = (
    "check the configuration and the connections (database, Slack, Telegram, model, ports) "
    "and say what is wrong and how to fix it; exits 1 when a check fails"
)


def register(subparsers: Any) -> None:
    """Add ``doctor [--json] [--lang en|zh] [--slack-port PORT]`` to the ``atombot`` parser."""
    doctor = subparsers.add_parser("doctor", help=HELP, description=HELP)
    doctor.add_argument("--json", action="store_true", help="print JSON")
    doctor.add_argument("--lang", choices=["en", "zh"], default="en", help="language of the report")
    doctor.add_argument(
        "--slack-port",
        type=int,
        default=None,
        help="the port `atombot run --slack-port` will use (default 3000)",
    )
    doctor.set_defaults(func=run_doctor, is_async=True)


async def run_doctor(args: argparse.Namespace, settings: Settings) -> int:
    """Print the findings; 0 when nothing failed, else 1."""
    from bot.doctor import Doctor, report

    findings = await Doctor(settings, locale=args.lang, slack_port=args.slack_port).diagnose()
    failed = any(f.status == "fail" for f in findings)
    if args.json:
        data = {"ok": not failed, "checks": [f.to_dict() for f in findings]}
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        print(report(findings, args.lang))
    return 1 if failed else 0
