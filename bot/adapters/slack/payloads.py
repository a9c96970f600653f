"""What Slack may send atombot, checked at the edge before bolt or a listener sees it.

Every inbound body (HTTP or Socket Mode) goes through :func:`inspect`: JSON is parsed with a
nesting limit, and the payload must match one of the typed models below (slash commands,
``event_callback`` with ``app_mention`` / ``message`` / ``app_home_opened``,
``url_verification``, ``block_actions``, message shortcuts, ``view_submission`` of
atombot's modals). A payload of a known kind with a
wrong shape is :class:`Rejected` (HTTP 400); a well-formed payload that atombot has no
listener for (another event type, command or interaction) is answered and ignored, so bolt
never logs its content as "unhandled". The models allow extra fields: Slack adds them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

#: Larger bodies are refused (413) before they are read; Slack's payloads are far smaller.
MAX_BODY_BYTES = 1024 * 1024
#: Deeper JSON is refused (400) before it is parsed; Slack's payloads nest a dozen levels.
MAX_DEPTH = 64

# A string runs to its closing quote or, unterminated, to the end: one linear pass, no retries.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]+|\\.)*"?|[\[\]{}]', re.DOTALL)

JSONDict = dict[str, Any]
#: Socket Mode envelope types that carry a payload for a listener.
SOCKET_ENVELOPES = frozenset({"events_api", "slash_commands", "interactive"})


class Rejected(ValueError):
    """A body atombot refuses; ``reason`` names the kind of fault, never the content."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class Checked:
    """A payload that passed the edge: its kind, whether a listener takes it, the body."""

    kind: str
    handled: bool
    body: JSONDict


# --- authenticity ------------------------------------------------------------------------

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


#: Slack's replay window for signed requests.
MAX_SIGNATURE_AGE_S = 300


def authentic(
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    secret: str,
    *,
    now: Callable[[], float] = time.time,
) -> bool:
    """Whether a request carries Slack's v0 signature of ``body``, made within 5 minutes.

    The headers' shape is checked first and the HMAC is taken over the raw bytes:
    slack_sdk's verifier raises on a timestamp that is not an integer, on a signature that
    is not ASCII and on a body that is not UTF-8.
    """
    if timestamp is None or signature is None:
        return False
    if not _TIMESTAMP.fullmatch(timestamp) or not _SIGNATURE.fullmatch(signature):
        return False
    if abs(now() - int(timestamp)) > MAX_SIGNATURE_AGE_S:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


# --- parsing ---------------------------------------------------------------------------------


def too_deep(text: str, max_depth: int = MAX_DEPTH) -> bool:
    """Whether a JSON text nests ``[``/``{`` deeper than ``max_depth`` (strings do not count)."""
    depth = 0
    for token in _JSON_TOKEN.finditer(text):
        char = token.group()
        if char in ("[", "{"):
            depth += 1
            if depth > max_depth:
                return True
        elif char in ("]", "}"):
            depth -= 1
    return False


def parse_json_object(text: str, *, max_depth: int = MAX_DEPTH) -> JSONDict:
    """A JSON object, parsed only after its nesting was found within ``max_depth``."""
    if too_deep(text, max_depth):
        raise Rejected("nested too deeply")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise Rejected("not JSON") from exc
    if not isinstance(value, dict):
        raise Rejected("not a JSON object")
    return value


def parse_http_body(raw: bytes, content_type: str | None) -> JSONDict:
    """The payload of an HTTP delivery: a JSON body, a form, or a form's ``payload`` JSON.

    Unlike bolt, a form field that merely contains the word "payload" does not make a
    slash command an interactivity request.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected("not UTF-8") from exc
    if not text.strip():
        raise Rejected("empty body")
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/json" or text.lstrip().startswith("{"):
        return parse_json_object(text)
    try:
        form = dict(
            parse_qsl(text, keep_blank_values=True, strict_parsing=True, max_num_fields=200)
        )
    except ValueError as exc:
        raise Rejected("not a form") from exc
    if "payload" in form:
        return parse_json_object(form["payload"])
    return form


# --- shapes ----------------------------------------------------------------------------------

#: Slack ids: users, channels, teams, enterprises (``U0123ABC``, ``C…``, ``D…``, ``T…``).
Id = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9]{0,63}$")]
#: Message timestamps (``1700000000.000100``).
Ts = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,13}(?:\.[0-9]{1,9})?$")]
Token = Annotated[str, StringConstraints(min_length=1, max_length=512)]
Short = Annotated[str, StringConstraints(max_length=512)]


class _Shape(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, frozen=True)


class Ref(_Shape):
    """``{"id": ...}`` objects: a user, team, channel or enterprise."""

    id: Id
    team_id: Id | None = None
    enterprise_id: Short | None = None
    username: Short | None = None
    name: Short | None = None
    domain: Short | None = None


class _Common(_Shape):
    """Fields bolt reads from a payload, its event, message or authorizations to build its
    context and run its middleware (it assumes their types, and crashes otherwise)."""

    token: Short | None = None
    api_app_id: Short | None = None
    user: Ref | Short | None = None
    user_id: Short | None = None
    user_team: Short | None = None
    channel: Ref | Short | None = None
    channel_id: Short | None = None
    team: Ref | Short | None = None
    team_id: Short | None = None
    enterprise: Ref | Short | None = None
    enterprise_id: Short | None = None
    is_enterprise_install: bool | Short | None = None
    authorizations: list[Authorization] | None = None
    is_ext_shared_channel: bool | None = None
    context_team_id: Short | None = None
    context_enterprise_id: Short | None = None
    event: JSONDict | None = None
    message: Nested | None = None
    previous_message: Nested | None = None
    item: Nested | None = None
    assistant_thread: Nested | None = None
    view: JSONDict | None = None
    function_data: JSONDict | None = None
    function_execution_id: Short | None = None
    bot_access_token: Short | None = None
    bot_id: Short | None = None
    thread_ts: Short | None = None
    text: str | None = None


class Nested(_Common):
    """A message, item or thread inside a payload (bolt reads it like the payload)."""


class Authorization(_Common):
    """One entry of an event's ``authorizations`` (bolt reads the first)."""

    is_bot: bool | None = None


class SlashCommand(_Common):
    """A slash command (form fields, all strings)."""

    command: Annotated[str, StringConstraints(min_length=2, max_length=64)]
    team_id: Id
    channel_id: Id
    user_id: Id
    trigger_id: Token
    response_url: Token
    text: str = ""
    user_name: Short | None = None
    channel_name: Short | None = None
    team_domain: Short | None = None


class AppMention(_Common):
    """``app_mention``: ``@atombot …`` in a channel or thread."""

    type: Literal["app_mention"]
    user: Id
    channel: Id
    ts: Ts
    text: str = ""
    thread_ts: Ts | None = None
    team: Short | None = None
    subtype: Short | None = None


class MessageEvent(_Common):
    """``message`` (atombot acts on direct messages, ``channel_type`` ``im``)."""

    type: Literal["message"]
    channel: Id
    ts: Ts | None = None
    user: Id | None = None
    text: str | None = None
    thread_ts: Ts | None = None
    channel_type: Short | None = None
    subtype: Short | None = None
    team: Short | None = None


class AppHomeOpened(_Common):
    """``app_home_opened``: the user opened the Home or Messages tab."""

    type: Literal["app_home_opened"]
    user: Id
    channel: Id | None = None
    tab: Short | None = None


class AssistantThread(_Common):
    """The ``assistant_thread`` of an assistant event: where the pane's thread lives."""

    channel_id: Id
    thread_ts: Ts
    user_id: Id | None = None
    context: JSONDict | None = None


class AssistantThreadEvent(_Common):
    """``assistant_thread_started`` / ``assistant_thread_context_changed`` (the assistant
    pane, :mod:`bot.adapters.slack.assistant`)."""

    type: Literal["assistant_thread_started", "assistant_thread_context_changed"]
    assistant_thread: AssistantThread  # type: ignore[assignment]


class AppUninstalled(_Common):
    """``app_uninstalled``: the workspace removed atombot (many-workspace mode)."""

    type: Literal["app_uninstalled"]


class TokensRevoked(_Common):
    """``tokens_revoked``: some of the workspace's tokens were revoked (``tokens.bot`` holds
    the bot user ids whose bot token is gone, ``tokens.oauth`` the users')."""

    type: Literal["tokens_revoked"]
    tokens: dict[str, list[Short]] = Field(default_factory=dict)


class OtherEvent(_Shape):
    """Any other event type: acknowledged and ignored."""

    type: Annotated[str, StringConstraints(min_length=1, max_length=128)]


#: The event types a listener takes, with their shapes.
EVENT_SHAPES: dict[str, type[_Shape]] = {
    "app_mention": AppMention,
    "message": MessageEvent,
    "app_home_opened": AppHomeOpened,
    "assistant_thread_started": AssistantThreadEvent,
    "assistant_thread_context_changed": AssistantThreadEvent,
}


#: The events of an app installed by OAuth (taken only in many-workspace mode).
APP_EVENT_SHAPES: dict[str, type[_Shape]] = {
    "app_uninstalled": AppUninstalled,
    "tokens_revoked": TokensRevoked,
}


class EventCallback(_Common):
    """An Events API delivery; ``event`` is checked against :data:`EVENT_SHAPES`."""

    type: Literal["event_callback"]
    event_id: Token
    team_id: Id | None = None
    event: JSONDict
    event_time: int | None = None


class UrlVerification(_Common):
    """The handshake when the request URL is saved (bolt echoes the challenge)."""

    type: Literal["url_verification"]
    challenge: Token


class BlockAction(_Shape):
    """One pressed element."""

    action_id: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    value: Annotated[str, StringConstraints(max_length=2_000)] | None = None
    block_id: Short | None = None
    type: Short | None = None


class Container(_Shape):
    """Where the pressed element sits."""

    type: Short | None = None
    channel_id: Id | None = None
    message_ts: Ts | None = None
    thread_ts: Ts | None = None


class BlockActions(_Common):
    """``block_actions``: a button under a result (bolt matches the first action)."""

    type: Literal["block_actions"]
    user: Ref
    actions: Annotated[list[BlockAction], Field(min_length=1, max_length=25)]
    team: Ref | None = None
    channel: Ref | None = None
    container: Container | None = None
    trigger_id: Token | None = None
    response_url: Token | None = None


class MessageRef(Nested):
    """The message a shortcut was used on."""

    ts: Ts | None = None
    thread_ts: Ts | None = None


class MessageShortcut(_Common):
    """``message_action``: "Summarize thread" / "Draft reply" on a message."""

    type: Literal["message_action"]
    callback_id: Token
    trigger_id: Token
    user: Ref
    channel: Ref
    message_ts: Ts
    response_url: Token
    team: Ref | None = None
    message: MessageRef | None = None


class SubmittedView(_Shape):
    """The modal of a ``view_submission``: which one it is, what it carries, what was typed."""

    id: Short | None = None
    type: Short | None = None
    callback_id: Annotated[str, StringConstraints(max_length=255)] = ""
    private_metadata: Annotated[str, StringConstraints(max_length=3_000)] = ""
    state: JSONDict | None = None


class ViewSubmission(_Common):
    """``view_submission``: a modal of atombot's was submitted (the note about a 👎)."""

    type: Literal["view_submission"]
    user: Ref
    view: SubmittedView  # type: ignore[assignment]
    team: Ref | None = None
    trigger_id: Token | None = None


class OtherInteraction(_Shape):
    """Any other interactivity type (global shortcuts, views): acknowledged and ignored."""

    type: Annotated[str, StringConstraints(min_length=1, max_length=128)]


# The shapes refer to each other (messages inside payloads): resolve the names once here.
_SHAPES: list[type[BaseModel]] = [
    _Common,
    Nested,
    Authorization,
    SlashCommand,
    AppMention,
    MessageEvent,
    AppHomeOpened,
    AppUninstalled,
    TokensRevoked,
    EventCallback,
    UrlVerification,
    BlockActions,
    MessageRef,
    MessageShortcut,
    ViewSubmission,
]
for _shape in _SHAPES:
    _shape.model_rebuild()


# --- the verdict -------------------------------------------------------------------------------


def _check(shape: type[_Shape], payload: JSONDict, kind: str) -> _Shape:
    try:
        return shape.model_validate(payload)
    except ValidationError as exc:
        raise Rejected(f"malformed {kind}") from exc


def _event(body: JSONDict, app_events: bool = False) -> Checked:
    _check(EventCallback, body, "event_callback")
    event = body["event"]
    other = _check(OtherEvent, event, "event")
    kind = str(getattr(other, "type", ""))
    shape = EVENT_SHAPES.get(kind) or (APP_EVENT_SHAPES.get(kind) if app_events else None)
    if shape is None:
        return Checked(f"event {event['type']}", False, body)
    _check(shape, event, f"{event['type']} event")
    return Checked(f"event {event['type']}", True, body)


def _interaction(
    body: JSONDict,
    shortcuts: Collection[str],
    action: Callable[[str], bool],
    views: Collection[str] = (),
) -> Checked:
    kind = str(getattr(_check(OtherInteraction, body, "interaction"), "type", ""))
    if kind == "view_submission":
        view = body.get("view")
        callback_id = view.get("callback_id") if isinstance(view, dict) else None
        if not isinstance(callback_id, str) or callback_id not in views:
            return Checked(kind, False, body)  # another app's modal: not ours to read
        _check(ViewSubmission, body, kind)
        return Checked(kind, True, body)
    if kind == "block_actions":
        checked = _check(BlockActions, body, kind)
        assert isinstance(checked, BlockActions)
        return Checked(kind, action(checked.actions[0].action_id), body)
    if kind == "message_action":
        shortcut = _check(MessageShortcut, body, kind)
        assert isinstance(shortcut, MessageShortcut)
        return Checked(kind, shortcut.callback_id in shortcuts, body)
    return Checked(kind, False, body)


def inspect(
    body: JSONDict,
    *,
    command: str,
    shortcuts: Collection[str],
    action: Callable[[str], bool],
    envelope: str | None = None,
    views: Collection[str] = (),
    app_events: bool = False,
) -> Checked:
    """Check a parsed payload; :class:`Rejected` when a known kind has a wrong shape.

    ``command`` is the slash command atombot answers, ``shortcuts`` its message shortcut
    callback ids, ``action`` tells whether an ``action_id`` is one of its buttons, ``views``
    are the callback ids of its modals (their ``view_submission`` is taken).
    ``app_events`` takes ``app_uninstalled`` / ``tokens_revoked`` too (OAuth installs).
    ``envelope`` is the Socket Mode envelope type (None over HTTP), which fixes the kind.
    """
    if envelope is not None and envelope not in SOCKET_ENVELOPES:
        raise Rejected("unknown envelope type")
    if envelope == "slash_commands" or (envelope is None and "command" in body):
        slash = _check(SlashCommand, body, "slash command")
        assert isinstance(slash, SlashCommand)
        return Checked("slash command", slash.command == command, body)
    if envelope == "interactive":
        return _interaction(body, shortcuts, action, views)
    kind = body.get("type")
    if envelope == "events_api" and kind != "event_callback":
        raise Rejected("malformed events_api envelope")
    if kind == "event_callback":
        return _event(body, app_events)
    if kind == "url_verification" and envelope is None:
        _check(UrlVerification, body, "url_verification")
        return Checked("url_verification", True, body)
    if envelope is None and body.get("ssl_check") == "1":
        return Checked("ssl_check", False, body)
    if envelope is None and isinstance(kind, str):
        return _interaction(body, shortcuts, action, views)
    raise Rejected("unknown payload")
