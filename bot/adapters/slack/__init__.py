"""atombot's Slack app (slack-bolt, async): the only package that imports slack_bolt/slack_sdk.

``SlackAdapter(settings)`` is the :class:`~bot.adapters.base.ChatAdapter`; ``manifest(settings)``
is the app manifest printed by ``atombot slack manifest``.
"""

from bot.adapters.slack.adapter import PLATFORM, SlackAdapter
from bot.adapters.slack.manifest import manifest

__all__ = ["PLATFORM", "SlackAdapter", "manifest"]
