"""Chat memory: the messages a chat platform does not let the bot read back later.

The Telegram Bot API cannot read a chat's history, so the adapter hands every group message
it hears (and that is not meant for the bot) to :func:`remember`; a summary's material is
then chosen from what was kept by :func:`kept_material`. A chat whose memory is off
(``/privacy off``, ``/forget``) keeps nothing: the repository refuses to store it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from storage.repository import Repository
from storage.tables import ChatMessage

#: The most kept messages one summary reads.
MAX_MATERIAL = 1000


@dataclass(frozen=True)
class Heard:
    """A chat message the bot heard, as the adapter translated it."""

    channel: str
    message_id: str
    author: str
    text: str
    sent_at: datetime
    thread: str | None = None
    reply_to: str | None = None


@dataclass(frozen=True)
class Since:
    """ "From this message on": the message a request replies to."""

    message_id: int
    sent_at: datetime
    #: The message itself as material (None when it has no text), used when nothing of the
    #: chat was kept from it on (it was sent before the bot joined, or memory is off).
    material: dict[str, str] | None = None


async def remember(repo: Repository, *, platform: str, tenant: str, heard: Heard) -> bool:
    """Keep a heard message for later summaries; False when the chat opted out (or it was
    kept already)."""
    return await repo.remember_message(
        ChatMessage(
            platform=platform,
            tenant=tenant,
            channel=heard.channel,
            message_id=heard.message_id,
            thread=heard.thread,
            reply_to=heard.reply_to,
            author=heard.author,
            text=heard.text,
            sent_at=heard.sent_at.astimezone(UTC),
        )
    )


def _slot_time(slots: dict[str, Any], name: str) -> datetime | None:
    """A time slot (ISO 8601, from the intent parser) in UTC; None when absent or unreadable."""
    value = slots.get(name)
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return -1


def hhmm(when: datetime, timezone: str) -> str:
    """A kept message's time as the chat reads it."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(ZoneInfo(timezone)).strftime("%H:%M")


async def kept_material(
    repo: Repository,
    *,
    platform: str,
    tenant: str,
    channel: str,
    timezone: str,
    slots: dict[str, Any],
    since: Since | None = None,
    last: int | None = None,
    exclude: int | None = None,
) -> list[dict[str, str]]:
    """Kept messages for a summary (``author``/``text``/``ts`` dicts, oldest first), chosen in
    this order: from the replied message ``since`` on; the slots' ``last_n``; the slots'
    ``since``/``until`` window; the command's ``last``; else today's (in ``timezone``).
    ``exclude`` is the request's own message id."""
    read = functools.partial(repo.chat_messages, platform=platform, tenant=tenant, channel=channel)
    window_start, window_end = _slot_time(slots, "since"), _slot_time(slots, "until")
    last_n = slots.get("last_n")
    wanted = last_n if isinstance(last_n, int) and not isinstance(last_n, bool) else None
    if since is not None:
        rows = await read(
            since=since.sent_at.astimezone(UTC) - timedelta(seconds=1), limit=MAX_MATERIAL
        )
        rows = [r for r in rows if _int(r.message_id) >= since.message_id]
        if not rows and since.material is not None:
            return [since.material]
    elif wanted is not None or (last is not None and window_start is None and window_end is None):
        count = wanted if wanted is not None else last
        rows = await read(limit=min(max(1, count or 1), MAX_MATERIAL))
    elif window_start is not None or window_end is not None:
        rows = await read(since=window_start, until=window_end, limit=MAX_MATERIAL)
    else:
        start_of_day = datetime.now(ZoneInfo(timezone)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        rows = await read(since=start_of_day.astimezone(UTC), limit=MAX_MATERIAL)
    return [
        {"author": r.author, "text": r.text, "ts": hhmm(r.sent_at, timezone)}
        for r in rows
        if exclude is None or _int(r.message_id) != exclude
    ]
