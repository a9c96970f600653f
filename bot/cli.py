"""The ``atombot`` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import Settings

if TYPE_CHECKING:
    from bot.adapters.console import ConsoleAdapter

RUN_HELP = (
    "Run the bot: adapters (Slack/Telegram when their tokens are set, else the console), "
    "the scheduler and an in-process generation worker."
)


def _task_dict(task: Any) -> dict[str, Any]:
    return {
        "id": task.id,
        "request_id": task.request_id,
        "kind": task.kind,
        "status": task.status,
        "progress": task.progress,
        "attempts": task.attempts,
        "depends_on": task.depends_on,
        "inputs": task.inputs,
        "result": task.result,
        "error": task.error,
        "platform": task.platform,
        "tenant": task.tenant,
        "user": task.user,
        "created_at": task.created_at.isoformat() if task.created_at else None,
        "finished_at": task.finished_at.isoformat() if task.finished_at else None,
    }


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.adapters.console import ConsoleAdapter
    from bot.app import build_app, default_adapters
    from bot.config_audit import audit_configuration

    adapters = default_adapters(settings)
    for adapter in adapters:
        if isinstance(adapter, ConsoleAdapter):
            adapter.wait_timeout = args.wait_timeout
            adapter.notes_to_log = settings.log_format == "json"
        if args.slack_port is not None and adapter.platform == "slack":
            adapter.port = args.slack_port  # type: ignore[attr-defined]
    if any(isinstance(adapter, ConsoleAdapter) for adapter in adapters):
        from bot.texts import t

        starting = t("console.starting", "en", log_file=console_log_file(settings))
        if settings.log_format == "json":
            logging.getLogger("bot.cli").info("%s", starting)
        else:
            print(starting, file=sys.stderr)
    app = await build_app(
        settings,
        adapters=adapters,
        with_worker=not args.no_worker,
        ops_port=settings.ops_port or None,
    )
    await audit_configuration(app.repo, settings, role="run")
    for adapter in adapters:
        if isinstance(adapter, ConsoleAdapter):
            adapter.on_finished = app.stop_event.set
            _show_model_status(app.worker.generator if app.worker else None, adapter)
    await app.run()
    return 0


def _show_model_status(generator: object, console: ConsoleAdapter) -> None:
    """Let the console show the text model's loading (only the in-process backend loads)."""
    from models.generation.hf import HFGenerator

    # ATOMBOT_REDACT=always wraps the backend (models/generation/redact.py).
    generator = getattr(generator, "inner", generator)
    if isinstance(generator, HFGenerator):
        generator.on_status = console.model_status


def console_log_file(settings: Settings) -> Path:
    """Where ``atombot run`` with the console adapter writes the full log."""
    return settings.data_dir / "atombot.log"


def _console_mode(args: argparse.Namespace, settings: Settings) -> bool:
    """Whether this command talks to a person in the terminal (no Slack/Telegram adapter)."""
    if args.command == "worker":
        return False
    if args.command == "run":
        return not (settings.slack_enabled or settings.telegram_bot_token)
    return True


async def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import build_worker_app
    from bot.config_audit import audit_configuration

    app = await build_worker_app(settings, ops_port=settings.ops_port or None)
    await audit_configuration(app.repo, settings, role="worker")
    import signal

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, app.stop_event.set)
    await app.run_worker()
    return 0


async def _tasks(args: argparse.Namespace, settings: Settings) -> int:
    from storage.builder import open_repository

    repo = await open_repository(settings.resolved_database_url())
    try:
        if args.tasks_command == "show":
            task = await repo.get_task(args.id)
            if task is None:
                print(f"no task #{args.id}", file=sys.stderr)
                return 1
            votes = await repo.feedback_of(args.id)
            data = _task_dict(task)
            data["feedback"] = [
                {"user": v.user, "score": v.score, "reason": v.reason} for v in votes
            ]
            if args.json:
                print(json.dumps(data, ensure_ascii=False, indent=2))
            else:
                for key, value in data.items():
                    if key != "result":
                        print(f"{key}: {value}")
                print("result:")
                print(task.result or "")
            return 0
        tasks = await repo.list_tasks(status=args.status, limit=args.limit)
        if args.json:
            print(json.dumps([_task_dict(x) for x in tasks], ensure_ascii=False, indent=2))
        else:
            for task in tasks:
                percent = round(task.progress * 100)
                print(f"#{task.id}\t{task.status}\t{task.kind}\t{percent}%\t{task.user}")
        return 0
    finally:
        await repo.dispose()


def _db(args: argparse.Namespace, settings: Settings) -> int:
    from storage.migrate import current_revision, upgrade

    url = settings.resolved_database_url()
    upgrade(url)
    print(f"database at revision {current_revision(url)}")
    return 0


def _slack_manifest(args: argparse.Namespace, settings: Settings) -> int:
    from bot.adapters.slack import manifest

    print(
        json.dumps(manifest(settings, request_url=args.request_url), indent=2, ensure_ascii=False)
    )
    return 0


def build_arg_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``atombot`` command."""
    parser = argparse.ArgumentParser(
        prog="atombot",
        description="atombot: a self-hosted assistant for Slack and Telegram that splits requests "
        "into atomic tasks and runs them on a GPU worker. Configuration comes from environment "
        "variables (see README).",
    )
    parser.add_argument(
        "--log-level",
        default=None,
        help="DEBUG, INFO, WARNING (default: ATOMBOT_LOG_LEVEL or INFO)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help=RUN_HELP, description=RUN_HELP)
    run.add_argument(
        "--slack-port",
        type=int,
        default=None,
        help="serve Slack's HTTP endpoint POST /slack/events on this port",
    )
    run.add_argument(
        "--wait-timeout",
        type=float,
        default=600.0,
        help="console: seconds to wait for open tasks after stdin closes (default 600)",
    )
    run.add_argument(
        "--no-worker", action="store_true", help="do not run a generation worker in this process"
    )
    run.set_defaults(func=_run, is_async=True)

    worker = sub.add_parser("worker", help="run a generation worker alone (one per GPU)")
    worker.set_defaults(func=_worker, is_async=True)

    tasks = sub.add_parser("tasks", help="list tasks, or show one with its result and ratings")
    tasks.add_argument(
        "--status", choices=["queued", "running", "succeeded", "failed", "cancelled"], default=None
    )
    tasks.add_argument("--limit", type=int, default=50)
    tasks.add_argument("--json", action="store_true", help="print JSON")
    tasks_sub = tasks.add_subparsers(dest="tasks_command")
    show = tasks_sub.add_parser("show", help="show one task")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true", help="print JSON")
    tasks.set_defaults(func=_tasks, is_async=True)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply migrations").set_defaults(func=_db, is_async=False)

    slack = sub.add_parser("slack", help="Slack app helpers")
    slack_sub = slack.add_subparsers(dest="slack_command", required=True)
    man = slack_sub.add_parser(
        "manifest", help="print a Slack app manifest to paste into api.slack.com/apps"
    )
    man.add_argument(
        "--request-url",
        default=None,
        help="public URL of POST /slack/events (omit for Socket Mode)",
    )
    man.set_defaults(func=_slack_manifest, is_async=False)

    from bot.cli_audit import register as register_audit
    from bot.cli_digests import register as register_digests
    from bot.cli_doctor import register as register_doctor
    from bot.cli_feedback import register as register_feedback
    from bot.cli_intents import register as register_intents
    from bot.cli_learning import register_corrections
    from bot.cli_privacy import register as register_privacy
    from bot.cli_stats import register as register_stats
    from bot.cli_tune import register as register_tune

    register_digests(sub)
    register_doctor(sub)
    register_intents(sub)
    register_corrections(sub)
    register_feedback(sub)
    register_tune(sub)
    register_stats(sub)
    register_audit(sub)
    register_privacy(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``atombot`` console script."""
    parser = build_arg_parser()
    args = parser.parse_args(argv)
    settings = Settings()
    from bot.logs import configure_logging, settings_secrets

    # Tokens and secrets are redacted from every log line (httpx logs the bot token's URL).
    # In the terminal, libraries' INFO lines (alembic, the hub) would bury the conversation:
    # they are shown from WARNING up, and `run` keeps the full log in a file.
    console = _console_mode(args, settings)
    chat = console and args.command == "run"
    as_json = settings.log_format == "json"
    if chat or (as_json and args.command in ("run", "worker")):
        from models.generation.hf import hide_progress_bars

        hide_progress_bars()
    setup = configure_logging(
        args.log_level or settings.log_level,
        secrets=settings_secrets(settings),
        stream=sys.stderr,
        console_mode=console,
        log_file=console_log_file(settings) if chat else None,
        log_format=settings.log_format,
    )
    # With JSON logs stderr is for machines: it gets the whole log, not only warnings.
    if chat and not as_json and not (args.log_level or "log_level" in settings.model_fields_set):
        # The chat shows only warnings and errors; the file has the whole log. APScheduler's
        # "run time of job … was missed" (a busy CPU delayed a 1 s tick) is no news to a person.
        setup.handlers[0].setLevel(logging.WARNING)
        setup.handlers[0].addFilter(
            lambda record: (
                record.levelno >= logging.ERROR or not record.name.startswith("apscheduler")
            )
        )
    # APScheduler logs every run of every job at INFO; ours run each second.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    func = args.func
    if getattr(args, "is_async", False):
        return int(asyncio.run(func(args, settings)))
    if "settings" in func.__code__.co_varnames[: func.__code__.co_argcount]:
        return int(func(args, settings))
    return int(func(args))
