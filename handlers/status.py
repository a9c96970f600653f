"""``task.status`` and ``task.cancel``: answered at once from the database."""

from __future__ import annotations

from bot.texts import t
from handlers.base import Handler, HandlerContext, Plan
from models.intents.spec import TaskSpec
from storage.repository import ACTIVE_STATUSES
from storage.tables import Task


def owned(task: Task | None, ctx: HandlerContext) -> bool:
    """Whether ``task`` belongs to the person asking (same platform, workspace and user)."""
    r = ctx.request
    return (
        task is not None
        and task.platform == r.platform
        and task.tenant == r.tenant
        and task.user == r.user
    )


class StatusHandler(Handler):
    """Lists the asker's tasks (or the ones named) with their state."""

    async def plan(self, spec: TaskSpec, ctx: HandlerContext) -> Plan:
        """One line per task: id, kind, state."""
        locale = ctx.request.locale
        ids = [int(i) for i in spec.slots.get("task_ids") or []]
        if ids:
            tasks = [x for x in await ctx.repo.tasks_by_ids(ids) if owned(x, ctx)]
        else:
            tasks = await ctx.repo.list_tasks(
                platform=ctx.request.platform,
                tenant=ctx.request.tenant,
                user=ctx.request.user,
                limit=10,
            )
        if not tasks:
            return Plan(answer=t("status.none", locale))
        lines = [t("status.header", locale)]
        for task in tasks:
            state = t(f"state.{task.status}", locale)
            if task.status == "running":
                state += f" {round(task.progress * 100)}%"
            lines.append(
                t(
                    "status.line",
                    locale,
                    id=task.id,
                    kind=ctx.kind_label(task.kind, locale),
                    status=state,
                )
            )
        return Plan(answer="\n".join(lines))


class CancelHandler(Handler):
    """Cancels the named task(s), or the asker's latest active one."""

    async def plan(self, spec: TaskSpec, ctx: HandlerContext) -> Plan:
        """Only the owner can cancel; finished tasks are reported, not changed."""
        locale = ctx.request.locale
        ids = [int(i) for i in spec.slots.get("task_ids") or []]
        if not ids:
            mine = await ctx.repo.list_tasks(
                platform=ctx.request.platform,
                tenant=ctx.request.tenant,
                user=ctx.request.user,
                limit=50,
            )
            active = [x for x in mine if x.status in ACTIVE_STATUSES]
            if not active:
                return Plan(answer=t("cancel.none_active", locale))
            ids = [active[0].id or 0]
        answers = [await cancel_one(task_id, ctx) for task_id in ids]
        return Plan(answer="\n".join(answers))


async def cancel_one(task_id: int, ctx: HandlerContext) -> str:
    """Cancel one task the asker owns; the answer says what happened."""
    locale = ctx.request.locale
    task = await ctx.repo.get_task(task_id)
    if task is None or not owned(task, ctx):
        return t("cancel.not_found", locale, id=task_id)
    # A reminder's task is finished at once; cancelling it stops the reminder.
    if task.status not in ACTIVE_STATUSES and await ctx.repo.reminder_of_task(task_id) is None:
        return t(
            "cancel.already_finished", locale, id=task_id, status=t(f"state.{task.status}", locale)
        )
    await ctx.repo.cancel(task_id=task_id, reason="cancelled by user")
    await ctx.audit("task.cancelled", f"task:{task_id}", kind=task.kind, was=task.status)
    return t("cancel.done", locale, id=task_id)
