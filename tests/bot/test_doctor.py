"""``atombot doctor``: each broken configuration is named, with its fix, and exits 1."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.slack.manifest import BOT_SCOPES
from bot.cli import build_arg_parser
from bot.cli_doctor import run_doctor
from bot.config import Settings
from bot.doctor import head_revision
from storage.migrate import MIGRATIONS_DIR
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram, free_port

TELEGRAM_TOKEN = "7000001:AADoctorTelegramTokenForAtombotTests"


@dataclass
class Platforms:
    slack: FakeSlack
    telegram: FakeTelegram


@pytest.fixture
async def platforms() -> AsyncIterator[Platforms]:
    """Slack and Telegram fakes; the Slack token has every scope of the manifest."""
    async with FakeSlack() as slack, FakeTelegram(token=TELEGRAM_TOKEN) as telegram:
        yield Platforms(slack, telegram)


@pytest.fixture
def good(database_url: str, tmp_path: Path, platforms: Platforms) -> dict[str, Any]:
    """A configuration where everything works: Slack over HTTP, Telegram polling, a local
    model directory, free ports."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    return {
        "database_url": database_url,
        "data_dir": tmp_path / "data",
        "slack_bot_token": platforms.slack.bot_token,
        "slack_signing_secret": "doctor-signing-secret",
        "slack_api_url": platforms.slack.api_url,
        "telegram_bot_token": TELEGRAM_TOKEN,
        "telegram_api_url": platforms.telegram.base_url,
        "model": str(model),
        "ops_host": "127.0.0.1",
        "ops_port": free_port(),
    }


async def doctor(settings: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    """Run ``atombot doctor --json`` (parsed by the real CLI parser) on ``settings``."""
    args = build_arg_parser().parse_args(["doctor", "--json", "--slack-port", str(free_port())])
    code = await run_doctor(args, Settings(**settings))
    return code, json.loads(capsys.readouterr().out)


async def test_a_working_configuration_passes_every_check(
    good: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = await doctor(good, capsys)
    assert code == 0, out
    assert out["ok"] is True
    assert {c["check"] for c in out["checks"]} >= {
        "database",
        "slack.token",
        "slack.scopes",
        "slack.signing_secret",
        "telegram.token",
        "telegram.webhook",
        "model",
        "port",
    }
    assert all(c["status"] == "ok" and c["fix"] is None for c in out["checks"])


@dataclass
class Broken:
    """A broken configuration: what to change, and what the doctor must say."""

    changes: dict[str, Any]
    check: str
    says: str
    fix_says: str
    scopes: list[str] | None = None
    hold_ops_port: bool = False


DEAD_PORT = "__dead_port__"

BROKEN = {
    "missing signing secret": Broken(
        {"slack_signing_secret": None},
        "slack.signing_secret",
        "SLACK_SIGNING_SECRET is not set",
        "Signing Secret",
    ),
    "bad Slack token": Broken(
        {"slack_bot_token": "xoxb-0000-wrong-token"},
        "slack.token",
        "invalid_auth",
        "SLACK_BOT_TOKEN",
    ),
    "missing scope": Broken(
        {},
        "slack.scopes",
        "chat:write.public",
        "reinstall the app",
        scopes=[s for s in BOT_SCOPES if s != "chat:write.public"],
    ),
    "unreachable database": Broken(
        {"database_url": f"postgresql+psycopg://atombot:hunter2pass@127.0.0.1:{DEAD_PORT}/atombot"},
        "database",
        "cannot connect to the database",
        "DATABASE_URL",
    ),
    "unreachable model endpoint": Broken(
        {"generator": "openai", "openai_base_url": f"http://127.0.0.1:{DEAD_PORT}/v1"},
        "model",
        "does not answer",
        "ATOMBOT_OPENAI_BASE_URL",
    ),
    "port in use": Broken({}, "port", "already in use", "ATOMBOT_OPS_PORT", hold_ops_port=True),
    "bad Telegram token": Broken(
        {"telegram_bot_token": "7000002:AAWrongTelegramTokenForAtombotTests"},
        "telegram.token",
        "rejected the bot token",
        "BotFather",
    ),
    "webhook without https": Broken(
        {"telegram_webhook_url": "http://bot.example.com/tg", "telegram_webhook_secret": "s3cret"},
        "telegram.webhook",
        "is not https",
        "https://",
    ),
    "webhook without secret": Broken(
        {"telegram_webhook_url": "https://bot.example.com/tg"},
        "telegram.webhook",
        "TELEGRAM_WEBHOOK_SECRET is not set",
        "openssl rand",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN), ids=list(BROKEN))
async def test_each_broken_configuration_is_named_with_its_fix_and_exits_1(
    case: str,
    good: dict[str, Any],
    platforms: Platforms,
    capsys: pytest.CaptureFixture[str],
) -> None:
    broken = BROKEN[case]
    dead = str(free_port())  # nothing listens there
    settings = {
        **good,
        **{
            k: v.replace(DEAD_PORT, dead) if isinstance(v, str) else v
            for k, v in broken.changes.items()
        },
    }
    if broken.scopes is not None:
        platforms.slack.scopes = broken.scopes
    holder = socket.socket()
    try:
        if broken.hold_ops_port:
            holder.bind(("127.0.0.1", settings["ops_port"]))
            holder.listen()
        code, out = await doctor(settings, capsys)
    finally:
        holder.close()
    assert code == 1
    assert out["ok"] is False
    failed = [c for c in out["checks"] if c["status"] == "fail"]
    assert [c["check"] for c in failed] == [broken.check], failed
    assert broken.says in failed[0]["message"]
    assert broken.fix_says in failed[0]["fix"]
    assert "hunter2pass" not in json.dumps(out)  # a URL's password is never shown


async def test_the_report_reads_as_plain_lines_with_the_fix_under_the_problem(
    good: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    args = build_arg_parser().parse_args(["doctor", "--lang", "zh"])
    code = await run_doctor(args, Settings(**{**good, "slack_signing_secret": None}))
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    problem = next(i for i, line in enumerate(lines) if line.startswith("✘"))
    assert "SLACK_SIGNING_SECRET" in lines[problem]
    assert lines[problem + 1].startswith("    解决办法：")
    assert "1 项失败" in lines[-1]


async def test_a_database_behind_the_newest_migration_is_told_to_upgrade(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from storage.migrate import upgrade

    url = f"sqlite:///{(tmp_path / 'old.db').as_posix()}"
    upgrade(url, "0001")
    args = build_arg_parser().parse_args(["doctor", "--json"])
    code = await run_doctor(args, Settings(database_url=url, ops_port=0, model=str(tmp_path)))
    out = json.loads(capsys.readouterr().out)
    database = next(c for c in out["checks"] if c["check"] == "database")
    assert code == 1 and database["status"] == "fail"
    assert "atombot db upgrade" in database["fix"]


def test_the_newest_revision_is_read_from_the_migration_scripts() -> None:
    head = head_revision(MIGRATIONS_DIR / "versions")
    assert head is not None
    assert not any(
        f'down_revision = "{head}"' in p.read_text()
        for p in (MIGRATIONS_DIR / "versions").iterdir()
        if p.suffix == ".py"
    )
