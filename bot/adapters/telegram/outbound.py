"""What atombot writes to Telegram: messages and edits, menus, ForceReply prompts, and the
drafts of a private chat's live answer (``sendMessageDraft``).

Every call goes through the bot's :class:`~bot.adapters.telegram.limits.FloodLimiter`
(pacing, ``RetryAfter`` waited out and retried); here Bot API errors become
:class:`~bot.adapters.base.DeliveryError` (and :class:`~bot.adapters.base.StreamUnavailable`
for a draft Telegram refuses).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TypeVar

from telegram import (
    Bot,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
)
from telegram.constants import ChatAction, MessageLimit
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.adapters.base import DeliveryError, StreamUnavailable
from bot.adapters.telegram.limits import retry_seconds
from bot.render import split_text
from bot.types import Action, Button, PlanStatus, StreamUpdate, Target, View

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Longest ``input_field_placeholder`` of a ForceReply (1-64 characters).
MAX_PLACEHOLDER = 64
#: Final messages of streams remembered (for a repeated ``stream_stop``).
MAX_FINISHED = 5_000
#: How a plan item's status shows in a draft of several tasks.
PLAN_ICONS = {
    PlanStatus.queued: "⏳",
    PlanStatus.running: "✍️",
    PlanStatus.done: "✅",
    PlanStatus.failed: "⚠️",
    PlanStatus.cancelled: "🚫",
    PlanStatus.waiting: "⏸️",
}


def keyboard(view: View) -> InlineKeyboardMarkup | None:
    """The view's buttons as an inline keyboard (``callback_data`` = :attr:`Button.data`)."""
    rows = [
        [InlineKeyboardButton(b.label, callback_data=b.data) for b in row]
        for row in view.buttons
        if row
    ]
    return InlineKeyboardMarkup(rows) if rows else None


def menu_keyboard(rows: tuple[tuple[Button, ...], ...]) -> InlineKeyboardMarkup | None:
    """A menu's choices (the "why 👎?" menu) as an inline keyboard."""
    return keyboard(View(sections=(), buttons=rows))


def draft_id_for(client_id: str) -> int:
    """The ``draft_id`` of one result's drafts: derived from the core's ``client_id`` (the
    same after a restart), a positive non-zero 31-bit integer."""
    value = int.from_bytes(hashlib.sha256(client_id.encode("utf-8")).digest()[:4], "big")
    return (value & 0x7FFF_FFFF) or 1


def draft_text(update: StreamUpdate, limit: int = MessageLimit.MAX_TEXT_LENGTH) -> str:
    """What a draft shows: the plan (when the request has several tasks) and the text so far.

    Past ``limit`` characters the draft shows the part being written now (the text is split
    as the final message will be), so the person keeps seeing the words arrive.
    """
    body = update.text
    if len(update.plan) > 1:
        lines = [
            f"{PLAN_ICONS.get(item.status, '•')} #{item.task_id} {item.title}"
            for item in update.plan
        ]
        body = "\n".join(lines) + (f"\n\n{body}" if body else "")
    if len(body) <= limit:
        return body
    return split_text(body, limit)[-1]


def fingerprint(body: str, markup: InlineKeyboardMarkup | None) -> str:
    """What a message shows (an edit to the same is skipped: Telegram refuses it)."""
    buttons = (
        [[(b.text, b.callback_data) for b in row] for row in markup.inline_keyboard]
        if markup
        else []
    )
    return f"{body}\x00{buttons}"


def thread_of(target: Target) -> int | None:
    """A forum topic's ``message_thread_id``."""
    return int(target.thread) if target.thread and target.thread.isdigit() else None


def active(view: View) -> bool:
    """Whether a task of the view is still queued or running (it offers Cancel)."""
    return any(b.action == Action.cancel for row in view.buttons for b in row)


def reply_to(message_id: int | None) -> ReplyParameters | None:
    """Reply parameters that never fail for a message that is gone."""
    if message_id is None:
        return None
    return ReplyParameters(message_id, allow_sending_without_reply=True)


class Outbound:
    """Writes to chats through one bot (the adapter's running application's)."""

    max_text = MessageLimit.MAX_TEXT_LENGTH

    def __init__(self, bot: Callable[[], Bot]) -> None:
        self._bot = bot
        self._shown: OrderedDict[tuple[int, int], str] = OrderedDict()
        self._last_typing: dict[int, float] = {}
        # client_id -> message id of a stream's final message (a repeated stop sends nothing).
        self._finished: OrderedDict[str, str] = OrderedDict()

    @property
    def bot(self) -> Bot:
        """The bot of the running application."""
        return self._bot()

    # -- the core's calls ------------------------------------------------------------------

    async def send(self, target: Target, view: View) -> str:
        """Post a view (long text split, buttons on the last part); the last part's id."""
        chat_id = int(target.channel)
        markup = keyboard(view)
        parts = split_text(view.text or "…", self.max_text)
        message: Message | None = None
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            message = await self.send_text(
                chat_id, part, markup=markup if last else None, thread=thread_of(target)
            )
        assert message is not None
        self.remember_shown(chat_id, message.message_id, fingerprint(parts[-1], markup))
        if active(view):
            await self.typing(chat_id)
        return str(message.message_id)

    async def edit(self, target: Target, message_id: str, view: View) -> None:
        """Replace a message's text and buttons; an identical edit is skipped."""
        chat_id, mid = int(target.channel), int(message_id)
        body = view.text or "…"
        if len(body) > self.max_text:
            raise DeliveryError("message is too long for one Telegram message", retryable=False)
        markup = keyboard(view)
        shown = fingerprint(body, markup)
        if self._shown.get((chat_id, mid)) == shown:
            return
        try:
            await self.call(
                lambda: self.bot.edit_message_text(
                    body, chat_id=chat_id, message_id=mid, reply_markup=markup
                )
            )
        except DeliveryError as exc:
            if "not modified" not in exc.reason.lower():
                raise
        self.remember_shown(chat_id, mid, shown)
        if active(view):
            await self.typing(chat_id)

    async def say(
        self,
        chat_id: int,
        body: str,
        *,
        reply: int | None = None,
        thread: int | None = None,
        raise_errors: bool = False,
    ) -> Message | None:
        """Send text (split when long); the first part replies to ``reply``."""
        first: Message | None = None
        try:
            for i, part in enumerate(split_text(body.strip() or "…", self.max_text)):
                sent = await self.send_text(
                    chat_id, part, reply=reply_to(reply) if i == 0 else None, thread=thread
                )
                first = first or sent
        except DeliveryError as exc:
            if raise_errors:
                raise
            log.warning("could not answer in Telegram chat %s: %s", chat_id, exc.reason)
        if first is not None:
            self.remember_shown(chat_id, first.message_id, fingerprint(first.text or "", None))
        return first

    async def send_menu(
        self, chat_id: int, body: str, rows: tuple[tuple[Button, ...], ...], *, reply: int | None
    ) -> Message | None:
        """Post a menu (the "why 👎?" choices) as a reply; None when it could not be sent."""
        try:
            return await self.send_text(
                chat_id, body, markup=menu_keyboard(rows), reply=reply_to(reply)
            )
        except DeliveryError as exc:
            log.warning("could not send a menu in Telegram chat %s: %s", chat_id, exc.reason)
            return None

    async def show_menu(
        self, chat_id: int, message_id: int, body: str, rows: tuple[tuple[Button, ...], ...]
    ) -> None:
        """Turn a menu message into its next step (no keyboard once nothing is left to pick)."""
        markup = menu_keyboard(rows)
        try:
            await self.call(
                lambda: self.bot.edit_message_text(
                    body[: self.max_text],
                    chat_id=chat_id,
                    message_id=message_id,
                    reply_markup=markup,
                )
            )
        except DeliveryError as exc:
            if "not modified" not in exc.reason.lower():
                log.warning("could not update a menu in Telegram chat %s: %s", chat_id, exc.reason)

    async def ask(self, chat_id: int, prompt: str, *, placeholder: str) -> Message | None:
        """A ForceReply prompt (the person's reply to it is their answer); None on failure."""
        markup = ForceReply(selective=True, input_field_placeholder=placeholder[:MAX_PLACEHOLDER])
        try:
            return await self.call(
                functools.partial(
                    self.bot.send_message, chat_id, prompt[: self.max_text], reply_markup=markup
                )
            )
        except DeliveryError as exc:
            log.warning("could not ask in Telegram chat %s: %s", chat_id, exc.reason)
            return None

    async def send_text(
        self,
        chat_id: int,
        body: str,
        *,
        markup: InlineKeyboardMarkup | None = None,
        reply: ReplyParameters | None = None,
        thread: int | None = None,
    ) -> Message:
        """One ``sendMessage``."""
        return await self.call(
            functools.partial(
                self.bot.send_message,
                chat_id,
                body,
                reply_markup=markup,
                reply_parameters=reply,
                message_thread_id=thread,
            )
        )

    # -- streaming (private chats) ---------------------------------------------------------

    async def draft(self, target: Target, draft_id: int, update: StreamUpdate) -> None:
        """Show ``update`` as the draft ``draft_id`` (empty text: Telegram's "Thinking…")."""
        chat_id = int(target.channel)
        body = draft_text(update, self.max_text)
        try:
            await self.call(
                lambda: self.bot.send_message_draft(
                    chat_id, draft_id, body, message_thread_id=thread_of(target)
                )
            )
        except DeliveryError as exc:
            if isinstance(exc.__cause__, BadRequest):
                # Not a private chat, or a draft Telegram will not take: post and edit instead.
                raise StreamUnavailable(exc.reason) from exc
            raise

    async def finish(self, target: Target, view: View, *, client_id: str) -> str:
        """The final message of a stream (once per ``client_id``); its message id."""
        done = self._finished.get(client_id)
        if done is not None:
            return done
        message_id = await self.send(target, view)
        self._finished[client_id] = message_id
        while len(self._finished) > MAX_FINISHED:
            self._finished.popitem(last=False)
        return message_id

    # -- plumbing --------------------------------------------------------------------------

    async def call(self, call: Callable[[], Awaitable[T]]) -> T:
        """One Bot API call (paced and retried by the bot's rate limiter), errors mapped."""
        try:
            return await call()
        except RetryAfter as exc:  # still flooded after the limiter's retries
            wait = retry_seconds(exc)
            raise DeliveryError(str(exc), retryable=True, retry_after=wait) from exc
        except (BadRequest, Forbidden) as exc:
            raise DeliveryError(exc.message, retryable=False) from exc
        except NetworkError as exc:  # incl. TimedOut: the request may have reached Telegram
            raise DeliveryError(exc.message, retryable=True, maybe_sent=True) from exc
        except TelegramError as exc:
            raise DeliveryError(exc.message, retryable=True) from exc

    async def typing(self, chat_id: int) -> None:
        """Show "typing…" while tasks run (Telegram shows it for about 5 s)."""
        now = time.monotonic()
        if now - self._last_typing.get(chat_id, -10.0) < 4.0:
            return
        self._last_typing[chat_id] = now
        with contextlib.suppress(TelegramError):
            await self.bot.send_chat_action(chat_id, ChatAction.TYPING)

    def remember_shown(self, chat_id: int, message_id: int, shown: str) -> None:
        """Record what a message shows now."""
        self._shown[(chat_id, message_id)] = shown
        self._shown.move_to_end((chat_id, message_id))
        while len(self._shown) > 5_000:
            self._shown.popitem(last=False)

    def forget_shown(self, chat_id: int, message_id: int) -> None:
        """What a message shows is no longer known (so the next edit is made)."""
        self._shown.pop((chat_id, message_id), None)
