"""Fuzzing atombot's Slack edge: generated and mutated requests against the real servers.

Payloads come from the platform specs in ``specs/slack/`` (copied from the shared specs: the
Events API wrapper schema and its event topics, read by :func:`from_schema`; the spec is
stale, so it generates and never validates), from small schemas of the interactivity shapes,
and from the fake platform's own payloads; then mutations: missing fields, wrong types, deep
nesting, invalid UTF-8, huge bodies, odd timestamps, bad or missing signatures, replays.

They go to the adapter's real aiohttp server over HTTP, and as envelopes over a real Socket
Mode connection (slack_bolt's handler on slack_sdk's client, against the fake's WebSocket).
Properties: never a 5xx, never an error logged or raised on the loop, the right status class
(401 not authentic, 413 too large, 400 malformed, 200 otherwise), no row stored from a
refused request, and a valid request afterwards still works.

``ATOMBOT_FUZZ_EXAMPLES=10000`` runs each test with that many examples;
``ATOMBOT_FUZZ_REPORT=path.json`` writes the outcome counts there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.adapters.base import Services
from bot.adapters.slack import SlackAdapter
from bot.adapters.slack.manifest import SHORTCUT_DRAFT_REPLY, SHORTCUT_SUMMARIZE
from bot.adapters.slack.payloads import MAX_BODY_BYTES
from bot.app import App, build_app
from bot.config import Settings
from models.intents.spec import IntentParser
from tests.fakes.slack_api import AckTimeout, FakeSlack, SignedRequest
from tests.fuzz.helpers import LoopThread, count_rows, fuzz_settings, fuzz_timeout

pytestmark = pytest.mark.fuzz

SPECS = Path(__file__).parent / "specs" / "slack"
HTTP_EXAMPLES = 150
SOCKET_EXAMPLES = 100
JSONValue = Any

# --- the bot under test ------------------------------------------------------------------------


class ErrorLog(logging.Handler):
    """Every record at ERROR or above, and every refusal the edge logs."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.errors: list[str] = []
        self.refusals = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            where = ""
            if record.exc_info and record.exc_info[2] is not None:
                frame = traceback.extract_tb(record.exc_info[2])[-1]
                where = f" at {frame.filename}:{frame.lineno}"
            self.errors.append(f"{record.name}: {record.getMessage()}"[:300] + where)
        elif record.getMessage().startswith(("Slack: refused", "Slack: dropped", "Slack: ignored")):
            self.refusals += 1


@dataclass
class Bot:
    """atombot with its Slack adapter on a background loop, and what the fuzzer saw."""

    thread: LoopThread
    fake: FakeSlack
    app: App
    adapter: SlackAdapter
    database: Path
    log: ErrorLog
    outcomes: Counter[str] = field(default_factory=Counter)
    previous: SignedRequest | None = None

    def idle(self) -> None:
        self.thread.run(asyncio.wait_for(self.adapter.wait_idle(), 30))

    def rows(self) -> Counter[str]:
        self.idle()
        return count_rows(self.database)

    def crashes(self) -> list[str]:
        """Errors logged or raised on the loop since the last call (then forgotten)."""
        found = self.log.errors + [str(c.get("message")) for c in self.thread.errors]
        self.log.errors.clear()
        self.thread.errors.clear()
        return found


def start_bot(thread: LoopThread, tmp: Path, parser: IntentParser, *, socket_mode: bool) -> Bot:
    fake = FakeSlack(rate_limits={})
    thread.run(fake.start())
    database = tmp / "atombot.db"
    config = Settings(
        database_url=f"sqlite:///{database.as_posix()}",
        data_dir=tmp / "data",
        poll_seconds=0.05,
        lease_seconds=5.0,
        slack_bot_token=fake.bot_token,
        slack_signing_secret=fake.signing_secret,
        slack_api_url=fake.api_url,
        slack_app_token=fake.app_token if socket_mode else None,
    )
    adapter = SlackAdapter(config, host="127.0.0.1", port=0, min_edit_interval=0.0)

    async def wire() -> App:
        app = await build_app(config, parser=parser, adapters=[adapter], with_worker=False)
        await adapter.start(Services(router=app.router, repo=app.repo, notify=app.notify))
        if socket_mode:
            await fake.wait_for_socket_connections(1)
        return app

    app = thread.run(wire())
    log = ErrorLog()
    logging.getLogger().addHandler(log)
    logging.getLogger("bot.adapters.slack").setLevel(logging.DEBUG)
    return Bot(thread, fake, app, adapter, database, log)


def write_report(bot: Bot, name: str) -> None:
    """Add this surface's outcome counts to ``ATOMBOT_FUZZ_REPORT`` (if set)."""
    report = os.environ.get("ATOMBOT_FUZZ_REPORT")
    if report:
        path = Path(report)
        existing = json.loads(path.read_text()) if path.exists() else {}
        existing[f"slack {name}"] = dict(sorted(bot.outcomes.items()))
        path.write_text(json.dumps(existing, indent=2))


def stop_bot(bot: Bot, name: str) -> None:
    logging.getLogger().removeHandler(bot.log)
    logging.getLogger("bot.adapters.slack").setLevel(logging.NOTSET)
    bot.thread.run(bot.app.stop())
    bot.thread.run(bot.fake.stop())
    print(f"\nSlack {name} fuzz outcomes: {dict(sorted(bot.outcomes.items()))}")
    write_report(bot, name)


@pytest.fixture(scope="module")
def http_bot(
    loop_thread: LoopThread, parser: IntentParser, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Bot]:
    bot = start_bot(loop_thread, tmp_path_factory.mktemp("slack-http"), parser, socket_mode=False)
    yield bot
    stop_bot(bot, "HTTP")


@pytest.fixture(scope="module")
def socket_bot(
    loop_thread: LoopThread, parser: IntentParser, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Bot]:
    bot = start_bot(loop_thread, tmp_path_factory.mktemp("slack-socket"), parser, socket_mode=True)
    yield bot
    stop_bot(bot, "Socket Mode")


# --- generators ------------------------------------------------------------------------------


def _load(name: str) -> dict[str, Any]:
    return dict(json.loads((SPECS / name).read_text()))


WRAPPER_SCHEMA = {
    k: v for k, v in _load("slack_common_event_wrapper_schema.json").items() if k != "examples"
}
#: Event types from the spec's topics (``app.mention`` → ``app_mention``; ``message.im`` → message).
EVENT_TYPES = sorted(
    {
        topic.split(".")[0] if topic.startswith("message") else topic.replace(".", "_")
        for topic in _load("slack_events_api_async_v1.json")["topics"]
    }
)

slack_ids = st.from_regex(r"\A[UWCDGT][A-Z0-9]{2,11}\Z")
timestamps = st.from_regex(r"\A1[0-9]{9}\.[0-9]{6}\Z")
texts = st.one_of(
    st.sampled_from(
        [
            "draft an email to Dana about the delayed shipment",
            "summarize this thread",
            "remind me tomorrow at 9 to send the report",
            "status",
            "send a daily digest of <#C0SALES|sales> at 8am",
            "给Dana写一封关于延迟发货的邮件",
            "",
        ]
    ),
    st.text(max_size=200),
)
#: Header values: printable text (aiohttp refuses control characters in headers).
header_text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=70)
json_values: st.SearchStrategy[JSONValue] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)

REF = {
    "type": "object",
    "required": ["id"],
    "properties": {"id": {"type": "string", "pattern": "^[UCDT][A-Z0-9]{2,11}$"}},
}
#: Interactivity and slash-command shapes (Slack's docs; no spec file covers them).
BLOCK_ACTIONS_SCHEMA = {
    "type": "object",
    "required": ["type", "user", "actions"],
    "properties": {
        "type": {"const": "block_actions"},
        "user": REF,
        "team": REF,
        "channel": REF,
        "container": {
            "type": "object",
            "properties": {
                "channel_id": {"type": "string", "pattern": "^C[A-Z0-9]{2,9}$"},
                "message_ts": {"type": "string", "pattern": "^1[0-9]{9}\\.[0-9]{6}$"},
            },
        },
        "actions": {
            "type": "array",
            "minItems": 1,
            "maxItems": 3,
            "items": {
                "type": "object",
                "required": ["action_id"],
                "properties": {
                    "action_id": {
                        "type": "string",
                        "pattern": "^(ab:(up|down|regen|cancel):[0-9]{1,3}|[a-z]{1,8})$",
                    },
                    "value": {"type": "string", "maxLength": 40},
                },
            },
        },
    },
}
MESSAGE_ACTION_SCHEMA = {
    "type": "object",
    "required": ["type", "callback_id", "trigger_id", "user", "channel", "message_ts"],
    "properties": {
        "type": {"const": "message_action"},
        "callback_id": {"enum": [SHORTCUT_SUMMARIZE, SHORTCUT_DRAFT_REPLY, "other_shortcut"]},
        "trigger_id": {"type": "string", "minLength": 1, "maxLength": 40},
        "user": REF,
        "channel": REF,
        "team": REF,
        "message_ts": {"type": "string", "pattern": "^1[0-9]{9}\\.[0-9]{6}$"},
        "message": {"type": "object", "properties": {"ts": {"type": "string"}}},
        "response_url": {"type": "string", "minLength": 1, "maxLength": 60},
    },
}
OTHER_INTERACTION_SCHEMA = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {"enum": ["shortcut", "view_submission", "view_closed", "block_suggestion"]}
    },
}


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of a JSON schema (the subset the Slack specs use).

    hypothesis-jsonschema 0.23 cannot generate objects with Hypothesis 6.170 (it calls
    internals that are gone), so the few keywords needed are read here. Extra properties
    are added where the schema allows them, as Slack adds fields.
    """
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type", "object" if "properties" in schema else None)
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True)
        return st.text(min_size=schema.get("minLength", 0), max_size=schema.get("maxLength", 40))
    if kind == "integer":
        return st.integers()
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        items = from_schema(schema.get("items", {}))
        return st.lists(
            items,
            min_size=schema.get("minItems", 0),
            max_size=schema.get("maxItems", 4),
            unique_by=(lambda v: json.dumps(v, sort_keys=True))
            if schema.get("uniqueItems")
            else None,
        )
    if kind == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        extra = (
            st.dictionaries(st.text(max_size=10), json_values, max_size=3)
            if schema.get("additionalProperties", True) is not False
            else st.just({})
        )
        fixed = st.fixed_dictionaries(
            {k: from_schema(v) for k, v in properties.items() if k in required},
            optional={k: from_schema(v) for k, v in properties.items() if k not in required},
        )
        return st.tuples(extra, fixed).map(lambda parts: {**parts[0], **parts[1]})
    return json_values


@st.composite
def spec_events(draw: st.DrawFn) -> dict[str, Any]:
    """An Events API delivery generated from the spec's wrapper, with a spec event type."""
    wrapper = dict(draw(from_schema(WRAPPER_SCHEMA)))
    event = dict(wrapper.get("event") or {})
    event["type"] = draw(st.sampled_from([*EVENT_TYPES, "app_home_opened"]))
    if draw(st.booleans()):
        event.update(
            user=draw(slack_ids), channel=draw(slack_ids), ts=draw(timestamps), text=draw(texts)
        )
        if event["type"] == "message":
            event["channel_type"] = draw(st.sampled_from(["im", "channel", "group", "mpim"]))
    wrapper["event"] = event
    wrapper["type"] = "event_callback"
    return wrapper


@dataclass(frozen=True)
class Payload:
    """A request body before signing: JSON (events), a form (commands) or interactivity."""

    kind: str
    value: dict[str, Any]
    #: Built the way Slack builds it (so it must be answered 200), before any mutation.
    valid: bool = False


@st.composite
def payloads(draw: st.DrawFn, fake: FakeSlack) -> Payload:
    """One payload of any kind atombot may receive (some valid, most merely plausible)."""
    choice = draw(
        st.sampled_from(
            [
                "command",
                "mention",
                "dm",
                "home",
                "spec",
                "actions",
                "shortcut",
                "other",
                "challenge",
                "random",
            ]
        )
    )
    if choice == "command":
        form = fake.slash_command_payload(
            draw(texts), user_id=draw(st.sampled_from(["U0ANA", "U0BEN"]))
        )
        return Payload("form", dict(form), valid=True)
    if choice == "mention":
        event = fake.app_mention(draw(texts), user_id="U0ANA", store=False)
        return Payload("json", fake.event_envelope(event), valid=True)
    if choice == "dm":
        event = fake.direct_message(draw(texts), user_id="U0BEN", store=False)
        return Payload("json", fake.event_envelope(event), valid=True)
    if choice == "home":
        return Payload(
            "json", fake.event_envelope(fake.app_home_opened(user_id="U0ANA")), valid=True
        )
    if choice == "spec":
        return Payload("json", draw(spec_events()))
    if choice == "actions":
        return Payload("interaction", draw(from_schema(BLOCK_ACTIONS_SCHEMA)))
    if choice == "shortcut":
        return Payload("interaction", draw(from_schema(MESSAGE_ACTION_SCHEMA)))
    if choice == "other":
        return Payload("interaction", draw(from_schema(OTHER_INTERACTION_SCHEMA)))
    if choice == "challenge":
        return Payload(
            "json", fake.url_verification(draw(st.text(min_size=1, max_size=40))), valid=True
        )
    return Payload("json", draw(st.dictionaries(st.text(max_size=12), json_values, max_size=6)))


def _paths(value: JSONValue, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*prefix, key)
            yield from _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield (*prefix, index)
            yield from _paths(inner, (*prefix, index))


def _parent(value: JSONValue, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        value = value[step]
    return value


@st.composite
def mutated(draw: st.DrawFn, payload: Payload) -> tuple[Payload, str]:
    """The payload with 0–3 structural mutations (a copy; the name of the last one)."""
    value = json.loads(json.dumps(payload.value))
    name = "none"
    for _ in range(draw(st.integers(0, 3))):
        paths = list(_paths(value))
        op = draw(st.sampled_from(["drop", "retype", "nest", "event-list", "actions-int"]))
        if op in ("drop", "retype") and paths:
            path = draw(st.sampled_from(paths))
            parent = _parent(value, path)
            if op == "drop" and isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent[path[-1]] = draw(json_values)
        elif op == "nest":
            depth = draw(st.sampled_from([30, 65, 500, 20_000]))
            value["nested"] = json.loads("[" * min(depth, 60) + "]" * min(depth, 60))
            if depth > 60:
                return Payload(payload.kind, value), f"deep:{depth}"
        elif op == "event-list":
            value["event"] = []
        elif op == "actions-int":
            value["actions"] = 5
        else:
            continue
        name = op
    if payload.kind == "form":
        value = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}
    return Payload(payload.kind, value), name


def encode(payload: Payload, deep: int | None = None) -> tuple[bytes, str]:
    """The body bytes and content type Slack would send for ``payload``."""
    from urllib.parse import urlencode

    if payload.kind == "form":
        return urlencode(payload.value).encode(), "application/x-www-form-urlencoded"
    text = json.dumps(payload.value)
    if deep is not None:
        text = text[:-1] + ', "deep": ' + "[" * deep + "]" * deep + "}"
    if payload.kind == "interaction":
        return urlencode({"payload": text}).encode(), "application/x-www-form-urlencoded"
    return text.encode(), "application/json"


@dataclass(frozen=True)
class Case:
    """One HTTP request and what it must get."""

    request: SignedRequest
    expect: frozenset[int]
    label: str


@st.composite
def http_cases(draw: st.DrawFn, fake: FakeSlack) -> Case:
    """A request: a payload, maybe mutated, encoded, maybe broken as bytes, then signed (or not)."""
    original = draw(payloads(fake))
    payload, mutation = draw(mutated(original)) if draw(st.booleans()) else (original, "none")
    deep = int(mutation.split(":")[1]) if mutation.startswith("deep:") else None
    body, content_type = encode(payload, deep)
    valid = original.valid and mutation == "none"
    byte_op = draw(
        st.sampled_from(["none"] * 6 + ["truncate", "invalid-utf8", "garbage", "huge", "empty"])
    )
    # Positions are fractions: the body's length varies (ids, timestamps), the draws must not.
    if byte_op == "truncate" and len(body) > 2:
        body = body[: max(1, int(draw(st.floats(0, 0.99)) * len(body)))]
    elif byte_op == "invalid-utf8":
        at = int(draw(st.floats(0, 1)) * len(body))
        body = (
            body[:at]
            + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80\x80"]))
            + body[at:]
        )
    elif byte_op == "garbage":
        body = draw(st.binary(max_size=300))
    elif byte_op == "huge":
        body = body + b" " * (MAX_BODY_BYTES + 10)
    elif byte_op == "empty":
        body = b""
    if byte_op != "none":
        valid = False
    if draw(st.integers(0, 9)) == 0:
        valid = False
        content_type = draw(
            st.sampled_from(
                [
                    "",
                    "text/plain",
                    "application/json; charset=foo",
                    "application/x-www-form-urlencoded",
                ]
            )
        )
    signing = draw(
        st.sampled_from(
            ["good"] * 5
            + [
                "bad-signature",
                "stale",
                "future",
                "odd-timestamp",
                "no-signature",
                "no-timestamp",
                "garbled-signature",
            ]
        )
    )
    now = int(fake.clock())
    timestamp = str(now)
    if signing == "stale":
        timestamp = str(now - draw(st.integers(301, 10**9)))
    elif signing == "future":
        # Far enough ahead that it is still outside the window when shrinking replays it.
        timestamp = str(now + draw(st.integers(3_600, 10**6)))
    elif signing == "odd-timestamp":
        timestamp = draw(
            st.sampled_from(
                ["", "abc", "12.5", "1e9", "0x10", " 1", "-1", "١٢٣", f"{now}.0", f"+{now}"]
            )
            | header_text
        )
    headers = {"Content-Type": content_type} if content_type else {}
    if signing != "no-timestamp":
        headers["X-Slack-Request-Timestamp"] = timestamp
    if signing != "no-signature":
        signature = sign(fake.signing_secret, timestamp, body)
        if signing == "bad-signature":
            signature = signature[:-1] + ("0" if signature[-1] != "0" else "1")
        elif signing == "garbled-signature":
            signature = draw(header_text)
        headers["X-Slack-Signature"] = signature
    request = SignedRequest(body, headers, payload.value)
    if len(body) > MAX_BODY_BYTES:
        return Case(request, frozenset({413}), "too large")
    if signing != "good":
        return Case(request, frozenset({401}), f"unsigned:{signing}")
    if valid:
        return Case(request, frozenset({200}), f"valid:{original.kind}")
    return Case(request, frozenset({200, 400}), f"authentic:{mutation}:{byte_op}")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 signature over the raw bytes (works for bodies that are not UTF-8)."""
    import hashlib
    import hmac

    base = b"v0:" + timestamp.encode("utf-8", "surrogatepass") + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


# --- HTTP --------------------------------------------------------------------------------------


def post(bot: Bot, request: SignedRequest) -> int:
    response = bot.thread.run(bot.fake.post_to_app(bot.adapter.url, request, within_s=10))
    return response.status


def check_valid_request_works(bot: Bot) -> None:
    before = bot.rows()["task"]
    request = bot.fake.signed_slash_command("draft an email to Dana about the offsite")
    assert post(bot, request) == 200
    assert bot.rows()["task"] == before + 1


@fuzz_timeout(HTTP_EXAMPLES, 1.0)
def test_http_never_answers_5xx_and_stores_nothing_it_refuses(http_bot: Bot) -> None:
    bot = http_bot

    @fuzz_settings(HTTP_EXAMPLES)
    @given(case=http_cases(bot.fake), replay=st.integers(0, 9))
    def one(case: Case, replay: int) -> None:
        if bot.outcomes.total() % 250 == 0:
            write_report(bot, "HTTP")
        before = bot.rows()
        if replay == 0 and bot.previous is not None:
            status = post(bot, bot.previous)
            bot.outcomes[f"replay {status}"] += 1
            assert status < 500
            assert bot.rows() == before, "a replayed request stored something"
            return
        status = post(bot, case.request)
        after = bot.rows()  # once the listeners it started are done
        bot.outcomes[str(status)] += 1
        assert status < 500, case.label
        assert status in case.expect, (case.label, status)
        crashes = bot.crashes()
        assert not crashes, crashes
        if status >= 400:
            assert after == before, f"{case.label}: a refused request stored something"
        elif case.label.startswith("valid"):
            bot.previous = case.request

    one()
    crashes = bot.crashes()
    assert not crashes, crashes
    check_valid_request_works(bot)


# --- Socket Mode -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """One Socket Mode frame and the envelope id the client should ack (if it has one)."""

    text: str | None
    binary: bytes | None
    #: The id the client must ack (None: the frame has none it could find).
    envelope_id: str | None
    label: str


@st.composite
def socket_frames(draw: st.DrawFn, fake: FakeSlack) -> Frame:
    """An envelope around a generated payload, maybe mutated, or a broken frame."""
    envelope_id = f"env-{draw(st.integers(0, 10**12))}"
    original = draw(payloads(fake))
    payload, mutation = draw(mutated(original)) if draw(st.booleans()) else (original, "none")
    envelope_type = {"form": "slash_commands", "interaction": "interactive"}.get(
        payload.kind, "events_api"
    )
    if draw(st.integers(0, 9)) == 0:
        envelope_type = draw(
            st.sampled_from(["events_api", "slash_commands", "interactive", "hello", "bogus", ""])
        )
    envelope: dict[str, Any] = {
        "envelope_id": envelope_id,
        "type": envelope_type,
        "payload": payload.value,
        "accepts_response_payload": envelope_type != "events_api",
    }
    frame_op = draw(
        st.sampled_from(
            ["none"] * 5
            + [
                "no-id",
                "id-not-string",
                "payload-not-object",
                "deep",
                "garbage",
                "truncate",
                "binary",
                "huge",
            ]
        )
    )
    label = f"{envelope_type}:{mutation}:{frame_op}"
    if mutation.startswith("deep:"):
        frame_op = "deep"
    if frame_op in ("truncate", "garbage", "binary"):
        envelope_id = None  # type: ignore[assignment]
    if frame_op == "no-id":
        del envelope["envelope_id"]
        envelope_id = None  # type: ignore[assignment]
    elif frame_op == "id-not-string":
        envelope["envelope_id"] = draw(json_values.filter(lambda v: not isinstance(v, str)))
        envelope_id = None  # type: ignore[assignment]
    elif frame_op == "payload-not-object":
        envelope["payload"] = draw(json_values.filter(lambda v: not isinstance(v, dict)))
    text = json.dumps(envelope)
    if frame_op == "deep":
        depth = draw(st.sampled_from([65, 1_000, 20_000]))
        text = text[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
    elif frame_op == "garbage":
        return Frame(draw(st.text(max_size=200)), None, None, label)
    elif frame_op == "truncate":
        text = text[: max(1, int(draw(st.floats(0, 0.99)) * len(text)))]
    elif frame_op == "binary":
        return Frame(None, draw(st.binary(max_size=200)), None, label)
    elif frame_op == "huge":
        text = text[:-1] + ', "pad": "' + "x" * (MAX_BODY_BYTES + 10) + '"}'
    return Frame(text, None, envelope_id, label)


def push(bot: Bot, frame: Frame) -> None:
    async def send() -> None:
        connection = bot.fake.open_socket_connections()[-1]
        if frame.binary is not None:
            await connection.ws.send_bytes(frame.binary)
        else:
            await bot.fake.socket_push_raw(frame.text or "")

    bot.thread.run(send())


def wait_for_ack(bot: Bot, envelope_id: str) -> dict[str, Any] | None:
    try:
        return bot.thread.run(bot.fake.wait_for_ack(envelope_id, within_s=3.0), timeout=10)
    except AckTimeout:
        return None


@fuzz_timeout(SOCKET_EXAMPLES, 1.5)
def test_socket_mode_acks_malformed_envelopes_stays_connected_and_stores_nothing(
    socket_bot: Bot,
) -> None:
    bot = socket_bot
    connections = len(bot.fake.socket_connections)

    @fuzz_settings(SOCKET_EXAMPLES)
    @given(frame=socket_frames(bot.fake))
    def one(frame: Frame) -> None:
        if bot.outcomes["acked"] % 250 == 0:
            write_report(bot, "Socket Mode")
        before = bot.rows()
        refusals = bot.log.refusals
        push(bot, frame)
        if frame.envelope_id is not None:
            ack = wait_for_ack(bot, frame.envelope_id)
            bot.outcomes["acked" if ack is not None else "not acked"] += 1
            assert ack is not None, f"{frame.label}: envelope not acked"
        else:
            # No envelope to ack: give the client a moment, it must stay up.
            bot.thread.run(asyncio.sleep(0.01))
            bot.outcomes["no envelope id"] += 1
        after = bot.rows()
        refused = bot.log.refusals > refusals
        bot.outcomes["refused or ignored" if refused else "taken"] += 1
        crashes = bot.crashes()
        assert not crashes, (frame.label, crashes)
        assert len(bot.fake.socket_connections) == connections, f"{frame.label}: reconnected"
        if refused:
            assert after == before, f"{frame.label}: a refused envelope stored something"

    one()
    crashes = bot.crashes()
    assert not crashes, crashes
    before = bot.rows()["task"]
    envelope = bot.thread.run(bot.fake.push_slash_command("draft an email to Dana about rent"))
    assert wait_for_ack(bot, envelope) is not None
    assert bot.rows()["task"] == before + 1
    assert len(bot.fake.socket_connections) == connections
