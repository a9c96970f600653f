"""atombot in Telegram, on python-telegram-bot (the only code importing it with Slack's).

- :mod:`.adapter` — :class:`TelegramAdapter`: lifecycle (polling or webhook, ``ready()``)
  and the handlers that hand updates to the router;
- :mod:`.gate` — dedupe and the ``TELEGRAM_ALLOWED_CHATS`` allowlist;
- :mod:`.inbound` — pure translators of updates into ``Inbound`` / ``ActionEvent``;
- :mod:`.commands` — commands mapped straight to the task kind they ask for;
- :mod:`.outbound` — messages, edits, menus, ForceReply prompts and private-chat drafts;
- :mod:`.limits` — :class:`FloodLimiter`, the ``BaseRateLimiter`` pacing every call;
- :mod:`.webhook` — the webhook's HTTP edge; :mod:`.checks` — ``atombot doctor``'s checks.
"""

from bot.adapters.telegram.adapter import ALLOWED_UPDATES, TelegramAdapter, file_url_for
from bot.adapters.telegram.commands import COMMANDS
from bot.adapters.telegram.gate import parse_allowlist
from bot.adapters.telegram.limits import FloodLimiter

__all__ = [
    "ALLOWED_UPDATES",
    "COMMANDS",
    "FloodLimiter",
    "TelegramAdapter",
    "file_url_for",
    "parse_allowlist",
]
