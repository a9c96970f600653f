"""Forgetting a chat: the one function every ``/forget`` (Telegram, Slack) and ``atombot
forget`` calls, and the answer that says what went.

It deletes everything atombot holds for the chat — requests with their tasks, results,
partial text and prompts, progress messages, votes and their comments, corrections,
reminders, reminder/digest messages and kept chat messages — and records the deletion in
the audit log (counts only). See :mod:`storage.repo.retention` for how the rows are found.
"""

from __future__ import annotations

from bot.texts import t
from storage.repository import Removal, Repository

#: The order tables are named in an answer (tables not listed here come after, by name).
_ORDER = (
    "request",
    "task",
    "feedback",
    "correction",
    "chatmessage",
    "reminder",
    "notice",
    "delivery",
    "taskdependency",
    "digestsubscription",
    "chatsetting",
)


async def forget_everything(
    repo: Repository,
    *,
    platform: str,
    tenant: str,
    channel: str,
    actor: str,
    stop_keeping: bool = False,
    settings: bool = False,
    dry_run: bool = False,
) -> Removal:
    """Delete everything held for the chat ``(platform, tenant, channel)`` and audit it as
    done by ``actor`` (a user id, or ``cli:<name>``).

    ``stop_keeping`` also switches the chat's memory off (what ``/forget`` promises; a
    message kept meanwhile goes with the switch). ``settings`` drops the chat's settings and
    digest subscription too. ``dry_run`` deletes and records nothing and says what would go.
    """
    where = {"platform": platform, "tenant": tenant, "channel": channel}
    removal = await repo.forget_chat_data(
        **where, dry_run=dry_run, settings=settings, actor=None if dry_run else actor
    )
    if stop_keeping and not dry_run:
        # Switching memory off also deletes a message kept since the deletion above.
        await repo.set_memory_opt_out(**where, opt_out=True)
    return removal


def removal_parts(removal: Removal, locale: str) -> list[str]:
    """One phrase per table with rows (``3 requests``), in a fixed order."""
    names = sorted(removal.counts, key=lambda n: (_ORDER.index(n) if n in _ORDER else 99, n))
    parts = []
    for name in names:
        n = removal.counts[name]
        key = f"privacy.table.{name}"
        try:
            parts.append(t(key, locale, n=n))
        except KeyError:
            parts.append(t("privacy.table.other", locale, n=n, table=name))
    return parts


def forgotten_text(removal: Removal, locale: str, *, stopped_keeping: bool = False) -> str:
    """What a ``/forget`` answers: what was deleted, per kind of record."""
    parts = removal_parts(removal, locale)
    lines = [
        t("privacy.forgotten", locale, what=t("privacy.list_sep", locale).join(parts))
        if parts
        else t("privacy.forgotten_nothing", locale)
    ]
    if stopped_keeping:
        lines.append(t("privacy.stopped_keeping", locale))
    return "\n".join(lines)
