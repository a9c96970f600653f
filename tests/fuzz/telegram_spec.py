"""Hypothesis strategies for Telegram ``Update`` bodies, generated from the Bot API 10.0 spec.

:func:`updates` walks the spec's types (``specs/telegram/api.botapi-10.0.json.gz``, see its
``SOURCE.md``): every required field of a type, plus the optional fields atombot reads
(:data:`OPTIONAL`), typed as the spec says (``Integer``, ``String``, ``Array of X``, union
types through ``subtypes``); string fields whose description lists their values ("can be
either "private", "group" …", "always "member"") draw from those values.

:func:`authentic_bodies` mutates them the way a broken proxy or an attacker holding the
secret would: missing fields, wrong types, deep nesting, invalid UTF-8, strings no database
stores, huge bodies, bodies that are not JSON at all. Each body comes with the answer the
webhook's rule demands (:class:`Expect`).
"""

from __future__ import annotations

import enum
import gzip
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

SPEC_FILE = Path(__file__).parent / "specs" / "telegram" / "api.botapi-10.0.json.gz"
SPEC_SHA256 = "39964d8f0976793f32bcba2e9dfc931e2b1573fdc2f6c4e8882511708f7a50ff"

#: Optional fields generated per type (the spec's required ones always are).
OPTIONAL: dict[str, tuple[str, ...]] = {
    "Message": (
        "from",
        "text",
        "entities",
        "reply_to_message",
        "message_thread_id",
        "is_topic_message",
        "caption",
        "sender_chat",
        "edit_date",
    ),
    "User": ("last_name", "username", "language_code", "is_premium"),
    "Chat": ("title", "username", "first_name", "last_name", "is_forum"),
    "MessageEntity": ("url", "user", "language"),
    "CallbackQuery": ("message", "data", "inline_message_id"),
    "ChatMemberUpdated": ("via_join_request",),
    "PollOption": (),
    "Poll": (),
}
#: The update kinds generated: the two atombot handles, and some it must ignore.
ACCEPTED = ("message", "callback_query")
IGNORED = ("edited_message", "channel_post", "my_chat_member", "poll")
#: How deep types nest (a reply's reply is not generated).
MAX_DEPTH = 3

JSON = dict[str, Any]


@cache
def spec() -> JSON:
    """The Bot API 10.0 spec (checked against its sha256)."""
    raw = gzip.decompress(SPEC_FILE.read_bytes())
    if hashlib.sha256(raw).hexdigest() != SPEC_SHA256:
        raise RuntimeError(f"{SPEC_FILE} is not the Bot API 10.0 spec it claims to be")
    data: JSON = json.loads(raw)
    return data


def _quoted_values(description: str) -> list[str]:
    """The values a string field's description enumerates, if it does."""
    if not re.search(r"\b(?:can be|always|one of|currently)\b", description, re.IGNORECASE):
        return []
    return re.findall(r"[\"“]([^\"”]+)[\"”]", description)


# Text a real client can send: no surrogates (JSON cannot carry them as UTF-8), no NUL.
_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=200,
)


def _integer(field: str, description: str) -> st.SearchStrategy[int]:
    if description.startswith("Always 0"):
        return st.just(0)
    if "Unix time" in description or field in ("date", "edit_date", "until_date"):
        return st.integers(0, 2**31 - 1)
    if field in ("offset", "length"):
        return st.integers(0, 300)
    if field.endswith("id") or field == "id":
        return st.integers(-(2**52), 2**52)
    return st.integers(0, 2**31 - 1)


def _scalar(name: str, field: str, description: str) -> st.SearchStrategy[Any] | None:
    if name == "Integer":
        return _integer(field, description)
    if name == "String":
        values = _quoted_values(description)
        return st.sampled_from(values) if values else _TEXT
    if name == "Boolean":
        return st.booleans()
    if name == "True":
        return st.just(True)
    if name == "Float":
        return st.floats(-1e6, 1e6, allow_nan=False)
    return None


def _one(name: str, field: str, description: str, depth: int) -> st.SearchStrategy[Any]:
    if name.startswith("Array of "):
        return st.lists(_one(name[len("Array of ") :], field, description, depth), max_size=3)
    scalar = _scalar(name, field, description)
    if scalar is not None:
        return scalar
    return type_strategy(name, depth + 1)


@cache
def type_strategy(name: str, depth: int = 0) -> st.SearchStrategy[JSON]:
    """A strategy for one Bot API type, as JSON."""
    kind = spec()["types"][name]
    if "subtypes" in kind:
        return st.one_of(*(type_strategy(sub, depth) for sub in kind["subtypes"]))
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for field in kind.get("fields", []):
        if not field["required"] and (
            field["name"] not in OPTIONAL.get(name, ()) or depth >= MAX_DEPTH
        ):
            continue
        # A field of several types (Integer or String) draws from each.
        strategy = st.one_of(
            *(_one(t, field["name"], field["description"], depth) for t in field["types"])
        )
        (required if field["required"] else optional)[field["name"]] = strategy
    return st.fixed_dictionaries(required, optional=optional)


def updates(kinds: tuple[str, ...] = ACCEPTED + IGNORED) -> st.SearchStrategy[JSON]:
    """Valid updates (per the spec) of one of ``kinds``."""
    fields = {f["name"]: f for f in spec()["types"]["Update"]["fields"]}

    def of(kind: str) -> st.SearchStrategy[JSON]:
        (type_name,) = fields[kind]["types"]
        return st.builds(
            lambda uid, body: {"update_id": uid, kind: body},
            st.integers(1, 2**31 - 1),
            type_strategy(type_name),
        )

    return st.one_of(*(of(k) for k in kinds))


# -- mutations of authentic requests ----------------------------------------------------------


class Expect(enum.Enum):
    """What the webhook must answer."""

    OK = "200"  # a valid update: handled, or ignored when of a kind atombot does not take
    REFUSED = "400"  # malformed: nothing stored
    TOO_LARGE = "413"
    ANY_4XX_OR_OK = "200/400"  # a mutation that may or may not have broken the update


@dataclass(frozen=True)
class Body:
    """One request body, how it was made, and what it must get."""

    data: bytes
    how: str
    expect: Expect


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _paths(item, (*prefix, i))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Callable[[Any], Any]) -> Any:
    """``value`` with the item at ``path`` replaced by ``new(item)`` (a copy)."""
    if not path:
        return new(value)
    head, rest = path[0], path[1:]
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = _replace(value[head], rest, new)
    return copy


def _without(value: Any, path: tuple[Any, ...]) -> Any:
    head, rest = path[0], path[1:]
    if rest:
        copy = dict(value) if isinstance(value, dict) else list(value)
        copy[head] = _without(value[head], rest)
        return copy
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k != head}
    return [v for i, v in enumerate(value) if i != head]


def _encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


WRONG_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**80), 2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    _TEXT,
    st.lists(st.integers(), max_size=3),
    st.dictionaries(_TEXT, st.integers(), max_size=3),
)


@st.composite
def dropped_field(draw: st.DrawFn) -> Body:
    """A valid update with one field (anywhere) removed: maybe still valid, maybe not."""
    update = draw(updates())
    path = draw(st.sampled_from(_paths(update)))
    expect = Expect.REFUSED if path == ("update_id",) else Expect.ANY_4XX_OR_OK
    return Body(_encode(_without(update, path)), f"drop {path[-1]!s}", expect)


@st.composite
def wrong_type(draw: st.DrawFn) -> Body:
    """A valid update with one value (anywhere) replaced by a value of another type."""
    update = draw(updates())
    path = draw(st.sampled_from(_paths(update)))
    wrong = draw(WRONG_VALUES)
    return Body(
        _encode(_replace(update, path, lambda _: wrong)), "wrong type", Expect.ANY_4XX_OR_OK
    )


@st.composite
def deep_nesting(draw: st.DrawFn) -> Body:
    """Arrays or objects nested up to 100,000 levels, alone or inside a valid update."""
    depth = draw(st.one_of(st.integers(33, 200), st.integers(1_000, 100_000)))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    nested = opener * depth + "1" + closer * depth
    if draw(st.booleans()):
        update = draw(updates(ACCEPTED))
        kind = next(k for k in update if k != "update_id")
        text = _encode(update).decode()
        marker = f'"{kind}": '
        body = text.replace(marker, f'"{kind}": {{"x": {nested}, "y": ', 1)
        body = body[:-1] + "}}"
    else:
        body = nested
    return Body(body.encode(), f"nested {depth}", Expect.REFUSED)


_INVALID_UTF8 = (b"\xff", b"\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xe2\x82", b"\x80")


@st.composite
def invalid_utf8(draw: st.DrawFn) -> Body:
    """A valid update with bytes that are not UTF-8, or encoded as UTF-16 / Latin-1."""
    update = draw(updates(ACCEPTED))
    raw = _encode(update)
    how = draw(st.sampled_from(["insert", "utf-16", "latin-1"]))
    if how == "utf-16":
        return Body(json.dumps(update).encode("utf-16"), how, Expect.REFUSED)
    if how == "latin-1":
        text = json.dumps(update, ensure_ascii=False) + ' "é"'
        data = text.encode("latin-1", errors="replace")
        return Body(data, how, Expect.REFUSED)
    at = draw(st.integers(0, len(raw)))
    junk = draw(st.sampled_from(_INVALID_UTF8))
    return Body(raw[:at] + junk + raw[at:], "invalid UTF-8 bytes", Expect.REFUSED)


@st.composite
def bad_strings(draw: st.DrawFn) -> Body:
    """A valid update whose text holds a NUL or a lone surrogate escape."""
    update = draw(updates(("message",)))
    text = draw(st.sampled_from(["a\\u0000b", "\\ud800", "x\\udfff", "\\u0000"]))
    update["message"]["text"] = "@@TEXT@@"
    body = json.dumps(update).replace('"@@TEXT@@"', f'"{text}"')
    return Body(body.encode(), "NUL or lone surrogate", Expect.REFUSED)


@st.composite
def not_an_update(draw: st.DrawFn) -> Body:
    """Junk: random bytes, JSON that is not an object, numbers and constants JSON lacks."""
    choice = draw(st.integers(0, 4))
    if choice == 0:
        data = draw(st.binary(max_size=300))
        return Body(data, "random bytes", Expect.ANY_4XX_OR_OK)  # may parse as an object
    if choice == 1:
        value = draw(
            st.recursive(
                st.none() | st.booleans() | st.integers() | _TEXT,
                lambda inner: st.lists(inner, max_size=3),
                max_leaves=10,
            )
        )
        return Body(_encode(value), "JSON, not an object", Expect.REFUSED)
    if choice == 2:
        literal = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1" * 5000]))
        return Body(f'{{"update_id": {literal}}}'.encode(), "bad number", Expect.REFUSED)
    if choice == 3:
        update = draw(updates(ACCEPTED))
        raw = _encode(update)
        cut = draw(st.integers(0, max(0, len(raw) - 1)))
        return Body(raw[:cut], "truncated", Expect.REFUSED)
    body = draw(st.dictionaries(_TEXT, WRONG_VALUES, max_size=4))
    return Body(_encode(body), "object without update_id", Expect.ANY_4XX_OR_OK)


@st.composite
def huge_body(draw: st.DrawFn, limit: int) -> Body:
    """A valid-looking update padded past ``limit`` bytes."""
    extra = draw(st.integers(1, 3 * limit))
    update = draw(updates(ACCEPTED))
    raw = _encode({**update, "pad": ""})
    return Body(raw[:-3] + b"x" * (limit + extra) + b'"}', "huge", Expect.TOO_LARGE)


def mutation_families(limit: int) -> dict[str, st.SearchStrategy[Body]]:
    """Each kind of authentic body by name (valid ones included)."""
    return {
        "valid": updates().map(lambda u: Body(_encode(u), "valid", Expect.OK)),
        "dropped field": dropped_field(),
        "wrong type": wrong_type(),
        "deep nesting": deep_nesting(),
        "invalid UTF-8": invalid_utf8(),
        "NUL or surrogate": bad_strings(),
        "not an update": not_an_update(),
        "huge": huge_body(limit),
    }


def authentic_bodies(limit: int) -> st.SearchStrategy[Body]:
    """Any body of :func:`mutation_families` (with the answer each must get)."""
    return st.one_of(*mutation_families(limit).values())
