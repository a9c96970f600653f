"""The Telegram adapter: python-telegram-bot's ``Application`` wired to the router.

Lifecycle (start/stop, polling or webhook, ``ready()``) and the handlers live here; the
pieces it uses are pure or single-purpose: :mod:`.gate` (dedupe, allowlist),
:mod:`.inbound` (updates → :class:`~bot.types.Inbound` / :class:`~bot.types.ActionEvent`),
:mod:`.commands` (commands → the task kind they ask for, never re-parsed by the
classifier), :mod:`.outbound` (messages, menus, ForceReply prompts, drafts) and
:mod:`.limits` (the ``BaseRateLimiter`` pacing every Bot API call). Chat memory and the
privacy commands are :mod:`handlers.memory` and :mod:`handlers.privacy`.

Updates arrive by long polling, or by webhook when ``TELEGRAM_WEBHOOK_URL`` is set
(:mod:`.webhook` answers 403 to a wrong or missing secret, 400/413 to a malformed or
oversized update, never a 5xx, and only then queues the update).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import logging
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from telegram import (
    BotCommand,
    BotCommandScopeDefault,
    CallbackQuery,
    Message,
    Update,
    User,
)
from telegram.constants import ChatType, MessageLimit
from telegram.error import TelegramError
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

from bot.adapters.base import PostLookup, Services, StreamUnavailable
from bot.adapters.telegram import commands, inbound
from bot.adapters.telegram.commands import COMMANDS, Usage
from bot.adapters.telegram.gate import Gate, Verdict, parse_allowlist
from bot.adapters.telegram.limits import FloodLimiter
from bot.adapters.telegram.outbound import Outbound, draft_id_for, thread_of
from bot.adapters.telegram.webhook import ACCEPTED_KINDS, Malformed, WebhookServer
from bot.errors import report
from bot.texts import detect_locale, t
from bot.training_optout import training_command
from bot.types import Action, ActionEvent, Reply, StreamUpdate, Target, View
from handlers import memory, privacy
from models.intents.spec import TaskSpec

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger(__name__)

PLATFORM = inbound.PLATFORM
Context = ContextTypes.DEFAULT_TYPE
Fetch = Callable[[str, dict[str, Any]], Awaitable[list[dict[str, str]]]]

#: Updates the bot asks Telegram for (the kinds its webhook accepts; others are dropped).
ALLOWED_UPDATES = list(ACCEPTED_KINDS)
#: Prompts waiting for a person's words kept at most (the oldest are forgotten first).
MAX_PROMPTS = 1_000
#: Open "why 👎?" menus remembered (one per result and voter).
MAX_MENUS = 5_000


def file_url_for(api_url: str) -> str:
    """The Bot API file URL that goes with a ``base_url`` (``…/bot`` → ``…/file/bot``)."""
    stripped = api_url.rstrip("/")
    if stripped.endswith("/bot"):
        return stripped[: -len("/bot")] + "/file/bot"
    return stripped + "/file/bot"


@dataclass(frozen=True)
class Prompt:
    """A ForceReply prompt: whose reply answers it, about which task, as which action."""

    task_id: int
    user_id: int
    action: Action


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


class TelegramAdapter:
    """atombot in Telegram: private chats, groups, commands, inline buttons; results stream
    as drafts in private chats (``sendMessageDraft``) and as throttled edits in groups."""

    platform = PLATFORM
    max_text = MessageLimit.MAX_TEXT_LENGTH
    #: Progress edits at most every 1.5 s per message (≤ 1 message/s per chat).
    min_edit_interval = 1.5
    #: Drafts at most every 1.0 s: Telegram publishes no figure of its own for
    #: ``sendMessageDraft``, so it is paced (here and by the limiter) as a message, ≤ 1/s per
    #: chat (PLATFORM-RULES.md, "Rate limits").
    min_stream_interval = 1.0

    def __init__(
        self,
        settings: Settings,
        *,
        webhook_listen: str = "0.0.0.0",
        webhook_port: int = 8443,
        poll_timeout: float = 10.0,
        rate_limiter: FloodLimiter | None = None,
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
        self.tenant = self.token.split(":", 1)[0]
        self.rate_limiter = rate_limiter or FloodLimiter()
        self.rate_limiter.on_rate_limited = self._rate_limited
        self.gate = Gate(self.allowed)
        self.out = Outbound(lambda: self.application.bot)
        self._services: Services | None = None
        self._app: Application[Any, Any, Any, Any, Any, Any] | None = None
        self._username = ""
        self._webhook: WebhookServer | None = None
        # (chat, prompt message) -> who answers it and how. In memory only: a restart forgets
        # open prompts (the person taps the button again).
        self._prompts: OrderedDict[tuple[int, int], Prompt] = OrderedDict()
        # (chat, task, voter) -> the "why 👎?" menu open for it (None while it is being sent).
        self._menus: OrderedDict[tuple[int, int, int], int | None] = OrderedDict()

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def application(self) -> Application[Any, Any, Any, Any, Any, Any]:
        """The running python-telegram-bot Application."""
        if self._app is None:
            raise RuntimeError("the Telegram adapter is not started")
        return self._app

    @property
    def services(self) -> Services:
        """What the core handed over in :meth:`start`."""
        if self._services is None:
            raise RuntimeError("the Telegram adapter is not started")
        return self._services

    def build_application(self) -> Application[Any, Any, Any, Any, Any, Any]:
        """The PTB Application with atombot's handlers and rate limiter (not started)."""
        builder = (
            ApplicationBuilder()
            .token(self.token)
            .base_url(self.api_url)
            .base_file_url(file_url_for(self.api_url))
            .concurrent_updates(PerChatUpdateProcessor())
            .rate_limiter(self.rate_limiter)
        )
        if self.webhook_url:
            builder = builder.updater(None)  # our own server feeds the update queue
        app = builder.build()
        app.add_handler(TypeHandler(Update, self._gate), group=-1)
        app.add_handler(CommandHandler(("start", "help"), self._on_help))
        app.add_handler(CommandHandler(sorted(commands.REQUESTS), self._on_request_command))
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
            listed = [BotCommand(c, t(f"tg.command.{c}", locale)) for c in COMMANDS]
            try:
                await bot.set_my_commands(
                    listed,
                    scope=BotCommandScopeDefault(),
                    language_code=None if locale == "en" else locale,
                )
            except TelegramError as exc:
                # A menu without commands is no reason not to serve messages.
                log.warning("setMyCommands (%s) failed: %s", locale, exc)

    async def _enqueue(self, data: dict[str, Any]) -> None:
        """Queue a webhook update that passed the edge's checks (see :mod:`.webhook`)."""
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

    def _rate_limited(self, method: str) -> None:
        if self._services is not None:
            self._services.metrics.platform_rate_limited(PLATFORM, method)

    # -- the core's calls (ChatAdapter, StreamingAdapter) ----------------------------------

    async def send(self, target: Target, view: View, *, client_id: str | None = None) -> str:
        """Post a view as a new message (long text split, buttons on the last part).

        ``client_id`` is not sent: the Bot API keeps no client-side id (see ``find_sent``).
        """
        return await self.out.send(target, view)

    async def edit(self, target: Target, message_id: str, view: View) -> None:
        """Replace a message's text and buttons; an identical edit is skipped."""
        await self.out.edit(target, message_id, view)

    async def notify(self, target: Target, text_: str, *, client_id: str | None = None) -> None:
        """Post a plain message (reminders, digests), split when long."""
        await self.out.say(int(target.channel), text_, thread=thread_of(target), raise_errors=True)

    async def find_sent(self, target: Target, client_id: str, *, since: dtm.datetime) -> PostLookup:
        """Bots cannot read chat history nor list their own messages: cannot tell.

        The Bot API has no client-side id or idempotency key for ``sendMessage`` either, so
        a post interrupted after Telegram applied it is posted again (at least once).
        """
        return PostLookup(searchable=False)

    def can_stream(self, target: Target) -> bool:
        """Drafts exist in private chats only (a private chat's id is the user's, > 0)."""
        return target.channel.isdigit()

    async def stream_start(self, target: Target, update: StreamUpdate, *, client_id: str) -> str:
        """Show the first draft (empty text: Telegram's "Thinking…" placeholder); the stream
        id is the ``draft_id``, derived from ``client_id`` (the same after a restart)."""
        if not self.can_stream(target):
            raise StreamUnavailable("Telegram drafts exist only in private chats")
        draft_id = draft_id_for(client_id)
        await self.out.draft(target, draft_id, update)
        return str(draft_id)

    async def stream_append(self, target: Target, stream_id: str, update: StreamUpdate) -> None:
        """Show the text so far (``update.text``, the same ``draft_id``)."""
        await self.out.draft(target, _draft_id(stream_id), update)

    async def stream_stop(
        self,
        target: Target,
        stream_id: str,
        view: View,
        *,
        client_id: str,
        rest: str | None = None,
    ) -> str:
        """Persist the result: one ``sendMessage`` with the view's buttons (split like
        :meth:`send`); a repeated stop for ``client_id`` returns the same message id.

        The record is in memory: after a restart the core's own record (``Delivery``) is
        what keeps a finished stream from being stopped again.
        """
        return await self.out.finish(target, view, client_id=client_id)

    # -- inbound: gate ---------------------------------------------------------------------

    async def _gate(self, update: Update, context: Context) -> None:
        """Drop redelivered updates and refuse chats outside the allowlist, before any handler."""
        verdict = self.gate.check(update)
        if verdict is Verdict.admit:
            return
        if verdict is Verdict.duplicate:
            raise ApplicationHandlerStop
        chat, user = update.effective_chat, update.effective_user
        log.info(
            "refused Telegram update %s from chat %s, user %s: not in TELEGRAM_ALLOWED_CHATS",
            update.update_id,
            chat.id if chat else None,
            user.id if user else None,
        )
        locale = _locale(user, "")
        message = update.effective_message
        if update.callback_query is not None:
            with contextlib.suppress(TelegramError):
                await update.callback_query.answer(t("error.not_allowed", locale))
        elif (
            message is not None
            and chat is not None
            and (chat.type == ChatType.PRIVATE or self._addressed(message))
        ):
            await self.out.say(chat.id, t("error.not_allowed", locale))
        raise ApplicationHandlerStop

    # -- inbound: messages -----------------------------------------------------------------

    def _addressed(self, message: Message) -> bool:
        return inbound.addressed(message, bot_id=int(self.tenant), username=self._username)

    async def _on_text(self, update: Update, context: Context) -> None:
        message = update.effective_message
        if message is None or message.text is None:
            return
        if await self._took_answer(update, message):
            return
        if self._addressed(message):
            request = inbound.strip_mention(message.text, self._username)
            fetch = self._kept(message, since=inbound.since(message.reply_to_message))
            await self._route(update, message, request, fetch)
            return
        heard = inbound.heard(message)
        if heard is not None:
            await memory.remember(
                self.services.repo, platform=PLATFORM, tenant=self.tenant, heard=heard
            )

    async def _route(
        self,
        update: Update,
        message: Message,
        request_text: str,
        fetch: Fetch | None,
        *,
        intent: TaskSpec | None = None,
    ) -> None:
        """Hand a request to the router and answer with its receipt.

        When tasks were created the receipt becomes the request's progress message, so the
        delivery job edits it instead of posting a second message; the router holds the job
        off that request until the receipt is adopted (or its post failed).
        """
        services = self.services
        request = inbound.to_inbound(
            update, message, request_text, tenant=self.tenant, timezone=self.timezone
        )
        reply = await services.router.handle(
            replace(request, adopts_receipt=True), fetch=fetch, intent=intent
        )
        if reply.duplicate:
            return  # a redelivery of an update already answered
        sent = await self.out.say(message.chat.id, reply.text, reply=message.message_id)
        if reply.request_id is not None and reply.task_ids:
            # Adopted, or (the post failed) the hold lifted so the delivery job posts at once.
            adopted = await services.repo.adopt_message(
                request_id=reply.request_id,
                message_id=str(sent.message_id) if sent is not None else None,
            )
            if adopted:
                await self.out.typing(message.chat.id)
        services.notify()

    def _kept(
        self,
        message: Message,
        *,
        since: memory.Since | None = None,
        last: int | None = None,
    ) -> Fetch:
        """The chat's kept messages as a task's material (the Bot API has no history)."""
        channel, exclude = str(message.chat.id), message.message_id

        async def fetch(scope: str, slots: dict[str, Any]) -> list[dict[str, str]]:
            return await memory.kept_material(
                self.services.repo,
                platform=PLATFORM,
                tenant=self.tenant,
                channel=channel,
                timezone=self.timezone,
                slots=slots,
                since=since,
                last=last,
                exclude=exclude,
            )

        return fetch

    # -- inbound: commands -----------------------------------------------------------------

    def _where(self, message: Message) -> dict[str, str]:
        return {"platform": PLATFORM, "tenant": self.tenant, "channel": str(message.chat.id)}

    async def _on_help(self, update: Update, context: Context) -> None:
        message = update.effective_message
        if message is None:
            return
        locale = _locale(update.effective_user, "")
        status = await privacy.memory_status(
            self.services.repo, **self._where(message), locale=locale, days=self.memory_days
        )
        await self.out.say(message.chat.id, f"{t('help', locale)}\n\n{status}")

    async def _on_request_command(self, update: Update, context: Context) -> None:
        """``/email``, ``/reply``, ``/summarize``, ``/status``, ``/cancel``, ``/digest``: a
        request for that task kind, routed without the classifier."""
        message = update.effective_message
        if message is None or message.text is None:
            return
        command = message.text.split(maxsplit=1)[0].lstrip("/").split("@", 1)[0].lower()
        args = _args(context)
        locale = _locale(update.effective_user, args)
        replied = message.reply_to_message
        fetch: Fetch | None = None
        if command == "reply":
            if replied is None or not (replied.text or replied.caption):
                await self.out.say(message.chat.id, t("tg.usage.reply", locale))
                return
            material = [inbound.as_material(replied)]

            async def target(scope: str, slots: dict[str, Any]) -> list[dict[str, str]]:
                return material

            fetch = target
        elif command == "summarize":
            last = commands.summarize_last(args)
            fetch = self._kept(message, since=inbound.since(replied), last=last)
            # A time window ("since yesterday") is read from the slots later; here only a chat
            # with nothing kept at all, or nothing today for a plain /summarize, is told so.
            probe = fetch if not args or last is not None else self._kept(message, last=1)
            if not await probe("channel", {}):
                await self.out.say(message.chat.id, t("tg.summarize.empty", locale))
                return
        spec = commands.command_request(
            command, message.text, args, now=dtm.datetime.now(dtm.UTC), timezone=self.timezone
        )
        if isinstance(spec, Usage):
            await self.out.say(message.chat.id, t(spec.key, locale))
            return
        await self._route(update, message, message.text, fetch, intent=spec)

    async def _on_forget(self, update: Update, context: Context) -> None:
        message = update.effective_message
        if message is None:
            return
        answer = await privacy.forget(
            self.services.repo,
            **self._where(message),
            locale=_locale(update.effective_user, ""),
            user=_actor(update),
            stop_keeping=True,
        )
        await self.out.say(message.chat.id, answer)

    async def _on_privacy(self, update: Update, context: Context) -> None:
        message = update.effective_message
        if message is None:
            return
        answer = await privacy.privacy(
            self.services.repo,
            **self._where(message),
            argument=_args(context),
            locale=_locale(update.effective_user, ""),
            days=self.memory_days,
            user=_actor(update),
        )
        await self.out.say(message.chat.id, answer)

    async def _on_training(self, update: Update, context: Context) -> None:
        """``/training [on|off]``: keep this chat out of training exports, or let it back in."""
        message = update.effective_message
        if message is None:
            return
        answer = await training_command(
            self.services.repo,
            **self._where(message),
            argument=_args(context),
            locale=_locale(update.effective_user, ""),
            command="/training",
            privacy="/privacy on",
            user=_actor(update),
        )
        await self.out.say(message.chat.id, answer)

    # -- inbound: buttons and prompts ------------------------------------------------------

    async def _on_callback(self, update: Update, context: Context) -> None:
        """A button: under a result (👍/👎, Regenerate, Cancel, Approve/Edit/Reject) or in the
        "why 👎?" menu.

        After a 👎 the menu is sent as a reply to the result (once, however often 👎 is
        tapped while it is open); a choice turns the menu into its next step (the kinds,
        then the outcome); "Other…" and "Edit" ask for words with a forced reply, and the
        person's reply to it is sent back as the action's comment.
        """
        query = update.callback_query
        if query is None:
            return
        # Answer first: the client spins until it is answered, and late answers fail.
        with contextlib.suppress(TelegramError):
            await query.answer()
        event = inbound.to_action(query, tenant=self.tenant)
        chat = update.effective_chat
        if event is None or chat is None:
            return
        pressed = query.message if isinstance(query.message, Message) else None
        menu_key = (chat.id, event.task_id, query.from_user.id)
        if event.action == Action.rate_down and menu_key in self._menus:
            return  # its menu is open (or on its way): one menu per result and voter
        if event.action == Action.rate_down:
            self._menus[menu_key] = None  # claimed before the router is awaited: taps race
        try:
            reply = await self.services.router.handle_action(
                event, fetch_for=self._fetcher_for(pressed)
            )
        except BaseException:
            if event.action == Action.rate_down:
                self._menus.pop(menu_key, None)
            raise
        self.services.notify()
        await self._answer_action(event, reply, query, pressed, menu_key)

    async def _answer_action(
        self,
        event: ActionEvent,
        reply: Reply,
        query: CallbackQuery,
        pressed: Message | None,
        menu_key: tuple[int, int, int],
    ) -> None:
        chat_id = menu_key[0]
        action = event.action
        menu = action in (Action.why, Action.replan)
        if action == Action.rate_up or (menu and not reply.buttons) or reply.ask_comment:
            self._menus.pop(menu_key, None)  # the vote changed, or the menu reached its end
        if reply.ask_comment and reply.comment_task is not None:
            await self._ask(chat_id, query.from_user, reply)
        elif menu and reply.update_menu and pressed is not None:
            await self.out.show_menu(chat_id, pressed.message_id, reply.text, reply.buttons)
        elif reply.buttons:
            sent = await self.out.send_menu(
                chat_id, reply.text, reply.buttons, reply=_message_id(query)
            )
            if action == Action.rate_down:
                if sent is None:
                    self._menus.pop(menu_key, None)
                else:
                    self._menus[menu_key] = sent.message_id
                    while len(self._menus) > MAX_MENUS:
                        self._menus.popitem(last=False)
        elif reply.text and (menu or action not in (Action.rate_up, Action.rate_down)):
            await self.out.say(chat_id, reply.text, reply=_message_id(query))
        elif action == Action.rate_down:
            self._menus.pop(menu_key, None)

    def _fetcher_for(self, message: Message | None) -> Callable[[str, str | None], Fetch]:
        """What a re-planned task reads: the chat's kept messages (the Bot API has no history)."""

        def fetch_for(channel: str, thread: str | None) -> Fetch:
            if message is None:

                async def nothing(scope: str, slots: dict[str, Any]) -> list[dict[str, str]]:
                    return []

                return nothing
            return self._kept(message)

        return fetch_for

    async def _ask(self, chat_id: int, user: User, reply: Reply) -> None:
        """Ask for the person's words with a forced reply (a note, a draft's new text)."""
        assert reply.comment_task is not None
        locale = detect_locale(reply.text)
        mention = f"@{user.username} " if user.username and chat_id < 0 else ""
        prompt = mention + reply.text
        if reply.ask_prefill:
            # A forced reply cannot be prefilled: the text to start from goes in the prompt.
            prompt += "\n\n" + t("tg.ask.prefill", locale, text=reply.ask_prefill)
        key = (
            "tg.ask.edit_placeholder"
            if reply.ask_action == Action.edit
            else "why.comment_placeholder"
        )
        sent = await self.out.ask(chat_id, prompt, placeholder=t(key, locale))
        if sent is None:
            return
        self._prompts[(chat_id, sent.message_id)] = Prompt(
            reply.comment_task, user.id, reply.ask_action
        )
        while len(self._prompts) > MAX_PROMPTS:
            self._prompts.popitem(last=False)

    async def _took_answer(self, update: Update, message: Message) -> bool:
        """Whether ``message`` answers a ForceReply prompt of its sender (then it is sent on)."""
        replied, user = message.reply_to_message, message.from_user
        if replied is None or user is None:
            return False
        key = (message.chat.id, replied.message_id)
        prompt = self._prompts.get(key)
        if prompt is None or prompt.user_id != user.id:
            return False
        del self._prompts[key]
        event = inbound.to_answer(
            update, message, action=prompt.action, task_id=prompt.task_id, tenant=self.tenant
        )
        reply = await self.services.router.handle_action(event)
        self.services.notify()
        if reply.text:
            await self.out.say(message.chat.id, reply.text, reply=message.message_id)
        return True


# -- helpers ---------------------------------------------------------------------------------


def _draft_id(stream_id: str) -> int:
    try:
        return int(stream_id)
    except ValueError:
        return draft_id_for(stream_id)


def _args(context: Context) -> str:
    return " ".join(context.args or []).strip()


def _actor(update: Update) -> str:
    """Who sent an update, as the audit log names a Telegram user (their user id)."""
    user = update.effective_user
    return str(user.id) if user else "chat"


def _locale(user: User | None, sample: str) -> str:
    if sample.strip():
        return detect_locale(sample)
    code = (user.language_code or "") if user else ""
    return "zh" if code.lower().startswith("zh") else "en"


def _message_id(query: CallbackQuery) -> int | None:
    message = query.message
    return message.message_id if message is not None else None
