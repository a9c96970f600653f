"""``help``: what atombot can do, with examples."""

from __future__ import annotations

from bot.texts import t
from handlers.base import Handler, HandlerContext, Plan
from models.intents.spec import TaskSpec


class HelpHandler(Handler):
    """Answers with the help text in the asker's language."""

    async def plan(self, spec: TaskSpec, ctx: HandlerContext) -> Plan:
        """The help text."""
        return Plan(answer=t("help", ctx.request.locale))
