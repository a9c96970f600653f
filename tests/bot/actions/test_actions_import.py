"""The action machinery is light: importing it (as the scheduler, the adapters and these
tests do) loads neither torch nor transformers; only the classifier and generation do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_importing_the_runner_and_the_performers_loads_no_torch() -> None:
    probe = (
        "import sys\n"
        "import bot.actions.runner, bot.actions.approval, bot.actions.registry\n"
        "import bot.actions.email, bot.actions.calendar, bot.actions.reply, handlers.actions\n"
        "heavy = sorted({'torch', 'transformers', 'accelerate'} & set(sys.modules))\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == ""
