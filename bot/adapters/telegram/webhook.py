"""The Telegram webhook's edge: an aiohttp server in front of python-telegram-bot.

One rule for every request, checked in this order, before anything is parsed or stored:

* not authentic (wrong or missing ``X-Telegram-Bot-Api-Secret-Token``): 403;
* too large (``Content-Length`` or the body over :data:`MAX_BODY_BYTES`): 413;
* not UTF-8, not JSON, nested deeper than :data:`MAX_DEPTH`, strings a database cannot
  hold (NUL, lone surrogates), or an accepted update kind of the wrong shape: 400;
* an update of a kind the adapter does not accept: 200, and it is dropped;
* otherwise 200, and the update goes on python-telegram-bot's update queue.

Nothing anyone sends produces a 5xx. Shapes are checked with typed models of the update
kinds the adapter accepts (:class:`UpdateModel`), so that a handler never sees a payload it
would crash on. A refused request is logged by its size and the kind of fault, never by its
content (python-telegram-bot's own webhook server logged the whole payload at CRITICAL).
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from telegram.constants import UpdateType

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
#: Far above any real update (a 4,096-character message with its entities and the message
#: it replies to is a few tens of kilobytes).
MAX_BODY_BYTES = 1024 * 1024
#: Real updates nest about 6 levels deep (update → message → reply_to_message → entities →
#: entity → user); the limit keeps the JSON parser's recursion far from Python's.
MAX_DEPTH = 32

Deliver = Callable[[dict[str, Any]], Awaitable[None]]


class Refused(Exception):
    """A request answered with a 4xx; ``kind`` names the fault for the log (no content)."""

    def __init__(self, status: int, kind: str) -> None:
        super().__init__(kind)
        self.status = status
        self.kind = kind


class Malformed(Refused):
    """An authentic request whose body is not an acceptable update: 400."""

    def __init__(self, kind: str) -> None:
        super().__init__(400, kind)


# -- typed models of the accepted update kinds ---------------------------------------------

Int64 = Annotated[int, Field(ge=-(2**63), lt=2**63)]
#: Unix time; python-telegram-bot turns it into a datetime (far-future values overflow).
UnixTime = Annotated[int, Field(ge=0, lt=2**32)]


class _Model(BaseModel):
    # Telegram adds fields in every Bot API version: unknown ones pass through untouched.
    # Strict: a string where an integer belongs is a malformed update, not one to coerce.
    model_config = ConfigDict(extra="allow", strict=True, populate_by_name=True)


class UserModel(_Model):
    """A Bot API ``User`` (the fields atombot reads)."""

    id: Int64
    is_bot: bool
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None


class ChatModel(_Model):
    """A Bot API ``Chat``."""

    id: Int64
    type: str
    title: str | None = None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    is_forum: bool | None = None


class EntityModel(_Model):
    """A Bot API ``MessageEntity``."""

    type: str
    offset: Annotated[int, Field(ge=0, lt=2**31)]
    length: Annotated[int, Field(ge=0, lt=2**31)]
    url: str | None = None
    user: UserModel | None = None
    language: str | None = None
    custom_emoji_id: str | None = None


class MessageModel(_Model):
    """A Bot API ``Message`` (or ``InaccessibleMessage``, whose ``date`` is 0)."""

    message_id: Int64
    date: UnixTime
    chat: ChatModel
    from_: UserModel | None = Field(default=None, alias="from")
    sender_chat: ChatModel | None = None
    message_thread_id: Int64 | None = None
    is_topic_message: bool | None = None
    edit_date: UnixTime | None = None
    text: str | None = None
    caption: str | None = None
    entities: list[EntityModel] | None = None
    caption_entities: list[EntityModel] | None = None
    reply_to_message: MessageModel | None = None


class CallbackQueryModel(_Model):
    """A Bot API ``CallbackQuery``."""

    id: str
    from_: UserModel = Field(alias="from")
    chat_instance: str
    message: MessageModel | None = None
    inline_message_id: str | None = None
    data: str | None = None
    game_short_name: str | None = None


class UpdateModel(_Model):
    """An ``Update`` of a kind the adapter accepts (others never reach this model)."""

    update_id: Annotated[int, Field(ge=0, lt=2**63)]
    message: MessageModel | None = None
    callback_query: CallbackQueryModel | None = None


#: The update kinds the adapter handles (what it asks Telegram for with ``allowed_updates``).
ACCEPTED_KINDS = ("message", "callback_query")
#: Every kind the Bot API defines (a field name outside it is logged as "unknown").
KNOWN_KINDS = frozenset(str(kind.value) for kind in UpdateType)


# -- parsing ---------------------------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in a JSON text (strings skipped)."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(body: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Strict JSON from UTF-8 bytes, nested at most ``max_depth`` deep; :class:`Malformed`."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("not UTF-8") from None
    if json_depth(text) > max_depth:
        raise Malformed("nested too deeply")
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):  # JSONDecodeError, too many digits, NaN
        raise Malformed("not JSON") from None


def _check_strings(value: Any) -> None:
    """Refuse strings a database cannot store (NUL, lone surrogates from ``\\ud800``)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise Malformed("string with NUL")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise Malformed("string with a lone surrogate") from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def update_kind(data: dict[str, Any]) -> str:
    """The update's kind: its one field besides ``update_id`` (``"empty"`` when none)."""
    kinds = [k for k in data if k != "update_id"]
    accepted = [k for k in kinds if k in ACCEPTED_KINDS]
    if len(accepted) > 1:
        raise Malformed("more than one update kind")
    if accepted:
        return accepted[0]
    if not kinds:
        return "empty"
    # A field name outside the Bot API is content, not a kind: it is never logged.
    return kinds[0] if len(kinds) == 1 and kinds[0] in KNOWN_KINDS else "unknown"


def validate_update(body: bytes) -> tuple[str, dict[str, Any] | None]:
    """The update's kind, and its data when it is of an accepted kind (else None).

    Raises :class:`Malformed` for a body that is not a well-formed update.
    """
    data = parse_json(body)
    if not isinstance(data, dict):
        raise Malformed(f"JSON {type(data).__name__}, not an object")
    _check_strings(data)
    kind = update_kind(data)
    try:
        UpdateModel.model_validate(data)
    except ValidationError as exc:
        # The error text quotes the input: log only where the fault is.
        where = ".".join(str(p) for p in exc.errors()[0]["loc"][:3])
        raise Malformed(f"bad {kind} ({where})") from None
    if kind not in ACCEPTED_KINDS:
        return kind, None
    return kind, data


# -- the server ------------------------------------------------------------------------------


class WebhookServer:
    """The HTTP endpoint Telegram POSTs updates to; hands valid ones to ``deliver``."""

    def __init__(
        self,
        *,
        path: str,
        secret: str,
        deliver: Deliver,
        listen: str = "0.0.0.0",
        port: int = 8443,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.path = "/" + path.strip("/")
        self.secret = secret.encode("utf-8")
        self.deliver = deliver
        self.listen = listen
        self.port = port
        self.max_body_bytes = max_body_bytes
        self._runner: web.AppRunner | None = None

    def application(self) -> web.Application:
        """The aiohttp application (one POST route)."""
        app = web.Application(client_max_size=self.max_body_bytes)
        app.router.add_post(self.path, self.handle)
        if self.path != "/":
            app.router.add_post(self.path + "/", self.handle)
        return app

    async def start(self) -> None:
        """Listen (``port`` 0 picks a free port, then :attr:`port` holds it)."""
        # No access log: the path may hold a secret, and the adapter logs what matters.
        runner = web.AppRunner(self.application(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.listen, self.port)
        await site.start()
        self._runner = runner
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if self.port == 0 and sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and close open connections."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def handle(self, request: web.Request) -> web.Response:
        """Answer one POST (see the module docstring for the rule)."""
        try:
            await self._accept(request)
        except Refused as refused:
            size = request.content_length
            level = logging.DEBUG if refused.status == 403 else logging.WARNING
            log.log(
                level,
                "refused a Telegram webhook request (%s bytes): %d %s",
                size if size is not None else "?",
                refused.status,
                refused.kind,
            )
            return web.json_response({"ok": False}, status=refused.status)
        except Exception as exc:  # a fault of ours must not become a 5xx (Telegram retries)
            log.error("Telegram webhook request failed: %s", type(exc).__name__)
            return web.json_response({"ok": False}, status=400)
        return web.json_response({"ok": True})

    async def _accept(self, request: web.Request) -> None:
        given = request.headers.get(SECRET_HEADER)
        if given is None or not hmac.compare_digest(
            given.encode("utf-8", "surrogateescape"), self.secret
        ):
            raise Refused(403, "wrong or missing secret token")
        if (request.content_length or 0) > self.max_body_bytes:
            raise Refused(413, "too large")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise Refused(413, "too large") from None
        kind, data = validate_update(body)
        if data is None:
            log.debug("ignored a Telegram update of kind %s", kind)
            return
        await self.deliver(data)
