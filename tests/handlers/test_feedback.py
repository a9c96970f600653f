"""Votes with their reasons and notes, and corrections, as the feedback handler stores them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from handlers.base import HandlerContext
from handlers.feedback import correct, explain, note, rate_task, request_text_of
from storage.repository import Repository
from storage.schemas import RequestCreate, TaskCreate
from storage.tables import CorrectionStatus, Task


def context(repo: Repository, user: str = "ana", tenant: str = "t1") -> HandlerContext:
    request = RequestCreate(
        platform="console", tenant=tenant, channel="c1", user=user, text="", event_id="x"
    )
    return HandlerContext(repo=repo, request=request, now=datetime.now(UTC))


async def finished(repo: Repository, text: str = "email Dana and summarize the thread") -> Task:
    stored = await repo.create_request(
        request=RequestCreate(
            platform="console", tenant="t1", channel="c1", user="ana", text=text, event_id="e1"
        ),
        tasks=[TaskCreate(kind="email.draft", inputs={"request_text": "email Dana"})],
    )
    [claimed] = await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    await repo.complete(task_id=claimed.id or 0, worker_id="w", result="Dear Dana")
    return stored.tasks[0]


async def test_a_reason_and_a_note_belong_to_the_voters_own_thumbs_down(repo: Repository) -> None:
    task = await finished(repo)
    task_id = task.id or 0
    ana, bob = context(repo), context(repo, user="bob")
    assert (await rate_task(task_id, -1, ana)).stored

    assert not (await explain(task_id, "too_long", bob)).stored
    assert (await explain(task_id, "too_long", ana)).stored
    assert "saved" in await note(task_id, "x" * 5_000, ana)
    assert "nothing" in await note(task_id, "   ", ana)

    [vote] = await repo.feedback_of(task_id)
    assert (vote.user, vote.score, vote.reason) == ("ana", -1, "too_long")
    assert vote.comment == "x" * 2_000


async def test_another_workspace_can_neither_rate_nor_explain(repo: Repository) -> None:
    task = await finished(repo)
    outsider = context(repo, tenant="t2")
    assert not (await rate_task(task.id or 0, -1, outsider)).stored
    assert not (await explain(task.id or 0, "content", outsider)).stored
    assert await repo.feedback_of(task.id or 0) == []


async def test_record_feedback_takes_a_reason_and_a_comment_and_rejects_unknown_reasons(
    repo: Repository,
) -> None:
    task = await finished(repo)
    task_id = task.id or 0
    _, changed = await repo.record_feedback(
        task_id=task_id, user="ana", score=-1, reason="wrong_language", comment="in French please"
    )
    assert changed
    _, again = await repo.record_feedback(task_id=task_id, user="ana", score=-1)
    assert not again  # a repeated 👎 keeps what it said
    [vote] = await repo.feedback_of(task_id)
    assert (vote.reason, vote.comment) == ("wrong_language", "in French please")
    with pytest.raises(ValueError):
        await repo.record_feedback(task_id=task_id, user="ana", score=-1, reason="ugly")
    with pytest.raises(ValueError):
        await repo.set_vote_reason(task_id=task_id, user="ana", reason="ugly")
    assert await repo.set_vote_reason(task_id=task_id, user="nobody", reason="content") is None


async def test_a_correction_keeps_the_tasks_own_clause_and_one_row_per_person(
    repo: Repository,
) -> None:
    task = await finished(repo)
    ana = context(repo)
    assert request_text_of(task, "the whole message") == "email Dana"

    first, new = await correct(task, "summarize", "email Dana", ana, review=False)
    same, again = await correct(task, "summarize", "email Dana", ana, review=False)
    other, _ = await correct(task, "oos", "email Dana", ana, review=True)
    bobs, _ = await correct(task, "reply.draft", "email Dana", context(repo, "bob"), review=False)

    assert new and not again and same.id == first.id
    rows = await repo.corrections(task_id=task.id)
    assert [(c.user, c.right_kind, c.status) for c in rows] == [
        ("ana", "oos", CorrectionStatus.pending),
        ("bob", "reply.draft", CorrectionStatus.active),
    ]
    assert other.wrong_kind == "email.draft" and bobs.text == "email Dana"
