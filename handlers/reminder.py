"""``reminder.create``: store a one-shot or recurring reminder (no GPU)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bot.texts import t
from handlers.base import Handler, HandlerContext, Plan
from models.intents.spec import TaskSpec
from storage.schemas import TaskCreate
from storage.tables import Reminder, Task, TaskStatus


def parse_when(value: str, timezone: str) -> datetime:
    """An ISO-8601 time from the classifier as an aware UTC datetime (naive = local time)."""
    when = datetime.fromisoformat(value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo(timezone))
    return when.astimezone(UTC)


def describe_recurrence(recurrence: dict[str, object]) -> str:
    """A short description of cron fields, e.g. ``day=1 hour=9``."""
    return " ".join(f"{k}={v}" for k, v in recurrence.items())


class ReminderHandler(Handler):
    """Creates a finished task whose result confirms the reminder, plus the reminder row."""

    async def plan(self, spec: TaskSpec, ctx: HandlerContext) -> Plan:
        """Confirm the time in the user's timezone; the scheduler fires it later."""
        slots = dict(spec.slots)
        tz = slots.get("timezone") or ctx.request.timezone
        when = parse_when(str(slots["when"]), tz)
        local = when.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z")
        what = str(slots.get("what") or ctx.request.text)
        recurrence = slots.get("recurrence")
        locale = ctx.request.locale
        text = (
            t(
                "reminder.set_recurring",
                locale,
                when=local,
                what=what,
                recurrence=describe_recurrence(recurrence),
            )
            if recurrence
            else t("reminder.set", locale, when=local, what=what)
        )
        inputs = {**slots, "when_utc": when.isoformat(), "what": what, "timezone": tz}
        return Plan(
            tasks=(
                TaskCreate(
                    kind="reminder.create", inputs=inputs, status=TaskStatus.succeeded, result=text
                ),
            )
        )

    async def after_create(self, task: Task, ctx: HandlerContext) -> None:
        """Store the reminder the scheduler will fire."""
        inputs = task.inputs
        await ctx.repo.create_reminder(
            Reminder(
                task_id=task.id or 0,
                platform=ctx.request.platform,
                tenant=ctx.request.tenant,
                channel=ctx.request.channel,
                thread=ctx.request.thread,
                user=ctx.request.user,
                what=inputs["what"],
                next_fire_at=datetime.fromisoformat(inputs["when_utc"]),
                recurrence=inputs.get("recurrence"),
                timezone=inputs.get("timezone", "UTC"),
                locale=ctx.request.locale,
            )
        )
