"""``atombot feedback export``: the files it writes, its filters, and bad input that changes
nothing."""

from __future__ import annotations

import argparse
import itertools
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import time_machine

from bot.cli import build_arg_parser
from bot.cli_feedback import register
from bot.config import Settings
from storage.repository import Repository
from storage.schemas import RequestCreate, TaskCreate

PROMPT = [{"role": "user", "content": "draft an email to Dana about the delayed shipment"}]
_events = itertools.count(1)


async def run(settings: Settings, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="atombot")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["feedback", "export", *argv])
    return int(await args.func(args, settings))


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def liked(
    repo: Repository, result: str, *, platform: str = "slack", tenant: str = "T1"
) -> int:
    """A finished email task rated 👍, as the worker and a button press leave it."""
    created = await repo.create_request(
        request=RequestCreate(
            platform=platform,
            tenant=tenant,
            channel="C1",
            user="U1",
            text="draft an email to Dana about the delayed shipment",
            event_id=f"e{next(_events)}",
        ),
        tasks=[TaskCreate(kind="email.draft")],
    )
    task_id = created.tasks[0].id or 0
    await repo.claim(worker_id="w", limit=10, lease_seconds=30)
    await repo.complete(task_id=task_id, worker_id="w", result=result, prompt=PROMPT)
    await repo.record_feedback(task_id=task_id, user="U1", score=1)
    return task_id


def answer(result: str) -> dict[str, Any]:
    return {"messages": [*PROMPT, {"role": "assistant", "content": result}]}


def test_the_command_is_part_of_atombot() -> None:
    args = build_arg_parser().parse_args(
        ["feedback", "export", "--format", "dpo", "--out", "x.jsonl"]
    )
    assert (args.format, args.out, args.since, args.tenant) == ("dpo", Path("x.jsonl"), None, None)


async def test_since_and_tenant_choose_the_rows(
    repo: Repository, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with time_machine.travel(datetime(2026, 2, 27, 12, tzinfo=UTC), tick=False):
        await liked(repo, "February")
    with time_machine.travel(datetime(2026, 3, 2, 12, tzinfo=UTC), tick=False):
        await liked(repo, "March")
        await liked(repo, "March, other workspace", platform="telegram", tenant="42")
    out = tmp_path / "sft.jsonl"

    assert await run(settings, "--format", "sft", "--since", "2026-03-01", "--out", str(out)) == 0
    assert rows(out) == [answer("March"), answer("March, other workspace")]
    assert await run(settings, "--format", "sft", "--tenant", "slack:T1", "--out", str(out)) == 0
    assert rows(out) == [answer("February"), answer("March")]
    assert (
        await run(
            settings, "--format", "sft", "--since", "2026-03-01", "--tenant", "telegram:42",
            "--out", str(out),
        )
        == 0
    )  # fmt: skip
    assert rows(out) == [answer("March, other workspace")]
    assert capsys.readouterr().err.splitlines()[-1] == f"wrote 1 sft row(s) to {out}"


async def test_intents_rows_are_the_corrections_and_the_summary_says_what_was_skipped(
    repo: Repository, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where: dict[str, Any] = {"platform": "slack", "tenant": "T1", "user": "U1"}
    await repo.add_correction(
        **where, channel="C1", text="wrap up the thread", right_kind="summarize"
    )
    await repo.add_correction(**where, channel="C2", text="secret", right_kind="summarize")
    await repo.set_training_opt_out(platform="slack", tenant="T1", channel="C2", opt_out=True)
    out = tmp_path / "intents.jsonl"

    assert await run(settings, "--format", "intents", "--out", str(out)) == 0

    [row] = rows(out)
    assert (row["text"], row["label"], row["tenant"]) == (
        "wrap up the thread",
        "summarize",
        "slack:T1",
    )
    assert capsys.readouterr().err == (
        f"wrote 1 intents row(s) to {out}; skipped: 1 from chats that opted out of training\n"
    )


async def test_the_export_is_readable_by_its_owner_only_even_over_an_open_file(
    repo: Repository, settings: Settings, tmp_path: Path
) -> None:
    await liked(repo, "private")
    out = tmp_path / "with space" / "sft ü.jsonl"
    out.parent.mkdir()
    out.write_text("old")
    out.chmod(0o644)

    assert await run(settings, "--format", "sft", "--out", str(out)) == 0

    assert rows(out) == [answer("private")]
    assert out.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("kind", ["symlink", "dangling symlink", "fifo"])
async def test_a_link_or_special_file_as_target_is_refused_and_left_alone(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/never.db", data_dir=tmp_path / "d")
    elsewhere = tmp_path / "elsewhere.jsonl"
    out = tmp_path / "out.jsonl"
    if kind == "fifo":
        os.mkfifo(out)
    else:
        if kind == "symlink":
            elsewhere.write_text("keep me")
        out.symlink_to(elsewhere)
    before = sorted(os.listdir(tmp_path))

    assert await run(settings, "--format", "sft", "--out", str(out)) == 2

    err = capsys.readouterr().err
    assert (
        err.startswith(f"error: cannot write {out}: it is a symbolic link") and err.count("\n") == 1
    )
    assert sorted(os.listdir(tmp_path)) == before
    assert out.is_symlink() == (kind != "fifo")
    if kind == "symlink":
        assert elsewhere.read_text() == "keep me"


async def test_a_database_that_cannot_be_opened_is_named_as_such_not_as_the_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    settings = Settings(database_url=f"sqlite:///{tmp_path}/a-file/atombot.db", data_dir=tmp_path)
    out = tmp_path / "sft.jsonl"

    assert await run(settings, "--format", "sft", "--out", str(out)) == 2

    err = capsys.readouterr().err
    assert err.startswith("error: cannot open the database: ") and err.count("\n") == 1
    assert os.listdir(tmp_path) == ["a-file"]


@pytest.mark.parametrize("where", ["missing/dir/out.jsonl", ".", "a-file/out.jsonl"])
async def test_an_unwritable_target_is_one_error_line_and_nothing_is_written(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    database = tmp_path / "never-opened.db"
    settings = Settings(database_url=f"sqlite:///{database}", data_dir=tmp_path / "data")
    before = sorted(os.listdir(tmp_path))

    assert await run(settings, "--format", "dpo", "--out", str(tmp_path / where)) == 2

    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write {tmp_path / where}") and err.count("\n") == 1
    assert sorted(os.listdir(tmp_path)) == before  # no export, no temporary file, no database


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--since", "last week"], "error: --since 'last week' is not a date (YYYY-MM-DD)"),
        (["--since", "9999-12-31T23:00-05:00"], "error: --since '9999-12-31T23:00-05:00' is out"),
        (["--tenant", "T0123"], "error: --tenant 'T0123' is not PLATFORM:TENANT"),
        (["--tenant", "teams:T0123"], "error: --tenant 'teams:T0123': unknown platform 'teams'"),
    ],
)
async def test_a_bad_filter_is_one_error_line_and_changes_nothing(
    argv: list[str], error: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "never-opened.db"
    settings = Settings(database_url=f"sqlite:///{database}", data_dir=tmp_path / "data")
    out = tmp_path / "sft.jsonl"

    assert await run(settings, "--format", "sft", *argv, "--out", str(out)) == 2

    err = capsys.readouterr().err
    assert err.startswith(error) and err.count("\n") == 1
    assert os.listdir(tmp_path) == []
