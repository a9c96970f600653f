"""The console path end to end, through the real ``atombot`` CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bot.texts import t

if TYPE_CHECKING:
    from models.intents import IntentClassifier


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, parser: IntentClassifier) -> Path:
    """Shared between the CLI runs, holding the session's trained classifier: a first start
    trains its own (tests/models/intents/test_persistence.py shows that), which would only
    repeat the session's training here."""
    path = tmp_path_factory.mktemp("atombot-data")
    parser.save(path / "intents")
    return path


def atombot(
    args: list[str], *, stdin: str, env: dict[str, str], timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=Path(__file__).resolve().parents[2],
    )


@pytest.fixture
def env(database_url: str, data_dir: Path, tiny_model: Path) -> dict[str, str]:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TELEGRAM_", "ATOMBOT_"))
    }
    return {
        **base,
        "DATABASE_URL": database_url,
        "ATOMBOT_DATA_DIR": str(data_dir),
        "ATOMBOT_MODEL": str(tiny_model),
        "ATOMBOT_POLL_SECONDS": "0.1",
        "ATOMBOT_OPS_PORT": "0",
        "HF_HUB_OFFLINE": "1",
    }


def test_a_request_piped_into_run_is_acknowledged_generated_and_rated(env: dict[str, str]) -> None:
    run = atombot(["run"], stdin="draft an email to Dana about the delayed shipment\n", env=env)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "Queued #1 draft email."
    assert any(line.startswith("⚙️ #1 draft email") or line.startswith("⏳ #1") for line in lines)
    result_at = lines.index("✅ #1 draft email")
    assert "".join(lines[result_at + 1 :]).strip(), "the generated email follows the result line"

    rated = atombot(["run"], stdin="/rate 1 up\n", env=env)
    assert rated.returncode == 0, rated.stderr
    assert "👍 recorded for #1" in rated.stdout

    shown = atombot(["tasks", "show", "1", "--json"], stdin="", env=env)
    assert shown.returncode == 0, shown.stderr
    task = json.loads(shown.stdout)
    assert task["status"] == "succeeded" and task["kind"] == "email.draft"
    assert task["result"] and task["inputs"]["recipients"] == ["Dana"]
    assert task["feedback"] == [{"user": "console", "score": 1, "reason": None}]


def test_the_console_says_what_to_type_and_keeps_library_logs_in_a_file(
    env: dict[str, str], data_dir: Path
) -> None:
    run = atombot(["run"], stdin="draft an email to Dana about the delayed shipment\n", env=env)
    assert run.returncode == 0, run.stderr
    notes = run.stderr.splitlines()
    # stderr: what the bot says about itself; stdout stays the conversation.
    assert t("console.greeting", "en") in notes
    assert t("console.model_loading", "en") in notes
    assert any(line.startswith("Text model ready (") for line in notes)
    assert not any(t("console.greeting", "en") in line for line in run.stdout.splitlines())
    # Library INFO lines (alembic's migration context, the hub) go to the log file only.
    assert "alembic" not in run.stderr and "INFO" not in run.stderr
    log = (data_dir / "atombot.log").read_text()
    assert "INFO alembic" in log


def test_rating_a_task_that_has_not_finished_gets_a_clear_answer(env: dict[str, str]) -> None:
    env = {**env, "ATOMBOT_MODEL": "/nonexistent/model"}
    run = atombot(
        ["run", "--no-worker", "--wait-timeout", "0"],
        stdin="summarize: the launch moved to May\n/rate 1 up\n",
        env=env,
    )
    assert run.returncode == 0, run.stderr
    assert "Task #1 hasn't finished yet" in run.stdout


def test_a_model_that_cannot_load_fails_the_task_with_the_reason_and_exits(
    env: dict[str, str],
) -> None:
    env = {**env, "ATOMBOT_MODEL": "/nonexistent/model"}
    run = atombot(["run"], stdin="draft an email to Dana about the delayed shipment\n", env=env)
    assert run.returncode == 0, run.stderr
    assert "❌ #1 draft email failed: the text model is not available" in run.stdout
    assert "/nonexistent/model" in run.stdout


def test_tasks_lists_what_is_stored(env: dict[str, str]) -> None:
    env = {**env, "ATOMBOT_MODEL": "/nonexistent/model"}
    atombot(
        ["run", "--no-worker", "--wait-timeout", "0"],
        stdin="summarize: we agreed to ship on Friday\n",
        env=env,
    )
    listed = atombot(["tasks", "--json"], stdin="", env=env)
    assert listed.returncode == 0, listed.stderr
    assert [(t["id"], t["kind"], t["status"]) for t in json.loads(listed.stdout)] == [
        (1, "summarize", "queued")
    ]


def test_help_for_every_command_exits_zero(env: dict[str, str]) -> None:
    for args in (
        ["--help"],
        ["run", "--help"],
        ["tasks", "--help"],
        ["db", "--help"],
        ["worker", "--help"],
    ):
        out = atombot(args, stdin="", env=env, timeout=60)
        assert out.returncode == 0, (args, out.stderr)
        assert "usage: atombot" in out.stdout
