"""``digest.subscribe`` / ``digest.unsubscribe`` (answered at once) and ``digest.recap`` tasks."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from bot.texts import language_name, t
from handlers.base import Handler, HandlerContext, Plan, fence, system_prompt
from models.generation.base import GenerationRequest
from models.intents.spec import TaskSpec
from storage.repo.retention import chat_subject
from storage.schemas import TaskCreate
from storage.tables import Task

#: The kind of a digest's conversation recap (created by the scheduler, not the classifier).
RECAP = "digest.recap"
DEFAULT_CRON: dict[str, Any] = {"hour": 8, "minute": 0}
DAYS = {
    "mon": "Monday",
    "tue": "Tuesday",
    "wed": "Wednesday",
    "thu": "Thursday",
    "fri": "Friday",
    "sat": "Saturday",
    "sun": "Sunday",
}


#: A Slack channel link as the slot holds it, ``<#C0123|sales>`` or ``<#C0123>``.
_CHANNEL_LINK = re.compile(r"<#([CG][A-Z0-9]+)(?:\|[^>]*)?>")


def digest_channel(named: Any, current: str) -> str:
    """Where a digest goes: the channel id of a Slack link, another name as given, else here."""
    if not isinstance(named, str) or not named:
        return current
    link = _CHANNEL_LINK.fullmatch(named)
    return link.group(1) if link else named


def describe_schedule(cron: dict[str, Any], locale: str) -> str:
    """``every day at 08:00`` / ``every Monday at 09:30``."""
    time = f"{int(cron.get('hour', 8)):02d}:{int(cron.get('minute', 0)):02d}"
    day = cron.get("day_of_week")
    if day:
        return t("schedule.weekly", locale, day=DAYS.get(str(day), str(day)), time=time)
    return t("schedule.daily", locale, time=time)


class DigestSubscribeHandler(Handler):
    """Stores the channel's digest subscription; the scheduler picks it up."""

    async def plan(self, spec: TaskSpec, ctx: HandlerContext) -> Plan:
        """Create or replace the subscription and confirm the schedule."""
        r = ctx.request
        cron = dict(spec.slots.get("cron") or DEFAULT_CRON)
        timezone = spec.slots.get("timezone") or r.timezone
        channel = digest_channel(spec.slots.get("channel"), r.channel)
        await ctx.repo.subscribe_digest(
            platform=r.platform,
            tenant=r.tenant,
            channel=channel,
            user=r.user,
            cron=cron,
            timezone=timezone,
            locale=r.locale,
        )
        subject = chat_subject(r.platform, r.tenant, channel)
        await ctx.audit("config.digest.subscribed", subject, cron=cron, timezone=timezone)
        return Plan(
            answer=t(
                "digest.subscribed",
                r.locale,
                schedule=describe_schedule(cron, r.locale),
                timezone=timezone,
            )
        )


class DigestUnsubscribeHandler(Handler):
    """Removes the channel's digest subscription."""

    async def plan(self, spec: TaskSpec, ctx: HandlerContext) -> Plan:
        """Confirm, or say there was none."""
        r = ctx.request
        channel = digest_channel(spec.slots.get("channel"), r.channel)
        removed = await ctx.repo.unsubscribe_digest(
            platform=r.platform,
            tenant=r.tenant,
            channel=channel,
        )
        if removed:
            subject = chat_subject(r.platform, r.tenant, channel)
            await ctx.audit("config.digest.unsubscribed", subject)
        return Plan(answer=t("digest.unsubscribed" if removed else "digest.none", r.locale))


def recap_task(material: str, locale: str) -> TaskCreate:
    """The task that recaps a digest window's conversation."""
    return TaskCreate(kind=RECAP, inputs={"material": material, "locale": locale})


class DigestRecapHandler(Handler):
    """The recap of a channel's conversation inside a digest (created by the scheduler)."""

    def prompt(self, task: Task, dependencies: Sequence[Task]) -> GenerationRequest:
        """A recap of the window's messages and task outcomes."""
        inputs = task.inputs
        return GenerationRequest(
            messages=(
                {
                    "role": "system",
                    "content": system_prompt(
                        "You write short daily recaps of a team channel.",
                        language_name(inputs.get("locale", "en")),
                    ),
                },
                {
                    "role": "user",
                    "content": "Recap what happened: topics, decisions, open questions, "
                    "action items with owners.\n" + fence(inputs.get("material", "")),
                },
            ),
            max_new_tokens=400,
        )
