"""Why a 👎 in the console: ``/why ID REASON [note]`` and ``/why ID wrong_kind KIND``."""

from __future__ import annotations

import io

from bot.adapters.base import Services
from bot.adapters.console import ConsoleAdapter
from bot.router import Router
from models.intents import IntentClassifier
from storage.repository import Repository


async def test_why_stores_a_reason_and_a_note_and_wrong_kind_replans(
    repo: Repository, parser: IntentClassifier
) -> None:
    out = io.StringIO()
    console = ConsoleAdapter(stdout=out, stderr=io.StringIO())
    console._services = Services(
        router=Router(repo=repo, parser=parser), repo=repo, notify=lambda: None
    )
    await console.handle_line("draft an email to Dana about the delayed shipment", event_id="1")
    [claimed] = await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    await repo.complete(task_id=claimed.id or 0, worker_id="w", result="Dear Dana")

    await console.handle_line("/why 1 too_long", event_id="2")
    await console.handle_line("/rate 1 down", event_id="3")
    await console.handle_line("/why 1 too_long keep it to two lines", event_id="4")
    await console.handle_line("/why 1 nonsense", event_id="5")
    await console.handle_line("/why 1 wrong_kind summarize", event_id="6")

    printed = out.getvalue()
    assert "Only someone who rated #1 👎" in printed
    assert "[wrong_kind] Wrong kind of task" in printed  # the menu after 👎, as choices
    assert "Usage: /why ID REASON" in printed
    assert "Redoing #1 as summary" in printed
    [vote] = await repo.feedback_of(1)
    assert (vote.score, vote.reason, vote.comment) == (-1, "wrong_kind", "keep it to two lines")
    _, new = await repo.tasks_by_ids([1, 2])
    assert new.kind == "summarize" and new.retry_of == 1
    [correction] = await repo.corrections()
    assert (correction.right_kind, correction.user) == ("summarize", "console")
