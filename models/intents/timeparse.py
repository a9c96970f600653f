"""Times, windows and recurrences in English and Chinese, resolved in the user's timezone.

Absolute and relative dates are parsed by ``dateparser``; this module only finds the time
phrases, normalises a few Chinese forms that ``dateparser`` does not read (上午9点 → 9am)
and turns recurrences ("every Monday at 10") into APScheduler ``CronTrigger`` keyword
arguments, because no maintained parser produces cron fields.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dateparser
from dateparser.search import search_dates

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_WORDS = {
    "monday": "mon", "mondays": "mon", "tuesday": "tue", "tuesdays": "tue",
    "wednesday": "wed", "wednesdays": "wed", "thursday": "thu", "thursdays": "thu",
    "friday": "fri", "fridays": "fri", "saturday": "sat", "saturdays": "sat",
    "sunday": "sun", "sundays": "sun",
}  # fmt: skip
_ZH_DAYS = {"一": "monday", "二": "tuesday", "三": "wednesday", "四": "thursday",
            "五": "friday", "六": "saturday", "日": "sunday", "天": "sunday"}  # fmt: skip
_ZH_NUM = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
           "八": 8, "九": 9, "十": 10, "十一": 11, "十二": 12}  # fmt: skip

#: Timezone names users write, mapped to IANA names.
TZ_ALIASES = {
    "utc": "UTC", "gmt": "UTC", "pst": "America/Los_Angeles", "pdt": "America/Los_Angeles",
    "pt": "America/Los_Angeles", "est": "America/New_York", "edt": "America/New_York",
    "et": "America/New_York", "cst": "America/Chicago", "cet": "Europe/Berlin",
    "cest": "Europe/Berlin", "bst": "Europe/London", "jst": "Asia/Tokyo",
    "new york": "America/New_York", "london": "Europe/London", "berlin": "Europe/Berlin",
    "paris": "Europe/Paris", "tokyo": "Asia/Tokyo", "singapore": "Asia/Singapore",
    "beijing": "Asia/Shanghai", "shanghai": "Asia/Shanghai", "北京时间": "Asia/Shanghai",
    "北京": "Asia/Shanghai", "上海": "Asia/Shanghai", "san francisco": "America/Los_Angeles",
}  # fmt: skip
_TZ_RE = re.compile(
    r"\b(?P<iana>[A-Z][a-z]+/[A-Z][A-Za-z_]+(?:/[A-Z][A-Za-z_]+)?)\b"
    r"|(?P<alias>北京时间|(?<![A-Za-z])(?:UTC|GMT|PST|PDT|EST|EDT|CET|CEST|BST|JST)(?![A-Za-z])"
    r"|\b(?:new york|london|berlin|paris|tokyo|singapore|beijing|shanghai|san francisco)\b"
    r"(?:\s+time)?)",
    re.IGNORECASE,
)


def explicit_timezone(text: str) -> str | None:
    """An IANA timezone named in ``text`` ("Europe/Berlin", "PST", "北京时间"), if any."""
    for match in _TZ_RE.finditer(text):
        if match.group("iana"):
            try:
                ZoneInfo(match.group("iana"))
            except (ZoneInfoNotFoundError, ValueError):
                continue
            return match.group("iana")
        alias = match.group("alias").lower().removesuffix(" time").strip()
        if alias in TZ_ALIASES:
            return TZ_ALIASES[alias]
    return None


def strip_timezone(text: str) -> str:
    """``text`` without timezone names (so they do not confuse the date parser)."""
    return _TZ_RE.sub(" ", text)


def zh_to_en(text: str) -> str:
    """Rewrite common Chinese time phrases into English that ``dateparser`` understands."""

    def hour(match: re.Match[str]) -> str:
        part, num, half, minute = match.group(1), match.group(2), match.group(3), match.group(4)
        value = int(num) if num.isdigit() else _ZH_NUM.get(num, 0)
        if part in ("下午", "晚上", "傍晚") and value < 12:
            value += 12
        mins = 30 if half else int(minute) if minute and minute.isdigit() else 0
        return f" at {value:02d}:{mins:02d} "

    out = re.sub(
        r"(上午|早上|早晨|中午|下午|晚上|傍晚)?\s*(\d{1,2}|十[一二]?|[一二两三四五六七八九])\s*[点點时]"
        r"(?:(半)|(\d{1,2})分?)?",
        hour,
        text,
    )
    out = re.sub(
        r"下(?:个)?(?:周|星期|礼拜)([一二三四五六日天])",
        lambda m: f" next {_ZH_DAYS[m.group(1)]} ",
        out,
    )
    out = re.sub(
        r"(?:周|星期|礼拜)([一二三四五六日天])", lambda m: f" {_ZH_DAYS[m.group(1)]} ", out
    )
    replacements = [
        ("大后天", " in 3 days "), ("后天", " in 2 days "), ("明天", " tomorrow "),
        ("今天", " today "), ("昨天", " yesterday "), ("今晚", " tonight "),
        ("下周", " next week "), ("下个月", " next month "), ("中午", " at 12:00 "),
    ]  # fmt: skip
    for zh, en in replacements:
        out = out.replace(zh, en)
    out = re.sub(
        r"(\d+)\s*(分钟|小时|天|周)(?:之)?后",
        lambda m: (
            f" in {m.group(1)} "
            + {"分钟": "minutes", "小时": "hours", "天": "days", "周": "weeks"}[m.group(2)]
            + " "
        ),
        out,
    )
    out = re.sub(
        r"([一二两三四五六七八九十])\s*(分钟|个小时|小时|天)(?:之)?后",
        lambda m: (
            f" in {_ZH_NUM[m.group(1)]} "
            + {"分钟": "minutes", "个小时": "hours", "小时": "hours", "天": "days"}[m.group(2)]
            + " "
        ),
        out,
    )
    return out


_ZH_TIME = re.compile(
    r"(?:每(?:个)?(?:天|日|周[一二三四五六日天]?|星期[一二三四五六日天]?|月\s*\d{1,2}\s*[号日]?|个工作日))"
    r"|(?:大后天|后天|明天|今天|今晚|下(?:个)?(?:周|星期|礼拜)[一二三四五六日天]?|(?:周|星期|礼拜)[一二三四五六日天]"
    r"|下个月|工作日)"
    r"|(?:上午|早上|早晨|中午|下午|晚上|傍晚)?\s*(?:\d{1,2}|十[一二]?|[一二两三四五六七八九])\s*[点點时](?:半|\d{1,2}分?)?"
    r"|(?:上午|早上|早晨|中午|下午|晚上|傍晚)"
    r"|(?:\d+|[一二两三四五六七八九十])\s*(?:分钟|个小时|小时|天|周)(?:之)?后"
)


def strip_zh_times(text: str) -> str:
    """``text`` without Chinese time phrases (for the "what" of a reminder)."""
    return _ZH_TIME.sub(" ", text)


def _settings(now: datetime, tz: str, prefer: str) -> dict[str, Any]:
    return {
        "RELATIVE_BASE": now.replace(tzinfo=None),
        "TIMEZONE": tz,
        "TO_TIMEZONE": tz,
        "RETURN_AS_TIMEZONE_AWARE": True,
        "PREFER_DATES_FROM": prefer,
    }


def parse_point(phrase: str, now: datetime, tz: str, *, prefer: str = "future") -> datetime | None:
    """Parse one date/time phrase (already English) with ``dateparser``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = dateparser.parse(phrase, languages=["en"], settings=_settings(now, tz, prefer))
    return result


# Phrases that look like dates to dateparser but are not (search_dates false positives).
_NOT_TIMES = frozenset({
    "to", "at", "on", "in", "me", "the", "a", "an", "may", "march", "sun", "sat", "mon",
    "now", "second", "an hour", "hour", "day", "week", "month", "year", "later",
})  # fmt: skip
_TIME_WORD = re.compile(
    r"\d|today|tonight|tomorrow|yesterday|morning|noon|evening|afternoon|midnight|"
    r"monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
    r"january|february|march|april|june|july|august|september|october|november|december|"
    r"\bnext\b|\bweek|\bmonth|\bhours?\b|\bminutes?\b|\bdays?\b|\ban hour\b",
    re.IGNORECASE,
)

_BARE_HOUR = re.compile(
    r"\b(at\s+(?:[01]?\d|2[0-3]))\b(?!\s*(?::|\.\d|am\b|pm\b|a\.m\.|p\.m\.|o'?clock))",
    re.IGNORECASE,
)
_RESTORED_HOUR = re.compile(r"\b(at\s+\d{1,2}):00\b", re.IGNORECASE)

_DAY_PARTS = {"morning": 9, "afternoon": 14, "evening": 18, "tonight": 20, "noon": 12, "night": 20}


@dataclass(frozen=True)
class FoundTime:
    """A time found in a text: the resolved datetime and the character span of its phrase."""

    when: datetime
    start: int
    end: int


def find_time(text: str, now: datetime, tz: str) -> FoundTime | None:
    """The first future time mentioned in ``text`` (English or Chinese), resolved in ``tz``.

    Dates without a time of day default to 09:00 ("Friday" → Friday 09:00); times of day
    without a date mean the next such time ("at 3pm" → today 15:00 if still ahead).
    """
    english = zh_to_en(text) if re.search(r"[\u4e00-\u9fff]", text) else text
    english = strip_timezone(english)
    # "in an hour" / "later today" read better for dateparser in a canonical form.
    english = re.sub(r"\bin an hour\b", "in 1 hour", english, flags=re.IGNORECASE)
    english = re.sub(r"\bin half an hour\b", "in 30 minutes", english, flags=re.IGNORECASE)
    english = re.sub(r"\b(the day after tomorrow)\b", "in 2 days", english, flags=re.IGNORECASE)
    # dateparser reads a bare hour as a month or drops it ("Friday at 9" → September, "tomorrow
    # at 9" → tomorrow at the current time); "at 9:00" it reads right.
    english = _BARE_HOUR.sub(r"\1:00", english)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = search_dates(english, languages=["en"], settings=_settings(now, tz, "future"))
    if not found:
        return None
    candidates = [
        (phrase, value)
        for phrase, value in found
        if phrase.strip().lower() not in _NOT_TIMES and _TIME_WORD.search(phrase)
    ]
    if not candidates:
        return None
    phrase, value = candidates[0]
    # Merge "Friday" + "at 3pm" when dateparser returned them separately.
    lowered = phrase.lower()
    has_clock = bool(re.search(r"\d\s*(?::\d\d|am|pm)|\bat \d|noon|midnight|\d{2}:\d{2}", lowered))
    for other, other_value in candidates[1:]:
        other_lower = other.lower()
        if not has_clock and re.search(r"\d\s*(?::\d\d|am|pm)|\bat \d", other_lower):
            value = value.replace(hour=other_value.hour, minute=other_value.minute)
            has_clock = True
    relative = bool(re.search(r"\bin \d+|\bago\b|\bnow\b|hours?|minutes?", lowered))
    if not has_clock and not relative:
        part_hour = next((h for word, h in _DAY_PARTS.items() if word in english.lower()), 9)
        value = value.replace(hour=part_hour, minute=0, second=0, microsecond=0)
    elif has_clock and not re.search(
        r"tomorrow|day|week|month|\d{1,2}/\d|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|"
        r"mon|tue|wed|thu|fri|sat|sun",
        lowered,
    ):
        # A bare clock time: dateparser may jump a day ahead; take the next occurrence.
        local_now = now.astimezone(ZoneInfo(tz))
        candidate = local_now.replace(hour=value.hour, minute=value.minute, second=0, microsecond=0)
        if candidate <= local_now:
            candidate += timedelta(days=1)
        value = candidate
    value = value.replace(second=0, microsecond=0) if not relative else value.replace(microsecond=0)
    if phrase not in text:
        phrase = _RESTORED_HOUR.sub(r"\1", phrase)
    start = max(0, text.find(phrase)) if phrase in text else 0
    end = start + len(phrase) if phrase in text else 0
    return FoundTime(when=value.astimezone(ZoneInfo(tz)), start=start, end=end)


# -- recurrences -------------------------------------------------------------------------------

_CLOCK = re.compile(
    r"(?:\bat\s*)?\b(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s*(?P<ap>am|pm|a\.m\.|p\.m\.)?"
    r"(?=\s|$|[,.;!?)])",
    re.IGNORECASE,
)


def _clock(text: str) -> tuple[int, int] | None:
    """An explicit time of day ("at 9", "9:30", "5pm") in English text."""
    for match in _CLOCK.finditer(text):
        hour, minute, ampm = int(match.group("h")), int(match.group("m") or 0), match.group("ap")
        before = text[: match.start()].lower()
        explicit = ampm or match.group("m") or match.group(0).lower().startswith("at")
        if not explicit or re.search(r"(the|on|every|of)\s*$", before):
            continue
        if ampm and ampm.lower().startswith("p") and hour < 12:
            hour += 12
        if ampm and ampm.lower().startswith("a") and hour == 12:
            hour = 0
        if 0 <= hour < 24 and 0 <= minute < 60:
            return hour, minute
    lowered = text.lower()
    for word, hour in _DAY_PARTS.items():
        if re.search(rf"\b{word}\b|every {word}", lowered):
            return hour, 0
    return None


def _ordinal_day(text: str) -> str | None:
    match = re.search(
        r"\b(?:on\s+)?the\s+(\d{1,2})(?:st|nd|rd|th)?\b(?:\s+of)?(?:\s+(?:every|each)\s+month)?"
        r"|\b(\d{1,2})(?:st|nd|rd|th)\s+of\s+(?:every|each)\s+month"
        r"|\bevery\s+month\s+on\s+the\s+(\d{1,2})(?:st|nd|rd|th)?"
        r"|\bfirst\s+of\s+(?:every|each|the)\s+month|\bfirst\s+day\s+of",
        text,
        re.IGNORECASE,
    )
    if match is None:
        return None
    number = next((g for g in match.groups() if g), "1")
    return str(int(number))


def parse_recurrence(text: str) -> dict[str, Any] | None:
    """CronTrigger kwargs for a recurring phrase ("every Monday at 10"), else None.

    The result always has ``hour`` and ``minute`` (09:00 when no time is given).
    """
    english = text.replace("工作日", " every weekday ")
    english = re.sub(
        r"每(?:个)?(?:周|星期|礼拜)([一二三四五六日天])",
        lambda m: f" every {_ZH_DAYS[m.group(1)]} ",
        english,
    )
    english = re.sub(r"每(?:个)?月\s*(\d{1,2})\s*[号日]", r" every month on the \1th ", english)
    english = re.sub(r"每(?:个)?(?:周|星期|礼拜)\s*", " every ", english)
    english = re.sub(r"每(?:一)?天|每日|每个工作日", " every day ", english)
    english = re.sub(r"每(?:个)?月", " every month ", english)
    english = re.sub(r"每周|每星期", " every week ", english)
    english = zh_to_en(english) if re.search(r"[\u4e00-\u9fff]", english) else english
    lowered = english.lower()
    if not re.search(
        r"\bevery\b|\beach\b|\bdaily\b|\bweekly\b|\bmonthly\b|\bweekdays?\b|\b\w+days\b"
        r"|\bmornings\b|\bevenings\b",
        lowered,
    ):
        return None
    cron: dict[str, Any] = {}
    days = [abbr for word, abbr in _DAY_WORDS.items() if re.search(rf"\b{word}\b", lowered)]
    if re.search(r"\bweekdays?\b|\bworkdays?\b|\bworking days?\b", lowered):
        cron["day_of_week"] = "mon-fri"
    elif days and (
        re.search(r"\bevery\b|\beach\b|\bweekly\b|\bon\s+\w+days\b", lowered)
        or any(re.search(rf"\b{w}s\b", lowered) for w in _DAY_WORDS if w[-1] == "y")
    ):
        ordered = sorted(set(days), key=_DAYS.index)
        cron["day_of_week"] = ",".join(ordered)
    elif re.search(
        r"\bmonthly\b|\bevery month\b|\beach month\b|\bof (?:every|each) month\b", lowered
    ):
        cron["day"] = _ordinal_day(english) or "1"
    elif re.search(r"\bweekly\b|\bevery week\b|\beach week\b", lowered):
        cron["day_of_week"] = "mon"
    elif not re.search(
        r"\bdaily\b|\bevery ?day\b|\beach day\b|\bevery (?:morning|evening|night|afternoon)\b"
        r"|\bmornings\b|\bevenings\b",
        lowered,
    ):
        return None
    clock = _clock(strip_timezone(english))
    hour, minute = clock if clock is not None else (9, 0)
    cron["hour"] = hour
    cron["minute"] = minute
    return cron


def next_fire(cron: dict[str, Any], now: datetime, tz: str) -> datetime:
    """The first time a CronTrigger with ``cron`` fires after ``now``."""
    from apscheduler.triggers.cron import CronTrigger

    trigger = CronTrigger(timezone=ZoneInfo(tz), **cron)
    # Strictly after now: a reminder set at 10:00 "every day at 10" first fires tomorrow.
    after = now.astimezone(ZoneInfo(tz)) + timedelta(seconds=1)
    fire: datetime = trigger.get_next_fire_time(None, after)
    return fire


def parse_window(text: str, now: datetime, tz: str) -> tuple[datetime | None, datetime | None]:
    """A ``(since, until)`` window from "since yesterday", "last 24 hours", "this week"..."""
    english = zh_to_en(text) if re.search(r"[\u4e00-\u9fff]", text) else text
    english = re.sub(r"(?:过去|最近)\s*(\d+)\s*(?:个)?小时", r" last \1 hours ", english)
    english = re.sub(r"(?:过去|最近)\s*(?:一|1)\s*周|最近一星期", " last week ", english)
    english = re.sub(r"(\w+)\s*以来", r" since \1 ", english)
    english = re.sub(r"本周|这周", " this week ", english)
    lowered = english.lower()
    local_now = now.astimezone(ZoneInfo(tz))
    midnight = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    match = re.search(
        r"\b(?:last|past|previous)\s+(\d+|a|an|one|two|three|few)?\s*"
        r"(minutes?|hours?|days?|weeks?|months?)\b",
        lowered,
    )
    if match and not re.search(
        r"\blast\s+\d+\s+messages?\b", lowered[match.start() : match.end() + 10]
    ):
        amount_word = match.group(1) or "1"
        amount = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "few": 3}.get(amount_word)
        count = amount if amount is not None else int(amount_word)
        unit = match.group(2).rstrip("s")
        delta = {
            "minute": timedelta(minutes=count), "hour": timedelta(hours=count),
            "day": timedelta(days=count), "week": timedelta(weeks=count),
            "month": timedelta(days=30 * count),
        }[unit]  # fmt: skip
        return local_now - delta, None
    between = re.search(r"\bbetween\s+(.+?)\s+and\s+(.+?)(?:[.,;?!]|$)", english, re.IGNORECASE)
    if between:
        start = parse_point(between.group(1), now, tz, prefer="past")
        end = parse_point(between.group(2), now, tz, prefer="past")
        if start is not None and end is not None:
            start = start.replace(hour=0, minute=0, second=0, microsecond=0)
            end = end.replace(hour=23, minute=59, second=59, microsecond=0)
            return start, end
    if re.search(r"\btoday\b|\btoday's\b", lowered):
        return midnight, None
    if re.search(r"\blast night\b", lowered):
        return midnight - timedelta(hours=6), None
    if re.search(r"\bthis week\b", lowered):
        return midnight - timedelta(days=local_now.weekday()), None
    since = re.search(
        r"\b(?:since|from)\s+(.+?)(?:\s+(?:in|on|for|and|to|until)\b|[.,;?!]|$)",
        english,
        re.IGNORECASE,
    )
    if since:
        phrase = since.group(1).strip()
        point = parse_point(phrase, now, tz, prefer="past")
        if point is not None:
            if point > local_now:
                point -= timedelta(days=7)
            if not re.search(r"\d\s*(?::\d\d|am|pm)|\bago\b|hours?|minutes?", phrase.lower()):
                point = point.replace(hour=0, minute=0, second=0, microsecond=0)
            return point.astimezone(ZoneInfo(tz)), None
    return None, None
