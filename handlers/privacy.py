"""Privacy commands of a chat with memory (Telegram): what is kept, ``/privacy on|off``,
``/forget``. Each returns the answer to show; the switch itself is stored per chat."""

from __future__ import annotations

from bot.texts import t
from handlers.forgetting import forget_everything, forgotten_text
from storage.repository import Repository

#: ``/privacy`` arguments: the memory switch (True: memory off).
SWITCHES = {"on": False, "off": True}


async def memory_status(
    repo: Repository, *, platform: str, tenant: str, channel: str, locale: str, days: int
) -> str:
    """Where the chat stands: its messages kept for ``days`` days, or not kept at all."""
    opted_out = await repo.memory_opted_out(platform=platform, tenant=tenant, channel=channel)
    return t("tg.privacy.off" if opted_out else "tg.privacy.on", locale, days=days)


async def privacy(
    repo: Repository,
    *,
    platform: str,
    tenant: str,
    channel: str,
    argument: str,
    locale: str,
    days: int,
) -> str:
    """``/privacy [on|off]``: switch chat memory per ``argument`` ("" only asks), then say
    where the chat stands (switching off also deletes what was kept)."""
    argument = argument.strip().lower()
    if argument and argument not in SWITCHES:
        return t("tg.privacy.usage", locale)
    where = {"platform": platform, "tenant": tenant, "channel": channel}
    if argument:
        await repo.set_memory_opt_out(**where, opt_out=SWITCHES[argument])
    return await memory_status(repo, **where, locale=locale, days=days)


async def forget(
    repo: Repository,
    *,
    platform: str,
    tenant: str,
    channel: str,
    locale: str,
    user: str | None = None,
) -> str:
    """``/forget``: delete everything held for the chat (requests, tasks, results, votes,
    corrections, reminders, kept messages: :func:`handlers.forgetting.forget_everything`),
    keep no new messages, and say what was deleted. ``user`` is who asked (audit log)."""
    removal = await forget_everything(
        repo,
        platform=platform,
        tenant=tenant,
        channel=channel,
        actor=user or "chat",
        stop_keeping=True,
    )
    return forgotten_text(removal, locale, stopped_keeping=True)


async def opted_out(repo: Repository, *, platform: str, tenant: str, channel: str) -> bool:
    """Whether the chat's memory is off."""
    return await repo.memory_opted_out(platform=platform, tenant=tenant, channel=channel)
