"""Running the real ``atombot`` in a subprocess for end-to-end tests: its environment, start,
stop, and waiting for what the fakes see."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def bot_env(database_url: str, data_dir: Path, **settings: str) -> dict[str, str]:
    """This process's environment less every atombot, Slack and Telegram setting, plus a
    database, a data directory, fast polling, an ephemeral ops port and ``settings``."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TELEGRAM_", "ATOMBOT_"))
    }
    return env | {
        "DATABASE_URL": database_url,
        "ATOMBOT_DATA_DIR": str(data_dir),
        "ATOMBOT_POLL_SECONDS": "0.1",
        "ATOMBOT_OPS_PORT": "0",
        "HF_HUB_OFFLINE": "1",
        **settings,
    }


class RunningBot:
    """``python -m bot <args>``, its output read as it comes (so pipes never fill)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self._output = asyncio.gather(process.stdout.read(), process.stderr.read())  # type: ignore[union-attr]

    @classmethod
    async def start(cls, args: list[str], env: dict[str, str]) -> RunningBot:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=ROOT,
        )
        return cls(process)

    async def stop(self, *, within_s: float = 120) -> tuple[str, str]:
        """SIGTERM, wait (SIGKILL after ``within_s``); (stdout, stderr)."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), within_s)
        except TimeoutError:
            self.process.kill()
        stdout, stderr = await self._output
        return bytes(stdout).decode(), bytes(stderr).decode()


async def until(check: Callable[[], Any], what: str, within: float = 240.0) -> Any:
    """Poll ``check`` until it returns something true; return it, or fail naming ``what``."""
    for _ in range(int(within / 0.1)):
        if found := check():
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


__all__ = ["ROOT", "RunningBot", "bot_env", "until"]
