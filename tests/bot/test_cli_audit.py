"""``atombot audit``: its filters, its JSON, and the admin commands it shows with their actor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.cli import build_arg_parser
from bot.cli_audit import cli_actor, parse_when
from bot.config import Settings
from storage.repository import Repository
from storage.schemas import RequestCreate, TaskCreate


async def run(settings: Settings, *argv: str) -> int:
    args = build_arg_parser().parse_args(list(argv))
    if getattr(args, "is_async", False):
        return int(await args.func(args, settings))
    return int(args.func(args, settings))


def printed(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


async def some_entries(repo: Repository) -> None:
    await repo.audit(actor="U1", action="vote", platform="slack", tenant="T1", subject="task:1")
    await repo.audit(
        actor="U2", action="vote.reason", platform="slack", tenant="T2", subject="task:2"
    )
    await repo.audit(actor="42", action="request.accepted", platform="telegram", tenant="bot")
    await repo.audit(actor="system", action="purge", detail={"total": 3})


async def test_the_json_lists_every_entry_oldest_first_with_its_fields(
    repo: Repository, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    await some_entries(repo)

    assert await run(settings, "audit", "--json") == 0

    rows = printed(capsys)
    assert [r["action"] for r in rows] == ["vote", "vote.reason", "request.accepted", "purge"]
    assert rows[0] == {
        "id": rows[0]["id"],
        "at": rows[0]["at"],
        "platform": "slack",
        "tenant": "T1",
        "actor": "U1",
        "action": "vote",
        "subject": "task:1",
        "detail": {},
    }
    assert rows[0]["at"].endswith("Z") and rows[3]["detail"] == {"total": 3}


FILTERS = [
    (["--user", "U2"], ["vote.reason"]),
    (["--tenant", "slack:T1"], ["vote"]),
    (["--tenant", "telegram:bot"], ["request.accepted"]),
    (["--action", "vote"], ["vote", "vote.reason"]),
    (["--since", "2000-01-01"], ["vote", "vote.reason", "request.accepted", "purge"]),
    (["--since", "2999-01-01"], []),
    (["--since", "1h", "--user", "system"], ["purge"]),
    (["--limit", "1"], ["purge"]),
]


async def test_filters_narrow_the_listing(
    repo: Repository, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    await some_entries(repo)
    for argv, actions in FILTERS:
        assert await run(settings, "audit", "--json", *argv) == 0
        assert [r["action"] for r in printed(capsys)] == actions, argv


async def test_the_text_listing_has_one_line_per_entry(
    repo: Repository, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    await some_entries(repo)
    assert await run(settings, "audit", "--tenant", "slack:T1") == 0
    [line] = capsys.readouterr().out.splitlines()
    at, scope, actor, action, subject, detail = line.split("\t")
    assert (scope, actor, action, subject, detail) == ("slack:T1", "U1", "vote", "task:1", "")
    assert at.endswith("Z")
    assert await run(settings, "audit", "--user", "nobody") == 0
    assert capsys.readouterr().out.strip() == "no audit entries"


async def test_bad_filters_exit_2_and_say_why(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["--since", "yesterday"], ["--tenant", "T1"]):
        assert await run(settings, "audit", *argv) == 2
        assert "error:" in capsys.readouterr().err


def test_an_age_counts_back_from_now() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 12, 2, 12, tzinfo=UTC)
    assert parse_when("7d", now=now) == now - timedelta(days=7)
    assert parse_when("12h", now=now) == now - timedelta(hours=12)
    assert parse_when("2026-03-01") == datetime(2026, 3, 1, tzinfo=UTC)


async def test_admin_commands_appear_with_the_operator_as_actor(
    repo: Repository, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    created = await repo.create_request(
        request=RequestCreate(
            platform="slack", tenant="T1", channel="C1", user="U1", text="x", event_id="e1"
        ),
        tasks=[TaskCreate(kind="email.draft")],
    )
    task_id = created.tasks[0].id or 0
    first = await repo.add_correction(
        platform="slack", tenant="T1", channel="C1", user="U1", text="x", right_kind="oos"
    )
    second = await repo.add_correction(
        platform="slack",
        tenant="T1",
        channel="C1",
        user="U1",
        text="y",
        right_kind="summarize",
        task_id=task_id,
        status="pending",
    )

    assert await run(settings, "corrections", "drop", str(first.id)) == 0
    assert await run(settings, "corrections", "approve", str(second.id)) == 0
    out = tmp_path / "sft.jsonl"
    assert await run(settings, "feedback", "export", "--format", "sft", "--out", str(out)) == 0
    assert await run(settings, "forget", "--platform", "slack", "--chat", "C1") == 0
    assert await run(settings, "purge", "--days", "30") == 0
    capsys.readouterr()

    assert await run(settings, "audit", "--json", "--user", cli_actor()) == 0
    rows = printed(capsys)
    assert [r["action"] for r in rows] == [
        "admin.correction.dropped",
        "admin.correction.approved",
        "export",
        "forget",
        "purge",
    ]
    assert rows[0]["subject"] == f"correction:{first.id}" and rows[0]["tenant"] == "T1"
    assert rows[2]["detail"]["format"] == "sft" and rows[2]["detail"]["rows"] == 0
    assert rows[3]["subject"] == "chat:slack/T1/C1"
    assert rows[3]["detail"]["counts"] == {"correction": 1, "request": 1, "task": 1}
    assert rows[4]["detail"]["total"] == 0
    assert cli_actor().startswith("cli")
