"""The chat switch that keeps a chat out of training exports.

Telegram: ``/training``, ``/training off``, ``/training on``. Slack: ``/atom training``,
``/atom training off``, ``/atom training on``. Anyone in the chat may switch it, as with
Telegram's ``/privacy``. ``atombot feedback export`` never exports a chat that is switched
off, nor one whose chat memory is off (``/privacy off``, ``/forget``).
"""

from __future__ import annotations

import re

from bot.texts import t
from handlers.privacy import audit_switch
from storage.repository import Repository

#: The words that switch training exports on (False: not opted out) or off (True).
SWITCHES = {"on": False, "off": True, "开启": False, "打开": False, "关闭": True}

_COMMAND = re.compile(r"(?:training|训练)(?:\s+(\S+))?", re.IGNORECASE)


def training_argument(text: str) -> str | None:
    """The argument when ``text`` is the whole training command (``""`` for the status:
    ``training``, ``training off``, ``训练 关闭``), else None (an ordinary request)."""
    match = _COMMAND.fullmatch(text.strip())
    if match is None:
        return None
    argument = (match.group(1) or "").lower()
    return argument if argument == "" or argument in SWITCHES else None


async def training_command(
    repo: Repository,
    *,
    platform: str,
    tenant: str,
    channel: str,
    argument: str,
    locale: str,
    command: str,
    privacy: str | None = None,
    user: str = "chat",
) -> str:
    """Switch the chat's training exports per ``argument`` (``on``/``off``; ``""`` only asks)
    and answer with where the chat stands now.

    ``command`` is how the chat types the command (``/training``, ``/atom training``);
    ``privacy`` how it switches chat memory back on, where it has chat memory. ``user`` is
    who switched (audit log: ``admin.training.off`` / ``admin.training.on``).
    """
    where = {"platform": platform, "tenant": tenant, "channel": channel}
    argument = argument.strip().lower()
    if argument and argument not in SWITCHES:
        return t("training.usage", locale, command=command)
    if argument:
        await repo.set_training_opt_out(**where, opt_out=SWITCHES[argument])
        await audit_switch(repo, switch="training", opt_out=SWITCHES[argument], user=user, **where)
    if await repo.training_opted_out(**where):
        return t("training.out", locale, on=f"{command} on")
    if privacy is not None and await repo.memory_opted_out(**where):
        return t("training.out_memory", locale, privacy=privacy)
    return t("training.in", locale, off=f"{command} off")
