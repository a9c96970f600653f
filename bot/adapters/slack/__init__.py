"""atombot's Slack app (slack-bolt, async): the only package that imports slack_bolt/slack_sdk.

``SlackAdapter(settings)`` is the :class:`~bot.adapters.base.ChatAdapter` (and
:class:`~bot.adapters.base.StreamingAdapter`); ``manifest(settings)`` is the app manifest
printed by ``atombot slack manifest``. The adapter's parts: ``inbound`` (pure translators),
``listeners`` (bolt), ``history`` (reading conversations), ``outbound`` (posting, editing),
``stream`` (chat streaming), ``home`` (the Home tab), ``assistant`` (the assistant pane).
"""

from bot.adapters.slack.adapter import PLATFORM, SlackAdapter
from bot.adapters.slack.manifest import manifest

__all__ = ["PLATFORM", "SlackAdapter", "manifest"]
