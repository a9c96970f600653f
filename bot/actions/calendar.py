"""``calendar.invite``: an email carrying an iCalendar invitation (``METHOD:REQUEST``).

The event comes from the task's time slots: ``start`` (or ``when`` / ``time`` / ``date``,
ISO-8601 with the user's UTC offset, as the slot extractors write them), ``end`` or
``duration`` (minutes, default :data:`DEFAULT_MINUTES`), ``timezone`` (IANA; the event is
written in it, else in UTC), ``title`` / ``topic`` / ``subject`` and ``location``. The
organizer is the SMTP sender, the attendees are the resolved recipients, and the UID is
derived from the idempotency key, so a calendar that sees the invitation twice keeps one
event. The ``.ics`` travels twice, as calendars expect: as the ``text/calendar`` part of
the message and as an ``invite.ics`` attachment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.utils import parseaddr
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Calendar, Event, vCalAddress, vText

from bot.actions.addressbook import AddressBook, Recipient
from bot.actions.base import ActionContext, ActionFailed, ActionOutcome, Commit
from bot.actions.email import (
    MailPerformer,
    SmtpConfig,
    new_message,
    slot_list,
    split_draft,
    unique_id,
)
from bot.config import Settings
from bot.texts import t

#: Length of a meeting whose end is not given.
DEFAULT_MINUTES = 30
PRODID = "-//atombot//calendar.invite//EN"
_START_SLOTS = ("start", "when", "time", "date")
_DURATION = re.compile(r"^\s*(?:(?P<h>\d+)\s*h)?\s*(?:(?P<m>\d+)\s*m(?:in)?)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class TimeSlot:
    """When the event is: timezone-aware start and end."""

    start: datetime
    end: datetime

    def shown(self) -> str:
        """``2026-12-03 15:00–15:30 Europe/Berlin`` (locale-neutral)."""
        zone = getattr(self.start.tzinfo, "key", None)
        if zone is None:
            offset = self.start.strftime("%z")
            zone = "UTC" if offset in ("", "+0000") else f"UTC{offset[:3]}:{offset[3:]}"
        same_day = self.start.date() == self.end.date()
        end = self.end.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M")
        return f"{self.start:%Y-%m-%d %H:%M}–{end} {zone}"


def _zone(name: Any) -> ZoneInfo | None:
    if not isinstance(name, str) or not name.strip():
        return None
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _minutes(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and value > 0:
        return int(value)
    if isinstance(value, str):
        if value.strip().isdigit():
            return int(value)
        match = _DURATION.match(value)
        if match and (match.group("h") or match.group("m")):
            return int(match.group("h") or 0) * 60 + int(match.group("m") or 0)
    return None


def _point(value: Any, zone: ZoneInfo | None, locale: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip())
        except ValueError as exc:
            raise ActionFailed(
                t("perform.invite.bad_time", locale, value=str(value)[:80]), permanent=True
            ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone or UTC)
    return moment.astimezone(zone or UTC)


def time_slot(
    slots: Mapping[str, Any], *, locale: str = "en", timezone: str | None = None
) -> TimeSlot:
    """The event's time from the slots (see the module docstring). Raises ActionFailed
    (permanent) when there is no readable start or the end is not after it."""
    zone = _zone(slots.get("timezone")) or _zone(timezone)
    raw = next((slots[name] for name in _START_SLOTS if slots.get(name)), None)
    if raw is None:
        raise ActionFailed(t("perform.invite.no_time", locale), permanent=True)
    start = _point(raw, zone, locale)
    if slots.get("end"):
        end = _point(slots["end"], zone, locale)
    else:
        minutes = _minutes(slots.get("duration"))
        end = start + timedelta(minutes=minutes or DEFAULT_MINUTES)
    if end <= start:
        raise ActionFailed(
            t("perform.invite.bad_time", locale, value=f"{start.isoformat()} – {end.isoformat()}"),
            permanent=True,
        )
    return TimeSlot(start, end)


def invitation(
    *,
    uid: str,
    when: TimeSlot,
    title: str,
    description: str,
    organizer: str,
    attendees: list[Recipient],
    location: str | None = None,
    stamp: datetime | None = None,
) -> Calendar:
    """A ``METHOD:REQUEST`` calendar with one event (with its VTIMEZONE when not UTC)."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "REQUEST")
    event = Event()
    event.add("uid", uid)
    event.add("sequence", 0)
    event.add("dtstamp", (stamp or datetime.now(UTC)).astimezone(UTC))
    event.add("dtstart", when.start)
    event.add("dtend", when.end)
    event.add("summary", title)
    if description:
        event.add("description", description)
    if location:
        event.add("location", location)
    event.add("status", "CONFIRMED")
    event.add("transp", "OPAQUE")
    shown, address = parseaddr(organizer)
    boss = vCalAddress(f"mailto:{address}")
    if shown:
        boss.params["CN"] = vText(shown)
    event.add("organizer", boss)
    for person in attendees:
        attendee = vCalAddress(f"mailto:{person.email}")
        if person.name:
            attendee.params["CN"] = vText(person.name)
        attendee.params["CUTYPE"] = vText("INDIVIDUAL")
        attendee.params["ROLE"] = vText("REQ-PARTICIPANT")
        attendee.params["PARTSTAT"] = vText("NEEDS-ACTION")
        attendee.params["RSVP"] = vText("TRUE")
        event.add("attendee", attendee, encode=False)
    calendar.add_component(event)
    if when.start.tzinfo is not UTC:
        # Only the years around the event: the full history makes a very long VTIMEZONE.
        year = when.start.year
        calendar.add_missing_timezones(
            first_date=date(year - 1, 1, 1), last_date=date(year + 2, 1, 1)
        )
    return calendar


class CalendarInvitePerformer(MailPerformer):
    """``calendar.invite``: an invitation email to the resolved recipients.

    Constructed like :class:`~bot.actions.email.EmailSendPerformer` (``smtp``, ``book``);
    available when SMTP is. The approved text (when there is one) is the message body and
    the event's description.
    """

    kind = "calendar.invite"

    def _when(self, ctx: ActionContext) -> TimeSlot:
        timezone = ctx.extra.get("timezone")
        return time_slot(
            ctx.slots, locale=ctx.locale, timezone=timezone if isinstance(timezone, str) else None
        )

    async def prepare(self, ctx: ActionContext) -> dict[str, Any]:
        """Resolve the attendees and check the time; the approval shows both (``preview``).
        Raises :class:`NeedsInput` for an unknown name, ActionFailed for a missing time."""
        when = self._when(ctx)
        slots = await super().prepare(ctx)
        shown = ", ".join(slot_list(slots.get("recipients")) + slot_list(slots.get("cc")))
        slots["preview"] = t("perform.preview.invite", ctx.locale, to=shown, when=when.shown())
        return slots

    async def perform(self, ctx: ActionContext, commit: Commit) -> ActionOutcome:
        """Send the invitation once (``commit`` right before DATA). Raises ActionFailed."""
        to, cc = self._recipients_for_sending(ctx)
        when = self._when(ctx)
        subject, body = split_draft(ctx.draft) if ctx.draft.strip() else (None, "")
        title = next(
            (
                str(ctx.slots[name]).strip()
                for name in ("title", "topic", "subject")
                if isinstance(ctx.slots.get(name), str) and str(ctx.slots[name]).strip()
            ),
            subject or t("perform.invite.title", ctx.locale),
        )
        organizer = self.smtp.sender or self.smtp.sender_address
        if not body:
            body = t(
                "perform.invite.body",
                ctx.locale,
                title=title,
                when=when.shown(),
                organizer=ctx.requester_name or organizer,
            )
        location = ctx.slots.get("location")
        ics = invitation(
            uid=unique_id(ctx.key, self.smtp.domain),
            when=when,
            title=title,
            description=body,
            organizer=organizer,
            attendees=[*to, *cc],
            location=location if isinstance(location, str) else None,
        ).to_ical()
        message = new_message()
        identifier = self._headers(
            ctx,
            message,
            subject or t("perform.invite.subject", ctx.locale, title=title, when=when.shown()),
            to,
            cc,
        )
        message.set_content(body + "\n")
        message.add_alternative(
            ics.decode("utf-8"), subtype="calendar", params={"method": "REQUEST"}
        )
        message.add_attachment(ics, maintype="application", subtype="ics", filename="invite.ics")
        return await self._send(ctx, message, to, cc, commit, identifier, "perform.invite.sent")


def build_performer(
    settings: Settings, adapters: Mapping[str, Any]
) -> CalendarInvitePerformer | None:
    """``calendar.invite`` when ``ATOMBOT_SMTP_HOST`` and ``ATOMBOT_SMTP_FROM`` are set."""
    smtp = SmtpConfig.from_settings(settings)
    if not smtp.configured:
        return None
    return CalendarInvitePerformer(smtp, AddressBook(settings.address_book))
