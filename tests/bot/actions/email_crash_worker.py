"""The worker process test_email_crash.py kills: the real action runner with the real
email.send performer, ticking until it is killed (or giving up after ``seconds``).

    python -m tests.bot.actions.email_crash_worker DATABASE_URL SMTP_PORT [SECONDS]
"""

from __future__ import annotations

import asyncio
import sys

from bot.actions.email import EmailSendPerformer, SmtpConfig
from bot.actions.registry import ActionRegistry
from bot.actions.runner import ActionRunner
from storage.db import create_engine
from storage.repository import Repository

SENDER = "Atombot <atombot@example.com>"
#: Short, so that the restarted runner may take the run over soon after the kill.
LEASE_SECONDS = 1.0


async def main(url: str, port: int, seconds: float) -> int:
    repo = Repository(create_engine(url))
    smtp = SmtpConfig(
        host="127.0.0.1",
        port=port,
        starttls=False,
        sender=SENDER,
        timeout=10.0,
        local_hostname="worker.test",
    )
    runner = ActionRunner(
        repo,
        ActionRegistry([EmailSendPerformer(smtp)]),
        owner="crash-worker",
        lease_seconds=LEASE_SECONDS,
    )
    print("worker ready", flush=True)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        await runner.tick()
        await asyncio.sleep(0.05)
    await repo.dispose()
    return 3  # never killed: the test fails on this exit status


if __name__ == "__main__":
    limit = float(sys.argv[3]) if len(sys.argv) > 3 else 120.0
    sys.exit(asyncio.run(main(sys.argv[1], int(sys.argv[2]), limit)))
