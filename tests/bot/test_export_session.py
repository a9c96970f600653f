"""A scripted session exports what was rated: request → result → regenerate → 👎 and 👍 → the
DPO row and the SFT row, through the real router, worker (tiny model) and export command."""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import App, build_app
from bot.cli_feedback import register
from bot.config import Settings
from bot.types import Action, ActionEvent, Inbound
from models.generation.base import Generator
from models.intents.spec import IntentParser
from storage.tables import Task

CHAT: dict[str, Any] = {"platform": "console", "tenant": "local", "channel": "team"}


@pytest.fixture
async def app(settings: Settings, parser: IntentParser, generator: Generator) -> AsyncIterator[App]:
    wired = await build_app(
        settings, parser=parser, generator=generator, adapters=[], migrate=False
    )
    yield wired
    await wired.stop()


async def press(app: App, action: Action, task_id: int, user: str = "ana") -> tuple[int, ...]:
    reply = await app.router.handle_action(
        ActionEvent(
            **CHAT, user=user, action=action, task_id=task_id, event_id=f"{action}:{task_id}:{user}"
        )
    )
    return reply.task_ids


async def export(settings: Settings, out: Path, *argv: str) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(prog="atombot")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["feedback", "export", *argv, "--out", str(out)])
    assert await args.func(args, settings) == 0
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


async def session(app: App, channel: str = "team") -> tuple[Task, Task]:
    """Ask for an email, regenerate it, rate the first 👎 and the second 👍."""
    reply = await app.router.handle(
        Inbound(
            **{**CHAT, "channel": channel},
            user="ana",
            text="draft an email to Dana about the delayed shipment",
            event_id=f"ask:{channel}",
        )
    )
    (first_id,) = reply.task_ids
    assert app.worker is not None
    await app.worker.run_until_idle()
    (second_id,) = await press(app, Action.regenerate, first_id)
    await app.worker.run_until_idle()
    await press(app, Action.rate_down, first_id)
    await press(app, Action.rate_up, second_id)
    first, second = await app.repo.tasks_by_ids([first_id, second_id])
    return first, second


async def test_a_regenerated_and_rated_result_exports_exactly_one_dpo_row(
    app: App, settings: Settings, tmp_path: Path
) -> None:
    first, second = await session(app)
    assert second.retry_of == first.id
    assert first.prompt and first.prompt == second.prompt  # the worker stored what it was given
    assert first.result and second.result and first.result != second.result

    rows = await export(settings, tmp_path / "dpo.jsonl", "--format", "dpo")

    assert rows == [
        {
            "prompt": first.prompt,
            "chosen": [{"role": "assistant", "content": second.result}],
            "rejected": [{"role": "assistant", "content": first.result}],
        }
    ]
    sft = await export(settings, tmp_path / "sft.jsonl", "--format", "sft")
    assert sft == [{"messages": [*first.prompt, {"role": "assistant", "content": second.result}]}]


async def test_the_exported_files_are_what_tune_and_trl_read(
    app: App, settings: Settings, tmp_path: Path
) -> None:
    from models.tuning.data import load_data

    data_utils = pytest.importorskip("trl.data_utils")
    await session(app)
    for method in ("dpo", "sft"):
        out = tmp_path / f"{method}.jsonl"
        rows = await export(settings, out, "--format", method)
        assert load_data(out, method).rows == rows
        assert rows and all(data_utils.is_conversational(row) for row in rows)


async def test_a_chat_that_opted_out_exports_no_row(
    app: App, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await session(app)
    await app.repo.set_training_opt_out(**CHAT, opt_out=True)

    assert await export(settings, tmp_path / "dpo.jsonl", "--format", "dpo") == []
    assert await export(settings, tmp_path / "sft.jsonl", "--format", "sft") == []
    assert "2 from chats that opted out of training" in capsys.readouterr().err
