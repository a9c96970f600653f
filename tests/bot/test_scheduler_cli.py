"""``atombot digests [--json]`` and ``atombot digests run DIGEST_ID``."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

import pytest
import time_machine

from bot.cli_digests import register
from bot.config import Settings
from storage.repository import Repository


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="atombot")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


async def run(settings: Settings, *argv: str) -> int:
    args = parse(*argv)
    assert args.is_async
    return int(await args.func(args, settings))


async def subscribe(repo: Repository) -> int:
    sub = await repo.subscribe_digest(
        platform="console",
        tenant="local",
        channel="console",
        user="console",
        cron={"hour": 8, "minute": 0},
        timezone="Europe/Berlin",
        locale="en",
    )
    return sub.id or 0


async def test_digests_json_lists_each_subscription_with_its_next_run(
    repo: Repository, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with time_machine.travel(datetime(2026, 3, 28, 12, tzinfo=UTC), tick=False):
        digest_id = await subscribe(repo)
        assert await run(settings, "digests", "--json") == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["id"] == digest_id
    assert listed["next_run"] == "2026-03-29T06:00:00+00:00"
    assert listed["next_run_local"] == "2026-03-29 08:00 CEST"
    assert listed["overdue"] is None


async def test_digests_shows_a_missed_run_that_was_not_sent(
    repo: Repository, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with time_machine.travel(datetime(2026, 3, 28, 12, tzinfo=UTC), tick=False) as clock:
        await subscribe(repo)
        clock.move_to(datetime(2026, 3, 29, 9, tzinfo=UTC))
        assert await run(settings, "digests") == 0
    out = capsys.readouterr().out
    assert "every day at 08:00 (Europe/Berlin)" in out
    assert "next 2026-03-30 08:00 CEST" in out and "missed 2026-03-29 08:00 CEST" in out


async def test_digests_run_sends_one_now_through_the_console(
    repo: Repository, settings: Settings, no_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    digest_id = await subscribe(repo)
    assert await run(settings, "digests", "run", str(digest_id)) == 0
    assert "📰 Digest for" in capsys.readouterr().out
    sub = await repo.get_digest(digest_id)
    assert sub is not None and sub.last_window_end is not None


async def test_digests_run_of_an_unknown_digest_fails(
    settings: Settings, no_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run(settings, "digests", "run", "99") == 1
    assert "no digest #99" in capsys.readouterr().err
