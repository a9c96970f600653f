"""Slot extraction: the details each intent needs, from one clause of a message.

Slot names are a contract with the handlers (see the issue): email.draft ``recipients``,
``topic``, ``tone``, ``length``; reply.draft ``target``, ``text``, ``instructions``;
summarize ``scope``, ``channel``, ``since``, ``until``, ``last_n``, ``text``;
reminder.create ``when``, ``recurrence``, ``what``, ``target``; task.status/cancel
``task_ids``; digest.subscribe ``cron``, ``timezone``, ``channel``, ``weekly``;
digest.unsubscribe ``channel``. Times are ISO-8601 strings with the user's UTC offset.
Kinds declared in the intents file get their declared slots from :func:`generic`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from models.intents import timeparse

_CJK = re.compile(r"[\u4e00-\u9fff]")

# Slack channel mentions "<#C123|sales>" / "<#C123>" or plain "#sales" (not "#42").
_CHANNEL = re.compile(r"<#[A-Z0-9]+(?:\|[^>]*)?>|(?<![\w&])#(?!\d+\b)[\w][\w.-]*")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>|(?<![\w.])@[\w][\w.-]*")
_TASK_ID = re.compile(
    r"#\s?(\d+)\b|\b(?:task|tasks|request|requests|job|jobs|number|no\.?)\s*#?\s*(\d+)"
    r"|任务\s*#?\s*(\d+)|(\d+)\s*号任务",
    re.IGNORECASE,
)
#: Only this much of a clause is searched for times (dates in long pastes are not requests).
_MAX_TIME_TEXT = 500
_TRAILING_ID = re.compile(r"^\s*(?:,|and|&|or|和|、)\s*#?\s*(\d+)\b", re.IGNORECASE)


@dataclass(frozen=True)
class SlotContext:
    """What slot extraction needs besides the clause: the reference time and timezone."""

    now: datetime
    timezone: str


def _channel(text: str) -> str | None:
    match = _CHANNEL.search(text)
    return match.group(0) if match else None


def task_ids(text: str) -> list[int]:
    """Task ids mentioned as "#42", "task 42", "tasks 3 and 4", "任务42", in order."""
    ids: list[int] = []
    for match in _TASK_ID.finditer(text):
        number = next(g for g in match.groups() if g)
        ids.append(int(number))
        rest = text[match.end() :]
        while True:
            more = _TRAILING_ID.match(rest)
            if more is None:
                break
            ids.append(int(more.group(1)))
            rest = rest[more.end() :]
    unique: list[int] = []
    for value in ids:
        if value not in unique:
            unique.append(value)
    return unique


# -- email -------------------------------------------------------------------------------

_TONES = {
    "formal": "formal", "informal": "informal", "casual": "casual", "friendly": "friendly",
    "polite": "polite", "professional": "professional", "apologetic": "apologetic",
    "firm": "firm", "warm": "warm", "diplomatic": "diplomatic", "confident": "confident",
    "enthusiastic": "enthusiastic", "urgent": "urgent", "humorous": "humorous",
    "apology": "apologetic", "正式": "formal", "礼貌": "polite", "客气": "polite",
    "友好": "friendly", "随意": "casual", "委婉": "diplomatic", "专业": "professional",
    "道歉": "apologetic", "强硬": "firm", "热情": "warm",
}  # fmt: skip
_LENGTHS = (
    (r"\b(?:short|brief|quick|concise|succinct|one[- ]line|under three sentences)\b|简短|简单|简要|短",
     "short"),
    (r"\b(?:long|detailed|thorough|comprehensive|in[- ]depth|lengthy)\b|详细|长一点|完整", "long"),
    (r"\b(?:medium|medium[- ]length|moderate)\b|适中", "medium"),
)  # fmt: skip
_GROUPS = (
    "team",
    "everyone",
    "everybody",
    "all",
    "manager",
    "boss",
    "client",
    "clients",
    "customer",
    "customers",
    "vendor",
    "supplier",
    "board",
    "investors",
    "hr",
    "legal",
    "finance",
    "marketing",
    "candidate",
    "landlord",
    "auditors",
    "company",
    "leadership",
    "recruiter",
)
_STOP_AFTER_RECIPIENTS = re.compile(
    r"\s+(?:about|regarding|re:?|on|concerning|that|saying|to\s+(?:say|ask|tell|let|remind|"
    r"explain|confirm|invite|thank)|asking|telling|with|explaining|informing|letting|and\s+"
    r"(?:ask|tell|say|let|remind|explain|confirm|invite|thank)|by\s+email|in\s+a|"
    r"the\s+(?:outcome|result|results|summary|recap|draft|notes|minutes|report)|"
    r"for\s+(?:the|a|me)|,|\.|;|:)\b|[,.;:!?]",
    re.IGNORECASE,
)
_RECIPIENT_LEAD = re.compile(
    r"\b(?:e-?mail(?:\s+to)?|mail(?:\s+to)?|write(?:\s+an?\s+(?:\w+\s+){0,3}e-?mail)?\s+to|"
    r"send(?:\s+an?\s+(?:\w+\s+){0,2}e-?mail)?\s+to|e-?mail\s+for|note\s+to|message\s+to|"
    r"(?:e-?mail|mail|note|message|letter)\s+(?:\w+\s+){0,2}to|let|cc|send|"
    # Ellipsis: "... and another one to Kim about the budget".
    r"(?:another(?:\s+one)?|one\s+more|the\s+same(?:\s+one)?)\s+to)\s+",
    re.IGNORECASE,
)
_ZH_RECIPIENT = re.compile(
    r"(?:给|发给|寄给|抄送)\s*(?P<names>[^，。,.；;：:！!？?\s]+?)\s*"
    r"(?=写|发|起草|说|，|,|。|关于|$|讲|通知|汇报|的)"
)


def _clean_name(raw: str) -> str | None:
    name = raw.strip().strip("'\"“”")
    name = re.sub(r"^(?:the|our|my|a|an)\s+", "", name, flags=re.IGNORECASE)
    name = re.sub(r"'s$", "", name)
    if not name:
        return None
    if _EMAIL.fullmatch(name) or _MENTION.fullmatch(name):
        return name
    words = name.split()
    if len(words) > 4:
        return None
    head_word = words[0].lower()
    if (
        words[0][0].isupper()
        or _CJK.search(name)
        or head_word in _GROUPS
        or (len(words) > 1 and words[-1].lower() in _GROUPS)
    ):
        return raw.strip().strip("'\"“”") if head_word in ("the", "our", "my") else name
    return None


def recipients(text: str) -> list[str]:
    """Names, emails and @mentions of the people an email is for."""
    found: list[str] = []

    def add(value: str | None) -> None:
        if value and value not in found:
            found.append(value)

    if _CJK.search(text):
        for match in _ZH_RECIPIENT.finditer(text):
            for part in re.split(r"和|与|及|、|,|，|&|\band\b", match.group("names")):
                part = part.strip()
                if part and part not in ("我", "我们") and len(part) <= 12:
                    add(part)
    for match in _RECIPIENT_LEAD.finditer(text):
        rest = text[match.end() :]
        stop = _STOP_AFTER_RECIPIENTS.search(rest)
        segment = rest[: stop.start()] if stop else rest
        segment = re.split(r"\s+(?:an?\s+)?(?:e-?mail|mail|note)\b", segment, maxsplit=1)[0]
        for part in re.split(r"\s*(?:,|\band\b|&|\bplus\b)\s*", segment):
            if not part.strip():
                continue
            cleaned = _clean_name(part)
            if cleaned is None:
                # "email Dana the outcome": keep the leading capitalised name only.
                first = part.strip().split()[0] if part.strip() else ""
                cleaned = _clean_name(first) if first[:1].isupper() else None
            add(cleaned)
        if found:
            break
    for match in _EMAIL.finditer(text):
        add(match.group(0))
    for match in _MENTION.finditer(text):
        if not _EMAIL.search(text[max(0, match.start() - 40) : match.end()]):
            add(match.group(0))
    return [r for r in found if r.lower() not in ("me", "i", "us", "them", "him", "her", "it")]


def _tone(text: str) -> str | None:
    lowered = text.lower()
    for word, tone in _TONES.items():
        if (_CJK.search(word) and word in text) or re.search(rf"\b{word}\b", lowered):
            return tone
    return None


def _length(text: str) -> str | None:
    for pattern, value in _LENGTHS:
        if re.search(pattern, text, re.IGNORECASE):
            return value
    return None


def _topic(text: str) -> str | None:
    match = re.search(
        r"\b(?:about|regarding|re:|concerning|on the subject of|explaining|saying|that)\s+(.+)",
        text,
        re.IGNORECASE,
    ) or re.search(r"(?:关于|说明|通知|汇报|说)(.+)", text)
    if match is None:
        match = re.search(
            r"\b(?:the|our)\s+((?:outcome|result|results|summary|recap|notes|report|minutes).*)",
            text,
            re.IGNORECASE,
        )
    if match is None:
        return None
    topic = match.group(1)
    topic = re.split(
        r",?\s+(?:keep it|make it|in a|with a|tone|please)\b|[,，]\s*(?:语气|简短|正式)", topic
    )[0]
    topic = topic.strip(" .,;!?。，")
    return topic or None


def email_slots(text: str, ctx: SlotContext) -> dict[str, Any]:
    """Slots of an ``email.draft`` clause."""
    return {
        "recipients": recipients(text),
        "topic": _topic(text),
        "tone": _tone(text),
        "length": _length(text),
    }


# -- reply -------------------------------------------------------------------------------

_PASTED = re.compile(r"[:：]\s*(?P<text>\S.*)$|[\"“](?P<quoted>[^\"”]{3,})[\"”]", re.DOTALL)


def pasted_text(text: str) -> tuple[str | None, int]:
    """Text pasted after a colon or in quotes, and where it starts (``-1`` when none)."""
    match = _PASTED.search(text)
    if match is None:
        return None, -1
    body = match.group("text") or match.group("quoted")
    if body is None:
        return None, -1
    body = body.strip().strip('"“”')
    if len(body.split()) < 3 and not _CJK.search(body):
        return None, -1
    if _CJK.search(body) and len(body) < 5:
        return None, -1
    start = match.start("text") if match.group("text") else match.start("quoted")
    return body, start


def reply_slots(text: str, ctx: SlotContext) -> dict[str, Any]:
    """Slots of a ``reply.draft`` clause."""
    body, start = pasted_text(text)
    head = text if start < 0 else text[:start]
    if body is not None:
        target = "text"
    elif re.search(
        r"\b(?:message|dm|email|comment|ticket|complaint|question|text)\b|消息|私信|投诉",
        head,
        re.IGNORECASE,
    ):
        target = "message"
    else:
        target = "thread"
    instructions = re.sub(
        r"^(?:please\s+|can you\s+|could you\s+|help me\s+|帮我|请)?"
        r"(?:draft|write|compose|craft|suggest|give me|prepare)?\s*(?:a|an|my)?\s*"
        r"(?:short|quick|polite)?\s*(?:reply|response|answer|回复|回)?\s*"
        r"(?:to|for|on)?\s*(?:this|that|the|his|her|my)?\s*"
        r"(?:thread|message|dm|email|comment|ticket|帖子|消息|讨论串)?",
        "",
        head.strip(),
        flags=re.IGNORECASE,
    ).strip(" :：,，.。")
    return {"target": target, "text": body, "instructions": instructions or None}


# -- summarize ---------------------------------------------------------------------------


def summarize_slots(text: str, ctx: SlotContext) -> dict[str, Any]:
    """Slots of a ``summarize`` clause."""
    body, start = pasted_text(text)
    head = text if start < 0 else text[:start]
    channel = _channel(head)
    if body is not None and len(body) >= 20:
        scope = "text"
    elif channel is not None or re.search(
        r"\b(?:channel|chat|group|room)\b|频道|群", head, re.IGNORECASE
    ):
        scope = "channel"
    else:
        scope = "thread"
        body = None
    if scope != "text":
        body = None
    last_n = None
    count = re.search(
        r"\b(?:last|past|latest|previous)\s+(\d+)\s+(?:messages?|posts?)\b", head, re.IGNORECASE
    )
    count = count or re.search(r"(?:最近|最后|过去)\s*(\d+)\s*条", head)
    if count:
        last_n = int(count.group(1))
    head = head[:_MAX_TIME_TEXT]
    since, until = (
        (None, None) if scope == "text" else timeparse.parse_window(head, ctx.now, ctx.timezone)
    )
    return {
        "scope": scope,
        "channel": channel,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "last_n": last_n,
        "text": body,
    }


# -- reminders ---------------------------------------------------------------------------

_REMIND_LEAD = re.compile(
    r"^(?:please\s+|can you\s+|could you\s+)?(?:set\s+(?:up\s+)?(?:an?\s+)?(?:recurring\s+)?"
    r"(?:alarm\s+)?reminder(?:\s+for)?|create\s+a\s+reminder(?:\s+for)?|add\s+a\s+reminder|"
    r"schedule\s+a\s+reminder(?:\s+for)?|remind|ping|nudge|reminder|don'?t let me forget)\b"
    r"\s*(?:me|us|the\s+(?:channel|team)|this\s+channel|everyone(?:\s+here)?|the\s+group)?",
    re.IGNORECASE,
)


def _reminder_target(text: str) -> str:
    if re.search(
        r"\bremind\s+(?:us|everyone|everybody|the\s+(?:channel|team|group)|this\s+(?:channel|group|chat))\b"
        r"|\bping\s+the\s+channel\b|@channel|@here|提醒大家|提醒团队|提醒频道|提醒所有人",
        text,
        re.IGNORECASE,
    ):
        return "channel"
    return "me"


def _reminder_what(text: str, time_span: tuple[int, int] | None) -> str:
    what = text
    if time_span is not None and time_span[1] > time_span[0]:
        what = what[: time_span[0]] + " " + what[time_span[1] :]
    what = _REMIND_LEAD.sub("", what.strip())
    what = re.sub(
        r"\b(?:every|each)\s+(?:\d+(?:st|nd|rd|th)\s+)?(?:day|weekday|week|month|morning|evening|"
        r"monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?\b"
        r"(?:\s+(?:on\s+the\s+\d+(?:st|nd|rd|th)?|and\s+\w+day))?"
        r"|\b(?:daily|weekly|monthly|on\s+\w+days|weekly\s+on\s+\w+days)\b"
        r"|\bat\s+\d{1,2}(?::\d{2})?\s*(?:am|pm)?\b|\bon\s+the\s+(?:first|\d+(?:st|nd|rd|th)?)\s+of\s+(?:every|each)\s+month\b"
        r"|\b(?:tomorrow|today|tonight|later today|next week)\b",
        " ",
        what,
        flags=re.IGNORECASE,
    )
    what = re.sub(r"\b(?:every|each)\b\s*(?=(?:to|about|that|$)\b)", " ", what, flags=re.IGNORECASE)
    what = timeparse.strip_zh_times(what)
    what = re.sub(r"^(?:提醒我|提醒大家|提醒)", "", what.strip())
    what = re.sub(r"(?:提醒我|提醒大家)", " ", what)
    what = re.sub(r"^\s*(?:to|about|that|for|of|on|:)\s+", "", what.strip(), flags=re.IGNORECASE)
    what = re.sub(r"\s+(?:on|at|in|for|by)\s*$", "", what.strip(), flags=re.IGNORECASE)
    what = re.sub(r"\s+to\s*$", "", what)
    what = re.sub(r"\s{2,}", " ", what).strip(" ,.;:，。")
    return what


def reminder_slots(text: str, ctx: SlotContext) -> dict[str, Any]:
    """Slots of a ``reminder.create`` clause; ``when`` is None when no time was given."""
    # Time phrases sit near the request; the date search is slow on pasted pages of text.
    text = text[:_MAX_TIME_TEXT]
    recurrence = timeparse.parse_recurrence(text)
    zone = timeparse.explicit_timezone(text) or ctx.timezone
    found = timeparse.find_time(text, ctx.now, zone)
    when: datetime | None
    if recurrence is not None:
        when = timeparse.next_fire(recurrence, ctx.now, zone)
    else:
        when = found.when if found is not None else None
    span = (found.start, found.end) if found is not None else None
    return {
        "when": when.isoformat() if when is not None else None,
        "recurrence": recurrence,
        "what": _reminder_what(text, span) or None,
        "target": _reminder_target(text),
    }


# -- tasks and digests -------------------------------------------------------------------


def task_slots(text: str, ctx: SlotContext) -> dict[str, Any]:
    """Slots of ``task.status`` / ``task.cancel``: the ids ([] = latest/all)."""
    return {"task_ids": task_ids(text)}


def digest_subscribe_slots(text: str, ctx: SlotContext) -> dict[str, Any]:
    """Slots of ``digest.subscribe``: cron kwargs (default daily 08:00), timezone, channel."""
    text = text[:_MAX_TIME_TEXT]
    weekly = bool(
        re.search(
            r"\bweekly\b|\bevery\s+week\b|\bweek\b|\b(?:mon|tues|wednes|thurs|fri|satur|sun)days?\b"
            r"|每周|周报|每星期|周[一二三四五六日]",
            text,
            re.IGNORECASE,
        )
    )
    probe = (
        text
        if re.search(r"\bevery\b|\bdaily\b|\bweekly\b|每", text, re.IGNORECASE)
        else ("every week " + text if weekly else "every day " + text)
    )
    cron = timeparse.parse_recurrence(probe) or {"hour": 8, "minute": 0}
    if not re.search(r"\d|noon|morning|evening|night|afternoon|[点點]", text, re.IGNORECASE):
        cron["hour"], cron["minute"] = 8, 0
    if weekly and "day_of_week" not in cron:
        cron["day_of_week"] = "mon"
    cron.pop("day", None)
    ordered = {k: cron[k] for k in ("day_of_week", "hour", "minute") if k in cron}
    return {
        "cron": ordered,
        "timezone": timeparse.explicit_timezone(text) or ctx.timezone,
        "channel": _channel(text),
        "weekly": weekly,
    }


def digest_unsubscribe_slots(text: str, ctx: SlotContext) -> dict[str, Any]:
    """Slots of ``digest.unsubscribe``: the channel, if one is named."""
    return {"channel": _channel(text)}


SlotFn = Callable[[str, SlotContext], dict[str, Any]]

#: Slot extractor per intent (dispatch by dict lookup).
EXTRACTORS: dict[str, SlotFn] = {
    "email.draft": email_slots,
    "reply.draft": reply_slots,
    "summarize": summarize_slots,
    "reminder.create": reminder_slots,
    "task.status": task_slots,
    "task.cancel": task_slots,
    "digest.subscribe": digest_subscribe_slots,
    "digest.unsubscribe": digest_unsubscribe_slots,
}

#: Required slots per intent; an empty value makes the router ask instead of guessing.
REQUIRED: dict[str, tuple[str, ...]] = {
    "email.draft": ("recipients",),
    "reminder.create": ("when",),
}


def extract(intent: str, text: str, ctx: SlotContext) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``(slots, missing)`` for one clause classified as ``intent``."""
    extractor = EXTRACTORS.get(intent)
    slots = extractor(text, ctx) if extractor is not None else {}
    missing = tuple(name for name in REQUIRED.get(intent, ()) if not slots.get(name))
    return slots, missing


# -- kinds declared in the intents file --------------------------------------------------

#: Slot names of intents-file kinds read as a point in time ("deadline: Friday at 5").
TIME_SLOTS = frozenset({"when", "time", "date", "deadline", "due", "start", "end", "day"})
_FOR_TOPIC = re.compile(r"\b(?:for|on|of)\s+(?:the\s+|our\s+|a\s+)?(.+)", re.IGNORECASE)
_ZH_FOR_TOPIC = re.compile(r"(?:为|给|针对)(.+?)(?:写|做|起草|准备|制定)")


def generic(names: list[str], text: str, ctx: SlotContext) -> dict[str, Any]:
    """Values of the ``names`` slots an intents-file kind declares, found in ``text``.

    Understood: ``topic`` (after "about"/"regarding"/…, else after "for"/"on"),
    ``recipients`` (names, emails, @mentions), time-like slots (:data:`TIME_SLOTS`, as
    ISO-8601), ``channel``, ``task_ids``, ``tone`` and ``length``. A slot that cannot be
    found is left out, so the router asks for it when it is required.
    """
    found: dict[str, Any] = {}
    for name in names:
        value: Any = None
        if name == "topic":
            value = _topic(text)
            if value is None:
                match = _FOR_TOPIC.search(text) or _ZH_FOR_TOPIC.search(text)
                value = match.group(1).strip(" .,;!?。，") if match else None
        elif name == "recipients":
            value = recipients(text) or None
        elif name in TIME_SLOTS:
            value = reminder_slots(text, ctx)["when"]
        elif name == "channel":
            value = _channel(text)
        elif name == "task_ids":
            value = task_ids(text) or None
        elif name == "tone":
            value = _tone(text)
        elif name == "length":
            value = _length(text)
        if value:
            found[name] = value
    return found
