"""Button presses on results: ratings and why a 👎, regenerate, cancel, corrections."""

from __future__ import annotations

from dataclasses import dataclass

from bot.texts import t
from handlers.base import HandlerContext
from handlers.status import cancel_one, owned
from storage.schemas import TaskCreate
from storage.tables import FEEDBACK_REASONS, Correction, CorrectionStatus, Task, TaskStatus

#: The reason code of "wrong kind of task" (it leads to the kinds menu).
WRONG_KIND = "wrong_kind"
#: Longest comment kept on a vote (Slack's modal input allows 3,000; a note is a few words).
MAX_COMMENT = 2_000


@dataclass(frozen=True)
class Rated:
    """What a rating press did: the answer, and whether the vote stands (a menu may follow)."""

    text: str
    stored: bool


async def audit_vote(
    ctx: HandlerContext, action: str, task_id: int, detail: dict[str, object]
) -> None:
    """Record a vote, its reason or comment, or a correction in the audit log (ids,
    codes and counts only, never the words)."""
    await ctx.audit(action, f"task:{task_id}", **detail)


def in_workspace(task: Task | None, ctx: HandlerContext) -> bool:
    """Whether ``task`` is of the asker's platform and workspace (any member may rate it)."""
    r = ctx.request
    return task is not None and task.platform == r.platform and task.tenant == r.tenant


async def rate_task(task_id: int, score: int, ctx: HandlerContext) -> Rated:
    """Record the asker's vote on a finished task of their workspace (one vote, changeable)."""
    locale = ctx.request.locale
    task = await ctx.repo.get_task(task_id)
    if task is None or not in_workspace(task, ctx):
        return Rated(t("rate.not_found", locale, id=task_id), False)
    if task.status != TaskStatus.succeeded:
        return Rated(t("rate.not_finished", locale, id=task_id), False)
    _, changed = await ctx.repo.record_feedback(task_id=task_id, user=ctx.request.user, score=score)
    if not changed:
        return Rated(t("rate.unchanged", locale, id=task_id), True)
    await audit_vote(ctx, "vote", task_id, {"score": score, "kind": task.kind})
    key = "rate.recorded_up" if score > 0 else "rate.recorded_down"
    return Rated(t(key, locale, id=task_id), True)


async def rate(task_id: int, score: int, ctx: HandlerContext) -> str:
    """Record the asker's vote and return the answer to show."""
    return (await rate_task(task_id, score, ctx)).text


def reason_label(reason: str, locale: str) -> str:
    """The menu label of a reason code (``FEEDBACK_REASONS``)."""
    return t(f"why.reason.{reason}", locale)


async def explain(task_id: int, reason: str, ctx: HandlerContext) -> Rated:
    """Store why the asker voted 👎 (their own vote only); ``stored`` False when refused."""
    locale = ctx.request.locale
    task = await ctx.repo.get_task(task_id)
    if task is None or not in_workspace(task, ctx):
        return Rated(t("rate.not_found", locale, id=task_id), False)
    if reason not in FEEDBACK_REASONS:
        return Rated(t("why.unknown_reason", locale), False)
    vote = await ctx.repo.set_vote_reason(task_id=task_id, user=ctx.request.user, reason=reason)
    if vote is None:
        return Rated(t("why.not_voter", locale, id=task_id), False)
    await audit_vote(ctx, "vote.reason", task_id, {"reason": reason})
    return Rated(t("why.recorded", locale, id=task_id, reason=reason_label(reason, locale)), True)


async def may_explain(task_id: int, ctx: HandlerContext) -> Rated:
    """Whether the asker has a 👎 on the task to explain (before asking them for words)."""
    locale = ctx.request.locale
    task = await ctx.repo.get_task(task_id)
    if task is None or not in_workspace(task, ctx):
        return Rated(t("rate.not_found", locale, id=task_id), False)
    vote = await ctx.repo.vote_of(task_id, ctx.request.user)
    if vote is None or vote.score != -1:
        return Rated(t("why.not_voter", locale, id=task_id), False)
    return Rated(t("why.comment_prompt", locale, id=task_id), True)


async def note(task_id: int, comment: str, ctx: HandlerContext) -> str:
    """Keep the asker's own words with their 👎 on a task."""
    locale = ctx.request.locale
    words = comment.strip()[:MAX_COMMENT]
    if not words:
        return t("why.comment_empty", locale)
    task = await ctx.repo.get_task(task_id)
    if task is None or not in_workspace(task, ctx):
        return t("rate.not_found", locale, id=task_id)
    vote = await ctx.repo.set_vote_reason(task_id=task_id, user=ctx.request.user, comment=words)
    if vote is None:
        return t("why.not_voter", locale, id=task_id)
    # The length only: the comment is the voter's own words.
    await audit_vote(ctx, "vote.comment", task_id, {"chars": len(words)})
    return t("why.comment_recorded", locale, id=task_id)


def request_text_of(task: Task, fallback: str) -> str:
    """The words a task came from: its clause of the message (``request_text``), else all."""
    clause = task.inputs.get("request_text")
    return clause if isinstance(clause, str) and clause.strip() else fallback


async def correct(
    task: Task, right_kind: str, text: str, ctx: HandlerContext, *, review: bool
) -> tuple[Correction, bool]:
    """Record that ``text`` (what ``task`` came from) is of ``right_kind``.

    One correction per task and person: the same pick again changes nothing, another pick
    replaces the earlier one. Stored pending when corrections wait for review. Returns the
    correction and whether it is new.
    """
    r = ctx.request
    earlier = await ctx.repo.corrections(
        platform=task.platform, tenant=task.tenant, task_id=task.id, user=r.user
    )
    for row in earlier:
        if row.right_kind == right_kind:
            return row, False
    for row in earlier:
        await ctx.repo.drop_correction(row.id or 0)
    row = await ctx.repo.add_correction(
        platform=task.platform,
        tenant=task.tenant,
        channel=r.channel,
        user=r.user,
        text=text,
        wrong_kind=task.kind,
        right_kind=right_kind,
        task_id=task.id,
        status=CorrectionStatus.pending if review else CorrectionStatus.active,
    )
    await audit_vote(
        ctx,
        "correction",
        task.id or 0,
        {
            "correction": row.id,
            "wrong_kind": task.kind,
            "right_kind": right_kind,
            "status": row.status,
            "replaced": [x.id for x in earlier],
        },
    )
    return row, True


def regenerate_task(
    original_inputs: dict[str, object], kind: str, attempt: int, original_id: int
) -> TaskCreate:
    """A new attempt at a task: same inputs, sampling on so the text differs."""
    inputs = dict(original_inputs)
    inputs["temperature"] = 0.8
    inputs["seed"] = attempt
    return TaskCreate(kind=kind, inputs=inputs, retry_of=original_id)


async def cancel(task_id: int, ctx: HandlerContext) -> str:
    """Cancel from a button: only the owner may."""
    task = await ctx.repo.get_task(task_id)
    if not owned(task, ctx):
        return t("cancel.not_found", ctx.request.locale, id=task_id)
    return await cancel_one(task_id, ctx)
