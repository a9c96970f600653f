"""Button presses on results: ratings, regenerate, cancel."""

from __future__ import annotations

from bot.texts import t
from handlers.base import HandlerContext
from handlers.status import cancel_one, owned
from storage.schemas import TaskCreate
from storage.tables import TaskStatus


async def rate(task_id: int, score: int, ctx: HandlerContext) -> str:
    """Record the asker's vote on a finished task of their workspace (one vote, changeable)."""
    locale = ctx.request.locale
    task = await ctx.repo.get_task(task_id)
    r = ctx.request
    if task is None or task.platform != r.platform or task.tenant != r.tenant:
        return t("rate.not_found", locale, id=task_id)
    if task.status != TaskStatus.succeeded:
        return t("rate.not_finished", locale, id=task_id)
    _, changed = await ctx.repo.record_feedback(task_id=task_id, user=r.user, score=score)
    if not changed:
        return t("rate.unchanged", locale, id=task_id)
    return t("rate.recorded_up" if score > 0 else "rate.recorded_down", locale, id=task_id)


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
