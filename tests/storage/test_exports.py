"""The export queries: rated results and corrections, never from a chat that opted out."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import time_machine

from storage.repository import Repository
from storage.schemas import RequestCreate, TaskCreate
from storage.tables import CorrectionStatus

PROMPT = [{"role": "user", "content": "draft an email to Dana about the delayed shipment"}]
_events = itertools.count(1)


async def finished(
    repo: Repository,
    result: str,
    *,
    platform: str = "slack",
    tenant: str = "T1",
    channel: str = "C1",
    retry_of: int | None = None,
    prompt: list[dict[str, str]] | None = PROMPT,
) -> int:
    """A stored request whose one email task a worker finished with ``result`` and ``prompt``."""
    created = await repo.create_request(
        request=RequestCreate(
            platform=platform,
            tenant=tenant,
            channel=channel,
            user="U1",
            text="draft an email to Dana about the delayed shipment",
            event_id=f"e{next(_events)}",
        ),
        tasks=[TaskCreate(kind="email.draft", retry_of=retry_of)],
    )
    task_id = created.tasks[0].id or 0
    [claimed] = await repo.claim(worker_id="w", limit=10, lease_seconds=30)
    assert claimed.id == task_id
    assert await repo.complete(task_id=task_id, worker_id="w", result=result, prompt=prompt)
    return task_id


async def test_rated_results_carry_votes_prompt_chat_and_the_first_attempt(
    repo: Repository,
) -> None:
    first = await finished(repo, "first")
    second = await finished(repo, "second", retry_of=first)
    third = await finished(repo, "third", retry_of=second)
    unrated = await finished(repo, "nobody voted")
    await repo.record_feedback(task_id=first, user="U1", score=-1, reason="too_long")
    await repo.record_feedback(task_id=first, user="U2", score=-1, reason="wrong_kind")
    await repo.record_feedback(task_id=third, user="U1", score=1)
    await repo.record_feedback(task_id=third, user="U2", score=1)
    await repo.record_feedback(task_id=third, user="U3", score=-1)

    found = await repo.rated_results()

    assert found.opted_out == 0
    by_id = {r.task_id: r for r in found.results}
    assert sorted(by_id) == [first, third] and unrated not in by_id
    assert (by_id[first].up, by_id[first].down, by_id[first].wrong_kind) == (0, 2, 1)
    assert (by_id[third].up, by_id[third].down) == (2, 1)
    assert by_id[third].first_attempt == first and by_id[first].first_attempt == first
    assert by_id[third].prompt == PROMPT and by_id[third].result == "third"
    assert (by_id[third].platform, by_id[third].tenant, by_id[third].channel) == (
        "slack",
        "T1",
        "C1",
    )


async def test_a_chat_that_opted_out_of_training_or_of_memory_is_only_counted(
    repo: Repository,
) -> None:
    kept = await finished(repo, "kept", channel="C1")
    no_training = await finished(repo, "no training", channel="C2")
    no_memory = await finished(repo, "no memory", channel="C3")
    other_tenant = await finished(
        repo, "same channel id, other workspace", tenant="T2", channel="C2"
    )
    for task_id in (kept, no_training, no_memory, other_tenant):
        await repo.record_feedback(task_id=task_id, user="U1", score=1)
    await repo.set_training_opt_out(platform="slack", tenant="T1", channel="C2", opt_out=True)
    await repo.set_memory_opt_out(platform="slack", tenant="T1", channel="C3", opt_out=True)

    found = await repo.rated_results()
    assert [r.task_id for r in found.results] == [kept, other_tenant]
    assert found.opted_out == 2

    await repo.set_training_opt_out(platform="slack", tenant="T1", channel="C2", opt_out=False)
    again = await repo.rated_results()
    assert [r.task_id for r in again.results] == [kept, no_training, other_tenant]


async def test_the_training_switch_is_its_own_and_leaves_chat_memory_alone(
    repo: Repository,
) -> None:
    chat = {"platform": "telegram", "tenant": "42", "channel": "-100"}
    assert not await repo.training_opted_out(**chat)
    await repo.set_training_opt_out(**chat, opt_out=True)
    await repo.set_training_opt_out(**chat, opt_out=True)
    assert await repo.training_opted_out(**chat)
    assert not await repo.memory_opted_out(**chat)
    await repo.set_memory_opt_out(**chat, opt_out=True)
    await repo.set_training_opt_out(**chat, opt_out=False)
    assert not await repo.training_opted_out(**chat)
    assert await repo.memory_opted_out(**chat)


async def test_since_and_tenant_narrow_the_rated_results(repo: Repository) -> None:
    with time_machine.travel(datetime(2026, 2, 27, 12, tzinfo=UTC), tick=False):
        old = await finished(repo, "old")
    with time_machine.travel(datetime(2026, 3, 2, 12, tzinfo=UTC), tick=False):
        new = await finished(repo, "new")
        elsewhere = await finished(repo, "elsewhere", platform="telegram", tenant="T1")
    for task_id in (old, new, elsewhere):
        await repo.record_feedback(task_id=task_id, user="U1", score=1)

    since = datetime(2026, 3, 1, tzinfo=UTC)
    assert [r.task_id for r in (await repo.rated_results(since=since)).results] == [new, elsewhere]
    scoped = await repo.rated_results(platform="slack", tenant="T1")
    assert [r.task_id for r in scoped.results] == [old, new]
    both = await repo.rated_results(since=since, platform="slack", tenant="T1")
    assert [r.task_id for r in both.results] == [new]


async def test_corrections_to_export_are_the_active_ones_of_chats_that_allow_it(
    repo: Repository,
) -> None:
    def fix(text: str, **where: str) -> dict[str, Any]:
        return {"platform": "slack", "tenant": "T1", "channel": "C1", "user": "U1",
                "text": text, "right_kind": "summarize", **where}  # fmt: skip

    with time_machine.travel(datetime(2026, 2, 27, 12, tzinfo=UTC), tick=False):
        old = await repo.add_correction(**fix("old"))
    with time_machine.travel(datetime(2026, 3, 2, 12, tzinfo=UTC), tick=False):
        new = await repo.add_correction(**fix("new"))
        await repo.add_correction(**fix("awaiting review"), status=CorrectionStatus.pending)
        await repo.add_correction(**fix("private", channel="C9"))
        other = await repo.add_correction(**fix("other workspace", tenant="T2"))
    await repo.set_training_opt_out(platform="slack", tenant="T1", channel="C9", opt_out=True)

    found = await repo.export_corrections()
    assert [c.id for c in found.corrections] == [old.id, new.id, other.id]
    assert (found.pending, found.opted_out) == (1, 1)
    recent = await repo.export_corrections(since=datetime(2026, 3, 1, tzinfo=UTC), tenant="T1")
    assert [c.id for c in recent.corrections] == [new.id]
