"""The worker picks a prompt variant per task from its tenant's votes, and records what it
generated from: the variant, the exact chat messages, and the tokens generated."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from handlers.feedback import regenerate_task
from handlers.kinds import KindRegistry, build_registry
from models.generation.base import (
    GenerationError,
    GenerationRequest,
    GenerationResult,
)
from models.generation.hf import HFGenerator
from models.generation.variants import VariantPicker
from models.generation.worker import Worker
from models.intents import parse_intents
from storage.repository import Repository
from storage.schemas import RequestCreate, TaskCreate
from storage.tables import Task, TaskStatus
from tests.fakes.generators import FakeGenerator

TEAM = """\
nlu:
  - intent: report.draft
    task:
      label: status report
      max_tokens: 16
      variants:
        - name: sections
          prompt: "SECTIONS: write a status report with the sections Done and Next."
        - name: headline
          prompt: "HEADLINE: open with one status line, then three bullets."
    examples: [write the weekly status report]
"""
KINDS: KindRegistry = build_registry(parse_intents(TEAM, "team.yaml"))


@dataclass
class Scripted(FakeGenerator):
    """A backend that answers after the variant marker it sees, reporting 5 tokens."""

    fail_first: int = 0
    retryable: bool = True

    def answer(self, request: GenerationRequest) -> GenerationResult:
        if len(self.prompts) <= self.fail_first:
            raise GenerationError("busy", retryable=self.retryable)
        marker = request.messages[-1]["content"].split(":")[0]
        return GenerationResult(text=f"answer to {marker}", completion_tokens=5)


def worker(repo: Repository, generator: object, seed: int = 0, **settings: object) -> Worker:
    return Worker(
        repo=repo,
        prompts=KINDS,
        kinds=KINDS.generative_kinds,
        generator=generator,  # type: ignore[arg-type]
        variant_picker=VariantPicker(repo, rng=np.random.default_rng(seed)),
        **settings,  # type: ignore[arg-type]
    )


async def queue(
    repo: Repository, *tasks: TaskCreate, tenant: str = "A", event: str = "e"
) -> list[int]:
    created = await repo.create_request(
        request=RequestCreate(
            platform="slack", tenant=tenant, channel="c", user="u", text="x", event_id=event
        ),
        tasks=list(tasks),
    )
    return [t.id or 0 for t in created.tasks]


async def rated(repo: Repository, tenant: str, variant: str, score: int, voters: int) -> int:
    """A finished report of ``variant`` in ``tenant`` with ``voters`` votes of ``score``."""
    [task_id] = await queue(repo, TaskCreate(kind="report.draft"), tenant=tenant, event=variant)
    [claimed] = await repo.claim(worker_id="w0", limit=1, lease_seconds=60, kinds=["report.draft"])
    assert claimed.id == task_id
    assert await repo.complete(task_id=task_id, worker_id="w0", result="r", variant=variant)
    for n in range(voters):
        await repo.record_feedback(task_id=task_id, user=f"voter{n}", score=score)
    return task_id


async def done(repo: Repository, task_id: int) -> Task:
    task = await repo.get_task(task_id)
    assert task is not None
    return task


async def test_the_tiny_model_run_records_variant_prompt_and_tokens(
    repo: Repository, generator: HFGenerator
) -> None:
    [task_id] = await queue(repo, TaskCreate(kind="report.draft", inputs={"request_text": "Q3"}))
    await worker(repo, generator).run_until_idle(timeout=120)
    task = await done(repo, task_id)
    assert task.status == TaskStatus.succeeded and task.result
    assert task.variant in ("sections", "headline")
    # The stored prompt is exactly what the prompt builder made for that variant.
    expected = KINDS.build(task, [])
    assert task.prompt == [dict(m) for m in expected.messages]
    assert [m["role"] for m in task.prompt] == ["system", "user"]
    assert task.prompt[1]["content"].startswith(task.variant.upper() + ":")
    assert task.tokens is not None and 0 < task.tokens <= 16


async def test_the_stored_prompt_is_the_one_the_model_was_given(repo: Repository) -> None:
    gen = Scripted()
    ids = await queue(repo, *[TaskCreate(kind="report.draft") for _ in range(6)])
    await worker(repo, gen).run_until_idle()
    seen = {tuple(m["content"] for m in p.messages) for p in gen.prompts}
    for task_id in ids:
        task = await done(repo, task_id)
        assert task.prompt is not None and task.tokens == 5
        assert tuple(m["content"] for m in task.prompt) in seen
        assert task.variant is not None and task.result == f"answer to {task.variant.upper()}"


async def test_with_no_votes_both_variants_are_tried(repo: Repository) -> None:
    ids = await queue(repo, *[TaskCreate(kind="report.draft") for _ in range(12)])
    await worker(repo, Scripted(), seed=1).run_until_idle()
    variants = {(await done(repo, i)).variant for i in ids}
    assert variants == {"sections", "headline"}


async def test_each_tenants_votes_steer_only_its_own_tasks(repo: Repository) -> None:
    await rated(repo, "A", "sections", +1, voters=30)
    await rated(repo, "A", "headline", -1, voters=30)
    await rated(repo, "B", "sections", -1, voters=30)
    await rated(repo, "B", "headline", +1, voters=30)
    a = await queue(repo, *[TaskCreate(kind="report.draft") for _ in range(8)], event="a")
    b = await queue(
        repo, *[TaskCreate(kind="report.draft") for _ in range(8)], tenant="B", event="b"
    )
    await worker(repo, Scripted()).run_until_idle()
    assert [(await done(repo, i)).variant for i in a] == ["sections"] * 8
    assert [(await done(repo, i)).variant for i in b] == ["headline"] * 8


async def test_a_regenerate_keeps_the_variant_of_the_task_it_regenerates(repo: Repository) -> None:
    await rated(repo, "A", "sections", +1, voters=30)
    original = await rated(repo, "A", "headline", -1, voters=30)
    inputs = dict((await done(repo, original)).inputs)
    [retry] = await queue(repo, regenerate_task(inputs, "report.draft", 1, original), event="r")
    [fresh] = await queue(repo, TaskCreate(kind="report.draft"), event="f")
    await worker(repo, Scripted()).run_until_idle()
    assert (await done(repo, retry)).variant == "headline"  # as the original, despite its 👎s
    assert (await done(repo, fresh)).variant == "sections"  # what the votes favour


async def test_a_retried_task_keeps_its_variant_and_a_failed_one_records_it(
    repo: Repository,
) -> None:
    gen = Scripted(fail_first=1)
    [task_id] = await queue(repo, TaskCreate(kind="report.draft"))
    await worker(repo, gen, backoff_seconds=0.0).run_until_idle()
    task = await done(repo, task_id)
    assert task.status == TaskStatus.succeeded and task.attempts == 2
    first, second = gen.prompts
    assert first.messages == second.messages, "the retry used the same variant"
    assert task.prompt is not None and task.prompt[1]["content"] == second.messages[1]["content"]

    [lost] = await queue(repo, TaskCreate(kind="report.draft"), event="lost")
    await worker(repo, Scripted(fail_first=9, retryable=False)).run_until_idle()
    failed = await done(repo, lost)
    assert failed.status == TaskStatus.failed and failed.variant in ("sections", "headline")
    assert failed.prompt is None and failed.tokens is None


async def test_a_kind_with_one_prompt_gets_no_variant_but_its_prompt_and_tokens(
    repo: Repository,
) -> None:
    [task_id] = await queue(repo, TaskCreate(kind="summarize", inputs={"material": "we ship"}))
    gen = Scripted()
    await worker(repo, gen).run_until_idle()
    task = await done(repo, task_id)
    assert task.variant is None and task.tokens == 5
    assert task.prompt == [dict(m) for m in gen.prompts[0].messages]


async def test_vote_counts_are_read_again_only_after_the_cache_expires(repo: Repository) -> None:
    now = [0.0]
    picker = VariantPicker(repo, ttl_seconds=30.0, clock=lambda: now[0])
    assert await picker.votes("slack", "A") == {}
    await rated(repo, "A", "sections", +1, voters=2)
    now[0] = 29.0
    assert await picker.votes("slack", "A") == {}
    assert await picker.votes("slack", "B") == {}
    now[0] = 30.0
    counts = await picker.votes("slack", "A")
    assert {k: (v.up, v.down) for k, v in counts.items()} == {("report.draft", "sections"): (2, 0)}
