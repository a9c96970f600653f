"""The Slack edge checks on their own: signatures, parsing with a depth limit, payload shapes."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from bot.adapters.slack.manifest import SHORTCUT_SUMMARIZE
from bot.adapters.slack.payloads import (
    MAX_DEPTH,
    Rejected,
    authentic,
    inspect,
    parse_http_body,
    parse_json_object,
    too_deep,
)
from bot.adapters.slack.socket_mode import read_frame
from tests.fakes.slack_api import FakeSlack

SECRET = "fake-signing-secret"


def signed(body: bytes, timestamp: str) -> str:
    fake = FakeSlack(signing_secret=SECRET)
    return fake.sign(body, content_type="application/json", timestamp=int(timestamp))[
        "X-Slack-Signature"
    ]


def check(body: dict[str, Any], envelope: str | None = None) -> tuple[str, bool]:
    checked = inspect(
        body,
        command="/atom",
        shortcuts={SHORTCUT_SUMMARIZE},
        action=lambda action_id: action_id.startswith("ab:"),
        envelope=envelope,
    )
    return checked.kind, checked.handled


def test_a_fresh_signature_of_the_exact_bytes_is_authentic() -> None:
    body, now = b'{"type": "url_verification"}', str(int(time.time()))

    assert authentic(body, now, signed(body, now), SECRET)
    assert not authentic(body + b" ", now, signed(body, now), SECRET)
    assert not authentic(body, now, signed(body, now), "another-secret")


def test_a_signature_older_or_newer_than_five_minutes_is_not_authentic() -> None:
    body, now = b"{}", int(time.time())
    for ts in (str(now - 301), str(now + 301)):
        assert not authentic(body, ts, signed(body, ts), SECRET)


@pytest.mark.parametrize("timestamp", ["", "abc", "12.5", "1e9", "0x10", " 1", "+1", "١٢٣", None])
def test_a_timestamp_that_is_not_plain_digits_is_not_authentic(timestamp: str | None) -> None:
    assert not authentic(b"{}", timestamp, "v0=" + "0" * 64, SECRET)


def test_a_body_that_is_not_utf8_is_checked_without_raising() -> None:
    body, now = b"\xff\xfe", str(int(time.time()))

    assert not authentic(body, now, "v0=" + "a" * 64, SECRET)


def test_depth_counts_brackets_outside_strings_only() -> None:
    assert not too_deep('{"a": "' + "[" * 500 + '"}')
    assert not too_deep("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    assert too_deep("[" * (MAX_DEPTH + 1))
    assert too_deep('{"a": "\\"", "b": ' + "[" * 100 + "]" * 100 + "}")


def test_deep_or_non_object_json_is_rejected_before_it_is_parsed() -> None:
    with pytest.raises(Rejected, match="deep"):
        parse_json_object("[" * 20_000 + "]" * 20_000)
    with pytest.raises(Rejected, match="object"):
        parse_json_object("[1, 2]")


def test_a_slash_command_form_that_mentions_payload_stays_a_form() -> None:
    body = b"command=%2Fatom&text=the+payload+is+late"

    assert (
        parse_http_body(body, "application/x-www-form-urlencoded")["text"] == "the payload is late"
    )


def test_an_interactivity_form_is_read_from_its_payload_field() -> None:
    body = b"payload=" + json.dumps({"type": "block_actions"}).encode()

    assert parse_http_body(body, "application/x-www-form-urlencoded") == {"type": "block_actions"}


def test_known_kinds_with_wrong_shapes_are_rejected() -> None:
    command = {"command": "/atom", "team_id": "T1", "channel_id": "C1", "trigger_id": "x"}
    bad = [
        command,  # no user_id
        {**command, "user_id": "u1; drop"},
        {"type": "event_callback", "event_id": "Ev1", "event": []},
        {"type": "event_callback", "event_id": "Ev1", "event": {"type": "app_mention"}},
        {"type": "block_actions", "user": {"id": "U1"}, "actions": 5},
        {"type": "block_actions", "user": {"id": "U1"}, "actions": []},
        {"type": "message_action", "callback_id": SHORTCUT_SUMMARIZE, "user": {"id": "U1"}},
        {"type": "url_verification", "challenge": 5},
        {"type": "event_callback", "event_id": "Ev1", "event": {"type": "x"}, "enterprise": 5},
    ]
    for body in bad:
        with pytest.raises(Rejected):
            check(body)


def test_well_formed_payloads_that_are_not_atombots_are_ignored() -> None:
    assert check(
        {"type": "event_callback", "event_id": "E", "event": {"type": "reaction_added"}}
    ) == (
        "event reaction_added",
        False,
    )
    assert check({"type": "view_submission", "view": {}}) == ("view_submission", False)
    command = {"command": "/other", "team_id": "T1", "channel_id": "C1", "user_id": "U1"}
    assert check({**command, "trigger_id": "t", "response_url": "https://x"}) == (
        "slash command",
        False,
    )
    press = {"type": "block_actions", "user": {"id": "U1"}, "actions": [{"action_id": "x"}]}
    assert check(press) == ("block_actions", False)


def test_socket_mode_envelopes_must_be_of_a_known_type() -> None:
    mention = {
        "type": "event_callback",
        "event_id": "Ev1",
        "event": {"type": "app_mention", "user": "U1", "channel": "C1", "ts": "1.2"},
    }

    assert check(mention, "events_api") == ("event app_mention", True)
    with pytest.raises(Rejected):
        check(mention, "hello")
    with pytest.raises(Rejected):
        check({"command": "/atom"}, "slash_commands")


def test_a_malformed_frame_keeps_an_envelope_id_to_ack_when_one_can_be_found() -> None:
    deep = '{"envelope_id": "e-1", "type": "events_api", "payload": ' + "[" * 20_000

    assert read_frame(deep) == (None, "e-1")
    assert read_frame('{"envelope_id": "e-2", "type": "events_api", "payload": 5}') == (None, "e-2")
    assert read_frame("not json") == (None, None)
    message, envelope_id = read_frame('{"type": "hello"}')
    assert message == {"type": "hello"} and envelope_id is None
