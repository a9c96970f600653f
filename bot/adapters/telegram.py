"""The Telegram adapter, on python-telegram-bot's ``Application`` (the only code importing it).

Inbound: private text, group messages that mention or reply to the bot, commands and
inline-button presses become :class:`~bot.types.Inbound` / :class:`~bot.types.ActionEvent`
for the router. Other group messages are only remembered (chat memory) for ``/summarize``,
because the Bot API cannot read a chat's history. Updates arrive by long polling, or by
webhook when ``TELEGRAM_WEBHOOK_URL`` is set: :mod:`bot.adapters.telegram_webhook` answers
403 to a wrong or missing secret, 400/413 to a malformed or oversized update (never a 5xx), and
only then puts the update on python-telegram-bot's queue.

Outbound: :meth:`TelegramAdapter.send` / :meth:`~TelegramAdapter.edit` write the progress and
result messages, skipping edits that would not change anything, paced under Telegram's flood
limits; a ``RetryAfter`` is waited out and the call retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import functools
import logging
import re
import secrets
import time
import warnings
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

from telegram import (
    BotCommand,
    BotCommandScopeDefault,
    CallbackQuery,
    Chat,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    ReplyParameters,
    Update,
    User,
)
from telegram.constants import ChatAction, ChatType, MessageLimit
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    BaseUpdateProcessor,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.adapters.base import DeliveryError, PostLookup, Services
from bot.adapters.telegram_webhook import ACCEPTED_KINDS, Malformed, WebhookServer
from bot.errors import report
from bot.render import split_text
from bot.texts import detect_locale, t
from bot.training_optout import training_command
from bot.types import Action, ActionEvent, Button, Inbound, Target, View
from storage.tables import ChatMessage

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger(__name__)

PLATFORM = "telegram"
T = TypeVar("T")
Context = ContextTypes.DEFAULT_TYPE

#: The commands registered with setMyCommands (the order clients show them in).
COMMANDS = (
    "start",
    "help",
    "email",
    "reply",
    "summarize",
    "status",
    "cancel",
    "digest",
    "forget",
    "privacy",
    "training",
)
#: Updates the bot asks Telegram for (the kinds its webhook accepts; others are dropped).
ALLOWED_UPDATES = list(ACCEPTED_KINDS)


def text(key: str, locale: str, **values: object) -> str:
    """A user-visible string from :mod:`bot.texts`."""
    return t(key, locale, **values)


def parse_allowlist(raw: str | None) -> frozenset[str] | None:
    """``TELEGRAM_ALLOWED_CHATS`` (chat ids, user ids or @usernames, comma/space separated).

    None means everyone is allowed.
    """
    if not raw or not raw.strip():
        return None
    return frozenset(item.strip().lower() for item in re.split(r"[,\s]+", raw) if item.strip())


def file_url_for(api_url: str) -> str:
    """The Bot API file URL that goes with a ``base_url`` (``…/bot`` → ``…/file/bot``)."""
    stripped = api_url.rstrip("/")
    if stripped.endswith("/bot"):
        return stripped[: -len("/bot")] + "/file/bot"
    return stripped + "/file/bot"


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


#: Longest ``input_field_placeholder`` of a ForceReply (1-64 characters).
MAX_PLACEHOLDER = 64
#: Prompts for a voter's words kept at most (the oldest are forgotten first).
MAX_NOTE_PROMPTS = 1_000


def _retry_seconds(error: RetryAfter) -> float:
    """``RetryAfter.retry_after`` in seconds (an int in PTB 22, a timedelta later)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PTB 22 warns on every read that the type changes
        value: Any = error.retry_after
    if isinstance(value, dtm.timedelta):
        return value.total_seconds()
    return float(value)


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Updates of one chat in order, different chats concurrently.

    Order matters within a chat (an ``/forget`` before the next message must win), while a
    busy chat must not hold up the others. Button presses never wait, so that each callback
    query is answered at once.
    """

    def __init__(self, max_concurrent_updates: int = 256) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Await the handler coroutine under its chat's lock."""
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None or (isinstance(update, Update) and update.callback_query is not None):
            await coroutine
            return
        lock = self._locks.setdefault(chat.id, asyncio.Lock())
        try:
            async with lock:
                await coroutine
        finally:
            if not lock.locked() and len(self._locks) > 10_000:
                self._locks.pop(chat.id, None)

    async def initialize(self) -> None:
        """Nothing to allocate."""

    async def shutdown(self) -> None:
        """Nothing to free."""


@dataclass
class Pacer:
    """Client-side pacing under Telegram's flood limits (so 429s stay rare)."""

    # One message below Telegram's figures: the server counts arrival times, which trail
    # ours by a varying latency (the first request of a burst also opens the connection).
    per_chat_per_second: float = 1.0
    per_chat_burst: int = 2
    per_group_per_minute: int = 19
    global_per_second: float = 25.0

    def __post_init__(self) -> None:
        self._chat: dict[int, tuple[float, float]] = {}
        self._group: dict[int, deque[float]] = {}
        self._global: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def wait(self, chat_id: int, *, group: bool) -> None:
        """Sleep until one more message to ``chat_id`` is within the limits, then count it."""
        async with self._lock:
            while True:
                now = time.monotonic()
                tokens, last = self._chat.get(chat_id, (float(self.per_chat_burst), now))
                tokens = min(self.per_chat_burst, tokens + (now - last) * self.per_chat_per_second)
                waits = [0.0]
                if tokens < 1:
                    waits.append((1 - tokens) / self.per_chat_per_second)
                sent = self._group.setdefault(chat_id, deque())
                while sent and sent[0] <= now - 60:
                    sent.popleft()
                if group and len(sent) >= self.per_group_per_minute:
                    waits.append(sent[0] + 60 - now)
                while self._global and self._global[0] <= now - 1:
                    self._global.popleft()
                if len(self._global) >= self.global_per_second:
                    waits.append(self._global[0] + 1 - now)
                wait = max(waits)
                if wait <= 0:
                    self._chat[chat_id] = (tokens - 1, now)
                    if group:
                        sent.append(now)
                    self._global.append(now)
                    return
                await asyncio.sleep(wait)


class TelegramAdapter:
    """atombot in Telegram: private chats, groups, commands, inline buttons."""

    platform = PLATFORM
    max_text = MessageLimit.MAX_TEXT_LENGTH
    #: Progress edits at most every 1.5 s per message (≤ 1 message/s per chat).
    min_edit_interval = 1.5

    def __init__(
        self,
        settings: Settings,
        *,
        webhook_listen: str = "0.0.0.0",
        webhook_port: int = 8443,
        poll_timeout: float = 10.0,
        max_retries: int = 3,
        max_retry_wait: float = 30.0,
        pacer: Pacer | None = None,
    ) -> None:
        if not settings.telegram_bot_token:
            raise ValueError("TELEGRAM_BOT_TOKEN is not set")
        self.token = settings.telegram_bot_token
        self.api_url = settings.telegram_api_url
        self.webhook_url = settings.telegram_webhook_url
        self.webhook_secret = settings.telegram_webhook_secret
        self.webhook_listen = webhook_listen
        self.port = webhook_port
        self.allowed = parse_allowlist(settings.telegram_allowed_chats)
        self.timezone = settings.timezone
        self.memory_days = settings.memory_days
        self.poll_timeout = poll_timeout
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self.tenant = self.token.split(":", 1)[0]
        self.pacer = pacer or Pacer()
        self._services: Services | None = None
        self._app: Application[Any, Any, Any, Any, Any, Any] | None = None
        self._seen_updates: OrderedDict[int, None] = OrderedDict()
        self._shown: OrderedDict[tuple[int, int], str] = OrderedDict()
        self._chat_types: dict[int, str] = {}
        self._last_typing: dict[int, float] = {}
        self._username = ""
        self._webhook: WebhookServer | None = None
        # (chat, prompt message) -> (task, user): a reply to the prompt is that user's note.
        self._note_prompts: OrderedDict[tuple[int, int], tuple[int, int]] = OrderedDict()

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def application(self) -> Application[Any, Any, Any, Any, Any, Any]:
        """The running python-telegram-bot Application."""
        if self._app is None:
            raise RuntimeError("the Telegram adapter is not started")
        return self._app

    def build_application(self) -> Application[Any, Any, Any, Any, Any, Any]:
        """The PTB Application with atombot's handlers (not started)."""
        builder = (
            ApplicationBuilder()
            .token(self.token)
            .base_url(self.api_url)
            .base_file_url(file_url_for(self.api_url))
            .concurrent_updates(PerChatUpdateProcessor())
        )
        if self.webhook_url:
            builder = builder.updater(None)  # our own server feeds the update queue
        app = builder.build()
        app.add_handler(TypeHandler(Update, self._gate), group=-1)
        app.add_handler(CommandHandler(("start", "help"), self._on_help))
        app.add_handler(CommandHandler("email", self._on_email))
        app.add_handler(CommandHandler("reply", self._on_reply))
        app.add_handler(CommandHandler("summarize", self._on_summarize))
        app.add_handler(CommandHandler("status", self._on_status))
        app.add_handler(CommandHandler("cancel", self._on_cancel))
        app.add_handler(CommandHandler("digest", self._on_digest))
        app.add_handler(CommandHandler("forget", self._on_forget))
        app.add_handler(CommandHandler("privacy", self._on_privacy))
        app.add_handler(CommandHandler("training", self._on_training))
        app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, self._on_text))
        app.add_handler(CallbackQueryHandler(self._on_callback))
        app.add_error_handler(self._on_error)
        return app

    async def start(self, services: Services) -> None:
        """Connect (getMe), register the commands, then poll or serve the webhook."""
        self._services = services
        app = self.build_application()
        self._app = app
        await app.initialize()
        self.tenant = str(app.bot.id)
        self._username = app.bot.username
        await self._register_commands()
        await app.start()
        if self.webhook_url:
            secret = self.webhook_secret or secrets.token_urlsafe(32)
            self._webhook = WebhookServer(
                path=urlparse(self.webhook_url).path,
                secret=secret,
                deliver=self._enqueue,
                listen=self.webhook_listen,
                port=self.port,
            )
            await self._webhook.start()
            await app.bot.set_webhook(
                url=self.webhook_url, secret_token=secret, allowed_updates=ALLOWED_UPDATES
            )
        else:
            assert app.updater is not None
            await app.updater.start_polling(
                poll_interval=0.0,
                timeout=dtm.timedelta(seconds=self.poll_timeout),
                allowed_updates=ALLOWED_UPDATES,
                error_callback=self._on_polling_error,
            )

    def ready(self) -> tuple[bool, str]:
        """Connected: polling (or serving the webhook) with the Bot API application running."""
        app = self._app
        if app is None or not app.running:
            return False, "not started"
        if self.webhook_url:
            return (True, "webhook served") if self._webhook is not None else (False, "no webhook")
        if app.updater is None or not app.updater.running:
            return False, "not polling"
        return True, "polling"

    async def stop(self) -> None:
        """Stop receiving updates and close the connections."""
        app, self._app = self._app, None
        webhook, self._webhook = self._webhook, None
        if webhook is not None:
            await webhook.stop()
        if app is None:
            return
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()

    async def _register_commands(self) -> None:
        bot = self.application.bot
        for locale in ("en", "zh"):
            commands = [BotCommand(c, text(f"tg.command.{c}", locale)) for c in COMMANDS]
            try:
                await bot.set_my_commands(
                    commands,
                    scope=BotCommandScopeDefault(),
                    language_code=None if locale == "en" else locale,
                )
            except TelegramError as exc:
                # A menu without commands is no reason not to serve messages.
                log.warning("setMyCommands (%s) failed: %s", locale, exc)

    async def _enqueue(self, data: dict[str, Any]) -> None:
        """Queue a webhook update that passed the edge's checks (see ``telegram_webhook``)."""
        app = self.application
        try:
            update = Update.de_json(data, app.bot)
        except Exception:  # its message would quote the payload
            raise Malformed("not an Update") from None
        await app.update_queue.put(update)

    def _on_polling_error(self, exc: TelegramError) -> None:
        log.warning("Telegram polling error: %s", exc)

    async def _on_error(self, update: object, context: Context) -> None:
        if context.error is not None:
            report(context.error, where="telegram update")

    # -- inbound: gate ---------------------------------------------------------------------

    @property
    def services(self) -> Services:
        """What the core handed over in :meth:`start`."""
        if self._services is None:
            raise RuntimeError("the Telegram adapter is not started")
        return self._services

    def is_allowed(self, chat: Chat | None, user: User | None) -> bool:
        """Whether the allowlist admits this chat or user (no allowlist: everyone)."""
        if self.allowed is None:
            return True
        names = set()
        if chat is not None:
            names.add(str(chat.id))
            if chat.username:
                names.add(f"@{chat.username.lower()}")
        if user is not None:
            names.add(str(user.id))
            if user.username:
                names.add(f"@{user.username.lower()}")
        return bool(names & self.allowed)

    async def _gate(self, update: Update, context: Context) -> None:
        """Drop redelivered updates and refuse chats outside the allowlist, before any handler."""
        if update.update_id in self._seen_updates:
            raise ApplicationHandlerStop
        self._seen_updates[update.update_id] = None
        while len(self._seen_updates) > 10_000:
            self._seen_updates.popitem(last=False)
        chat, user = update.effective_chat, update.effective_user
        if chat is not None:
            self._chat_types[chat.id] = chat.type
        if self.is_allowed(chat, user):
            return
        log.info(
            "refused Telegram update %s from chat %s, user %s: not in TELEGRAM_ALLOWED_CHATS",
            update.update_id,
            chat.id if chat else None,
            user.id if user else None,
        )
        locale = self._locale(user, "")
        if update.callback_query is not None:
            with contextlib.suppress(TelegramError):
                await update.callback_query.answer(text("error.not_allowed", locale))
        elif (
            update.effective_message is not None
            and chat is not None
            and (chat.type == ChatType.PRIVATE or self._addressed(update.effective_message))
        ):
            await self._say(chat.id, text("error.not_allowed", locale))
        raise ApplicationHandlerStop

    # -- inbound: messages -----------------------------------------------------------------

    def _addressed(self, message: Message) -> bool:
        """Whether a message is meant for the bot: private, a mention, or a reply to it."""
        if message.chat.type == ChatType.PRIVATE:
            return True
        replied = message.reply_to_message
        if replied is not None and replied.from_user is not None:
            return replied.from_user.id == int(self.tenant) or self._mentions_me(message)
        return self._mentions_me(message)

    def _mentions_me(self, message: Message) -> bool:
        mention = f"@{self._username}".lower()
        for entity, value in message.parse_entities([MessageEntity.MENTION]).items():
            del entity
            if value.lower() == mention:
                return True
        return any(
            entity.type == MessageEntity.TEXT_MENTION
            and entity.user is not None
            and entity.user.id == int(self.tenant)
            for entity in message.entities
        )

    def _strip_mention(self, message_text: str) -> str:
        if not self._username:
            return message_text
        pattern = re.compile(rf"@{re.escape(self._username)}\b", re.IGNORECASE)
        return pattern.sub("", message_text).strip()

    async def _on_text(self, update: Update, context: Context) -> None:
        message = update.effective_message
        if message is None or message.text is None:
            return
        if await self._took_note(update, message):
            return
        if self._addressed(message):
            request = self._strip_mention(message.text)
            await self._route(update, message, request, self._conversation_fetcher(message))
        else:
            await self._remember(message)

    async def _remember(self, message: Message) -> bool:
        """Keep a group message for later summaries (unless the chat opted out)."""
        body = message.text or message.caption
        if not body or message.from_user is None:
            return False
        replied = message.reply_to_message
        return await self.services.repo.remember_message(
            ChatMessage(
                platform=PLATFORM,
                tenant=self.tenant,
                channel=str(message.chat.id),
                message_id=str(message.message_id),
                thread=str(message.message_thread_id) if message.is_topic_message else None,
                reply_to=str(replied.message_id) if replied is not None else None,
                author=_author(message.from_user),
                text=body,
                sent_at=message.date.astimezone(dtm.UTC),
            )
        )

    def _inbound(self, update: Update, message: Message, request_text: str) -> Inbound:
        user = message.from_user
        return Inbound(
            platform=PLATFORM,
            tenant=self.tenant,
            channel=str(message.chat.id),
            user=str(user.id) if user else "0",
            text=request_text,
            event_id=str(update.update_id),
            thread=str(message.message_thread_id) if message.is_topic_message else None,
            private=message.chat.type == ChatType.PRIVATE,
            timezone=self.timezone,
            user_name=_author(user) if user else None,
        )

    async def _route(
        self,
        update: Update,
        message: Message,
        request_text: str,
        fetch: Callable[[str, dict[str, Any]], Awaitable[list[dict[str, str]]]] | None,
    ) -> None:
        """Hand a request to the router and answer with its receipt.

        When tasks were created the receipt becomes the request's progress message, so the
        delivery job edits it instead of posting a second message; the router holds the job
        off that request until the receipt is adopted (or its post failed).
        """
        services = self.services
        inbound = replace(self._inbound(update, message, request_text), adopts_receipt=True)
        reply = await services.router.handle(inbound, fetch=fetch)
        if reply.duplicate:
            return  # a redelivery of an update already answered
        sent = await self._say(message.chat.id, reply.text, reply_to=message.message_id)
        if reply.request_id is not None and reply.task_ids:
            # Adopted, or (the post failed) the hold lifted so the delivery job posts at once.
            adopted = await services.repo.adopt_message(
                request_id=reply.request_id,
                message_id=str(sent.message_id) if sent is not None else None,
            )
            if adopted:
                await self._typing(message.chat.id)
        services.notify()

    # -- inbound: commands -----------------------------------------------------------------

    @staticmethod
    def _args(context: Context) -> str:
        return " ".join(context.args or []).strip()

    def _locale(self, user: User | None, sample: str) -> str:
        if sample.strip():
            return detect_locale(sample)
        code = (user.language_code or "") if user else ""
        return "zh" if code.lower().startswith("zh") else "en"

    async def _on_help(self, update: Update, context: Context) -> None:
        message = update.effective_message
        if message is None:
            return
        locale = self._locale(update.effective_user, "")
        opted_out = await self._opted_out(message.chat.id)
        privacy = text(
            "tg.privacy.off" if opted_out else "tg.privacy.on", locale, days=self.memory_days
        )
        await self._say(message.chat.id, f"{text('help', locale)}\n\n{privacy}")

    async def _on_email(self, update: Update, context: Context) -> None:
        message = update.effective_message
        if message is None:
            return
        args = self._args(context)
        if not args:
            locale = self._locale(update.effective_user, "")
            await self._say(message.chat.id, text("tg.usage.email", locale))
            return
        request = args if _mentions_email(args) else f"draft an email {args}"
        await self._route(update, message, request, None)

    async def _on_reply(self, update: Update, context: Context) -> None:
        message = update.effective_message
        if message is None:
            return
        replied = message.reply_to_message
        if replied is None or not (replied.text or replied.caption):
            locale = self._locale(update.effective_user, "")
            await self._say(message.chat.id, text("tg.usage.reply", locale))
            return
        args = self._args(context)
        request = "draft a reply to this message" + (f": {args}" if args else "")
        target = [_as_material(replied)]

        async def fetch(scope: str, slots: dict[str, Any]) -> list[dict[str, str]]:
            return target

        await self._route(update, message, request, fetch)

    async def _on_summarize(self, update: Update, context: Context) -> None:
        message = update.effective_message
        if message is None:
            return
        args = self._args(context)
        last = re.fullmatch(r"(?:last\s+|最近\s*)?(\d+)(?:\s*(?:messages?|条))?", args, re.I)
        fetch = self._summary_fetcher(
            message,
            since_message=message.reply_to_message,
            last=int(last.group(1)) if last else None,
        )
        # A time window ("since yesterday") is read from the request's slots later; here only
        # a chat with nothing kept at all, or nothing today for a plain /summarize, is told so.
        probe = (
            fetch
            if not args or last
            else self._summary_fetcher(message, since_message=None, last=1)
        )
        if not await probe("channel", {}):
            locale = self._locale(update.effective_user, args)
            await self._say(message.chat.id, text("tg.summarize.empty", locale))
            return
        request = "summarize this channel" + (f" {args}" if args and not last else "")
        await self._route(update, message, request, fetch)

    async def _on_status(self, update: Update, context: Context) -> None:
        message = update.effective_message
        if message is None:
            return
        args = self._args(context)
        ids = " ".join(f"#{n}" for n in re.findall(r"\d+", args))
        await self._route(update, message, f"status {ids}".strip(), None)

    async def _on_cancel(self, update: Update, context: Context) -> None:
        message = update.effective_message
        if message is None:
            return
        ids = re.findall(r"\d+", self._args(context))
        if not ids:
            await self._say(
                message.chat.id, text("tg.usage.cancel", self._locale(update.effective_user, ""))
            )
            return
        await self._route(update, message, "cancel " + " ".join(f"#{n}" for n in ids), None)

    async def _on_digest(self, update: Update, context: Context) -> None:
        message = update.effective_message
        if message is None:
            return
        args = self._args(context)
        if args.lower() in ("off", "stop", "unsubscribe", "关闭"):
            request = "stop the digest of this channel"
        else:
            request = f"send a daily digest of this channel {args or 'at 9am'}"
        await self._route(update, message, request, None)

    async def _on_forget(self, update: Update, context: Context) -> None:
        message = update.effective_message
        if message is None:
            return
        repo = self.services.repo
        where = {"platform": PLATFORM, "tenant": self.tenant, "channel": str(message.chat.id)}
        forgotten = await repo.forget_chat(**where)
        await repo.set_memory_opt_out(**where, opt_out=True)
        locale = self._locale(update.effective_user, "")
        await self._say(message.chat.id, text("tg.forgotten", locale, n=forgotten))

    async def _on_privacy(self, update: Update, context: Context) -> None:
        message = update.effective_message
        if message is None:
            return
        args = self._args(context).lower()
        locale = self._locale(update.effective_user, "")
        where = {"platform": PLATFORM, "tenant": self.tenant, "channel": str(message.chat.id)}
        if args in ("on", "off"):
            await self.services.repo.set_memory_opt_out(**where, opt_out=args == "off")
        elif args:
            await self._say(message.chat.id, text("tg.privacy.usage", locale))
            return
        opted_out = await self._opted_out(message.chat.id)
        key = "tg.privacy.off" if opted_out else "tg.privacy.on"
        await self._say(message.chat.id, text(key, locale, days=self.memory_days))

    async def _on_training(self, update: Update, context: Context) -> None:
        """``/training [on|off]``: keep this chat out of training exports, or let it back in."""
        message = update.effective_message
        if message is None:
            return
        answer = await training_command(
            self.services.repo,
            platform=PLATFORM,
            tenant=self.tenant,
            channel=str(message.chat.id),
            argument=self._args(context),
            locale=self._locale(update.effective_user, ""),
            command="/training",
            privacy="/privacy on",
        )
        await self._say(message.chat.id, answer)

    async def _opted_out(self, chat_id: int) -> bool:
        return await self.services.repo.memory_opted_out(
            platform=PLATFORM, tenant=self.tenant, channel=str(chat_id)
        )

    # -- inbound: conversation material for summaries and replies ------------------------

    def _conversation_fetcher(
        self, message: Message
    ) -> Callable[[str, dict[str, Any]], Awaitable[list[dict[str, str]]]]:
        """Material for a free-text request: from the replied message on, else today's."""
        return self._summary_fetcher(message, since_message=message.reply_to_message, last=None)

    def _summary_fetcher(
        self, message: Message, *, since_message: Message | None, last: int | None
    ) -> Callable[[str, dict[str, Any]], Awaitable[list[dict[str, str]]]]:
        """Kept messages for a summary, chosen in this order: from the replied message on;
        the slots' ``last_n``; the slots' ``since``/``until`` window; the command's ``last``;
        else today's."""
        chat_id = str(message.chat.id)
        request_id = message.message_id

        async def fetch(scope: str, slots: dict[str, Any]) -> list[dict[str, str]]:
            repo = self.services.repo
            since, until = _slot_time(slots, "since"), _slot_time(slots, "until")
            last_n = slots.get("last_n")
            wanted = last_n if isinstance(last_n, int) and not isinstance(last_n, bool) else None
            if since_message is not None:
                rows = await repo.chat_messages(
                    platform=PLATFORM,
                    tenant=self.tenant,
                    channel=chat_id,
                    since=since_message.date.astimezone(dtm.UTC) - dtm.timedelta(seconds=1),
                    limit=1000,
                )
                rows = [r for r in rows if _int(r.message_id) >= since_message.message_id]
                if not rows and (since_message.text or since_message.caption):
                    return [_as_material(since_message)]
            elif wanted is not None or (last is not None and since is None and until is None):
                count = wanted if wanted is not None else last
                rows = await repo.chat_messages(
                    platform=PLATFORM,
                    tenant=self.tenant,
                    channel=chat_id,
                    limit=min(max(1, count or 1), 1000),
                )
            elif since is not None or until is not None:
                rows = await repo.chat_messages(
                    platform=PLATFORM,
                    tenant=self.tenant,
                    channel=chat_id,
                    since=since,
                    until=until,
                    limit=1000,
                )
            else:
                start_of_day = dtm.datetime.now(ZoneInfo(self.timezone)).replace(
                    hour=0, minute=0, second=0, microsecond=0
                )
                rows = await repo.chat_messages(
                    platform=PLATFORM,
                    tenant=self.tenant,
                    channel=chat_id,
                    since=start_of_day.astimezone(dtm.UTC),
                    limit=1000,
                )
            return [
                {"author": r.author, "text": r.text, "ts": _hhmm(r.sent_at, self.timezone)}
                for r in rows
                if _int(r.message_id) != request_id
            ]

        return fetch

    # -- inbound: buttons ------------------------------------------------------------------

    async def _on_callback(self, update: Update, context: Context) -> None:
        """A button: under a result (👍/👎, Regenerate, Cancel) or in the "why 👎?" menu.

        After a 👎 the menu is sent as a reply to the result; a choice turns the menu into
        its next step (the kinds, then the outcome); "Other…" asks for words with a forced
        reply, and the voter's reply to it is their note.
        """
        query = update.callback_query
        if query is None:
            return
        # Answer first: the client spins until it is answered, and late answers fail.
        with contextlib.suppress(TelegramError):
            await query.answer()
        parsed = Button.decode(query.data or "")
        chat = update.effective_chat
        if parsed is None or chat is None:
            return
        action, task_id, choice = parsed
        pressed = query.message if isinstance(query.message, Message) else None
        reply = await self.services.router.handle_action(
            ActionEvent(
                platform=PLATFORM,
                tenant=self.tenant,
                channel=str(chat.id),
                user=str(query.from_user.id),
                action=action,
                task_id=task_id,
                event_id=f"cb:{query.id}",
                user_name=_author(query.from_user),
                choice=choice,
            ),
            fetch_for=self._chat_fetcher(pressed),
        )
        self.services.notify()
        menu = action in (Action.why, Action.replan)
        if reply.ask_comment and reply.comment_task is not None:
            await self._ask_note(chat.id, query.from_user, reply.comment_task, reply.text)
        elif menu and reply.update_menu and pressed is not None:
            await self._show_menu(chat.id, pressed.message_id, reply.text, reply.buttons)
        elif reply.buttons:
            await self._send_menu(chat.id, reply.text, reply.buttons, reply_to=_message_id(query))
        elif (menu or action in (Action.cancel, Action.regenerate)) and reply.text:
            await self._say(chat.id, reply.text, reply_to=_message_id(query))

    def _chat_fetcher(
        self, message: Message | None
    ) -> Callable[
        [str, str | None], Callable[[str, dict[str, Any]], Awaitable[list[dict[str, str]]]]
    ]:
        """What a re-planned task reads: the chat's kept messages (the Bot API has no history)."""

        def fetch_for(
            channel: str, thread: str | None
        ) -> Callable[[str, dict[str, Any]], Awaitable[list[dict[str, str]]]]:
            if message is None:

                async def nothing(scope: str, slots: dict[str, Any]) -> list[dict[str, str]]:
                    return []

                return nothing
            return self._summary_fetcher(message, since_message=None, last=None)

        return fetch_for

    async def _send_menu(
        self,
        chat_id: int,
        body: str,
        rows: tuple[tuple[Button, ...], ...],
        *,
        reply_to: int | None,
    ) -> None:
        reply = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None
        try:
            await self._send_text(chat_id, body, markup=menu_keyboard(rows), reply=reply)
        except DeliveryError as exc:
            log.warning("could not send a menu in Telegram chat %s: %s", chat_id, exc.reason)

    async def _show_menu(
        self, chat_id: int, message_id: int, body: str, rows: tuple[tuple[Button, ...], ...]
    ) -> None:
        """Turn a menu message into its next step (no keyboard once nothing is left to pick)."""
        markup = menu_keyboard(rows)
        try:
            await self._deliver(
                chat_id,
                lambda: self.application.bot.edit_message_text(
                    body[: self.max_text],
                    chat_id=chat_id,
                    message_id=message_id,
                    reply_markup=markup,
                ),
                method="editMessageText",
            )
        except DeliveryError as exc:
            if "not modified" not in exc.reason.lower():
                log.warning("could not update a menu in Telegram chat %s: %s", chat_id, exc.reason)

    async def _ask_note(self, chat_id: int, user: User, task_id: int, prompt: str) -> None:
        """Ask for the voter's words with a forced reply; their reply becomes the note."""
        locale = detect_locale(prompt)
        mention = f"@{user.username} " if user.username and chat_id < 0 else ""
        markup = ForceReply(
            selective=True,
            input_field_placeholder=t("why.comment_placeholder", locale)[:MAX_PLACEHOLDER],
        )
        try:
            sent = await self._deliver(
                chat_id,
                functools.partial(
                    self.application.bot.send_message,
                    chat_id,
                    mention + prompt,
                    reply_markup=markup,
                ),
            )
        except DeliveryError as exc:
            log.warning("could not ask for a note in Telegram chat %s: %s", chat_id, exc.reason)
            return
        self._note_prompts[(chat_id, sent.message_id)] = (task_id, user.id)
        while len(self._note_prompts) > MAX_NOTE_PROMPTS:
            self._note_prompts.popitem(last=False)

    async def _took_note(self, update: Update, message: Message) -> bool:
        """Whether ``message`` is a voter's reply to their note prompt (then it is stored)."""
        replied = message.reply_to_message
        user = message.from_user
        if replied is None or user is None:
            return False
        key = (message.chat.id, replied.message_id)
        asked = self._note_prompts.get(key)
        if asked is None or asked[1] != user.id:
            return False
        del self._note_prompts[key]
        reply = await self.services.router.handle_action(
            ActionEvent(
                platform=PLATFORM,
                tenant=self.tenant,
                channel=str(message.chat.id),
                user=str(user.id),
                action=Action.note,
                task_id=asked[0],
                event_id=str(update.update_id),
                user_name=_author(user),
                comment=message.text or "",
            )
        )
        if reply.text:
            await self._say(message.chat.id, reply.text, reply_to=message.message_id)
        return True

    # -- outbound --------------------------------------------------------------------------

    async def send(self, target: Target, view: View, *, client_id: str | None = None) -> str:
        """Post a view as a new message (long text split, buttons on the last part).

        ``client_id`` is not sent: the Bot API keeps no client-side id (see ``find_sent``).
        """
        chat_id = int(target.channel)
        body = view.text or "…"
        markup = keyboard(view)
        parts = split_text(body, self.max_text)
        message: Message | None = None
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            message = await self._send_text(
                chat_id, part, markup=markup if last else None, thread=_thread(target)
            )
        assert message is not None
        self._remember_shown(chat_id, message.message_id, _fingerprint(parts[-1], markup))
        if _active(view):
            await self._typing(chat_id)
        return str(message.message_id)

    async def edit(self, target: Target, message_id: str, view: View) -> None:
        """Replace a message's text and buttons; an identical edit is skipped."""
        chat_id, mid = int(target.channel), int(message_id)
        body = view.text or "…"
        if len(body) > self.max_text:
            raise DeliveryError("message is too long for one Telegram message", retryable=False)
        markup = keyboard(view)
        fingerprint = _fingerprint(body, markup)
        if self._shown.get((chat_id, mid)) == fingerprint:
            return
        try:
            await self._deliver(
                chat_id,
                lambda: self.application.bot.edit_message_text(
                    body, chat_id=chat_id, message_id=mid, reply_markup=markup
                ),
                method="editMessageText",
            )
        except DeliveryError as exc:
            if "not modified" not in exc.reason.lower():
                raise
        self._remember_shown(chat_id, mid, fingerprint)
        if _active(view):
            await self._typing(chat_id)

    async def notify(self, target: Target, text_: str, *, client_id: str | None = None) -> None:
        """Post a plain message (reminders, digests), split when long."""
        await self._say(int(target.channel), text_, thread=_thread(target), raise_errors=True)

    async def find_sent(self, target: Target, client_id: str, *, since: dtm.datetime) -> PostLookup:
        """Bots cannot read chat history nor list their own messages: cannot tell.

        The Bot API has no client-side id or idempotency key for ``sendMessage`` either, so
        a post interrupted after Telegram applied it is posted again (at least once).
        """
        return PostLookup(searchable=False)

    async def _say(
        self,
        chat_id: int,
        body: str,
        *,
        reply_to: int | None = None,
        thread: int | None = None,
        raise_errors: bool = False,
    ) -> Message | None:
        """Send text (split when long); the first part replies to ``reply_to``."""
        first: Message | None = None
        try:
            for i, part in enumerate(split_text(body.strip() or "…", self.max_text)):
                reply = (
                    ReplyParameters(reply_to, allow_sending_without_reply=True)
                    if reply_to is not None and i == 0
                    else None
                )
                sent = await self._send_text(chat_id, part, reply=reply, thread=thread)
                first = first or sent
        except DeliveryError as exc:
            if raise_errors:
                raise
            log.warning("could not answer in Telegram chat %s: %s", chat_id, exc.reason)
        if first is not None:
            self._remember_shown(chat_id, first.message_id, _fingerprint(first.text or "", None))
        return first

    async def _send_text(
        self,
        chat_id: int,
        body: str,
        *,
        markup: InlineKeyboardMarkup | None = None,
        reply: ReplyParameters | None = None,
        thread: int | None = None,
    ) -> Message:
        return await self._deliver(
            chat_id,
            functools.partial(
                self.application.bot.send_message,
                chat_id,
                body,
                reply_markup=markup,
                reply_parameters=reply,
                message_thread_id=thread,
            ),
        )

    async def _deliver(
        self, chat_id: int, call: Callable[[], Awaitable[T]], *, method: str = "sendMessage"
    ) -> T:
        """Make one Bot API call that writes to a chat: paced, RetryAfter waited and retried."""
        group = self._chat_types.get(chat_id, ChatType.GROUP if chat_id < 0 else ChatType.PRIVATE)
        for attempt in range(self.max_retries + 1):
            await self.pacer.wait(chat_id, group=group != ChatType.PRIVATE)
            try:
                return await call()
            except RetryAfter as exc:
                if self._services is not None:
                    self._services.metrics.platform_rate_limited(PLATFORM, method)
                wait = _retry_seconds(exc)
                if attempt >= self.max_retries or wait > self.max_retry_wait:
                    raise DeliveryError(str(exc), retryable=True, retry_after=wait) from exc
                log.info("Telegram flood limit in chat %s: waiting %.0fs", chat_id, wait)
                await asyncio.sleep(wait)
            except BadRequest as exc:
                raise DeliveryError(exc.message, retryable=False) from exc
            except Forbidden as exc:
                raise DeliveryError(exc.message, retryable=False) from exc
            except NetworkError as exc:  # incl. TimedOut: the request may have reached Telegram
                raise DeliveryError(exc.message, retryable=True, maybe_sent=True) from exc
            except TelegramError as exc:
                raise DeliveryError(exc.message, retryable=True) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _typing(self, chat_id: int) -> None:
        """Show "typing…" while tasks run (Telegram shows it for about 5 s)."""
        now = time.monotonic()
        if now - self._last_typing.get(chat_id, -10.0) < 4.0:
            return
        self._last_typing[chat_id] = now
        with contextlib.suppress(TelegramError):
            await self.application.bot.send_chat_action(chat_id, ChatAction.TYPING)

    def _remember_shown(self, chat_id: int, message_id: int, fingerprint: str) -> None:
        self._shown[(chat_id, message_id)] = fingerprint
        self._shown.move_to_end((chat_id, message_id))
        while len(self._shown) > 5_000:
            self._shown.popitem(last=False)


# -- helpers ---------------------------------------------------------------------------------


def _author(user: User) -> str:
    return user.full_name or (f"@{user.username}" if user.username else str(user.id))


def _as_material(message: Message) -> dict[str, str]:
    author = _author(message.from_user) if message.from_user else "?"
    return {
        "author": author,
        "text": message.text or message.caption or "",
        "ts": message.date.astimezone(dtm.UTC).strftime("%H:%M"),
    }


def _hhmm(when: dtm.datetime, timezone: str) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=dtm.UTC)
    return when.astimezone(ZoneInfo(timezone)).strftime("%H:%M")


def _slot_time(slots: dict[str, Any], name: str) -> dtm.datetime | None:
    """A time slot (ISO 8601, from the intent parser) in UTC; None when absent or unreadable."""
    value = slots.get(name)
    if not isinstance(value, str) or not value:
        return None
    try:
        when = dtm.datetime.fromisoformat(value)
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=dtm.UTC)).astimezone(dtm.UTC)


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return -1


def _mentions_email(args: str) -> bool:
    return bool(re.search(r"\b(e-?mail|邮件)\b", args, re.IGNORECASE))


def _message_id(query: CallbackQuery) -> int | None:
    message = query.message
    return message.message_id if message is not None else None


def _thread(target: Target) -> int | None:
    return int(target.thread) if target.thread and target.thread.isdigit() else None


def _fingerprint(body: str, markup: InlineKeyboardMarkup | None) -> str:
    buttons = (
        [[(b.text, b.callback_data) for b in row] for row in markup.inline_keyboard]
        if markup
        else []
    )
    return f"{body}\x00{buttons}"


def _active(view: View) -> bool:
    """Whether a task of the view is still queued or running (it offers Cancel)."""
    return any(b.action == Action.cancel for row in view.buttons for b in row)
