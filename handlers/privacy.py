"""Privacy commands: what is kept, the chat switches, forgetting. Each returns the answer
to show; a switch is stored per chat and recorded in the audit log with who flipped it.

A chat with memory (Telegram) has ``/privacy on|off`` and ``/forget``; a chat whose platform
lets the bot read its history (Slack) keeps no messages, and has ``/atom privacy`` (what is
held: :func:`what_is_kept`) and ``/atom forget``.
"""

from __future__ import annotations

from bot.texts import t
from handlers.forgetting import forget_everything, forgotten_text, removal_parts
from storage.repo.retention import chat_subject
from storage.repository import Repository

#: ``/privacy`` arguments: the memory switch (True: memory off).
SWITCHES = {"on": False, "off": True}


async def memory_status(
    repo: Repository, *, platform: str, tenant: str, channel: str, locale: str, days: int
) -> str:
    """Where the chat stands: its messages kept for ``days`` days, or not kept at all."""
    opted_out = await repo.memory_opted_out(platform=platform, tenant=tenant, channel=channel)
    return t("tg.privacy.off" if opted_out else "tg.privacy.on", locale, days=days)


async def audit_switch(
    repo: Repository,
    *,
    switch: str,
    opt_out: bool,
    user: str,
    platform: str,
    tenant: str,
    channel: str,
) -> None:
    """Record that ``user`` switched the chat's ``switch`` (``memory``, ``training``) off
    (``opt_out``) or on: action ``admin.<switch>.off`` / ``admin.<switch>.on``."""
    await repo.audit(
        actor=user,
        action=f"admin.{switch}.{'off' if opt_out else 'on'}",
        platform=platform,
        tenant=tenant,
        subject=chat_subject(platform, tenant, channel),
        detail={"channel": channel, "opt_out": opt_out},
    )


async def privacy(
    repo: Repository,
    *,
    platform: str,
    tenant: str,
    channel: str,
    argument: str,
    locale: str,
    days: int,
    user: str = "chat",
) -> str:
    """``/privacy [on|off]``: switch chat memory per ``argument`` ("" only asks), then say
    where the chat stands (switching off also deletes what was kept). ``user`` is who asked
    (audit log)."""
    argument = argument.strip().lower()
    if argument and argument not in SWITCHES:
        return t("tg.privacy.usage", locale)
    where = {"platform": platform, "tenant": tenant, "channel": channel}
    if argument:
        await repo.set_memory_opt_out(**where, opt_out=SWITCHES[argument])
        await audit_switch(repo, switch="memory", opt_out=SWITCHES[argument], user=user, **where)
    return await memory_status(repo, **where, locale=locale, days=days)


async def forget(
    repo: Repository,
    *,
    platform: str,
    tenant: str,
    channel: str,
    locale: str,
    user: str | None = None,
    stop_keeping: bool = True,
) -> str:
    """``/forget``: delete everything held for the chat (requests, tasks, results, votes,
    corrections, reminders, kept messages: :func:`handlers.forgetting.forget_everything`),
    keep no new messages (``stop_keeping``: a chat with memory), and say what was deleted.
    ``user`` is who asked (audit log)."""
    removal = await forget_everything(
        repo,
        platform=platform,
        tenant=tenant,
        channel=channel,
        actor=user or "chat",
        stop_keeping=stop_keeping,
    )
    return forgotten_text(removal, locale, stopped_keeping=stop_keeping)


async def what_is_kept(
    repo: Repository,
    *,
    platform: str,
    tenant: str,
    channel: str,
    locale: str,
    retention_days: int,
    forget_command: str,
) -> str:
    """What a chat without memory (Slack) is told by its privacy command: what kinds of
    records are kept and for how long (``retention_days``, 0: until forgotten), what is held
    for it now (counted as forgetting would delete it), and how to delete it."""
    held = await forget_everything(
        repo, platform=platform, tenant=tenant, channel=channel, actor="-", dry_run=True
    )
    parts = removal_parts(held, locale)
    kept = (
        t("slack.privacy.kept_days", locale, days=retention_days)
        if retention_days > 0
        else t("slack.privacy.kept", locale)
    )
    holding = (
        t("slack.privacy.holding", locale, what=t("privacy.list_sep", locale).join(parts))
        if parts
        else t("slack.privacy.holding_nothing", locale)
    )
    return "\n".join([kept, holding, t("slack.privacy.forget", locale, forget=forget_command)])


async def opted_out(repo: Repository, *, platform: str, tenant: str, channel: str) -> bool:
    """Whether the chat's memory is off."""
    return await repo.memory_opted_out(platform=platform, tenant=tenant, channel=channel)
