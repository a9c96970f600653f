"""The worker stores the text generated so far, throttled, so the chat can show it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from handlers.kinds import build_registry
from models.generation.base import GenerationRequest, GenerationResult, ProgressCallback
from models.generation.hf import HFGenerator
from models.generation.worker import PartialThrottle, Worker
from storage.db import create_engine
from storage.repository import Repository
from storage.schemas import RequestCreate, TaskCreate
from storage.tables import TaskStatus

KINDS = build_registry()


class Clock:
    """Monotonic seconds that the test's generator moves on."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def stores_for(tokens: int, seconds_per_token: float, throttle: PartialThrottle) -> list[int]:
    """At which token counts a partial is stored when tokens arrive one at a time."""
    stored = []
    for n in range(1, tokens + 1):
        now = n * seconds_per_token
        if throttle.due(n, f"w{n}", now):
            throttle.stored(n, now)
            stored.append(n)
    return stored


def test_a_partial_is_stored_when_both_the_interval_and_the_tokens_passed() -> None:
    # 64 tokens take 0.64 s here: the token count comes later and decides.
    slow = stores_for(640, 0.01, PartialThrottle(interval=0.5, tokens=64))
    assert slow == [1, 65, 129, 193, 257, 321, 385, 449, 513, 577]
    # 64 tokens take 0.064 s here: the interval comes later and decides.
    fast = stores_for(640, 0.001, PartialThrottle(interval=0.5, tokens=64))
    assert fast == [1, 501]


def test_the_first_partial_waits_only_for_visible_text() -> None:
    throttle = PartialThrottle(interval=0.5, tokens=64)
    assert not throttle.due(1, "  \n", 0.0), "whitespace shows nothing yet"
    assert throttle.due(2, "  Hi", 0.01), "the first words go out at once"


@dataclass
class StreamingGenerator:
    """A backend that reports its answer token by token (one word a token), moving the
    worker's clock ``seconds_per_token`` on per token and yielding to the event loop."""

    words: list[str]
    clock: Clock
    seconds_per_token: float = 0.01
    capacity: int = 2
    context_length: int = 2048
    seen_partials: list[str] = field(default_factory=list)

    async def start(self) -> None: ...
    async def close(self) -> None: ...

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    async def generate(
        self, request: GenerationRequest, on_progress: ProgressCallback | None = None
    ) -> GenerationResult:
        for n in range(1, len(self.words) + 1):
            self.clock.now += self.seconds_per_token
            if on_progress is not None:
                on_progress(n, " ".join(self.words[:n]))
            await asyncio.sleep(0.001 if n % 16 == 0 else 0)
        return GenerationResult(text=" ".join(self.words), completion_tokens=len(self.words))


class CountingRepository(Repository):
    """The real repository, counting the partials the worker stores and what they were."""

    partials: list[str]

    async def set_partial(
        self, *, task_id: int, worker_id: str, text: str, progress: float
    ) -> bool:
        self.partials.append(text)
        return await super().set_partial(
            task_id=task_id, worker_id=worker_id, text=text, progress=progress
        )


async def a_task(repo: Repository) -> int:
    created = await repo.create_request(
        request=RequestCreate(
            platform="console", tenant="t", channel="c", user="u", text="x", event_id="e"
        ),
        tasks=[TaskCreate(kind="email.draft", inputs={"recipients": ["Dana"]})],
    )
    return created.tasks[0].id or 0


async def run_worker(database_url: str, *, tokens: int, stream_tokens: int) -> list[str]:
    repo = CountingRepository(create_engine(database_url))
    repo.partials = []
    try:
        task_id = await a_task(repo)
        clock = Clock()
        words = [f"w{i}" for i in range(tokens)]
        worker = Worker(
            repo=repo,
            prompts=KINDS,
            kinds=KINDS.generative_kinds,
            generator=StreamingGenerator(words=words, clock=clock),
            stream_interval=0.5,
            stream_tokens=stream_tokens,
            clock=clock,
        )
        await worker.run_until_idle()
        task = await repo.get_task(task_id)
        assert task is not None and task.status == TaskStatus.succeeded
        assert task.result == " ".join(words)
        assert task.partial is None and task.partial_at is None, "cleared with the result"
        for partial in repo.partials:
            assert task.result.startswith(partial), "every partial is a prefix of the result"
        return repo.partials
    finally:
        await repo.dispose()


async def test_the_worker_stores_partials_throttled_and_clears_them_with_the_result(
    database_url: str,
) -> None:
    # 256 tokens, 10 ms each: at most the early first one and one per 64 tokens.
    stored = await run_worker(database_url, tokens=256, stream_tokens=64)
    assert 2 <= len(stored) <= 1 + 256 // 64, stored
    assert stored[0].split()[0] == "w0", "the first partial holds the first words"


async def test_with_a_large_token_step_only_the_early_first_partial_is_stored(
    database_url: str,
) -> None:
    stored = await run_worker(database_url, tokens=128, stream_tokens=10_000)
    assert len(stored) == 1 and stored[0].startswith("w0")


async def test_the_tiny_model_s_first_words_reach_the_task_row_while_it_generates(
    repo: Repository, tiny_model: Path
) -> None:
    generator = HFGenerator(str(tiny_model), device="cpu", max_batch=2)
    created = await repo.create_request(
        request=RequestCreate(
            platform="console", tenant="t", channel="c", user="u", text="x", event_id="e"
        ),
        tasks=[
            TaskCreate(
                kind="email.draft",
                inputs={"recipients": ["Dana"], "length": "long", "request_text": "launch"},
            )
        ],
    )
    task_id = created.tasks[0].id or 0
    worker = Worker(repo=repo, prompts=KINDS, kinds=KINDS.generative_kinds, generator=generator)
    seen: list[str] = []
    run = asyncio.create_task(worker.run_until_idle(timeout=120))
    try:
        while not run.done():
            task = await repo.get_task(task_id)
            if task is not None and task.status == TaskStatus.running and task.partial:
                seen.append(task.partial)
            await asyncio.sleep(0.01)
        await run
    finally:
        await worker.close()
    done = await repo.get_task(task_id)
    assert done is not None and done.status == TaskStatus.succeeded and done.result
    assert seen, "a partial was visible before the result"
    assert done.partial is None
    assert done.result.startswith(seen[0].strip()[:10])
