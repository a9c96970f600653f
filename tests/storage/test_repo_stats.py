"""What the learning loop reads from storage: votes per variant, task outcomes, and what
``complete`` keeps for training exports."""

from __future__ import annotations

from datetime import timedelta

from storage.repository import Repository
from storage.schemas import RequestCreate, TaskCreate
from storage.tables import TaskStatus, utcnow


async def finished(
    repo: Repository, tenant: str, kind: str, variant: str | None, votes: tuple[int, ...] = ()
) -> int:
    """A task run to the end by a worker with ``variant``, then voted on."""
    created = await repo.create_request(
        request=RequestCreate(
            platform="slack",
            tenant=tenant,
            channel="c",
            user="u",
            text="x",
            event_id=f"{tenant}{kind}{variant}{votes}{utcnow().timestamp()}",
        ),
        tasks=[TaskCreate(kind=kind)],
    )
    task_id = created.tasks[0].id or 0
    [claimed] = await repo.claim(worker_id="w", limit=1, lease_seconds=60)
    assert claimed.id == task_id
    assert await repo.complete(task_id=task_id, worker_id="w", result="r", variant=variant)
    for n, score in enumerate(votes):
        await repo.record_feedback(task_id=task_id, user=f"v{n}", score=score)
    return task_id


async def test_votes_are_counted_per_kind_and_variant_within_one_tenant(repo: Repository) -> None:
    await finished(repo, "A", "report.draft", "sections", (1, 1, -1))
    await finished(repo, "A", "report.draft", "sections", (1,))
    await finished(repo, "A", "report.draft", "headline", (-1, -1))
    await finished(repo, "A", "email.draft", "default", (1,))
    await finished(repo, "A", "summarize", None, (1,))  # no variant: nothing to count
    await finished(repo, "B", "report.draft", "headline", (1, 1, 1, 1))
    votes = await repo.variant_votes(platform="slack", tenant="A")
    assert {k: (v.up, v.down) for k, v in votes.items()} == {
        ("report.draft", "sections"): (3, 1),
        ("report.draft", "headline"): (0, 2),
        ("email.draft", "default"): (1, 0),
    }
    only = await repo.variant_votes(platform="slack", tenant="A", kinds=["email.draft"])
    assert list(only) == [("email.draft", "default")]
    b = await repo.variant_votes(platform="slack", tenant="B")
    assert {k: (v.up, v.down) for k, v in b.items()} == {("report.draft", "headline"): (4, 0)}
    assert await repo.variant_votes(platform="telegram", tenant="A") == {}


async def test_complete_keeps_the_prompt_variant_and_tokens(repo: Repository) -> None:
    await repo.create_request(
        request=RequestCreate(
            platform="slack", tenant="A", channel="c", user="u", text="x", event_id="e"
        ),
        tasks=[TaskCreate(kind="report.draft")],
    )
    [task] = await repo.claim(worker_id="w", limit=1, lease_seconds=60)
    assert await repo.set_variant(task_id=task.id or 0, worker_id="w", variant="headline")
    assert not await repo.set_variant(task_id=task.id or 0, worker_id="other", variant="x")
    messages = ({"role": "system", "content": "S"}, {"role": "user", "content": "U"})
    assert await repo.complete(
        task_id=task.id or 0, worker_id="w", result="R", prompt=messages, tokens=12
    )
    stored = await repo.get_task(task.id or 0)
    assert stored is not None and stored.status == TaskStatus.succeeded
    assert stored.variant == "headline"  # left as it was: complete() named none
    assert stored.prompt == [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    assert stored.tokens == 12


async def test_task_outcomes_carry_votes_regenerates_and_zoned_times(repo: Repository) -> None:
    first = await finished(repo, "A", "report.draft", "sections", (1, -1, -1))
    await finished(repo, "B", "summarize", None)
    again = await repo.create_request(
        request=RequestCreate(
            platform="slack", tenant="A", channel="c", user="u", text="x", event_id="regen"
        ),
        tasks=[TaskCreate(kind="report.draft", retry_of=first)],
    )
    outcomes = await repo.task_outcomes()
    by_id = {o.id: o for o in outcomes}
    original, retry = by_id[first], by_id[again.tasks[0].id or 0]
    assert (original.up, original.down, original.regenerated) == (1, 2, True)
    assert (retry.retry_of, retry.status, retry.regenerated) == (first, TaskStatus.queued, False)
    assert original.created_at.tzinfo is not None and original.finished_at is not None
    assert original.started_at is not None and original.finished_at.tzinfo is not None
    assert [o.kind for o in await repo.task_outcomes(platform="slack", tenant="B")] == ["summarize"]
    later = utcnow() + timedelta(minutes=1)
    assert await repo.task_outcomes(since=later) == []
