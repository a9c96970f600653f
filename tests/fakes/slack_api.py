"""A fake Slack platform: Web API, response URLs, signed inbound requests and Socket Mode.

`FakeSlack` is a real aiohttp server on 127.0.0.1 (a free port). Point
`slack_sdk.web.async_client.AsyncWebClient(base_url=fake.api_url)` at it and the real
client talks HTTP to it. It enforces the limits of `PLATFORM-RULES.md` so that tests catch
what real Slack would reject:

* bearer tokens (`not_authed`, `invalid_auth`, `not_allowed_token_type`);
* message sizes (`msg_too_long`: text over 40,000 on post, over 4,000 on `chat.update`);
* Block Kit limits (`invalid_blocks`: 50 blocks, section 3,000, header 150, button text 75,
  button value 2,000, action_id / block_id 255, 25 elements per actions block, 10 per context);
* per-method rate limits by tier, per minute, answered with HTTP 429, `Retry-After` and
  `{"ok": false, "error": "ratelimited"}`;
* `response_url` (5 uses within 30 minutes) and `trigger_id` (once, within 3 s).
* many workspaces: `add_team` adds one, Slack's consent page (``GET /oauth/v2/authorize``,
  the workspace picked by its ``team`` parameter) redirects with a code, `oauth.v2.access`
  (client id and secret) exchanges it for a new bot token of that team, and `auth.test`
  answers for each token with its own team. A channel or user added with a ``team_id``
  exists only for that team's tokens (`channel_not_found` / `user_not_found` for another).
  `uninstall(team)` revokes the team's tokens (`token_revoked`).
* chat streaming (`chat.startStream` / `chat.appendStream` / `chat.stopStream`): a stream is
  a reply in a thread (`thread_ts`), into a channel only with `recipient_user_id` and
  `recipient_team_id` (`missing_recipient_*`), at most 12,000 characters of markdown per
  call (`msg_too_long`), `task_update` / `plan_update` / `markdown_text` chunks
  (`invalid_chunks`), and it expires `stream_expiry_s` after it started: later appends and
  stops answer `message_not_in_streaming_state`, as for a stopped stream, while the message
  stays and takes `chat.update`. Every task update is recorded (`Stream.task_updates`).
* native feedback buttons (`context_actions` with `feedback_buttons`), pressed with
  `feedback_actions`.
* a modal with an input block needs `submit`; an ephemeral message's buttons can be
  pressed only by the user it was shown to (`ephemeral_block_actions`), and the press's
  `response_url` replaces or deletes that ephemeral (`replace_original` / `delete_original`);
  `view_submission` builds the submission of an opened modal from its own inputs.

It keeps channels, messages (ts strings such as ``"1700000000.000100"``) and threads, records
every Web API call, builds v0-signed requests for the bot's HTTP endpoint (slash commands,
Events API envelopes, interactivity payloads) and serves Socket Mode over a WebSocket.

Usage::

    async with FakeSlack() as fake:
        client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)
        await client.chat_postMessage(channel="C0GENERAL", text="hi")
        assert fake.calls_to("chat.postMessage")[0].args["text"] == "hi"
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import math
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Self
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from bot.adapters.slack.manifest import BOT_SCOPES

JSONDict = dict[str, Any]
Clock = Callable[[], float]
TokenKind = Literal["bot", "app", "client"]

MAX_POST_TEXT = 40_000
MAX_UPDATE_TEXT = 4_000
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION_TEXT = 3_000
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT = 2_000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2_000
MAX_ID_LENGTH = 255
MAX_URL_LENGTH = 3_000
MAX_ACTIONS_ELEMENTS = 25
MAX_CONTEXT_ELEMENTS = 10
MAX_VIEW_TITLE = 24
MAX_PRIVATE_METADATA = 3_000
MAX_STREAM_TEXT = 12_000
MAX_CONTEXT_ACTIONS = 5
#: A stream's life on Slack's side (about five minutes, appends do not extend it).
STREAM_EXPIRY_S = 300.0
TASK_STATUSES = frozenset({"pending", "in_progress", "complete", "error"})
TASK_DISPLAY_MODES = frozenset({"timeline", "plan"})
RESPONSE_URL_MAX_USES = 5
RESPONSE_URL_LIFETIME_S = 30 * 60
TRIGGER_ID_LIFETIME_S = 3.0
SIGNATURE_MAX_AGE_S = 5 * 60
ACK_DEADLINE_S = 3.0
HISTORY_DEFAULT_LIMIT = 100
HISTORY_MAX_LIMIT = 999
REPLIES_DEFAULT_LIMIT = 1_000
BLOCK_TYPES = frozenset(
    {
        "actions",
        "context",
        "context_actions",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "video",
    }
)
TEXT_TYPES = frozenset({"plain_text", "mrkdwn"})
JSON_ARGS = ("blocks", "attachments", "view", "metadata", "chunks")


@dataclass(frozen=True)
class RateLimit:
    """At most `per_minute` accepted calls in any `window_s` window (one minute unless shrunk).

    `per_channel` keys the window by the `channel` argument as well (Slack's
    `chat.postMessage` allows about one message per second per channel, bursts tolerated).
    """

    per_minute: int
    per_channel: bool = False
    window_s: float = 60.0


# Tier 1 ≥ 1, Tier 2 ≥ 20, Tier 3 ≥ 50, Tier 4 ≥ 100 per minute (PLATFORM-RULES.md).
DEFAULT_RATE_LIMITS: Mapping[str, RateLimit] = {
    "chat.postMessage": RateLimit(per_minute=60, per_channel=True),
    "chat.update": RateLimit(per_minute=50),
    "chat.postEphemeral": RateLimit(per_minute=100),
    "chat.delete": RateLimit(per_minute=50),
    "conversations.history": RateLimit(per_minute=50),
    "conversations.replies": RateLimit(per_minute=50),
    "views.open": RateLimit(per_minute=100),
    "views.publish": RateLimit(per_minute=100),
    "auth.test": RateLimit(per_minute=100),
    "users.info": RateLimit(per_minute=100),
    # Tier 1 in the docs, but Slack lets a Socket Mode client reconnect several times in a
    # row (disconnect → new URL); one per minute would stall every reconnect test for 60 s.
    "apps.connections.open": RateLimit(per_minute=20),
    # chat.startStream / chat.stopStream are Tier 2, chat.appendStream Tier 4.
    "chat.startStream": RateLimit(per_minute=20),
    "chat.appendStream": RateLimit(per_minute=100),
    "chat.stopStream": RateLimit(per_minute=20),
}


@dataclass(frozen=True)
class Call:
    """One Web API call as the fake saw it: arguments merged from query, form and JSON body."""

    method: str
    args: JSONDict
    at: float
    http_verb: str
    token: str | None
    status: int
    response: JSONDict

    @property
    def ok(self) -> bool:
        """Whether the call succeeded (`"ok": true`)."""
        return bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        """The Slack error code of a failed call, else None."""
        error = self.response.get("error")
        return str(error) if error is not None else None


@dataclass
class Stream:
    """A message's life as a stream: what each call added, and every task update in order."""

    started_at: float
    recipient_user_id: str | None
    recipient_team_id: str | None
    task_display_mode: str | None
    state: Literal["streaming", "stopped", "expired"] = "streaming"
    #: The markdown text streamed into the message, all calls joined.
    markdown: str = ""
    #: (method, args) of every accepted stream call, in order.
    calls: list[tuple[str, JSONDict]] = field(default_factory=list)
    #: (task id, status) of every ``task_update`` chunk, in order.
    task_updates: list[tuple[str, str]] = field(default_factory=list)
    #: The latest ``task_update`` of each task (its title, status, details).
    tasks: dict[str, JSONDict] = field(default_factory=dict)

    def statuses(self, task_id: str | int) -> list[str]:
        """The statuses one task went through, in order."""
        return [status for tid, status in self.task_updates if tid == str(task_id)]


@dataclass
class Message:
    """A message stored in a channel; replies point at their parent with `thread_ts`."""

    channel: str
    ts: str
    text: str
    user: str
    blocks: list[JSONDict] = field(default_factory=list)
    thread_ts: str | None = None
    bot_id: str | None = None
    app_id: str | None = None
    reply_ts: list[str] = field(default_factory=list)
    edits: list[JSONDict] = field(default_factory=list)
    deleted: bool = False
    #: Message metadata (``event_type`` + ``event_payload``) posted with it, if any.
    metadata: JSONDict | None = None
    #: Set when the message was opened with chat.startStream.
    stream: Stream | None = None

    @property
    def is_reply(self) -> bool:
        """Whether the message is a reply inside a thread (not the thread's parent)."""
        return self.thread_ts is not None and self.thread_ts != self.ts

    def to_api(self, *, include_metadata: bool = False) -> JSONDict:
        """The message as Slack's Web API returns it (metadata only when asked for, as the
        history methods' ``include_all_metadata``)."""
        data: JSONDict = {"type": "message", "ts": self.ts, "text": self.text, "user": self.user}
        if include_metadata and self.metadata is not None:
            data["metadata"] = self.metadata
        if self.blocks:
            data["blocks"] = self.blocks
        if self.bot_id is not None:
            data["bot_id"] = self.bot_id
            data["app_id"] = self.app_id
        if self.thread_ts is not None:
            data["thread_ts"] = self.thread_ts
        if self.reply_ts:
            data["reply_count"] = len(self.reply_ts)
            data["latest_reply"] = self.reply_ts[-1]
        if self.edits:
            data["edited"] = {"user": self.user, "ts": self.edits[-1]["at_ts"]}
        return data


@dataclass
class Channel:
    """A conversation: a public/private channel or the bot's DM with one user."""

    id: str
    name: str
    is_im: bool = False
    user: str | None = None
    messages: dict[str, Message] = field(default_factory=dict)


@dataclass
class User:
    """A workspace member known to `users.info`."""

    id: str
    name: str
    real_name: str
    tz: str = "Europe/Berlin"
    tz_offset: int = 3600
    is_bot: bool = False
    #: What ``users.info`` reports with ``include_locale`` (``zh-CN`` for a Chinese client).
    locale: str = "en-US"

    def to_api(self, team_id: str, *, include_locale: bool = False) -> JSONDict:
        """The user as `users.info` returns it."""
        return ({"locale": self.locale} if include_locale else {}) | {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "real_name": self.real_name,
            "tz": self.tz,
            "tz_offset": self.tz_offset,
            "is_bot": self.is_bot,
            "deleted": False,
            "profile": {"real_name": self.real_name, "display_name": self.name},
        }


@dataclass
class Team:
    """A workspace that installed the app by OAuth (besides the fake's default one)."""

    id: str
    domain: str
    bot_user_id: str
    bot_id: str
    tokens: list[str] = field(default_factory=list)
    #: What each install asked for (``scope`` of the consent page), newest last.
    scopes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Ephemeral:
    """An ephemeral message shown to one user (chat.postEphemeral or a response_url)."""

    channel: str
    user: str
    text: str
    blocks: list[JSONDict]
    message_ts: str
    thread_ts: str | None = None


@dataclass
class ResponseUrl:
    """A `response_url` the fake handed out with a slash command or interaction."""

    id: str
    url: str
    channel: str
    user: str
    issued_at: float
    message_ts: str | None = None
    uses: int = 0
    #: The ephemeral message it came from (a press in an ephemeral): what
    #: `replace_original` / `delete_original` act on.
    ephemeral_ts: str | None = None


@dataclass(frozen=True)
class ResponseUrlPost:
    """One POST to a response_url, accepted or not."""

    url: str
    body: JSONDict
    at: float
    status: int
    error: str | None


@dataclass(frozen=True)
class SignedRequest:
    """A request for the bot's HTTP endpoint, with its v0 signature headers."""

    body: bytes
    headers: dict[str, str]
    payload: JSONDict

    @property
    def event_id(self) -> str | None:
        """The Events API `event_id`, if this is an event callback."""
        value = self.payload.get("event_id")
        return str(value) if value is not None else None


@dataclass(frozen=True)
class AppResponse:
    """What the bot's HTTP endpoint answered."""

    status: int
    text: str
    headers: Mapping[str, str]

    def json(self) -> JSONDict:
        """The body parsed as a JSON object ({} when empty)."""
        if not self.text:
            return {}
        value = json.loads(self.text)
        if not isinstance(value, dict):
            raise ValueError(f"expected a JSON object, got {self.text!r}")
        return value


@dataclass
class SocketConnection:
    """One Socket Mode WebSocket connection opened by a client."""

    id: int
    ticket: str
    ws: web.WebSocketResponse
    opened_at: float
    closed: bool = False
    received: list[JSONDict] = field(default_factory=list)


class SlackApiFailure(Exception):
    """Raised inside a method handler: becomes `{"ok": false, "error": ...}`."""

    def __init__(self, error: str, *, status: int = 200, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.extra = extra


class AckTimeout(Exception):
    """The bot did not answer within Slack's 3 s deadline (Slack would show an error)."""


# ---------------------------------------------------------------------------------------
# Block Kit validation (what `invalid_blocks` / `invalid_arguments` reject)
# ---------------------------------------------------------------------------------------


def _err(message: str, pointer: str) -> str:
    return f"[ERROR] {message} [json-pointer:{pointer}]"


def _check_length(value: Any, limit: int, pointer: str, errors: list[str]) -> None:
    if isinstance(value, str) and len(value) > limit:
        errors.append(_err(f"must be less than {limit + 1} characters", pointer))


def _check_text_object(
    obj: Any,
    pointer: str,
    errors: list[str],
    *,
    limit: int | None = None,
    plain_only: bool = False,
) -> None:
    if not isinstance(obj, dict):
        errors.append(_err("must be a text object", pointer))
        return
    kind = obj.get("type")
    allowed = {"plain_text"} if plain_only else TEXT_TYPES
    if kind not in allowed:
        errors.append(_err(f"must be one of {sorted(allowed)}", f"{pointer}/type"))
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        errors.append(_err("must be more than 0 characters", f"{pointer}/text"))
    elif limit is not None:
        _check_length(text, limit, f"{pointer}/text", errors)


def _check_element(element: Any, pointer: str, errors: list[str]) -> None:
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        errors.append(_err("must be an element object with a type", pointer))
        return
    _check_length(element.get("action_id"), MAX_ID_LENGTH, f"{pointer}/action_id", errors)
    if element["type"] == "button":
        _check_text_object(
            element.get("text"), f"{pointer}/text", errors, limit=MAX_BUTTON_TEXT, plain_only=True
        )
        _check_length(element.get("value"), MAX_BUTTON_VALUE, f"{pointer}/value", errors)
        _check_length(element.get("url"), MAX_URL_LENGTH, f"{pointer}/url", errors)
        style = element.get("style")
        if style is not None and style not in ("primary", "danger"):
            errors.append(_err("must be primary or danger", f"{pointer}/style"))
    elif "placeholder" in element:
        _check_text_object(element["placeholder"], f"{pointer}/placeholder", errors, limit=150)


def _check_elements_unique(elements: list[Any], pointer: str, errors: list[str]) -> None:
    seen: set[str] = set()
    for index, element in enumerate(elements):
        action_id = element.get("action_id") if isinstance(element, dict) else None
        if isinstance(action_id, str):
            if action_id in seen:
                errors.append(_err("action_id must be unique", f"{pointer}/{index}/action_id"))
            seen.add(action_id)


def _check_context_action(element: Any, pointer: str, errors: list[str]) -> None:
    """A ``context_actions`` element: ``feedback_buttons`` (both sides) or ``icon_button``."""
    if not isinstance(element, dict) or element.get("type") not in (
        "feedback_buttons",
        "icon_button",
    ):
        errors.append(_err("must be feedback_buttons or icon_button", f"{pointer}/type"))
        return
    _check_length(element.get("action_id"), MAX_ID_LENGTH, f"{pointer}/action_id", errors)
    if element["type"] != "feedback_buttons":
        return
    for side in ("positive_button", "negative_button"):
        button = element.get(side)
        if not isinstance(button, dict):
            errors.append(_err("must provide a button", f"{pointer}/{side}"))
            continue
        _check_text_object(
            button.get("text"),
            f"{pointer}/{side}/text",
            errors,
            limit=MAX_BUTTON_TEXT,
            plain_only=True,
        )
        value = button.get("value")
        if not isinstance(value, str) or not value:
            errors.append(_err("must provide a value", f"{pointer}/{side}/value"))
        _check_length(value, MAX_BUTTON_VALUE, f"{pointer}/{side}/value", errors)


def _check_block(block: Any, pointer: str, errors: list[str]) -> None:
    if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
        errors.append(_err("must be a known block type", f"{pointer}/type"))
        return
    _check_length(block.get("block_id"), MAX_ID_LENGTH, f"{pointer}/block_id", errors)
    kind = block["type"]
    if kind == "section":
        if "text" not in block and "fields" not in block:
            errors.append(_err("must provide text or fields", pointer))
        if "text" in block:
            _check_text_object(block["text"], f"{pointer}/text", errors, limit=MAX_SECTION_TEXT)
        fields = block.get("fields", [])
        if not isinstance(fields, list) or len(fields) > MAX_SECTION_FIELDS:
            errors.append(
                _err(f"no more than {MAX_SECTION_FIELDS} items allowed", f"{pointer}/fields")
            )
        else:
            for i, item in enumerate(fields):
                _check_text_object(item, f"{pointer}/fields/{i}", errors, limit=MAX_FIELD_TEXT)
        if "accessory" in block:
            _check_element(block["accessory"], f"{pointer}/accessory", errors)
    elif kind == "header":
        _check_text_object(
            block.get("text"), f"{pointer}/text", errors, limit=MAX_HEADER_TEXT, plain_only=True
        )
    elif kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            errors.append(_err("must provide elements", f"{pointer}/elements"))
            return
        if len(elements) > MAX_ACTIONS_ELEMENTS:
            errors.append(
                _err(f"no more than {MAX_ACTIONS_ELEMENTS} items allowed", f"{pointer}/elements")
            )
        for i, element in enumerate(elements):
            _check_element(element, f"{pointer}/elements/{i}", errors)
        _check_elements_unique(elements, f"{pointer}/elements", errors)
    elif kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            errors.append(_err("must provide elements", f"{pointer}/elements"))
            return
        if len(elements) > MAX_CONTEXT_ELEMENTS:
            errors.append(
                _err(f"no more than {MAX_CONTEXT_ELEMENTS} items allowed", f"{pointer}/elements")
            )
        for i, element in enumerate(elements):
            if isinstance(element, dict) and element.get("type") == "image":
                continue
            _check_text_object(element, f"{pointer}/elements/{i}", errors)
    elif kind == "context_actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            errors.append(_err("must provide elements", f"{pointer}/elements"))
            return
        if len(elements) > MAX_CONTEXT_ACTIONS:
            errors.append(
                _err(f"no more than {MAX_CONTEXT_ACTIONS} items allowed", f"{pointer}/elements")
            )
        for i, element in enumerate(elements):
            _check_context_action(element, f"{pointer}/elements/{i}", errors)
    elif kind == "input":
        _check_text_object(block.get("label"), f"{pointer}/label", errors, limit=2_000)
        _check_element(block.get("element"), f"{pointer}/element", errors)
    elif kind == "image":
        _check_length(block.get("image_url"), MAX_URL_LENGTH, f"{pointer}/image_url", errors)
        _check_length(block.get("alt_text"), 2_000, f"{pointer}/alt_text", errors)


def validate_blocks(blocks: Any, *, max_blocks: int = MAX_MESSAGE_BLOCKS) -> list[str]:
    """The Block Kit errors Slack would report for `blocks` (empty when valid)."""
    if not isinstance(blocks, list):
        return [_err("must be an array", "/blocks")]
    errors: list[str] = []
    if len(blocks) > max_blocks:
        errors.append(_err(f"no more than {max_blocks} items allowed", "/blocks"))
    block_ids: set[str] = set()
    for index, block in enumerate(blocks):
        _check_block(block, f"/blocks/{index}", errors)
        block_id = block.get("block_id") if isinstance(block, dict) else None
        if isinstance(block_id, str):
            if block_id in block_ids:
                errors.append(_err("block_id must be unique", f"/blocks/{index}/block_id"))
            block_ids.add(block_id)
    return errors


def validate_view(view: Any) -> list[str]:
    """The errors Slack would report for a modal or Home tab `view` (empty when valid)."""
    if not isinstance(view, dict):
        return [_err("must be a view object", "/view")]
    errors: list[str] = []
    kind = view.get("type")
    if kind not in ("modal", "home"):
        errors.append(_err("must be modal or home", "/view/type"))
    if kind == "modal":
        _check_text_object(
            view.get("title"), "/view/title", errors, limit=MAX_VIEW_TITLE, plain_only=True
        )
        blocks = view.get("blocks", [])
        has_input = isinstance(blocks, list) and any(
            isinstance(b, dict) and b.get("type") == "input" for b in blocks
        )
        if has_input and "submit" not in view:
            errors.append(_err("submit is required when an input block is present", "/view"))
        for key in ("close", "submit"):
            if key in view:
                _check_text_object(
                    view[key], f"/view/{key}", errors, limit=MAX_VIEW_TITLE, plain_only=True
                )
    _check_length(view.get("callback_id"), MAX_ID_LENGTH, "/view/callback_id", errors)
    _check_length(
        view.get("private_metadata"), MAX_PRIVATE_METADATA, "/view/private_metadata", errors
    )
    errors.extend(
        e.replace("json-pointer:/blocks", "json-pointer:/view/blocks")
        for e in validate_blocks(view.get("blocks", []), max_blocks=MAX_VIEW_BLOCKS)
    )
    return errors


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def ts_to_micros(ts: str) -> int:
    """A Slack ts ("1700000000.000100") as integer microseconds, for exact ordering."""
    seconds, _, fraction = ts.partition(".")
    return int(seconds) * 1_000_000 + int((fraction or "0").ljust(6, "0")[:6])


def micros_to_ts(micros: int) -> str:
    """Integer microseconds as a Slack ts string."""
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    return bool(value)


def _as_int(value: Any, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise SlackApiFailure("invalid_arguments") from exc


def _encode_cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _decode_cursor(cursor: Any) -> int:
    if not cursor:
        return 0
    try:
        prefix, _, number = base64.b64decode(str(cursor)).decode().partition(":")
        if prefix != "offset":
            raise ValueError(cursor)
        return int(number)
    except ValueError as exc:
        raise SlackApiFailure("invalid_cursor") from exc


def _page(items: list[JSONDict], args: JSONDict, default_limit: int) -> JSONDict:
    limit = max(1, min(_as_int(args.get("limit"), default_limit), HISTORY_MAX_LIMIT))
    offset = _decode_cursor(args.get("cursor"))
    chunk = items[offset : offset + limit]
    has_more = offset + limit < len(items)
    return {
        "ok": True,
        "messages": chunk,
        "has_more": has_more,
        "response_metadata": {"next_cursor": _encode_cursor(offset + limit) if has_more else ""},
    }


def _in_range(ts: str, args: JSONDict) -> bool:
    inclusive = _as_bool(args.get("inclusive", False))
    value = ts_to_micros(ts)
    oldest = args.get("oldest")
    latest = args.get("latest")
    if oldest not in (None, ""):
        bound = ts_to_micros(str(oldest))
        if value < bound or (value == bound and not inclusive):
            return False
    if latest not in (None, ""):
        bound = ts_to_micros(str(latest))
        if value > bound or (value == bound and not inclusive):
            return False
    return True


def _metadata(args: JSONDict) -> JSONDict | None:
    """The ``metadata`` argument of a post: an ``event_type`` string and an object payload."""
    metadata = args.get("metadata")
    if metadata in (None, ""):
        return None
    if (
        not isinstance(metadata, dict)
        or not isinstance(metadata.get("event_type"), str)
        or not metadata["event_type"]
        or not isinstance(metadata.get("event_payload"), dict)
    ):
        raise SlackApiFailure("invalid_metadata_format")
    return {"event_type": metadata["event_type"], "event_payload": metadata["event_payload"]}


def _text_and_blocks(args: JSONDict) -> tuple[str, list[JSONDict]]:
    text = args.get("text")
    blocks = args.get("blocks")
    if text in (None, "") and not blocks and not args.get("attachments"):
        raise SlackApiFailure("no_text")
    if blocks is not None:
        errors = validate_blocks(blocks)
        if errors:
            raise SlackApiFailure("invalid_blocks", response_metadata={"messages": errors})
    return (str(text) if text is not None else "", list(blocks or []))


MethodHandler = Callable[[JSONDict], JSONDict]


class FakeSlack:
    """A fake Slack workspace served over HTTP on 127.0.0.1 (see the module docstring).

    Use as ``async with FakeSlack() as fake:``. Everything is in memory and synchronous
    except the server itself; tests inspect `calls`, `channels`, `ephemerals`,
    `home_views`, `opened_views` and `response_url_posts` directly.
    """

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-fake-bot-token",
        app_token: str = "xapp-fake-app-token",
        signing_secret: str = "fake-signing-secret",
        team_id: str = "T0FAKE",
        team_domain: str = "fake-workspace",
        bot_user_id: str = "U0ATOMBOT",
        bot_id: str = "B0ATOMBOT",
        app_id: str = "A0ATOMBOT",
        clock: Clock = time.time,
        auto_create_channels: bool = True,
        rate_limits: Mapping[str, RateLimit] | None = None,
        scopes: Sequence[str] | None = None,
        stream_expiry_s: float = STREAM_EXPIRY_S,
    ) -> None:
        self.bot_token = bot_token
        #: The bot token's scopes, reported like Slack in the ``x-oauth-scopes`` header of
        #: every call the bot token makes (default: those of atombot's manifest).
        self.scopes: list[str] = list(BOT_SCOPES if scopes is None else scopes)
        self.app_token = app_token
        self.signing_secret = signing_secret
        self.team_id = team_id
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.clock = clock
        self.auto_create_channels = auto_create_channels
        #: Seconds a stream lives after chat.startStream (tests shorten it).
        self.stream_expiry_s = stream_expiry_s
        self.rate_limits: dict[str, RateLimit] = dict(
            DEFAULT_RATE_LIMITS if rate_limits is None else rate_limits
        )

        self.calls: list[Call] = []
        self.channels: dict[str, Channel] = {}
        self.users: dict[str, User] = {}
        self.ephemerals: list[Ephemeral] = []
        self.home_views: dict[str, JSONDict] = {}
        self.opened_views: list[JSONDict] = []
        self.response_urls: dict[str, ResponseUrl] = {}
        self.response_url_posts: list[ResponseUrlPost] = []
        self.socket_connections: list[SocketConnection] = []
        #: OAuth: the app's credentials, its workspaces, and which token belongs to which.
        self.client_id = "1111.2222"
        self.client_secret = "fake-client-secret"
        self.teams: dict[str, Team] = {}
        self.token_teams: dict[str, str] = {}
        self.revoked_tokens: set[str] = set()
        self.channel_teams: dict[str, str] = {}
        self.user_teams: dict[str, str] = {}
        self._codes: dict[str, tuple[str, str, str | None]] = {}
        #: The team of the token of the Web API call being handled (None: between calls, or
        #: the default workspace's token); ``_calling`` while a bot-token call is handled.
        self._caller_team: str | None = None
        self._calling = False
        #: The redirect URL registered with the app (used when the consent page gets none).
        self.redirect_url: str | None = None

        self._signer = SignatureVerifier(signing_secret)
        self._last_ts_micros = 0
        self._ids = itertools.count(1)
        self._windows: dict[tuple[str, str], deque[float]] = {}
        self._forced_429: dict[str, deque[int]] = {}
        self._forced_errors: dict[str, deque[str]] = {}
        self._fail_after_apply: dict[str, deque[str]] = {}
        self._triggers: dict[str, float] = {}
        self._used_triggers: set[str] = set()
        self._socket_tickets: set[str] = set()
        self._acks: dict[str, JSONDict] = {}
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._http: aiohttp.ClientSession | None = None
        self._methods: dict[str, tuple[MethodHandler, TokenKind]] = {
            "chat.postMessage": (self._chat_post_message, "bot"),
            "chat.update": (self._chat_update, "bot"),
            "chat.postEphemeral": (self._chat_post_ephemeral, "bot"),
            "chat.delete": (self._chat_delete, "bot"),
            "chat.startStream": (self._chat_start_stream, "bot"),
            "chat.appendStream": (self._chat_append_stream, "bot"),
            "chat.stopStream": (self._chat_stop_stream, "bot"),
            "conversations.history": (self._conversations_history, "bot"),
            "conversations.replies": (self._conversations_replies, "bot"),
            "conversations.open": (self._conversations_open, "bot"),
            "views.open": (self._views_open, "bot"),
            "views.publish": (self._views_publish, "bot"),
            "auth.test": (self._auth_test, "bot"),
            "oauth.v2.access": (self._oauth_v2_access, "client"),
            "users.info": (self._users_info, "bot"),
            "apps.connections.open": (self._apps_connections_open, "app"),
        }
        # The assistant pane's methods live in their own module (it registers them).
        from tests.fakes.slack_assistant import FakeAssistant

        #: ``assistant.threads.*`` and the assistant pane's events.
        self.assistant = FakeAssistant(self)

    # --- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Serve on 127.0.0.1 with a free port."""
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_get("/oauth/v2/authorize", self._handle_authorize)
        app.router.add_post("/response-url/{rid}", self._handle_response_url)
        app.router.add_get("/socket-mode/{ticket}", self._handle_socket)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        address = self._runner.addresses[0]
        self._port = int(address[1])

    async def stop(self) -> None:
        """Close client sockets, then the server."""
        for connection in self.socket_connections:
            if not connection.ws.closed:
                await connection.ws.close()
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        """The server's root URL, e.g. ``http://127.0.0.1:43127``."""
        if self._port is None:
            raise RuntimeError("FakeSlack is not started; use `async with FakeSlack() as fake`")
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_url(self) -> str:
        """The Web API base URL in slack_sdk's `base_url` form (ends with ``/api/``)."""
        return f"{self.url}/api/"

    # --- workspace state: seeding and inspection ---------------------------------------

    def add_channel(
        self, channel_id: str, name: str | None = None, *, team_id: str | None = None
    ) -> Channel:
        """Create (or return) a channel; ids starting with D are the bot's DMs. With
        ``team_id`` only that workspace's tokens see it."""
        if team_id is not None:
            self.channel_teams[channel_id] = team_id
        if channel_id not in self.channels:
            self.channels[channel_id] = Channel(
                id=channel_id,
                name=name or channel_id.lower(),
                is_im=channel_id.startswith("D"),
            )
        return self.channels[channel_id]

    def add_user(
        self,
        user_id: str,
        name: str | None = None,
        *,
        real_name: str | None = None,
        tz: str = "Europe/Berlin",
        team_id: str | None = None,
    ) -> User:
        """Create (or return) a workspace member (of ``team_id`` only, when given)."""
        if team_id is not None:
            self.user_teams[user_id] = team_id
        if user_id not in self.users:
            handle = name or user_id.lower()
            self.users[user_id] = User(
                id=user_id, name=handle, real_name=real_name or handle.title(), tz=tz
            )
        return self.users[user_id]

    def dm_channel_id(self, user_id: str) -> str:
        """The id of the bot's DM channel with `user_id` (created on first use)."""
        channel_id = "D" + user_id[1:]
        channel = self.add_channel(channel_id, name=user_id)
        channel.user = user_id
        return channel_id

    def seed_message(
        self,
        channel: str,
        text: str,
        *,
        user: str = "U0ANA",
        ts: str | None = None,
        thread_ts: str | None = None,
        blocks: list[JSONDict] | None = None,
    ) -> Message:
        """Store a message written by `user` (a reply when `thread_ts` is given)."""
        self.add_user(user)
        return self._store(
            channel, text=text, user=user, ts=ts, thread_ts=thread_ts, blocks=blocks or []
        )

    def seed_thread(
        self,
        channel: str,
        parent: str,
        replies: Iterable[str | tuple[str, str]],
        *,
        user: str = "U0ANA",
    ) -> Message:
        """Store a thread: the parent by `user`, then replies (text or (user, text))."""
        root = self.seed_message(channel, parent, user=user)
        for reply in replies:
            author, text = (user, reply) if isinstance(reply, str) else reply
            self.seed_message(channel, text, user=author, thread_ts=root.ts)
        return root

    def message(self, channel: str, ts: str) -> Message:
        """The stored message `ts` in `channel` (KeyError if there is none)."""
        return self.channels[channel].messages[ts]

    def messages(self, channel: str, *, include_replies: bool = True) -> list[Message]:
        """The live messages of `channel`, oldest first."""
        if channel not in self.channels:
            return []
        found = [m for m in self.channels[channel].messages.values() if not m.deleted]
        if not include_replies:
            found = [m for m in found if not m.is_reply]
        return sorted(found, key=lambda m: ts_to_micros(m.ts))

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        """A thread's parent followed by its live replies, oldest first."""
        parent = self.message(channel, thread_ts)
        replies = [self.message(channel, ts) for ts in parent.reply_ts]
        return [parent, *(m for m in replies if not m.deleted)]

    def bot_messages(self, channel: str | None = None) -> list[Message]:
        """The live messages the bot posted (in one channel or everywhere), oldest first."""
        channels = [channel] if channel is not None else list(self.channels)
        found = [m for c in channels for m in self.messages(c) if m.bot_id == self.bot_id]
        return sorted(found, key=lambda m: ts_to_micros(m.ts))

    # --- call records ---------------------------------------------------------------------

    def calls_to(self, method: str, *, ok: bool | None = None) -> list[Call]:
        """The recorded calls of one method, oldest first (optionally only (un)successful)."""
        return [c for c in self.calls if c.method == method and (ok is None or c.ok == ok)]

    async def wait_until(self, predicate: Callable[[], bool], within_s: float = 5.0) -> None:
        """Wait until `predicate()` holds; it is re-checked on every call, ack or connection."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), within_s)

    async def wait_for_calls(
        self,
        method: str,
        count: int = 1,
        *,
        within_s: float = 5.0,
        where: Callable[[Call], bool] | None = None,
    ) -> list[Call]:
        """Wait until `count` calls of `method` (matching `where`) were recorded; return them."""

        def matching() -> list[Call]:
            return [c for c in self.calls_to(method) if where is None or where(c)]

        await self.wait_until(lambda: len(matching()) >= count, within_s)
        return matching()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # --- rate limits and forced failures ----------------------------------------------------

    def register_method(
        self,
        method: str,
        handler: MethodHandler,
        *,
        kind: TokenKind = "bot",
        rate_limit: RateLimit | None = None,
    ) -> None:
        """Serve one more Web API method (fake modules of a method family use this);
        `rate_limit` is its tier unless one was configured for it already."""
        self._methods[method] = (handler, kind)
        if rate_limit is not None:
            self.rate_limits.setdefault(method, rate_limit)

    def set_rate_limit(
        self,
        method: str,
        per_minute: int,
        *,
        per_channel: bool = False,
        window_s: float = 60.0,
    ) -> None:
        """Allow `per_minute` calls of `method` per `window_s` (tests shrink the window)."""
        self.rate_limits[method] = RateLimit(per_minute, per_channel, window_s)
        for key in [k for k in self._windows if k[0] == method]:
            del self._windows[key]

    def force_rate_limit(self, method: str, *, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next `times` calls of `method` with 429 and `Retry-After: retry_after`."""
        self._forced_429.setdefault(method, deque()).extend([retry_after] * times)

    def force_error(self, method: str, error: str, *, times: int = 1) -> None:
        """Answer the next `times` calls of `method` with `{"ok": false, "error": error}`."""
        self._forced_errors.setdefault(method, deque()).extend([error] * times)

    def fail_after_apply(
        self, method: str, error: str = "internal_error", *, times: int = 1
    ) -> None:
        """Let the next `times` calls of `method` take effect, then answer HTTP 500 `error`:
        Slack's "some aspect of the operation may have succeeded" (the bot cannot tell)."""
        self._fail_after_apply.setdefault(method, deque()).extend([error] * times)

    def _rate_limited(self, method: str, args: JSONDict, now: float) -> int | None:
        """Retry-After seconds if this call is over the limit, else None (and count it)."""
        forced = self._forced_429.get(method)
        if forced:
            return forced.popleft()
        limit = self.rate_limits.get(method)
        if limit is None:
            return None
        key = (method, str(args.get("channel", "")) if limit.per_channel else "")
        window = self._windows.setdefault(key, deque())
        while window and window[0] <= now - limit.window_s:
            window.popleft()
        if len(window) >= limit.per_minute:
            return max(1, math.ceil(window[0] + limit.window_s - now))
        window.append(now)
        return None

    # --- Web API dispatch -----------------------------------------------------------------

    async def _read_args(self, request: web.Request) -> JSONDict:
        args: JSONDict = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    args.update(body)
            else:
                form = await request.post()
                args.update({k: v for k, v in form.items() if isinstance(v, str)})
        for key in JSON_ARGS:
            if isinstance(args.get(key), str):
                try:
                    args[key] = json.loads(args[key])
                except json.JSONDecodeError as exc:
                    raise SlackApiFailure(f"invalid_{key}_format") from exc
        return args

    def _token_of(self, request: web.Request, args: JSONDict) -> str | None:
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return header.removeprefix("Bearer ").strip()
        token = args.pop("token", None)
        return str(token) if token is not None else None

    def _check_token(self, token: str | None, kind: TokenKind) -> None:
        if kind == "client":
            return  # oauth.v2.access checks the app's client id and secret itself
        if not token:
            raise SlackApiFailure("not_authed")
        if token in self.revoked_tokens:
            raise SlackApiFailure("token_revoked")
        if kind == "bot" and token in self.token_teams:
            return
        expected = self.bot_token if kind == "bot" else self.app_token
        other = self.app_token if kind == "bot" else self.bot_token
        if token == other:
            raise SlackApiFailure("not_allowed_token_type")
        if token != expected:
            raise SlackApiFailure("invalid_auth")

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        now = self.clock()
        headers: dict[str, str] = {}
        args: JSONDict = {}
        token: str | None = None
        status = 200
        try:
            args = await self._read_args(request)
            token = self._token_of(request, args)
            if method not in self._methods:
                raise SlackApiFailure("unknown_method", status=404)
            handler, kind = self._methods[method]
            if kind == "client":
                args.update(self._client_credentials(request))
            self._check_token(token, kind)
            self._caller_team = self.token_teams.get(token or "") if kind == "bot" else None
            self._calling = kind == "bot"
            if kind == "bot":
                headers["x-oauth-scopes"] = ",".join(self.scopes)
            retry_after = self._rate_limited(method, args, now)
            if retry_after is not None:
                headers["Retry-After"] = str(retry_after)
                raise SlackApiFailure("ratelimited", status=429)
            forced = self._forced_errors.get(method)
            if forced:
                raise SlackApiFailure(forced.popleft())
            try:
                body = handler(args)
            finally:
                self._caller_team, self._calling = None, False
            after = self._fail_after_apply.get(method)
            if after:
                raise SlackApiFailure(after.popleft(), status=500)
        except SlackApiFailure as failure:
            status = failure.status
            body = {"ok": False, "error": failure.error, **failure.extra}
        self.calls.append(Call(method, args, now, request.method, token, status, body))
        await self._notify()
        return web.json_response(body, status=status, headers=headers)

    # --- message storage --------------------------------------------------------------------

    def _next_ts(self) -> str:
        micros = max(int(self.clock() * 1_000_000), self._last_ts_micros + 1)
        self._last_ts_micros = micros
        return micros_to_ts(micros)

    def _channel(self, channel_id: Any) -> Channel:
        if not isinstance(channel_id, str) or not channel_id:
            raise SlackApiFailure("channel_not_found")
        if channel_id.startswith(("U", "W")):
            self._visible_user(channel_id)
            channel_id = self.dm_channel_id(channel_id)
        owner = self.channel_teams.get(channel_id)
        if self._calling and owner is not None and owner != (self._caller_team or self.team_id):
            raise SlackApiFailure("channel_not_found")
        if channel_id.startswith("#"):
            for channel in self.channels.values():
                if channel.name == channel_id[1:]:
                    return channel
            raise SlackApiFailure("channel_not_found")
        if channel_id not in self.channels:
            if not (self.auto_create_channels and channel_id[0] in "CGD"):
                raise SlackApiFailure("channel_not_found")
            self.add_channel(channel_id)
        return self.channels[channel_id]

    def _store(
        self,
        channel_id: str,
        *,
        text: str,
        user: str,
        blocks: list[JSONDict],
        ts: str | None = None,
        thread_ts: str | None = None,
        from_bot: bool = False,
    ) -> Message:
        channel = self._channel(channel_id)
        if ts is None:
            ts = self._next_ts()
        else:
            self._last_ts_micros = max(self._last_ts_micros, ts_to_micros(ts))
        parent: Message | None = None
        if thread_ts is not None:
            parent = channel.messages.get(thread_ts)
            if parent is None or parent.deleted:
                raise SlackApiFailure("thread_not_found")
            if parent.is_reply:
                # Replying to a reply lands in the same thread, as in Slack.
                parent = channel.messages[str(parent.thread_ts)]
            parent.thread_ts = parent.ts
        message = Message(
            channel=channel.id,
            ts=ts,
            text=text,
            user=user,
            blocks=blocks,
            thread_ts=parent.ts if parent is not None else None,
            bot_id=self.bot_id if from_bot else None,
            app_id=self.app_id if from_bot else None,
        )
        channel.messages[ts] = message
        if parent is not None:
            parent.reply_ts.append(ts)
        return message

    def _live_message(self, channel: Channel, ts: Any) -> Message:
        message = channel.messages.get(str(ts))
        if message is None or message.deleted:
            raise SlackApiFailure("message_not_found")
        return message

    # --- Web API methods --------------------------------------------------------------------

    def _chat_post_message(self, args: JSONDict) -> JSONDict:
        text, blocks = _text_and_blocks(args)
        if len(text) > MAX_POST_TEXT:
            raise SlackApiFailure("msg_too_long")
        metadata = _metadata(args)
        thread_ts = args.get("thread_ts") or None
        message = self._store(
            str(args.get("channel", "")),
            text=text,
            user=self.bot_user_of(self._caller_team),
            blocks=blocks,
            thread_ts=str(thread_ts) if thread_ts else None,
            from_bot=True,
        )
        message.metadata = metadata
        return {
            "ok": True,
            "channel": message.channel,
            "ts": message.ts,
            "message": message.to_api(include_metadata=True),
        }

    def _chat_update(self, args: JSONDict) -> JSONDict:
        channel = self._channel(args.get("channel"))
        message = self._live_message(channel, args.get("ts"))
        if message.bot_id != self.bot_id:
            raise SlackApiFailure("cant_update_message")
        text, blocks = _text_and_blocks(args)
        if len(text) > MAX_UPDATE_TEXT:
            raise SlackApiFailure("msg_too_long")
        message.text = text
        message.blocks = blocks
        message.edits.append({"text": text, "blocks": blocks, "at_ts": self._next_ts()})
        return {
            "ok": True,
            "channel": channel.id,
            "ts": message.ts,
            "text": text,
            "message": message.to_api(),
        }

    # --- chat streaming ---------------------------------------------------------------------

    def streams(self, channel: str | None = None) -> list[Message]:
        """The messages opened with chat.startStream (in one channel or everywhere), oldest
        first."""
        return [m for m in self.bot_messages(channel) if m.stream is not None]

    def expire_streams(self) -> None:
        """End every open stream as Slack does when one outlives its time."""
        for message in self.streams():
            assert message.stream is not None
            if message.stream.state == "streaming":
                message.stream.state = "expired"

    def _stream_content(self, args: JSONDict, stream: Stream) -> tuple[str, list[JSONDict]]:
        """The markdown and task updates of one stream call (``markdown_text`` and/or
        ``chunks``), checked against Slack's limits."""
        texts: list[str] = []
        markdown = args.get("markdown_text")
        if markdown not in (None, ""):
            texts.append(str(markdown))
        chunks = args.get("chunks")
        if chunks is not None and not isinstance(chunks, list):
            raise SlackApiFailure("invalid_chunks")
        tasks: list[JSONDict] = []
        for chunk in chunks or []:
            kind = chunk.get("type") if isinstance(chunk, dict) else None
            if kind == "markdown_text" and isinstance(chunk.get("text"), str):
                texts.append(chunk["text"])
            elif kind == "task_update":
                if not (
                    isinstance(chunk.get("id"), str)
                    and chunk["id"]
                    and isinstance(chunk.get("title"), str)
                    and chunk.get("status") in TASK_STATUSES
                ):
                    raise SlackApiFailure("invalid_chunks")
                tasks.append(chunk)
            elif kind == "plan_update" and isinstance(chunk.get("title"), str):
                continue
            elif kind == "blocks" and isinstance(chunk.get("blocks"), list):
                if validate_blocks(chunk["blocks"]):
                    raise SlackApiFailure("invalid_blocks")
            else:
                raise SlackApiFailure("invalid_chunks")
        if any(len(text) > MAX_STREAM_TEXT for text in texts):
            raise SlackApiFailure("msg_too_long")
        return "".join(texts), tasks

    def _apply_stream(
        self, message: Message, method: str, args: JSONDict, text: str, tasks: list[JSONDict]
    ) -> None:
        assert message.stream is not None
        stream = message.stream
        stream.markdown += text
        message.text = stream.markdown
        for task in tasks:
            stream.task_updates.append((task["id"], task["status"]))
            stream.tasks[task["id"]] = dict(task)
        stream.calls.append((method, args))

    def _streaming_message(self, args: JSONDict) -> Message:
        """The message of a stream still open (expired ones are closed on the way)."""
        channel = self._channel(args.get("channel"))
        message = self._live_message(channel, args.get("ts"))
        stream = message.stream
        if stream is None:
            raise SlackApiFailure("message_not_in_streaming_state")
        if stream.state == "streaming" and self.clock() - stream.started_at > self.stream_expiry_s:
            stream.state = "expired"
        if stream.state != "streaming":
            raise SlackApiFailure("message_not_in_streaming_state")
        return message

    def _chat_start_stream(self, args: JSONDict) -> JSONDict:
        channel = self._channel(args.get("channel"))
        thread_ts = args.get("thread_ts")
        if not thread_ts:
            raise SlackApiFailure("invalid_arguments")
        if not channel.is_im:
            if not args.get("recipient_team_id"):
                raise SlackApiFailure("missing_recipient_team_id")
            if not args.get("recipient_user_id"):
                raise SlackApiFailure("missing_recipient_user_id")
        mode = args.get("task_display_mode")
        if mode is not None and mode not in TASK_DISPLAY_MODES:
            raise SlackApiFailure("invalid_arguments")
        stream = Stream(
            started_at=self.clock(),
            recipient_user_id=args.get("recipient_user_id"),
            recipient_team_id=args.get("recipient_team_id"),
            task_display_mode=mode,
        )
        text, tasks = self._stream_content(args, stream)
        message = self._store(
            channel.id,
            text="",
            user=self.bot_user_of(self._caller_team),
            blocks=[],
            thread_ts=str(thread_ts),
            from_bot=True,
        )
        message.stream = stream
        self._apply_stream(message, "chat.startStream", args, text, tasks)
        return {"ok": True, "channel": channel.id, "ts": message.ts}

    def _chat_append_stream(self, args: JSONDict) -> JSONDict:
        message = self._streaming_message(args)
        assert message.stream is not None
        text, tasks = self._stream_content(args, message.stream)
        if not text and not tasks:
            raise SlackApiFailure("no_text")
        self._apply_stream(message, "chat.appendStream", args, text, tasks)
        return {"ok": True, "channel": message.channel, "ts": message.ts}

    def _chat_stop_stream(self, args: JSONDict) -> JSONDict:
        message = self._streaming_message(args)
        assert message.stream is not None
        text, tasks = self._stream_content(args, message.stream)
        blocks = args.get("blocks")
        if blocks is not None:
            errors = validate_blocks(blocks)
            if errors:
                raise SlackApiFailure("invalid_blocks", response_metadata={"messages": errors})
        metadata = _metadata(args)
        self._apply_stream(message, "chat.stopStream", args, text, tasks)
        if blocks:
            message.blocks = list(blocks)
        if metadata is not None:
            message.metadata = metadata
        message.stream.state = "stopped"
        return {
            "ok": True,
            "channel": message.channel,
            "ts": message.ts,
            "message": message.to_api(),
        }

    def _chat_post_ephemeral(self, args: JSONDict) -> JSONDict:
        channel = self._channel(args.get("channel"))
        user = args.get("user")
        if not isinstance(user, str) or not user:
            raise SlackApiFailure("user_not_in_channel")
        text, blocks = _text_and_blocks(args)
        if len(text) > MAX_POST_TEXT:
            raise SlackApiFailure("msg_too_long")
        thread_ts = args.get("thread_ts") or None
        ephemeral = Ephemeral(
            channel.id, user, text, blocks, self._next_ts(), str(thread_ts) if thread_ts else None
        )
        self.ephemerals.append(ephemeral)
        return {"ok": True, "message_ts": ephemeral.message_ts}

    def _chat_delete(self, args: JSONDict) -> JSONDict:
        channel = self._channel(args.get("channel"))
        message = self._live_message(channel, args.get("ts"))
        if message.bot_id != self.bot_id:
            raise SlackApiFailure("cant_delete_message")
        message.deleted = True
        return {"ok": True, "channel": channel.id, "ts": message.ts}

    def _conversations_history(self, args: JSONDict) -> JSONDict:
        channel = self._channel(args.get("channel"))
        top_level = [
            m
            for m in channel.messages.values()
            if not m.deleted and not m.is_reply and _in_range(m.ts, args)
        ]
        top_level.sort(key=lambda m: ts_to_micros(m.ts), reverse=True)
        meta = _as_bool(args.get("include_all_metadata", False))
        return _page(
            [m.to_api(include_metadata=meta) for m in top_level], args, HISTORY_DEFAULT_LIMIT
        )

    def _conversations_replies(self, args: JSONDict) -> JSONDict:
        channel = self._channel(args.get("channel"))
        message = channel.messages.get(str(args.get("ts")))
        if message is None or message.deleted:
            raise SlackApiFailure("thread_not_found")
        root = (
            channel.messages[message.thread_ts]
            if message.is_reply and message.thread_ts
            else message
        )
        thread = [root] + [
            channel.messages[ts]
            for ts in root.reply_ts
            if not channel.messages[ts].deleted and _in_range(ts, args)
        ]
        meta = _as_bool(args.get("include_all_metadata", False))
        return _page([m.to_api(include_metadata=meta) for m in thread], args, REPLIES_DEFAULT_LIMIT)

    def _conversations_open(self, args: JSONDict) -> JSONDict:
        users = str(args.get("users") or "")
        if not users:
            raise SlackApiFailure("users_list_not_supplied")
        if "," in users:
            raise SlackApiFailure("not_enough_users")  # the fake opens DMs only
        channel = self._channel(self.dm_channel_id(users))
        return {"ok": True, "channel": {"id": channel.id}}

    def _use_trigger(self, trigger_id: Any) -> None:
        key = str(trigger_id or "")
        if key not in self._triggers:
            raise SlackApiFailure("invalid_trigger_id")
        if key in self._used_triggers:
            raise SlackApiFailure("exchanged_trigger_id")
        if self.clock() - self._triggers[key] > TRIGGER_ID_LIFETIME_S:
            raise SlackApiFailure("expired_trigger_id")
        self._used_triggers.add(key)

    def _view_result(self, view: JSONDict) -> JSONDict:
        return {
            "id": f"V{next(self._ids):08d}",
            "team_id": self.team_id,
            "app_id": self.app_id,
            "bot_id": self.bot_id,
            "hash": uuid.uuid4().hex,
            **view,
        }

    def _views_open(self, args: JSONDict) -> JSONDict:
        view = args.get("view")
        errors = validate_view(view)
        if errors:
            raise SlackApiFailure("invalid_arguments", response_metadata={"messages": errors})
        self._use_trigger(args.get("trigger_id"))
        assert isinstance(view, dict)
        stored = self._view_result(view)
        self.opened_views.append(stored)
        return {"ok": True, "view": stored}

    def _views_publish(self, args: JSONDict) -> JSONDict:
        user_id = args.get("user_id")
        if not isinstance(user_id, str) or not user_id:
            raise SlackApiFailure("invalid_arguments")
        self._visible_user(user_id)
        view = args.get("view")
        errors = validate_view(view)
        if isinstance(view, dict) and view.get("type") != "home":
            errors.append(_err("must be home", "/view/type"))
        if errors:
            raise SlackApiFailure("invalid_arguments", response_metadata={"messages": errors})
        assert isinstance(view, dict)
        stored = self._view_result(view)
        self.home_views[user_id] = stored
        return {"ok": True, "view": stored}

    def _auth_test(self, args: JSONDict) -> JSONDict:
        team = self.teams.get(self._caller_team or "")
        if team is not None:
            return {
                "ok": True,
                "url": f"https://{team.domain}.slack.com/",
                "team": team.domain,
                "user": "atombot",
                "team_id": team.id,
                "user_id": team.bot_user_id,
                "bot_id": team.bot_id,
                "is_enterprise_install": False,
            }
        return {
            "ok": True,
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_domain,
            "user": "atombot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _visible_user(self, user_id: str) -> None:
        owner = self.user_teams.get(user_id)
        if self._calling and owner is not None and owner != (self._caller_team or self.team_id):
            raise SlackApiFailure("user_not_found")

    def _users_info(self, args: JSONDict) -> JSONDict:
        user = self.users.get(str(args.get("user", "")))
        if user is None:
            raise SlackApiFailure("user_not_found")
        self._visible_user(user.id)
        locale = _as_bool(args.get("include_locale", False))
        team = self._caller_team or self.team_id
        return {"ok": True, "user": user.to_api(team, include_locale=locale)}

    def _apps_connections_open(self, args: JSONDict) -> JSONDict:
        ticket = uuid.uuid4().hex
        self._socket_tickets.add(ticket)
        ws_url = self.url.replace("http://", "ws://", 1)
        return {"ok": True, "url": f"{ws_url}/socket-mode/{ticket}?app_id={self.app_id}"}

    # --- response_url ---------------------------------------------------------------------

    def issue_response_url(self, channel: str, user: str, message_ts: str | None = None) -> str:
        """Hand out a response_url bound to `channel` (and the source message, if any)."""
        rid = uuid.uuid4().hex
        url = f"{self.url}/response-url/{rid}"
        self.response_urls[rid] = ResponseUrl(rid, url, channel, user, self.clock(), message_ts)
        return url

    def issue_trigger_id(self) -> str:
        """Hand out a trigger_id: valid once, for 3 s."""
        trigger = f"{next(self._ids)}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:32]}"
        self._triggers[trigger] = self.clock()
        return trigger

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        rid = request.match_info["rid"]
        now = self.clock()
        body: JSONDict = {}
        try:
            try:
                raw = await request.json()
            except json.JSONDecodeError as exc:
                raise SlackApiFailure("invalid_payload", status=400) from exc
            body = raw if isinstance(raw, dict) else {}
            self._apply_response(rid, body, now)
            status, error = 200, None
        except SlackApiFailure as failure:
            status, error = failure.status, failure.error
        self.response_url_posts.append(
            ResponseUrlPost(f"{self.url}/response-url/{rid}", body, now, status, error)
        )
        await self._notify()
        if error is not None:
            return web.json_response({"ok": False, "error": error}, status=status)
        return web.json_response({"ok": True})

    def _apply_response(self, rid: str, body: JSONDict, now: float) -> None:
        response_url = self.response_urls.get(rid)
        if response_url is None:
            raise SlackApiFailure("no_such_url", status=404)
        if now - response_url.issued_at > RESPONSE_URL_LIFETIME_S:
            raise SlackApiFailure("expired_url", status=404)
        if response_url.uses >= RESPONSE_URL_MAX_USES:
            raise SlackApiFailure("used_url", status=404)
        response_url.uses += 1
        channel = self._channel(response_url.channel)
        if response_url.ephemeral_ts is not None and (
            _as_bool(body.get("delete_original", False))
            or _as_bool(body.get("replace_original", False))
        ):
            self._replace_ephemeral(response_url, body)
            return
        if _as_bool(body.get("delete_original", False)):
            if response_url.message_ts is not None:
                self._live_message(channel, response_url.message_ts).deleted = True
            return
        text, blocks = _text_and_blocks(body)
        if len(text) > MAX_POST_TEXT:
            raise SlackApiFailure("msg_too_long", status=400)
        if _as_bool(body.get("replace_original", False)) and response_url.message_ts is not None:
            message = self._live_message(channel, response_url.message_ts)
            message.text, message.blocks = text, blocks
            message.edits.append({"text": text, "blocks": blocks, "at_ts": self._next_ts()})
        elif body.get("response_type") == "in_channel":
            self._store(
                channel.id,
                text=text,
                user=self.bot_user_id,
                blocks=blocks,
                from_bot=True,
                thread_ts=str(body["thread_ts"]) if body.get("thread_ts") else None,
            )
        else:
            self.ephemerals.append(
                Ephemeral(channel.id, response_url.user, text, blocks, self._next_ts())
            )

    def _replace_ephemeral(self, response_url: ResponseUrl, body: JSONDict) -> None:
        """`replace_original` / `delete_original` on the ephemeral a press came from."""
        index = next(
            (
                i
                for i, e in enumerate(self.ephemerals)
                if e.message_ts == response_url.ephemeral_ts and e.user == response_url.user
            ),
            None,
        )
        if index is None:
            raise SlackApiFailure("message_not_found", status=404)
        if _as_bool(body.get("delete_original", False)):
            del self.ephemerals[index]
            return
        text, blocks = _text_and_blocks(body)
        if len(text) > MAX_POST_TEXT:
            raise SlackApiFailure("msg_too_long", status=400)
        self.ephemerals[index] = replace(self.ephemerals[index], text=text, blocks=blocks)

    # --- OAuth installs (many workspaces) ---------------------------------------------------

    def add_team(self, team_id: str, *, domain: str | None = None) -> Team:
        """A workspace that can install the app through the consent page (its own bot user)."""
        if team_id not in self.teams:
            suffix = team_id.removeprefix("T")
            self.teams[team_id] = Team(
                id=team_id,
                domain=domain or f"{team_id.lower()}-workspace",
                bot_user_id=f"U0BOT{suffix}",
                bot_id=f"B0BOT{suffix}",
            )
        return self.teams[team_id]

    def bot_user_of(self, team_id: str | None) -> str:
        """The bot's user id in ``team_id`` (the default one for the default workspace)."""
        team = self.teams.get(team_id or "")
        return team.bot_user_id if team is not None else self.bot_user_id

    def live_tokens(self, team_id: str) -> list[str]:
        """The bot tokens of ``team_id`` that still work, oldest first."""
        return [x for x in self.teams[team_id].tokens if x not in self.revoked_tokens]

    def uninstall(self, team_id: str) -> JSONDict:
        """The workspace removes the app: every token of it is revoked; returns the
        ``app_uninstalled`` event Slack then sends (wrap it with ``signed_event``)."""
        for token in self.teams[team_id].tokens:
            self.revoked_tokens.add(token)
        return {"type": "app_uninstalled", "event_ts": self._next_ts()}

    def tokens_revoked(
        self, team_id: str, *, bot: bool = True, users: Sequence[str] = ()
    ) -> JSONDict:
        """A ``tokens_revoked`` event (the bot token revoked too when ``bot``)."""
        if bot:
            for token in self.teams[team_id].tokens:
                self.revoked_tokens.add(token)
        return {
            "type": "tokens_revoked",
            "tokens": {
                "oauth": list(users),
                "bot": [self.bot_user_of(team_id)] if bot else [],
            },
            "event_ts": self._next_ts(),
        }

    async def _handle_authorize(self, request: web.Request) -> web.Response:
        """Slack's consent page, approved at once: the ``team`` parameter names the workspace
        (as picking one on the page would), ``user`` the installer. Redirects to the
        ``redirect_uri`` given (or ``redirect_url``, the app's registered one) with a code
        and the state unchanged."""
        query = request.query
        if query.get("client_id") != self.client_id:
            return web.Response(status=400, text="invalid_client_id")
        team = self.teams.get(query.get("team", ""))
        if team is None:
            return web.Response(status=400, text="unknown team")
        target = query.get("redirect_uri") or self.redirect_url
        if not target:
            return web.Response(status=400, text="no redirect_uri")
        code = f"code-{uuid.uuid4().hex}"
        self._codes[code] = (team.id, query.get("user", "U0ADMIN"), query.get("redirect_uri"))
        team.scopes.append(query.get("scope", ""))
        location = f"{target}?{urlencode({'code': code, 'state': query.get('state', '')})}"
        return web.Response(status=302, headers={"Location": location})

    def _client_credentials(self, request: web.Request) -> JSONDict:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return {}
        decoded = base64.b64decode(header.removeprefix("Basic ")).decode()
        client_id, _, secret = decoded.partition(":")
        return {"client_id": client_id, "client_secret": secret}

    def _oauth_v2_access(self, args: JSONDict) -> JSONDict:
        if args.get("client_id") != self.client_id:
            raise SlackApiFailure("invalid_client_id")
        if args.get("client_secret") != self.client_secret:
            raise SlackApiFailure("bad_client_secret")
        found = self._codes.pop(str(args.get("code") or ""), None)
        if found is None:
            raise SlackApiFailure("invalid_code")
        team_id, installer, redirect = found
        if redirect is not None and args.get("redirect_uri") != redirect:
            raise SlackApiFailure("bad_redirect_uri")
        team = self.teams[team_id]
        token = f"xoxb-{team_id.lower()}-{next(self._ids)}"
        team.tokens.append(token)
        self.token_teams[token] = team_id
        return {
            "ok": True,
            "access_token": token,
            "token_type": "bot",
            "scope": ",".join(self.scopes),
            "bot_user_id": team.bot_user_id,
            "app_id": self.app_id,
            "team": {"name": team.domain, "id": team_id},
            "enterprise": None,
            "authed_user": {"id": installer},
            "is_enterprise_install": False,
        }

    # --- inbound payloads (what Slack sends to the bot) -------------------------------------

    def _team(self, team_id: str | None) -> str:
        return team_id or self.team_id

    def slash_command_payload(
        self,
        text: str = "",
        *,
        command: str = "/atom",
        user_id: str = "U0ANA",
        channel_id: str = "C0GENERAL",
        team_id: str | None = None,
    ) -> dict[str, str]:
        """The form fields of a slash command, with a fresh response_url and trigger_id."""
        user = self.add_user(user_id)
        channel = self.add_channel(channel_id)
        return {
            "token": "deprecated-verification-token",
            "team_id": self._team(team_id),
            "team_domain": self.team_domain,
            "channel_id": channel.id,
            "channel_name": "directmessage" if channel.is_im else channel.name,
            "user_id": user.id,
            "user_name": user.name,
            "command": command,
            "text": text,
            "api_app_id": self.app_id,
            "is_enterprise_install": "false",
            "response_url": self.issue_response_url(channel.id, user.id),
            "trigger_id": self.issue_trigger_id(),
        }

    def event_envelope(
        self, event: JSONDict, *, event_id: str | None = None, team_id: str | None = None
    ) -> JSONDict:
        """An Events API `event_callback` envelope around `event`."""
        team = self._team(team_id)
        return {
            "token": "deprecated-verification-token",
            "team_id": team,
            "api_app_id": self.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
            "event_time": int(self.clock()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": team,
                    "user_id": self.bot_user_of(team),
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-{uuid.uuid4().hex}",
        }

    def app_mention(
        self,
        text: str,
        *,
        user_id: str = "U0ANA",
        channel_id: str = "C0GENERAL",
        thread_ts: str | None = None,
        team_id: str | None = None,
        store: bool = True,
    ) -> JSONDict:
        """An `app_mention` event; the message is also stored (in the thread, if given).

        The text is prefixed with ``<@BOT>`` unless it already mentions the bot.
        """
        mention = f"<@{self.bot_user_of(team_id)}>"
        full_text = text if mention in text else f"{mention} {text}"
        ts = self._message_ts(channel_id, full_text, user_id, thread_ts, store)
        event: JSONDict = {
            "type": "app_mention",
            "user": user_id,
            "text": full_text,
            "ts": ts,
            "channel": channel_id,
            "event_ts": ts,
            "team": self._team(team_id),
            "client_msg_id": str(uuid.uuid4()),
        }
        if thread_ts is not None:
            event["thread_ts"] = thread_ts
        return event

    def direct_message(
        self, text: str, *, user_id: str = "U0ANA", team_id: str | None = None, store: bool = True
    ) -> JSONDict:
        """A `message.im` event: `user_id` writes to the bot in their DM; stored too."""
        channel_id = self.dm_channel_id(user_id)
        ts = self._message_ts(channel_id, text, user_id, None, store)
        return {
            "type": "message",
            "channel_type": "im",
            "user": user_id,
            "text": text,
            "ts": ts,
            "channel": channel_id,
            "event_ts": ts,
            "team": self._team(team_id),
            "client_msg_id": str(uuid.uuid4()),
        }

    def app_home_opened(self, *, user_id: str = "U0ANA") -> JSONDict:
        """An `app_home_opened` event for the Home tab."""
        self.add_user(user_id)
        return {
            "type": "app_home_opened",
            "user": user_id,
            "channel": self.dm_channel_id(user_id),
            "tab": "home",
            "event_ts": self._next_ts(),
        }

    def _message_ts(
        self, channel_id: str, text: str, user_id: str, thread_ts: str | None, store: bool
    ) -> str:
        self.add_user(user_id)
        if not store:
            return self._next_ts()
        return self._store(channel_id, text=text, user=user_id, blocks=[], thread_ts=thread_ts).ts

    def _interaction_common(
        self, user_id: str, channel_id: str, team_id: str | None, message_ts: str | None
    ) -> JSONDict:
        user = self.add_user(user_id)
        channel = self.add_channel(channel_id)
        return {
            "user": {
                "id": user.id,
                "username": user.name,
                "name": user.name,
                "team_id": self._team(team_id),
            },
            "api_app_id": self.app_id,
            "token": "deprecated-verification-token",
            "trigger_id": self.issue_trigger_id(),
            "team": {"id": self._team(team_id), "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel.id, "name": channel.name},
            "response_url": self.issue_response_url(channel.id, user.id, message_ts),
        }

    def find_button(self, channel_id: str, message_ts: str, action_id: str) -> tuple[str, JSONDict]:
        """The (block_id, element) of the button `action_id` in a stored message."""
        for block in self.message(channel_id, message_ts).blocks:
            elements = list(block.get("elements", []))
            if "accessory" in block:
                elements.append(block["accessory"])
            for element in elements:
                if isinstance(element, dict) and element.get("action_id") == action_id:
                    return str(block.get("block_id", "")), element
        raise LookupError(f"no element {action_id!r} in message {message_ts} of {channel_id}")

    def block_actions(
        self,
        *,
        channel_id: str,
        message_ts: str,
        action_id: str,
        user_id: str = "U0ANA",
        value: str | None = None,
        team_id: str | None = None,
    ) -> JSONDict:
        """A `block_actions` payload: `user_id` presses the element `action_id` of a stored message.

        The element must exist in the message (LookupError otherwise); its value is sent
        unless `value` forges another one.
        """
        block_id, element = self.find_button(channel_id, message_ts, action_id)
        message = self.message(channel_id, message_ts)
        action: JSONDict = {
            "action_id": action_id,
            "block_id": block_id,
            "type": element.get("type", "button"),
            "action_ts": self._next_ts(),
        }
        if "text" in element:
            action["text"] = element["text"]
        chosen = value if value is not None else element.get("value")
        if chosen is not None:
            action["value"] = chosen
        return {
            "type": "block_actions",
            **self._interaction_common(user_id, channel_id, team_id, message_ts),
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel_id,
                "is_ephemeral": False,
                **({"thread_ts": message.thread_ts} if message.thread_ts else {}),
            },
            "message": message.to_api(),
            "state": {"values": {}},
            "actions": [action],
        }

    def feedback_actions(
        self,
        *,
        channel_id: str,
        message_ts: str,
        action_id: str,
        positive: bool,
        user_id: str = "U0ANA",
        team_id: str | None = None,
    ) -> JSONDict:
        """A `block_actions` payload: `user_id` presses one side of the native feedback
        buttons `action_id` of a stored message (the pressed side's value is sent)."""
        payload = self.block_actions(
            channel_id=channel_id,
            message_ts=message_ts,
            action_id=action_id,
            user_id=user_id,
            team_id=team_id,
        )
        _, element = self.find_button(channel_id, message_ts, action_id)
        if element.get("type") != "feedback_buttons":
            raise LookupError(f"{action_id!r} is not a feedback_buttons element")
        side = element["positive_button" if positive else "negative_button"]
        payload["actions"][0]["value"] = side["value"]
        payload["actions"][0]["type"] = "feedback_buttons"
        return payload

    def ephemeral_block_actions(
        self,
        ephemeral: Ephemeral,
        *,
        action_id: str,
        user_id: str | None = None,
        team_id: str | None = None,
        value: str | None = None,
    ) -> JSONDict:
        """A `block_actions` payload: a press on a button of an ephemeral message.

        Only the user it was shown to sees it (LookupError for anyone else, or for a button
        it does not have); the response_url acts on that ephemeral.
        """
        presser = user_id or ephemeral.user
        if presser != ephemeral.user:
            raise LookupError(f"{presser} cannot see an ephemeral shown to {ephemeral.user}")
        current = next((e for e in self.ephemerals if e.message_ts == ephemeral.message_ts), None)
        if current is None:
            raise LookupError(f"ephemeral {ephemeral.message_ts} is gone")
        for block in current.blocks:
            for element in block.get("elements", []):
                if isinstance(element, dict) and element.get("action_id") == action_id:
                    break
            else:
                continue
            break
        else:
            raise LookupError(f"no element {action_id!r} in ephemeral {ephemeral.message_ts}")
        action: JSONDict = {
            "action_id": action_id,
            "block_id": str(block.get("block_id", "")),
            "type": element.get("type", "button"),
            "action_ts": self._next_ts(),
            "text": element.get("text"),
        }
        chosen = value if value is not None else element.get("value")
        if chosen is not None:
            action["value"] = chosen
        common = self._interaction_common(presser, current.channel, team_id, None)
        rid = str(common["response_url"]).rsplit("/", 1)[-1]
        self.response_urls[rid].ephemeral_ts = current.message_ts
        container: JSONDict = {
            "type": "message",
            "message_ts": current.message_ts,
            "channel_id": current.channel,
            "is_ephemeral": True,
        }
        if current.thread_ts:
            container["thread_ts"] = current.thread_ts
        return {
            "type": "block_actions",
            **common,
            "container": container,
            "state": {"values": {}},
            "actions": [action],
        }

    def view_submission(
        self,
        view: JSONDict,
        *,
        values: Mapping[str, Mapping[str, str]],
        user_id: str = "U0ANA",
        team_id: str | None = None,
    ) -> JSONDict:
        """A `view_submission` payload of an opened modal; `values` is block_id → action_id →
        the typed text (each must be an input of the modal)."""
        inputs = {
            (b.get("block_id"), (b.get("element") or {}).get("action_id"))
            for b in view.get("blocks", [])
            if b.get("type") == "input"
        }
        state: JSONDict = {}
        for block_id, fields in values.items():
            for action_id, typed in fields.items():
                if (block_id, action_id) not in inputs:
                    raise LookupError(f"no input {block_id}/{action_id} in the modal")
                state.setdefault(block_id, {})[action_id] = {
                    "type": "plain_text_input",
                    "value": typed,
                }
        user = self.add_user(user_id)
        return {
            "type": "view_submission",
            "team": {"id": self._team(team_id), "domain": self.team_domain},
            "user": {
                "id": user.id,
                "username": user.name,
                "name": user.name,
                "team_id": self._team(team_id),
            },
            "api_app_id": self.app_id,
            "token": "deprecated-verification-token",
            "trigger_id": self.issue_trigger_id(),
            "view": {**view, "state": {"values": state}},
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }

    def message_action(
        self,
        *,
        callback_id: str,
        channel_id: str,
        message_ts: str,
        user_id: str = "U0ANA",
        team_id: str | None = None,
    ) -> JSONDict:
        """A message shortcut (`message_action`) payload on a stored message."""
        message = self.message(channel_id, message_ts)
        return {
            "type": "message_action",
            **self._interaction_common(user_id, channel_id, team_id, message_ts),
            "callback_id": callback_id,
            "action_ts": self._next_ts(),
            "message_ts": message_ts,
            "message": message.to_api(),
        }

    @staticmethod
    def url_verification(
        challenge: str = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
    ) -> JSONDict:
        """The `url_verification` handshake Slack sends when the request URL is saved."""
        return {
            "token": "deprecated-verification-token",
            "challenge": challenge,
            "type": "url_verification",
        }

    # --- signing and sending to the bot -----------------------------------------------------

    def sign(
        self,
        body: bytes,
        *,
        content_type: str,
        bad_signature: bool = False,
        stale: bool = False,
        timestamp: int | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
    ) -> dict[str, str]:
        """Headers for `body` with a v0 signature (wrong or stale on request)."""
        ts = timestamp if timestamp is not None else int(self.clock())
        if stale:
            ts -= SIGNATURE_MAX_AGE_S + 60
        # Over the raw bytes, as Slack signs (slack_sdk's signer needs UTF-8 bodies).
        secret = "not-" + self.signing_secret if bad_signature else self.signing_secret
        digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256)
        signature = "v0=" + digest.hexdigest()
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": signature,
        }
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason
        return headers

    def signed_form(self, form: Mapping[str, str], **signing: Any) -> SignedRequest:
        """A form-encoded request (slash commands) signed per `sign`."""
        body = urlencode(form).encode()
        headers = self.sign(body, content_type="application/x-www-form-urlencoded", **signing)
        return SignedRequest(body, headers, dict(form))

    def signed_json(self, payload: JSONDict, **signing: Any) -> SignedRequest:
        """A JSON request (Events API) signed per `sign`."""
        body = json.dumps(payload).encode()
        return SignedRequest(
            body, self.sign(body, content_type="application/json", **signing), payload
        )

    def signed_interaction(self, payload: JSONDict, **signing: Any) -> SignedRequest:
        """An interactivity request (`payload=<json>`, form-encoded) signed per `sign`."""
        body = urlencode({"payload": json.dumps(payload)}).encode()
        headers = self.sign(body, content_type="application/x-www-form-urlencoded", **signing)
        return SignedRequest(body, headers, payload)

    def signed_slash_command(
        self, text: str = "", *, signing: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> SignedRequest:
        """A signed slash command (`kwargs` as in `slash_command_payload`)."""
        return self.signed_form(self.slash_command_payload(text, **kwargs), **dict(signing or {}))

    def signed_event(
        self,
        event: JSONDict,
        *,
        event_id: str | None = None,
        team_id: str | None = None,
        **signing: Any,
    ) -> SignedRequest:
        """A signed Events API delivery of `event` (pass `retry_num=1` for a redelivery)."""
        return self.signed_json(
            self.event_envelope(event, event_id=event_id, team_id=team_id), **signing
        )

    def redelivery(
        self, request: SignedRequest, retry_num: int = 1, reason: str = "http_timeout"
    ) -> SignedRequest:
        """The same Events API delivery again, as Slack retries it (same body and event_id)."""
        headers = self.sign(
            request.body,
            content_type=request.headers["Content-Type"],
            retry_num=retry_num,
            retry_reason=reason,
        )
        return SignedRequest(request.body, headers, request.payload)

    async def post_to_app(
        self, url: str, request: SignedRequest, *, within_s: float = ACK_DEADLINE_S
    ) -> AppResponse:
        """POST `request` to the bot like Slack does; AckTimeout if no answer within `within_s`."""
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        try:
            async with self._http.post(
                url,
                data=request.body,
                headers=request.headers,
                timeout=aiohttp.ClientTimeout(total=within_s),
            ) as response:
                text = await response.text()
                return AppResponse(response.status, text, dict(response.headers))
        except TimeoutError as exc:
            raise AckTimeout(f"no HTTP answer from {url} within {within_s} s") from exc

    # --- Socket Mode ----------------------------------------------------------------------

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.match_info["ticket"]
        if ticket not in self._socket_tickets:
            return web.Response(status=404, text="invalid or used ticket")
        self._socket_tickets.discard(ticket)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        connection = SocketConnection(len(self.socket_connections) + 1, ticket, ws, self.clock())
        self.socket_connections.append(connection)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": sum(not c.closed for c in self.socket_connections),
                "debug_info": {"host": "fake-slack", "approximate_connection_time": 18060},
                "connection_info": {"app_id": self.app_id},
            }
        )
        await self._notify()
        try:
            async for frame in ws:
                if frame.type != aiohttp.WSMsgType.TEXT:
                    continue
                with contextlib.suppress(json.JSONDecodeError):
                    data = json.loads(frame.data)
                    if isinstance(data, dict):
                        connection.received.append(data)
                        if "envelope_id" in data:
                            self._acks[str(data["envelope_id"])] = data
                        await self._notify()
        finally:
            connection.closed = True
            await self._notify()
        return ws

    def open_socket_connections(self) -> list[SocketConnection]:
        """The Socket Mode connections that are still open, oldest first."""
        return [c for c in self.socket_connections if not c.closed and not c.ws.closed]

    async def wait_for_socket_connections(
        self, count: int = 1, *, within_s: float = 5.0
    ) -> SocketConnection:
        """Wait until `count` connections were ever opened; return the newest open one."""
        await self.wait_until(
            lambda: len(self.socket_connections) >= count and bool(self.open_socket_connections()),
            within_s,
        )
        return self.open_socket_connections()[-1]

    async def socket_push(
        self,
        envelope_type: Literal["events_api", "slash_commands", "interactive"],
        payload: JSONDict,
        *,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> str:
        """Send an envelope on the newest open connection; return its envelope_id."""
        open_now = self.open_socket_connections()
        if not open_now:
            raise RuntimeError("no open Socket Mode connection")
        envelope_id = str(uuid.uuid4())
        envelope: JSONDict = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": envelope_type,
            "accepts_response_payload": envelope_type != "events_api",
        }
        if envelope_type == "events_api":
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason
        await open_now[-1].ws.send_json(envelope)
        return envelope_id

    async def socket_push_raw(self, frame: str) -> None:
        """Send one text frame as is on the newest open connection (malformed envelopes)."""
        open_now = self.open_socket_connections()
        if not open_now:
            raise RuntimeError("no open Socket Mode connection")
        await open_now[-1].ws.send_str(frame)

    async def push_event(
        self, event: JSONDict, *, event_id: str | None = None, **kwargs: Any
    ) -> str:
        """Send an Events API envelope around `event` over Socket Mode."""
        return await self.socket_push(
            "events_api", self.event_envelope(event, event_id=event_id), **kwargs
        )

    async def push_slash_command(self, text: str = "", **kwargs: Any) -> str:
        """Send a slash command over Socket Mode (`kwargs` as in `slash_command_payload`)."""
        return await self.socket_push(
            "slash_commands", dict(self.slash_command_payload(text, **kwargs))
        )

    async def push_interaction(self, payload: JSONDict) -> str:
        """Send an interactivity payload (block_actions, message_action) over Socket Mode."""
        return await self.socket_push("interactive", payload)

    def ack_of(self, envelope_id: str) -> JSONDict | None:
        """The client's ack of an envelope, if it arrived."""
        return self._acks.get(envelope_id)

    async def wait_for_ack(self, envelope_id: str, *, within_s: float = ACK_DEADLINE_S) -> JSONDict:
        """Wait for the client's `{"envelope_id": ...}` ack (Slack's deadline: 3 s)."""
        try:
            await self.wait_until(lambda: envelope_id in self._acks, within_s)
        except TimeoutError as exc:
            raise AckTimeout(f"envelope {envelope_id} not acked within {within_s} s") from exc
        return self._acks[envelope_id]

    async def socket_disconnect(self, reason: str = "refresh_requested") -> None:
        """Tell every open connection to go away (the client fetches a new URL and reconnects)."""
        for connection in self.open_socket_connections():
            await connection.ws.send_json(
                {"type": "disconnect", "reason": reason, "debug_info": {"host": "fake-slack"}}
            )


__all__ = [
    "ACK_DEADLINE_S",
    "DEFAULT_RATE_LIMITS",
    "AckTimeout",
    "AppResponse",
    "Call",
    "Channel",
    "Ephemeral",
    "FakeSlack",
    "Message",
    "RateLimit",
    "ResponseUrl",
    "ResponseUrlPost",
    "SignedRequest",
    "SocketConnection",
    "User",
    "micros_to_ts",
    "ts_to_micros",
    "validate_blocks",
    "validate_view",
]
