"""A fake Telegram Bot API: a real local aiohttp server for python-telegram-bot tests.

python-telegram-bot runs for real against it (``Bot(token, base_url=fake.base_url)`` or
``ApplicationBuilder().base_url(fake.base_url)``). The fake implements the methods atombot
uses (Bot API 10.0, the version python-telegram-bot 22.8 speaks), enforces the platform
limits of ``PLATFORM-RULES.md`` so tests catch what the real Telegram would reject, records
every call, keeps the messages of every chat, and lets tests inject updates, which it
queues for ``getUpdates`` or, while a webhook is set, POSTs to the webhook.

Limits enforced:

- message text 1-4096 characters after entity parsing (counted in code points, like
  python-telegram-bot's ``MessageLimit`` and the core's splitting; entity offsets are in
  UTF-16 code units as in the real API);
- ``callback_data`` 1-64 bytes of UTF-8 → 400 ``BUTTON_DATA_INVALID``;
- a ForceReply's ``input_field_placeholder`` 1-64 characters; ``editMessageText`` takes
  only an inline keyboard as ``reply_markup``;
- ``editMessageText`` / ``editMessageReplyMarkup`` with the current content → 400
  "message is not modified"; editing text without ``reply_markup`` removes the keyboard,
  as the real API does;
- ``answerCallbackQuery``: text ≤ 200 characters; a query answered twice, unknown, or later
  than ``callback_answer_timeout`` seconds → 400 "query is too old ...";
- rate limits (see :class:`RateLimits`) → 429 with ``parameters.retry_after``, plus
  :meth:`FakeTelegram.force_429` to make the next calls fail;
- ``getUpdates`` → 409 while a webhook is set, and 409 for a poll superseded by a newer one;
- ``sendMessageDraft``: private chats only (400 ``TEXTDRAFT_PEER_INVALID`` in a group),
  ``draft_id`` a non-zero integer (400 ``DRAFT_ID_INVALID``), text 0-4096 characters (empty:
  the "Thinking…" placeholder), counted like a message by the per-chat rate limit; the
  chat's drafts end with the next ``sendMessage`` there (:attr:`FakeChat.drafts`);
- the token in the URL → 401 otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import math
import re
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

JSON = dict[str, Any]

DEFAULT_TOKEN = "7000001:AAFakeTelegramTokenForAtombotTests"
DEFAULT_BOT_USERNAME = "atombot_test_bot"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

MAX_TEXT_LENGTH = 4096
MAX_CALLBACK_DATA_BYTES = 64
#: ForceReply ``input_field_placeholder``: 1-64 characters.
MAX_PLACEHOLDER = 64
MAX_CALLBACK_ANSWER_LENGTH = 200
MAX_COMMANDS = 100

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)

CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
UPDATE_TYPES = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "callback_query",
    "inline_query",
    "chosen_inline_result",
    "my_chat_member",
    "chat_member",
    "message_reaction",
)

# How form / query values are decoded; python-telegram-bot sends non-string values
# JSON-encoded in an application/x-www-form-urlencoded body.
_INT_FIELDS = frozenset(
    {
        "message_id",
        "offset",
        "limit",
        "timeout",
        "max_connections",
        "cache_time",
        "message_thread_id",
        "direct_messages_topic_id",
        "draft_id",
    }
)
_BOOL_FIELDS = frozenset(
    {
        "drop_pending_updates",
        "disable_notification",
        "protect_content",
        "allow_paid_broadcast",
        "show_alert",
    }
)
_JSON_FIELDS = frozenset(
    {
        "allowed_updates",
        "entities",
        "link_preview_options",
        "reply_parameters",
        "reply_markup",
        "commands",
        "scope",
        "suggested_post_parameters",
    }
)
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_MENTION_RE = re.compile(r"@[A-Za-z0-9_]{5,32}")
_BOT_COMMAND_RE = re.compile(r"^/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{5,32})?")
_HTML_TAG_RE = re.compile(r"<(/?)([a-zA-Z-]+)([^>]*)>")
_HTML_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
    }
)


def utf16_length(text: str) -> int:
    """Return the length of ``text`` in UTF-16 code units, as Telegram counts it."""
    return len(text.encode("utf-16-le")) // 2


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now (for a webhook server in tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class ManualClock:
    """A clock for the fake's rate limits and callback deadlines that only tests move."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self.now += seconds


@dataclass(frozen=True)
class RateLimits:
    """Telegram's flood limits as the fake enforces them.

    ``methods`` are the calls that count as "a message" towards every limit.
    """

    per_chat_per_second: float = 1.0
    per_chat_burst: int = 3
    per_group_per_minute: int = 20
    global_per_second: float = 30.0
    methods: frozenset[str] = frozenset(
        {"sendMessage", "editMessageText", "editMessageReplyMarkup", "sendMessageDraft"}
    )

    @classmethod
    def unlimited(cls) -> RateLimits:
        """Limits no test can reach (for tests about something else)."""
        return cls(
            per_chat_per_second=1e9,
            per_chat_burst=1_000_000,
            per_group_per_minute=1_000_000,
            global_per_second=1e9,
        )


@dataclass
class ApiCall:
    """One recorded Bot API call: decoded parameters and the JSON answer."""

    method: str
    params: JSON
    status: int
    response: JSON
    at: float

    @property
    def ok(self) -> bool:
        """Whether the call succeeded."""
        return self.status == 200

    @property
    def description(self) -> str:
        """The error description ('' for a success)."""
        return str(self.response.get("description", ""))


@dataclass
class StoredMessage:
    """A message in a fake chat, as the server currently holds it."""

    chat_id: int
    message_id: int
    sender: JSON
    date: int
    text: str
    entities: list[JSON] = field(default_factory=list)
    reply_markup: JSON | None = None
    reply_to_message_id: int | None = None
    edit_date: int | None = None
    edits: int = 0
    deleted: bool = False
    history: list[str] = field(default_factory=list)

    @property
    def from_bot(self) -> bool:
        """Whether the bot sent it."""
        return bool(self.sender.get("is_bot"))

    def callback_data(self) -> list[str]:
        """The ``callback_data`` of every inline button, row by row."""
        if not self.reply_markup:
            return []
        return [
            str(button["callback_data"])
            for row in self.reply_markup.get("inline_keyboard", [])
            for button in row
            if "callback_data" in button
        ]

    def button_texts(self) -> list[str]:
        """The text of every inline button, row by row."""
        if not self.reply_markup:
            return []
        return [
            str(button["text"])
            for row in self.reply_markup.get("inline_keyboard", [])
            for button in row
        ]


@dataclass
class FakeChat:
    """A chat the fake knows, with its messages."""

    id: int
    type: str
    title: str | None = None
    first_name: str | None = None
    username: str | None = None
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)
    next_message_id: int = 1
    #: Every draft shown here, in order: ``(draft_id, text)``.
    drafts: list[tuple[int, str]] = field(default_factory=list)
    #: The drafts showing now (draft_id -> text); a sent message ends them.
    open_drafts: dict[int, str] = field(default_factory=dict)

    @property
    def is_group(self) -> bool:
        """Whether the per-group limit applies."""
        return self.type in ("group", "supergroup")

    def to_json(self) -> JSON:
        """The Chat object of the Bot API."""
        data: JSON = {"id": self.id, "type": self.type}
        if self.title is not None:
            data["title"] = self.title
        if self.first_name is not None:
            data["first_name"] = self.first_name
        if self.username is not None:
            data["username"] = self.username
        return data

    def bot_messages(self, *, include_deleted: bool = False) -> list[StoredMessage]:
        """Messages the bot sent here, oldest first."""
        return [
            m for m in self.messages.values() if m.from_bot and (include_deleted or not m.deleted)
        ]


@dataclass
class CallbackQueryState:
    """A callback query the fake created from a button press."""

    id: str
    chat_id: int
    message_id: int
    data: str
    user_id: int
    created_at: float
    answered: bool = False
    answer: JSON | None = None


@dataclass
class WebhookDelivery:
    """One POST of an update to the bot's webhook."""

    update: JSON
    secret: str | None
    status: int


@dataclass
class WebhookState:
    """The webhook set with setWebhook ('' url = none)."""

    url: str = ""
    secret_token: str | None = None
    allowed_updates: list[str] | None = None
    max_connections: int = 40
    ip_address: str | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None


class BotApiError(Exception):
    """An error answer of the fake (turned into ``{"ok": false, ...}``)."""

    def __init__(self, status: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def to_json(self) -> JSON:
        """The error envelope of the Bot API."""
        data: JSON = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            data["parameters"] = self.parameters
        return data


def _bad_request(reason: str) -> BotApiError:
    return BotApiError(400, f"Bad Request: {reason}")


class _Params:
    """Typed access to a method's parameters, whatever the body encoding was."""

    def __init__(self, raw: Mapping[str, Any], *, from_form: bool) -> None:
        self.values: JSON = {}
        for key, value in raw.items():
            self.values[key] = self._decode(key, value) if from_form else value

    @staticmethod
    def _decode(key: str, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            if key in _JSON_FIELDS:
                return json.loads(value)
            if key in _INT_FIELDS:
                return int(value)
            if key in _BOOL_FIELDS:
                return value.lower() in ("true", "1")
            if key == "chat_id" and re.fullmatch(r"-?\d+", value):
                return int(value)
        except ValueError as exc:
            raise _bad_request(f"can't parse {key}") from exc
        return value

    def has(self, name: str) -> bool:
        return self.values.get(name) is not None

    def require(self, name: str) -> Any:
        if not self.has(name):
            raise _bad_request(f"{name} is empty")
        return self.values[name]

    def int_(self, name: str, default: int | None = None) -> int | None:
        value = self.values.get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise _bad_request(f"{name} must be an integer")
        try:
            return int(value)
        except ValueError as exc:
            raise _bad_request(f"{name} must be an integer") from exc

    def str_(self, name: str) -> str | None:
        value = self.values.get(name)
        return None if value is None else str(value)

    def bool_(self, name: str) -> bool:
        return bool(self.values.get(name))


def _plain_text(text: str, parse_mode: str | None) -> str:
    """The text as Telegram shows it once the formatting markup is parsed."""
    if not parse_mode:
        return text
    mode = parse_mode.lower()
    if mode == "html":
        stack: list[str] = []
        for match in _HTML_TAG_RE.finditer(text):
            closing, tag = match.group(1), match.group(2).lower()
            if tag not in _HTML_TAGS:
                raise _bad_request(
                    f'can\'t parse entities: Unsupported start tag "{tag}" at byte offset '
                    f"{len(text[: match.start()].encode())}"
                )
            if not closing:
                stack.append(tag)
            elif not stack or stack.pop() != tag:
                raise _bad_request(
                    f"can't parse entities: Unexpected end tag at byte offset "
                    f"{len(text[: match.start()].encode())}"
                )
        if stack:
            raise _bad_request(
                "can't parse entities: Can't find end tag corresponding to start tag "
                f'"{stack[-1]}"'
            )
        return html.unescape(_HTML_TAG_RE.sub("", text))
    if mode in ("markdown", "markdownv2"):
        # An approximation: drop link targets, markup characters and escapes.
        stripped = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
        stripped = re.sub(r"(?<!\\)[*_~`|]", "", stripped)
        return re.sub(r"\\(.)", r"\1", stripped)
    raise _bad_request(f"unsupported parse_mode {parse_mode!r}")


def _entities_for(text: str) -> list[JSON]:
    """Mention and bot_command entities of a user's text, with UTF-16 offsets."""
    entities: list[JSON] = []
    command = _BOT_COMMAND_RE.match(text)
    if command:
        entities.append({"type": "bot_command", "offset": 0, "length": utf16_length(command[0])})
    for match in _MENTION_RE.finditer(text):
        if command and match.start() < command.end():
            continue
        entities.append(
            {
                "type": "mention",
                "offset": utf16_length(text[: match.start()]),
                "length": utf16_length(match[0]),
            }
        )
    return entities


def _normalize_markup(markup: Any) -> JSON | None:
    if not markup:
        return None
    if not isinstance(markup, dict):
        raise _bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup and not markup["inline_keyboard"]:
        return None
    return markup


def _validate_markup(markup: JSON | None) -> None:
    if markup is not None and markup.get("force_reply"):
        placeholder = markup.get("input_field_placeholder")
        if placeholder is not None and not 1 <= len(str(placeholder)) <= MAX_PLACEHOLDER:
            raise _bad_request("can't parse reply keyboard markup JSON object")
        return
    if markup is None or "inline_keyboard" not in markup:
        return
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _bad_request('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not button.get("text"):
                raise _bad_request("text buttons are unallowed in the inline keyboard")
            if "callback_data" in button:
                size = len(str(button["callback_data"]).encode("utf-8"))
                if not 1 <= size <= MAX_CALLBACK_DATA_BYTES:
                    raise _bad_request("BUTTON_DATA_INVALID")


class _RateLimiter:
    """Token buckets per chat and overall, and a sliding minute per group."""

    def __init__(self, limits: RateLimits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self.clock = clock
        self._chat_tokens: dict[int, tuple[float, float]] = {}
        self._global: tuple[float, float] | None = None
        self._group_sent: dict[int, deque[float]] = {}

    @staticmethod
    def _refill(state: tuple[float, float] | None, now: float, rate: float, cap: float) -> float:
        if state is None:
            return cap
        tokens, last = state
        return min(cap, tokens + (now - last) * rate)

    def check(self, method: str, chat: FakeChat | None) -> None:
        """Count one message, or raise 429 without counting it."""
        if method not in self.limits.methods:
            return
        now = self.clock()
        limits = self.limits
        waits: list[float] = []
        global_tokens = self._refill(
            self._global, now, limits.global_per_second, limits.global_per_second
        )
        if global_tokens < 1:
            waits.append((1 - global_tokens) / limits.global_per_second)
        chat_tokens = 0.0
        if chat is not None:
            chat_tokens = self._refill(
                self._chat_tokens.get(chat.id),
                now,
                limits.per_chat_per_second,
                float(limits.per_chat_burst),
            )
            if chat_tokens < 1:
                waits.append((1 - chat_tokens) / limits.per_chat_per_second)
            if chat.is_group:
                sent = self._group_sent.setdefault(chat.id, deque())
                while sent and sent[0] <= now - 60:
                    sent.popleft()
                if len(sent) >= limits.per_group_per_minute:
                    waits.append(sent[0] + 60 - now)
        if waits:
            retry_after = max(1, math.ceil(max(waits)))
            raise too_many_requests(retry_after)
        self._global = (global_tokens - 1, now)
        if chat is not None:
            self._chat_tokens[chat.id] = (chat_tokens - 1, now)
            if chat.is_group:
                self._group_sent[chat.id].append(now)


def too_many_requests(retry_after: int) -> BotApiError:
    """The 429 answer Telegram gives over a flood limit."""
    return BotApiError(
        429,
        f"Too Many Requests: retry after {retry_after}",
        {"retry_after": retry_after},
    )


@dataclass
class _Forced429:
    remaining: int
    retry_after: int
    methods: frozenset[str] | None


@dataclass
class _QueuedUpdate:
    update: JSON
    redelivered: bool = False


class FakeTelegram:
    """A local Telegram Bot API server; use as ``async with FakeTelegram() as fake``.

    Point python-telegram-bot at :attr:`base_url` / :attr:`base_file_url`. Inject updates
    with :meth:`private_message`, :meth:`group_message`, :meth:`command`,
    :meth:`press_button` or :meth:`inject`; inspect :attr:`calls` and :attr:`chats`.
    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        bot_username: str = DEFAULT_BOT_USERNAME,
        bot_first_name: str = "atombot",
        rate_limits: RateLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
        callback_answer_timeout: float = 15.0,
        host: str = "127.0.0.1",
    ) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_username = bot_username
        self.bot_user: JSON = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": True,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.clock = clock
        self.rate_limits = rate_limits or RateLimits()
        self.callback_answer_timeout = callback_answer_timeout
        self.host = host
        self.calls: list[ApiCall] = []
        self.chats: dict[int, FakeChat] = {}
        self.users: dict[int, JSON] = {}
        self.callback_queries: dict[str, CallbackQueryState] = {}
        self.commands: dict[tuple[str, str], list[JSON]] = {}
        self.webhook = WebhookState()
        self.webhook_deliveries: list[WebhookDelivery] = []
        self._limiter = _RateLimiter(self.rate_limits, clock)
        self._forced: list[_Forced429] = []
        self._held: dict[str, asyncio.Event] = {}
        self._queue: list[_QueuedUpdate] = []
        self._webhook_pending: list[JSON] = []
        self._update_ids = itertools.count(100_001)
        self._query_ids = itertools.count(900_000_000_001)
        self._wakeup = asyncio.Event()
        self._poll_generation = 0
        self._waiting = 0
        self._someone_waiting = asyncio.Event()
        self._closing = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Listen on a free port of ``host``."""
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        """Wake every long poll, stop webhook deliveries and the server."""
        self._closing = True
        self._notify()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        """The server root, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """python-telegram-bot's ``base_url`` (the token is appended by the library)."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """python-telegram-bot's ``base_file_url``."""
        return f"{self.url}/file/bot"

    # -- test controls ---------------------------------------------------------------------

    def force_429(
        self, count: int = 1, *, retry_after: int = 1, methods: Iterable[str] | None = None
    ) -> None:
        """Answer the next ``count`` calls (of ``methods``, default any) with 429."""
        self._forced.append(
            _Forced429(count, retry_after, frozenset(methods) if methods is not None else None)
        )

    def hold_replies(self, method: str) -> Callable[[], None]:
        """Delay the answers to ``method`` (its calls still take effect at once) until the
        returned function is called: a bot whose message is in the chat before it knows so."""
        gate = self._held[method] = asyncio.Event()

        def release() -> None:
            self._held.pop(method, None)
            gate.set()

        return release

    def set_rate_limits(self, limits: RateLimits) -> None:
        """Enforce other flood limits from now on (counting starts afresh)."""
        self.rate_limits = limits
        self._limiter = _RateLimiter(limits, self.clock)

    def calls_to(self, method: str, *, ok: bool | None = None) -> list[ApiCall]:
        """Recorded calls of one method, optionally only the successful/failed ones."""
        return [c for c in self.calls if c.method == method and (ok is None or c.ok == ok)]

    def chat(self, chat_id: int) -> FakeChat:
        """A known chat (KeyError if the fake never saw it)."""
        return self.chats[chat_id]

    def bot_messages(self, chat_id: int) -> list[StoredMessage]:
        """The bot's current (not deleted) messages in a chat, oldest first."""
        chat = self.chats.get(chat_id)
        return chat.bot_messages() if chat else []

    @property
    def pending_updates(self) -> list[JSON]:
        """Updates waiting for getUpdates (or for a webhook retry)."""
        return [q.update for q in self._queue] + list(self._webhook_pending)

    @property
    def waiting_polls(self) -> int:
        """How many getUpdates long polls are waiting for an update right now."""
        return self._waiting

    async def until_polling(self) -> None:
        """Return once a getUpdates long poll is waiting for updates."""
        await self._someone_waiting.wait()

    # -- users and chats -------------------------------------------------------------------

    def user(
        self,
        user_id: int,
        *,
        first_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "en",
    ) -> JSON:
        """The User object of a (human) user, created on first use."""
        existing = self.users.get(user_id)
        if existing is not None and first_name is None and username is None:
            return existing
        data: JSON = {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name or f"User{user_id}",
        }
        if username:
            data["username"] = username
        if language_code:
            data["language_code"] = language_code
        self.users[user_id] = data
        return data

    def private_chat(self, user_id: int) -> FakeChat:
        """The private chat with a user (created on first use)."""
        chat = self.chats.get(user_id)
        if chat is None:
            user = self.user(user_id)
            chat = FakeChat(
                id=user_id,
                type="private",
                first_name=user["first_name"],
                username=user.get("username"),
            )
            self.chats[user_id] = chat
        return chat

    def group_chat(self, chat_id: int, *, title: str = "Team chat") -> FakeChat:
        """A group (id > -10^12) or supergroup (id ≤ -10^12) the bot is a member of."""
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        chat = self.chats.get(chat_id)
        if chat is None:
            kind = "supergroup" if chat_id <= -1_000_000_000_000 else "group"
            chat = FakeChat(id=chat_id, type=kind, title=title)
            self.chats[chat_id] = chat
        return chat

    # -- injecting updates -----------------------------------------------------------------

    def message_update(
        self,
        text: str,
        *,
        chat_id: int | None = None,
        user_id: int = 1001,
        reply_to: int | None = None,
    ) -> JSON:
        """An Update of a user's new message (private unless ``chat_id`` is a group), kept in
        the chat but not delivered: for :meth:`post_to_webhook` or :meth:`inject`."""
        if chat_id is None or chat_id == user_id:
            chat = self.private_chat(user_id)
        else:
            chat = self.group_chat(chat_id)
        message = self._user_message(chat, user_id, text, reply_to)
        return {"update_id": next(self._update_ids), "message": message}

    async def private_message(
        self,
        text: str,
        *,
        user_id: int = 1001,
        reply_to: int | None = None,
    ) -> JSON:
        """A user writes ``text`` to the bot in private; returns the Update."""
        return await self.inject(self.message_update(text, user_id=user_id, reply_to=reply_to))

    async def group_message(
        self,
        text: str,
        *,
        chat_id: int = -1001234567890,
        user_id: int = 1001,
        mention_bot: bool = False,
        reply_to: int | None = None,
        title: str = "Team chat",
    ) -> JSON:
        """A user writes in a group; ``mention_bot`` prefixes ``@botusername``.

        ``reply_to`` is the message_id (of a user or the bot) this one replies to.
        """
        chat = self.group_chat(chat_id, title=title)
        if mention_bot:
            text = f"@{self.bot_username} {text}"
        return await self.inject({"message": self._user_message(chat, user_id, text, reply_to)})

    async def command(
        self,
        command: str,
        args: str = "",
        *,
        chat_id: int | None = None,
        user_id: int = 1001,
        reply_to: int | None = None,
        with_username: bool = False,
    ) -> JSON:
        """A user sends ``/command args`` (private chat unless ``chat_id`` is a group).

        ``with_username`` writes ``/command@botusername``, as clients do from a group's menu.
        """
        name = command.lstrip("/")
        text = f"/{name}" + (f"@{self.bot_username}" if with_username else "")
        if args:
            text += f" {args}"
        if chat_id is None or chat_id == user_id:
            chat = self.private_chat(user_id)
        else:
            chat = self.group_chat(chat_id)
        return await self.inject({"message": self._user_message(chat, user_id, text, reply_to)})

    async def press_button(
        self,
        *,
        chat_id: int,
        message_id: int,
        data: str | None = None,
        text: str | None = None,
        user_id: int = 1001,
    ) -> JSON:
        """A user presses an inline button (by ``data`` or button ``text``) of a bot message.

        Raises LookupError when that message has no such button. Returns the Update.
        """
        message = self.chats[chat_id].messages.get(message_id)
        if message is None or message.deleted or not message.reply_markup:
            raise LookupError(f"message {message_id} in chat {chat_id} has no inline keyboard")
        buttons = [b for row in message.reply_markup.get("inline_keyboard", []) for b in row]
        for button in buttons:
            if "callback_data" not in button:
                continue
            if (data is not None and button["callback_data"] == data) or (
                text is not None and button["text"] == text
            ):
                break
        else:
            raise LookupError(
                f"no button {data or text!r} on message {message_id}: {message.button_texts()}"
            )
        query_id = str(next(self._query_ids))
        self.callback_queries[query_id] = CallbackQueryState(
            id=query_id,
            chat_id=chat_id,
            message_id=message_id,
            data=str(button["callback_data"]),
            user_id=user_id,
            created_at=self.clock(),
        )
        query: JSON = {
            "id": query_id,
            "from": self.user(user_id),
            "message": self._message_json(message),
            "chat_instance": str(abs(chat_id) * 7 + 3),
            "data": button["callback_data"],
        }
        return await self.inject({"callback_query": query})

    async def inject(self, update: JSON) -> JSON:
        """Deliver an Update (``update_id`` assigned when missing); returns it.

        Without a webhook it is queued for getUpdates; with one it is POSTed there with the
        configured secret (a non-2xx answer keeps it pending, see :meth:`retry_webhook`).
        """
        if "update_id" not in update:
            update = {"update_id": next(self._update_ids), **update}
        if self.webhook.url:
            status = await self._post(update, self.webhook.secret_token)
            if not 200 <= status < 300:
                self._webhook_pending.append(update)
        else:
            self._queue.append(_QueuedUpdate(update))
            self._notify()
        return update

    async def redeliver(self, update: JSON) -> None:
        """Deliver the same Update (same ``update_id``) once more, as after a lost ack."""
        if self.webhook.url:
            await self._post(update, self.webhook.secret_token)
        else:
            self._queue.append(_QueuedUpdate(update, redelivered=True))
            self._notify()

    async def post_to_webhook(self, update: JSON, *, secret: str | None) -> int:
        """POST an Update to the webhook with ``secret`` (None: no header); returns the status."""
        if "update_id" not in update:
            update = {"update_id": next(self._update_ids), **update}
        return await self._post(update, secret)

    async def retry_webhook(self) -> None:
        """Deliver the updates whose webhook delivery failed, again."""
        pending, self._webhook_pending = self._webhook_pending, []
        for update in pending:
            status = await self._post(update, self.webhook.secret_token)
            if not 200 <= status < 300:
                self._webhook_pending.append(update)

    async def _post(self, update: JSON, secret: str | None) -> int:
        if not self.webhook.url:
            raise RuntimeError("no webhook is set")
        assert self._session is not None, "FakeTelegram is not started"
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        try:
            async with self._session.post(
                self.webhook.url,
                json=update,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=10),
            ) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            status = 0
            self.webhook.last_error_message = f"Connection failed: {exc}"
        else:
            if not 200 <= status < 300:
                self.webhook.last_error_message = f"Wrong response from the webhook: {status}"
        if not 200 <= status < 300:
            self.webhook.last_error_date = int(time.time())
        self.webhook_deliveries.append(WebhookDelivery(update, secret, status))
        return status

    def _user_message(self, chat: FakeChat, user_id: int, text: str, reply_to: int | None) -> JSON:
        if reply_to is not None and reply_to not in chat.messages:
            raise LookupError(f"message {reply_to} is not in chat {chat.id}")
        message = self._store(chat, self.user(user_id), text, _entities_for(text), None, reply_to)
        return self._message_json(message)

    def _store(
        self,
        chat: FakeChat,
        sender: JSON,
        text: str,
        entities: list[JSON],
        markup: JSON | None,
        reply_to: int | None,
    ) -> StoredMessage:
        message = StoredMessage(
            chat_id=chat.id,
            message_id=chat.next_message_id,
            sender=sender,
            date=int(time.time()),
            text=text,
            entities=entities,
            reply_markup=markup,
            reply_to_message_id=reply_to,
            history=[text],
        )
        chat.next_message_id += 1
        chat.messages[message.message_id] = message
        return message

    def _message_json(self, message: StoredMessage, *, nested: bool = False) -> JSON:
        chat = self.chats[message.chat_id]
        data: JSON = {
            "message_id": message.message_id,
            "from": message.sender,
            "chat": chat.to_json(),
            "date": message.date,
            "text": message.text,
        }
        if message.entities:
            data["entities"] = message.entities
        if message.reply_markup and "inline_keyboard" in message.reply_markup:
            data["reply_markup"] = message.reply_markup
        if message.edit_date is not None:
            data["edit_date"] = message.edit_date
        if message.reply_to_message_id is not None and not nested:
            replied = chat.messages.get(message.reply_to_message_id)
            if replied is not None and not replied.deleted:
                data["reply_to_message"] = self._message_json(replied, nested=True)
        return data

    def _notify(self) -> None:
        self._wakeup.set()
        self._wakeup = asyncio.Event()

    # -- HTTP ------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        match = re.fullmatch(r"bot([^/]+)/([A-Za-z]+)", path)
        if match is None:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
            )
        token, method_name = match.groups()
        raw: JSON = dict(request.query)
        from_form = True
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    raw.update(body)
                from_form = False
            else:
                form = await request.post()
                raw.update({k: v for k, v in form.items() if isinstance(v, str)})
        method = self._method_name(method_name)
        if token != self.token:
            return self._record(method, raw, BotApiError(401, "Unauthorized"))
        try:
            params = _Params(raw, from_form=from_form)
            handler = self._methods().get(method)
            if handler is None:
                raise BotApiError(404, "Not Found")
            self._check_forced_429(method)
            result = await handler(params)
            gate = self._held.get(method)
            if gate is not None:
                await gate.wait()
        except BotApiError as error:
            decoded = raw
            with contextlib.suppress(BotApiError):
                decoded = _Params(raw, from_form=from_form).values
            return self._record(method, decoded, error)
        return self._record(method, params.values, result)

    def _record(self, method: str, params: JSON, outcome: Any) -> web.Response:
        if isinstance(outcome, BotApiError):
            status, body = outcome.status, outcome.to_json()
        else:
            status, body = 200, {"ok": True, "result": outcome}
        self.calls.append(ApiCall(method, params, status, body, self.clock()))
        return web.json_response(body, status=status)

    def _method_name(self, name: str) -> str:
        # Bot API method names are case-insensitive.
        lowered = name.lower()
        for known in self._methods():
            if known.lower() == lowered:
                return known
        return name

    def _methods(self) -> dict[str, Callable[[_Params], Any]]:
        return {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "sendMessageDraft": self._send_message_draft,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "sendChatAction": self._send_chat_action,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
        }

    def _check_forced_429(self, method: str) -> None:
        for forced in self._forced:
            if forced.remaining > 0 and (forced.methods is None or method in forced.methods):
                forced.remaining -= 1
                if forced.remaining == 0:
                    self._forced.remove(forced)
                raise too_many_requests(forced.retry_after)

    def _chat_for(self, params: _Params) -> FakeChat:
        chat_id = params.require("chat_id")
        if isinstance(chat_id, str):
            found = [c for c in self.chats.values() if c.username and f"@{c.username}" == chat_id]
            if not found:
                raise _bad_request("chat not found")
            return found[0]
        chat = self.chats.get(int(chat_id))
        if chat is None:
            raise _bad_request("chat not found")
        return chat

    def _text_for(self, params: _Params) -> str:
        raw = params.str_("text")
        if raw is None or raw == "":
            raise _bad_request("message text is empty")
        text = _plain_text(raw, params.str_("parse_mode"))
        if not text.strip():
            raise _bad_request("message text is empty")
        if len(text) > MAX_TEXT_LENGTH:
            raise _bad_request("message is too long")
        return text

    @staticmethod
    def _markup_for(params: _Params) -> JSON | None:
        markup = _normalize_markup(params.values.get("reply_markup"))
        _validate_markup(markup)
        return markup

    # -- methods ---------------------------------------------------------------------------

    async def _get_me(self, params: _Params) -> JSON:
        return self.bot_user

    async def _get_updates(self, params: _Params) -> list[JSON]:
        if self.webhook.url:
            raise BotApiError(409, WEBHOOK_CONFLICT)
        offset = params.int_("offset")
        limit = max(1, min(100, params.int_("limit", 100) or 100))
        timeout = max(0, params.int_("timeout", 0) or 0)
        allowed = params.values.get("allowed_updates")
        if offset is not None and offset < 0:
            self._queue = self._queue[offset:]
        elif offset:
            self._queue = [
                q for q in self._queue if q.update["update_id"] >= offset or q.redelivered
            ]
        self._poll_generation += 1
        generation = self._poll_generation
        self._notify()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            wakeup = self._wakeup
            ready = [q for q in self._queue if not allowed or any(k in q.update for k in allowed)][
                :limit
            ]
            if ready:
                for q in ready:
                    q.redelivered = False
                return [q.update for q in ready]
            if generation != self._poll_generation:
                raise BotApiError(409, POLL_CONFLICT)
            remaining = deadline - loop.time()
            if remaining <= 0 or self._closing:
                return []
            self._waiting += 1
            self._someone_waiting.set()
            try:
                await asyncio.wait_for(wakeup.wait(), remaining)
            except TimeoutError:
                return []
            finally:
                self._waiting -= 1
                if not self._waiting:
                    self._someone_waiting.clear()

    async def _set_webhook(self, params: _Params) -> bool:
        url = str(params.require("url"))
        if not url.startswith(("http://", "https://")):
            raise _bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.str_("secret_token")
        if secret is not None and not _SECRET_RE.fullmatch(secret):
            raise _bad_request("secret token contains unallowed characters")
        if params.bool_("drop_pending_updates"):
            self._queue.clear()
            self._webhook_pending.clear()
        self.webhook = WebhookState(
            url=url,
            secret_token=secret,
            allowed_updates=params.values.get("allowed_updates"),
            max_connections=params.int_("max_connections", 40) or 40,
            ip_address=params.str_("ip_address"),
        )
        self._notify()
        if self._queue:
            task = asyncio.create_task(self._flush_queue_to_webhook())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return True

    async def _flush_queue_to_webhook(self) -> None:
        # Like Telegram, start pushing what getUpdates had not fetched once a webhook exists.
        await asyncio.sleep(0.05)
        queued, self._queue = self._queue, []
        self._webhook_pending.extend(q.update for q in queued)
        await self.retry_webhook()

    async def _delete_webhook(self, params: _Params) -> bool:
        if params.bool_("drop_pending_updates"):
            self._queue.clear()
            self._webhook_pending.clear()
        self._queue.extend(_QueuedUpdate(u) for u in self._webhook_pending)
        self._webhook_pending.clear()
        self.webhook = WebhookState()
        return True

    async def _get_webhook_info(self, params: _Params) -> JSON:
        info: JSON = {
            "url": self.webhook.url,
            "has_custom_certificate": False,
            "pending_update_count": len(self.pending_updates),
        }
        if self.webhook.url:
            info["max_connections"] = self.webhook.max_connections
            if self.webhook.allowed_updates is not None:
                info["allowed_updates"] = self.webhook.allowed_updates
            if self.webhook.ip_address:
                info["ip_address"] = self.webhook.ip_address
            if self.webhook.last_error_date is not None:
                info["last_error_date"] = self.webhook.last_error_date
                info["last_error_message"] = self.webhook.last_error_message
        return info

    async def _send_message(self, params: _Params) -> JSON:
        chat = self._chat_for(params)
        text = self._text_for(params)
        markup = self._markup_for(params)
        reply_to = params.int_("reply_to_message_id")
        reply_parameters = params.values.get("reply_parameters")
        if isinstance(reply_parameters, dict) and reply_parameters.get("message_id"):
            reply_to = int(reply_parameters["message_id"])
            allow_missing = bool(reply_parameters.get("allow_sending_without_reply"))
            if reply_to not in chat.messages or chat.messages[reply_to].deleted:
                if not allow_missing:
                    raise _bad_request("message to be replied not found")
                reply_to = None
        self._limiter.check("sendMessage", chat)
        entities = params.values.get("entities") or []
        message = self._store(chat, self.bot_user, text, list(entities), markup, reply_to)
        chat.open_drafts.clear()  # the message the drafts previewed is in the chat now
        return self._message_json(message)

    async def _send_message_draft(self, params: _Params) -> bool:
        chat = self._chat_for(params)
        if chat.type != "private":
            raise _bad_request("TEXTDRAFT_PEER_INVALID")
        draft_id = params.int_("draft_id")
        if not draft_id:
            raise _bad_request("DRAFT_ID_INVALID")
        text = _plain_text(params.str_("text") or "", params.str_("parse_mode"))
        if len(text) > MAX_TEXT_LENGTH:
            raise _bad_request("message is too long")
        self._limiter.check("sendMessageDraft", chat)
        chat.drafts.append((draft_id, text))
        chat.open_drafts[draft_id] = text
        return True

    def _message_to_edit(self, params: _Params) -> tuple[FakeChat, StoredMessage]:
        if params.has("inline_message_id"):
            raise _bad_request("inline messages are not supported by the fake")
        chat = self._chat_for(params)
        message_id = params.int_("message_id")
        if message_id is None:
            raise _bad_request("message identifier is not specified")
        message = chat.messages.get(message_id)
        if message is None or message.deleted:
            raise _bad_request("message to edit not found")
        if not message.from_bot:
            raise _bad_request("message can't be edited")
        return chat, message

    async def _edit_message_text(self, params: _Params) -> JSON:
        chat, message = self._message_to_edit(params)
        text = self._text_for(params)
        markup = self._markup_for(params)
        if markup is not None and "inline_keyboard" not in markup:
            raise _bad_request("inline keyboard expected")
        entities = list(params.values.get("entities") or [])
        if text == message.text and markup == message.reply_markup and entities == message.entities:
            raise _bad_request(NOT_MODIFIED.removeprefix("Bad Request: "))
        self._limiter.check("editMessageText", chat)
        message.text, message.reply_markup, message.entities = text, markup, entities
        message.edits += 1
        message.edit_date = int(time.time())
        message.history.append(text)
        return self._message_json(message)

    async def _edit_message_reply_markup(self, params: _Params) -> JSON:
        chat, message = self._message_to_edit(params)
        markup = self._markup_for(params)
        if markup == message.reply_markup:
            raise _bad_request(NOT_MODIFIED.removeprefix("Bad Request: "))
        self._limiter.check("editMessageReplyMarkup", chat)
        message.reply_markup = markup
        message.edits += 1
        message.edit_date = int(time.time())
        return self._message_json(message)

    async def _delete_message(self, params: _Params) -> bool:
        chat = self._chat_for(params)
        message = chat.messages.get(params.int_("message_id") or 0)
        if message is None or message.deleted:
            raise _bad_request("message to delete not found")
        if not message.from_bot and not chat.is_group:
            raise _bad_request("message can't be deleted for everyone")
        message.deleted = True
        return True

    async def _answer_callback_query(self, params: _Params) -> bool:
        query = self.callback_queries.get(str(params.require("callback_query_id")))
        text = params.str_("text") or ""
        if len(text) > MAX_CALLBACK_ANSWER_LENGTH:
            raise _bad_request("MESSAGE_TOO_LONG")
        if (
            query is None
            or query.answered
            or self.clock() - query.created_at > self.callback_answer_timeout
        ):
            raise _bad_request(QUERY_TOO_OLD.removeprefix("Bad Request: "))
        query.answered = True
        query.answer = dict(params.values)
        return True

    async def _send_chat_action(self, params: _Params) -> bool:
        chat = self._chat_for(params)
        action = str(params.require("action"))
        if action not in CHAT_ACTIONS:
            raise _bad_request("wrong parameter action in request")
        chat.actions.append(action)
        return True

    @staticmethod
    def _commands_key(params: _Params) -> tuple[str, str]:
        scope = params.values.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), params.str_("language_code") or ""

    async def _set_my_commands(self, params: _Params) -> bool:
        commands = params.require("commands")
        if not isinstance(commands, list) or len(commands) > MAX_COMMANDS:
            raise _bad_request("BOT_COMMANDS_TOO_MUCH")
        for command in commands:
            name = str(command.get("command", "")) if isinstance(command, dict) else ""
            description = str(command.get("description", "")) if isinstance(command, dict) else ""
            if not _COMMAND_RE.fullmatch(name):
                raise _bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise _bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[self._commands_key(params)] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    async def _get_my_commands(self, params: _Params) -> list[JSON]:
        return self.commands.get(self._commands_key(params), [])

    async def _delete_my_commands(self, params: _Params) -> bool:
        self.commands.pop(self._commands_key(params), None)
        return True

    def my_commands(self, *, scope: JSON | None = None, language_code: str = "") -> list[str]:
        """The command names set for a scope (default scope) and language."""
        key = json.dumps(scope or {"type": "default"}, sort_keys=True), language_code
        return [c["command"] for c in self.commands.get(key, [])]
