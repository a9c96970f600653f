"""calendar.invite against a real local SMTP server: one email whose text/calendar part
and invite.ics attachment parse (icalendar) as a METHOD:REQUEST event at the slot's time,
with the resolved attendees, the SMTP sender as organizer and a UID from the key."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from bot.actions.addressbook import AddressBook
from bot.actions.base import ActionContext, ActionFailed
from bot.actions.calendar import CalendarInvitePerformer, build_performer, time_slot
from bot.actions.email import SmtpConfig
from bot.config import Settings
from bot.types import Target
from tests.bot.actions.smtp_support import SmtpServer

BERLIN = ZoneInfo("Europe/Berlin")
START = "2026-12-03T15:00:00+01:00"


def context(**overrides: Any) -> ActionContext:
    values: dict[str, Any] = {
        "task_id": 7,
        "kind": "calendar.invite",
        "key": "atombot-7-1",
        "draft": "Subject: Shipment review\n\nLet's go through the delayed shipment.",
        "slots": {
            "recipients": ["Dana Scully <dana@example.com>", "ben@example.com"],
            "start": START,
            "duration": 45,
            "timezone": "Europe/Berlin",
            "location": "Room 4",
        },
        "requester": "U0ANA",
        "target": Target(platform="slack", tenant="T1", channel="C1"),
        "requester_name": "ana",
    }
    values.update(overrides)
    return ActionContext(**values)


async def no_op() -> None:
    return None


def calendars(server: SmtpServer) -> tuple[Calendar, Calendar]:
    """The text/calendar part and the invite.ics attachment of the one message received."""
    (received,) = server.received
    message = received.message
    (part,) = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    assert part.get_param("method") == "REQUEST"
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == "invite.ics"
    return Calendar.from_ical(part.get_content()), Calendar.from_ical(attachment.get_content())


async def test_the_invitation_carries_a_parseable_request_at_the_slots_time(
    server: SmtpServer,
) -> None:
    outcome = await CalendarInvitePerformer(server.config()).perform(context(), no_op)

    inline, attached = calendars(server)
    assert inline.to_ical() == attached.to_ical()
    assert inline["METHOD"] == "REQUEST"
    (event,) = inline.walk("VEVENT")
    assert event.decoded("DTSTART") == datetime(2026, 12, 3, 15, 0, tzinfo=BERLIN)
    assert event.decoded("DTSTART").tzinfo.key == "Europe/Berlin"
    assert event.decoded("DTEND") - event.decoded("DTSTART") == timedelta(minutes=45)
    assert str(event["UID"]) == "atombot-7-1@example.com"
    assert str(event["SUMMARY"]) == "Shipment review"
    assert str(event["LOCATION"]) == "Room 4"
    assert str(event["ORGANIZER"]) == "mailto:atombot@example.com"
    attendees: list[Any] = event["ATTENDEE"]  # type: ignore[assignment]
    assert [str(a) for a in attendees] == ["mailto:dana@example.com", "mailto:ben@example.com"]
    assert attendees[0].params["CN"] == "Dana Scully"
    assert all(a.params["RSVP"] == "TRUE" for a in attendees)
    assert inline.walk("VTIMEZONE")[0]["TZID"] == "Europe/Berlin"
    message = server.received[0].message
    assert message["Subject"] == "Shipment review"
    assert message["Message-ID"] == "<atombot-7-1@example.com>"
    assert server.received[0].recipients == ["dana@example.com", "ben@example.com"]
    assert outcome.summary == "Invitation sent to dana@example.com, ben@example.com."


async def test_the_uid_is_the_same_when_the_invitation_is_sent_again(server: SmtpServer) -> None:
    performer = CalendarInvitePerformer(server.config())

    await performer.perform(context(), no_op)
    first = server.received.pop()
    await performer.perform(context(), no_op)
    second = server.received.pop()

    def uid(data: Any) -> str:
        (event,) = Calendar.from_ical(data).walk("VEVENT")
        return str(event["UID"])

    parts = [
        next(p for p in r.message.walk() if p.get_content_type() == "text/calendar").get_content()
        for r in (first, second)
    ]
    assert uid(parts[0]) == uid(parts[1]) == "atombot-7-1@example.com"


async def test_without_a_draft_the_invitation_describes_itself(server: SmtpServer) -> None:
    ctx = context(
        draft="",
        slots={"recipients": ["dana@example.com"], "when": "2026-12-03T09:30:00+00:00"},
    )

    await CalendarInvitePerformer(server.config()).perform(ctx, no_op)

    inline, _ = calendars(server)
    (event,) = inline.walk("VEVENT")
    assert event["DTSTART"].to_ical() == b"20261203T093000Z"
    assert event.decoded("DTEND") - event.decoded("DTSTART") == timedelta(minutes=30)
    message = server.received[0].message
    assert message["Subject"] == "Invitation: Meeting (2026-12-03 09:30–10:00 UTC)"
    plain = message.get_body(("plain",))
    assert plain is not None and "You are invited: Meeting" in plain.get_content()


async def test_the_attendees_come_from_the_address_book(server: SmtpServer, tmp_path: Path) -> None:
    path = tmp_path / "book.csv"
    path.write_text("name,email\nDana Scully,dana@example.com\n", encoding="utf-8")
    performer = CalendarInvitePerformer(server.config(), AddressBook(path))
    slots = await performer.prepare(context(slots={"recipients": ["dana"], "start": START}))
    assert slots["recipients"] == ["Dana Scully <dana@example.com>"]
    assert slots["preview"] == (
        "Invitation to Dana Scully <dana@example.com> · 2026-12-03 14:00–14:30 UTC"
    )

    await performer.perform(context(slots=slots), no_op)

    inline, _ = calendars(server)
    (event,) = inline.walk("VEVENT")
    assert str(event["ATTENDEE"]) == "mailto:dana@example.com"
    assert event["ATTENDEE"].params["CN"] == "Dana Scully"


@pytest.mark.parametrize(
    ("slots", "minutes"),
    [
        ({"start": START, "end": "2026-12-03T16:30:00+01:00"}, 90),
        ({"start": START, "duration": "1h"}, 60),
        ({"start": START, "duration": "1h 15m"}, 75),
        ({"start": START}, 30),
    ],
)
def test_the_end_is_the_end_slot_or_the_start_plus_a_duration(
    slots: dict[str, Any], minutes: int
) -> None:
    when = time_slot(slots)
    assert when.end - when.start == timedelta(minutes=minutes)


def test_an_invitation_without_a_readable_time_fails_for_good() -> None:
    with pytest.raises(ActionFailed) as missing:
        time_slot({"recipients": ["dana@example.com"]})
    assert missing.value.permanent and "no time" in missing.value.reason
    with pytest.raises(ActionFailed) as unreadable:
        time_slot({"start": "next blue moon"}, locale="zh")
    assert unreadable.value.permanent and "next blue moon" in unreadable.value.reason
    with pytest.raises(ActionFailed):
        time_slot({"start": START, "end": "2026-12-03T14:00:00+01:00"})


async def test_a_5xx_fails_the_invitation_for_good(server: SmtpServer) -> None:
    server.handler.data_answers.append("552 5.3.4 Message size exceeds fixed limit")

    with pytest.raises(ActionFailed) as failed:
        await CalendarInvitePerformer(server.config()).perform(context(), no_op)

    assert failed.value.permanent and "552" in failed.value.reason
    assert server.received == []


@pytest.mark.usefixtures("no_env")
def test_calendar_invite_is_offered_only_with_smtp_settings() -> None:
    assert build_performer(Settings(), {}) is None
    built = build_performer(Settings(smtp_host="mx", smtp_from="atombot@example.com"), {})
    assert built is not None and built.kind == "calendar.invite" and built.available()


async def test_a_chinese_invitation_travels_7bit_clean_and_decodes(server: SmtpServer) -> None:
    ctx = context(draft="主题：发货复盘\n\n我们一起看看延迟的发货。", locale="zh")

    await CalendarInvitePerformer(server.config()).perform(ctx, no_op)

    assert max(server.received[0].data) < 0x80
    inline, _ = calendars(server)
    (event,) = inline.walk("VEVENT")
    assert str(event["SUMMARY"]) == "发货复盘"
    assert str(event["DESCRIPTION"]) == "我们一起看看延迟的发货。"
    assert server.received[0].message["Subject"] == "发货复盘"


async def test_an_invitation_without_a_time_fails_before_approval_is_asked() -> None:
    performer = CalendarInvitePerformer(SmtpConfig(host="mx", sender="a@example.com"))

    with pytest.raises(ActionFailed) as failed:
        await performer.prepare(context(slots={"recipients": ["dana@example.com"]}))

    assert failed.value.permanent
