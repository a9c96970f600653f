"""The console prints a result's words as they are generated, then the final view once."""

from __future__ import annotations

import io

from bot.adapters.base import StreamingAdapter
from bot.adapters.console import ConsoleAdapter
from bot.delivery import Deliverer
from bot.types import Section, StreamUpdate, Target, View
from storage.repository import Repository
from storage.schemas import RequestCreate, TaskCreate


async def test_the_console_streams_tokens_as_they_arrive_then_prints_the_result(
    repo: Repository,
) -> None:
    out = io.StringIO()
    console = ConsoleAdapter(stdout=out)
    assert isinstance(console, StreamingAdapter)
    deliverer = Deliverer(repo, {"console": console})
    created = await repo.create_request(
        request=RequestCreate(
            platform="console", tenant="local", channel="console", user="u", text="x", event_id="e"
        ),
        tasks=[TaskCreate(kind="email.draft", inputs={"recipients": ["Dana"]})],
    )
    task = created.tasks[0].id or 0
    await deliverer.tick()
    await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    for text in ("Hi", "Hi Dana,", "Hi Dana, the parts"):
        await repo.set_partial(task_id=task, worker_id="w", text=text, progress=0.5)
        await deliverer.tick()
    await repo.complete(task_id=task, worker_id="w", result="Hi Dana, the parts are late.")
    await deliverer.tick()
    await deliverer.tick()
    lines = out.getvalue().splitlines()
    assert lines[:3] == ["⏳ #1 draft email", "⚙️ #1 draft email", "Hi Dana, the parts"]
    result_at = lines.index("✅ #1 draft email")
    assert "Hi Dana, the parts are late." in "\n".join(lines[result_at + 1 :])
    assert out.getvalue().count("✅ #1 draft email") == 1


async def test_stopping_a_console_stream_again_prints_nothing_and_returns_the_same_id() -> None:
    out = io.StringIO()
    console = ConsoleAdapter(stdout=out)
    target = Target(platform="console", tenant="local", channel="console")
    stream = await console.stream_start(target, StreamUpdate(plan=(), text=""), client_id="c1")
    view = View(sections=(Section(text="Done.", title="✅ #1 draft email"),))
    first = await console.stream_stop(target, stream, view, client_id="c2")
    printed = out.getvalue()
    assert await console.stream_stop(target, stream, view, client_id="c2") == first
    assert out.getvalue() == printed
