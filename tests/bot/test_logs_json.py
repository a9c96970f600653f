"""ATOMBOT_LOG_FORMAT=json: one JSON object per line, with what the line is about."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from bot import logcontext
from bot.logs import REDACTED, JsonLines, LoggingSetup, SecretFilter, configure_logging

TOKEN = "7000001:AAFakeTelegramTokenForAtombotTests"


def records(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` as a JSON object (fails on a line that is not one)."""
    parsed = [json.loads(line) for line in text.splitlines()]
    assert all(isinstance(x, dict) for x in parsed)
    return parsed


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """configure_logging(json) into a StringIO; the root logger is restored afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    setup: LoggingSetup = configure_logging(
        "INFO", secrets=[TOKEN], stream=stream, log_format="json"
    )
    logcontext.clear()
    yield stream
    setup.close()
    logcontext.clear()
    for handler in saved_handlers:
        root.addHandler(handler)
    root.setLevel(saved_level)


def test_a_record_is_one_json_line_with_time_level_logger_and_message(
    json_log: io.StringIO,
) -> None:
    logging.getLogger("bot.router").info("queued %d tasks", 2)
    (line,) = records(json_log.getvalue())
    assert line["level"] == "INFO"
    assert line["logger"] == "bot.router"
    assert line["message"] == "queued 2 tasks"
    assert line["ts"].endswith("+00:00")
    assert "request_id" not in line and "task_id" not in line


def test_the_request_task_tenant_and_platform_being_handled_are_on_every_line(
    json_log: io.StringIO,
) -> None:
    logcontext.begin(platform="slack", tenant="T1")
    logcontext.bind(request_id=41)
    logging.getLogger("httpx").warning("a library line")
    logcontext.begin(task_id=7, request_id=41, platform="telegram", tenant="1001")
    logging.getLogger("models.generation.worker").info("generating")
    first, second = records(json_log.getvalue())
    assert (first["platform"], first["tenant"], first["request_id"]) == ("slack", "T1", 41)
    assert "task_id" not in first
    assert (second["task_id"], second["request_id"], second["platform"]) == (7, 41, "telegram")


async def test_concurrent_tasks_keep_their_own_context(json_log: io.StringIO) -> None:
    async def handle(task_id: int) -> None:
        logcontext.begin(task_id=task_id)
        await asyncio.sleep(0)
        logging.getLogger("models.generation.worker").info("task done")

    await asyncio.gather(handle(1), handle(2))
    logging.getLogger("bot.app").info("after")
    lines = records(json_log.getvalue())
    assert sorted(x["task_id"] for x in lines[:2]) == [1, 2]
    assert "task_id" not in lines[2]


def test_warnings_and_tracebacks_stay_one_json_object_per_line(json_log: io.StringIO) -> None:
    warnings.warn("an old API", DeprecationWarning, stacklevel=1)
    try:
        raise RuntimeError(f"rejected {TOKEN}")
    except RuntimeError:
        logging.getLogger("telegram.ext").exception("start failed")
    warned, failed = records(json_log.getvalue())
    assert warned["logger"] == "py.warnings" and "an old API" in warned["message"]
    assert failed["level"] == "ERROR" and "Traceback" in failed["exc"]
    assert TOKEN not in json_log.getvalue() and REDACTED in failed["exc"]


def test_plain_lines_written_to_stderr_are_wrapped_into_json_objects() -> None:
    target = io.StringIO()
    stderr = JsonLines(target, SecretFilter([TOKEN]))
    stderr.write('{"level": "INFO", "message": "already json"}\n')
    stderr.write(f"a library's own handler says {TOKEN}\nhalf a ")
    stderr.write("line\n\r 50%|#####     |\r100%|##########|\n")
    stderr.close_pending()
    lines = records(target.getvalue())
    assert [x["message"] for x in lines] == [
        "already json",
        f"a library's own handler says {REDACTED}",
        "half a line",
        "100%|##########|",
    ]
    assert lines[1]["logger"] == "stderr"


def test_an_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log format"):
        configure_logging("INFO", stream=io.StringIO(), log_format="xml")


def test_in_a_process_every_stderr_line_is_json_even_prints_and_uncaught_errors() -> None:
    script = (
        "import logging, sys, warnings\n"
        "from bot.logs import configure_logging\n"
        f"configure_logging('INFO', secrets=[{TOKEN!r}], stream=sys.stderr, log_format='json')\n"
        "import tqdm\n"
        "for _ in tqdm.tqdm(range(3)): pass  # progress bars are off\n"
        "print('a stray print', file=sys.stderr)\n"
        "handler = logging.StreamHandler()  # a library's own handler, made later\n"
        "logging.getLogger('lib').addHandler(handler)\n"
        "logging.getLogger('lib').warning('from the library')\n"
        "warnings.warn('careful')\n"
        f"raise SystemError('The token `{TOKEN}` was rejected by the server.')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    lines = records(done.stderr)
    messages = [x["message"] for x in lines]
    assert "a stray print" in messages and "careful" in " ".join(messages)
    assert messages.count("from the library") == 2  # its handler, and ours via propagation
    assert lines[-1]["level"] == "CRITICAL" and "SystemError" in lines[-1]["exc"]
    assert not any("it/s" in m or "3/3" in m for m in messages)
    assert TOKEN not in done.stderr
