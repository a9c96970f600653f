"""``help``: what atombot can do, with examples."""

from __future__ import annotations

from bot.texts import t
from handlers.base import Handler, HandlerContext, Plan
from models.intents.spec import TaskSpec


class HelpHandler(Handler):
    """Answers with the help text in the asker's language, and the actions available."""

    def __init__(self, actions: tuple[str, ...] = ()) -> None:
        #: The action kinds this atombot can carry out (their performers have settings).
        self.actions = actions

    async def plan(self, spec: TaskSpec, ctx: HandlerContext) -> Plan:
        """The help text, then which actions are available (or that none are)."""
        locale = ctx.request.locale
        if self.actions:
            names = "、" if locale == "zh" else ", "
            listed = names.join(ctx.kind_label(kind, locale) for kind in self.actions)
            extra = t("help.actions", locale, actions=listed)
        else:
            extra = t("help.no_actions", locale)
        return Plan(answer=f"{t('help', locale)}\n{extra}")
