"""The App Home tab: the person's recent tasks and digest subscriptions, rendered from
:func:`handlers.home.home_data` (the adapter reads no tables itself)."""

from __future__ import annotations

import logging
from typing import Any

from bot.adapters.base import DeliveryError
from bot.adapters.slack.blocks import home_view
from bot.adapters.slack.core import SLACK_ERRORS
from bot.adapters.slack.history import SlackHistory
from bot.adapters.slack.inbound import PLATFORM
from bot.texts import t
from handlers.home import HomeData, home_data

log = logging.getLogger(__name__)


def home_tab(data: HomeData) -> dict[str, Any]:
    """The Home tab view of ``data`` (``views.publish``'s ``view``)."""
    locale = data.locale
    return home_view(
        title=t("slack.home.title", locale),
        tasks_header=t("status.header", locale),
        task_lines=[
            t("slack.home.task_line", locale, id=x.id, kind=x.kind, status=x.status)
            for x in data.tasks
        ],
        empty_tasks=t("status.none", locale),
        digests_header=t("slack.home.digests", locale),
        digest_lines=[
            t(
                "slack.home.digest_line",
                locale,
                channel=d.channel,
                schedule=d.schedule,
                timezone=d.timezone,
            )
            for d in data.digests
        ],
        empty_digests=t("slack.home.no_digests", locale),
    )


class SlackHome(SlackHistory):
    """Publishing the Home tab."""

    async def publish_home(self, tenant: str, user: str) -> None:
        """Build and publish ``user``'s Home tab (views.publish)."""
        data = await home_data(
            self.services.repo,
            self.services.router.kinds,
            platform=PLATFORM,
            tenant=tenant,
            user=user,
        )
        try:
            async with self.workspace(tenant):
                await self.client.views_publish(user_id=user, view=home_tab(data))
        except (*SLACK_ERRORS, DeliveryError) as exc:
            log.warning("Slack: Home tab of %s not published: %s", user, exc)
