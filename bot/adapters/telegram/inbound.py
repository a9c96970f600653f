"""Pure translators of Telegram updates into atombot's platform-neutral types (no I/O)."""

from __future__ import annotations

import datetime as dtm
import re

from telegram import CallbackQuery, Message, MessageEntity, Update, User
from telegram.constants import ChatType

from bot.types import Action, ActionEvent, Button, Inbound
from handlers.memory import Heard, Since

PLATFORM = "telegram"


def author(user: User) -> str:
    """How a person is named in material and receipts."""
    return user.full_name or (f"@{user.username}" if user.username else str(user.id))


def as_material(message: Message) -> dict[str, str]:
    """A message as summary / reply material."""
    return {
        "author": author(message.from_user) if message.from_user else "?",
        "text": message.text or message.caption or "",
        "ts": message.date.astimezone(dtm.UTC).strftime("%H:%M"),
    }


def since(message: Message | None) -> Since | None:
    """ "From this message on" for a request sent as a reply to ``message``."""
    if message is None:
        return None
    has_text = bool(message.text or message.caption)
    return Since(
        message_id=message.message_id,
        sent_at=message.date,
        material=as_material(message) if has_text else None,
    )


def heard(message: Message) -> Heard | None:
    """A group message to keep in chat memory (None: nothing to keep)."""
    body = message.text or message.caption
    if not body or message.from_user is None:
        return None
    replied = message.reply_to_message
    return Heard(
        channel=str(message.chat.id),
        message_id=str(message.message_id),
        thread=str(message.message_thread_id) if message.is_topic_message else None,
        reply_to=str(replied.message_id) if replied is not None else None,
        author=author(message.from_user),
        text=body,
        sent_at=message.date.astimezone(dtm.UTC),
    )


def mentions_bot(message: Message, *, bot_id: int, username: str) -> bool:
    """Whether the message @mentions the bot (by username or a text mention)."""
    mention = f"@{username}".lower()
    if any(v.lower() == mention for v in message.parse_entities([MessageEntity.MENTION]).values()):
        return True
    return any(
        entity.type == MessageEntity.TEXT_MENTION
        and entity.user is not None
        and entity.user.id == bot_id
        for entity in message.entities
    )


def addressed(message: Message, *, bot_id: int, username: str) -> bool:
    """Whether a message is meant for the bot: private, a mention, or a reply to it."""
    if message.chat.type == ChatType.PRIVATE:
        return True
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == bot_id:
        return True
    return mentions_bot(message, bot_id=bot_id, username=username)


def strip_mention(text: str, username: str) -> str:
    """The request without the bot's @username."""
    if not username:
        return text
    return re.sub(rf"@{re.escape(username)}\b", "", text, flags=re.IGNORECASE).strip()


def to_inbound(
    update: Update, message: Message, text: str, *, tenant: str, timezone: str
) -> Inbound:
    """A message (its request text already chosen) as an :class:`Inbound`."""
    user = message.from_user
    return Inbound(
        platform=PLATFORM,
        tenant=tenant,
        channel=str(message.chat.id),
        user=str(user.id) if user else "0",
        text=text,
        event_id=str(update.update_id),
        thread=str(message.message_thread_id) if message.is_topic_message else None,
        private=message.chat.type == ChatType.PRIVATE,
        timezone=timezone,
        user_name=author(user) if user else None,
    )


def to_action(query: CallbackQuery, *, tenant: str) -> ActionEvent | None:
    """A button press as an :class:`ActionEvent`; None when the button is not ours."""
    parsed = Button.decode(query.data or "")
    message = query.message
    if parsed is None or message is None:
        return None
    action, task_id, choice = parsed
    return ActionEvent(
        platform=PLATFORM,
        tenant=tenant,
        channel=str(message.chat.id),
        user=str(query.from_user.id),
        action=action,
        task_id=task_id,
        event_id=f"cb:{query.id}",
        user_name=author(query.from_user),
        choice=choice,
    )


def to_answer(
    update: Update, message: Message, *, action: Action, task_id: int, tenant: str
) -> ActionEvent:
    """A reply to a ForceReply prompt: the person's words (a note, an edited draft)."""
    user = message.from_user
    return ActionEvent(
        platform=PLATFORM,
        tenant=tenant,
        channel=str(message.chat.id),
        user=str(user.id) if user else "0",
        action=action,
        task_id=task_id,
        event_id=str(update.update_id),
        user_name=author(user) if user else None,
        comment=message.text or "",
    )
