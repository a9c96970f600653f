"""Telegram commands mapped straight to the task kind they ask for (pure, no I/O).

``/cancel 12`` is a ``task.cancel`` of task 12, whatever the classifier would make of the
text: a command becomes a :class:`~models.intents.spec.TaskSpec` (its slots from the
intent's own slot extractor, run on the command's arguments) that the router takes as is
(``Router.handle(inbound, intent=spec)``), or a :class:`Usage` answer when it cannot be
a request as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from models.intents import slots as extraction
from models.intents.spec import TaskSpec

#: The commands registered with setMyCommands (the order clients show them in).
COMMANDS = (
    "start",
    "help",
    "email",
    "reply",
    "summarize",
    "status",
    "cancel",
    "digest",
    "forget",
    "privacy",
    "training",
)
#: The commands that are requests for a task kind (the others answer at once).
REQUESTS = frozenset({"email", "reply", "summarize", "status", "cancel", "digest"})

_DIGEST_OFF = frozenset({"off", "stop", "unsubscribe", "关闭"})
#: ``/summarize 50``, ``/summarize last 50``, ``/summarize 最近 50 条``.
_LAST = re.compile(r"(?:last\s+|最近\s*)?(\d+)(?:\s*(?:messages?|条))?", re.IGNORECASE)
_IDS = re.compile(r"\d+")
_EMAIL = re.compile(r"\b(e-?mail|邮件)\b", re.IGNORECASE)
_CJK = re.compile(r"[\u3400-\u9fff]")


@dataclass(frozen=True)
class Usage:
    """The command cannot be a request as written: answer with this text key."""

    key: str


def summarize_last(args: str) -> int | None:
    """The count of ``/summarize [last] N``; None for anything else (a time window…)."""
    match = _LAST.fullmatch(args.strip())
    return int(match.group(1)) if match else None


def _spec(
    intent: str,
    text: str,
    args: str,
    *,
    now: datetime,
    timezone: str,
    extract_from: str | None = None,
    fixed: dict[str, Any] | None = None,
) -> TaskSpec:
    """A spec of ``intent`` with the slots its extractor finds in the arguments (or in
    ``extract_from``), ``fixed`` slots on top; ``span`` marks the arguments in ``text``."""
    context = extraction.SlotContext(now=now, timezone=timezone)
    found, _ = extraction.extract(
        intent, extract_from if extract_from is not None else args, context
    )
    slots = {**found, **(fixed or {})}
    missing = tuple(n for n in extraction.REQUIRED.get(intent, ()) if not slots.get(n))
    start = text.rfind(args) if args else -1
    span = (start, start + len(args)) if start >= 0 else (0, 0)
    return TaskSpec(intent=intent, slots=slots, confidence=1.0, span=span, missing=missing)


def command_request(
    command: str, text: str, args: str, *, now: datetime, timezone: str
) -> TaskSpec | Usage:
    """The task ``/command args`` asks for (``text`` is the whole message).

    ``/reply`` must be sent as a reply (the adapter checks that: it is about the message).
    """
    args = args.strip()

    def spec(intent: str, *, probe: str | None = None, **fixed: Any) -> TaskSpec:
        return _spec(
            intent, text, args, now=now, timezone=timezone, extract_from=probe, fixed=fixed
        )

    if command == "email":
        if not args:
            return Usage("tg.usage.email")
        # The recipient reads as one after "email" ("email to Dana"), as the classifier's
        # clause would have it; the intent itself is not in question.
        probe = args if _EMAIL.search(args) or _CJK.search(args) else f"email {args}"
        return spec("email.draft", probe=probe)
    if command == "reply":
        return spec("reply.draft", target="message", text=None, instructions=args or None)
    if command == "summarize":
        probe = "" if summarize_last(args) is not None else args
        return spec("summarize", probe=probe, scope="channel", channel=None, text=None)
    if command in ("status", "cancel"):
        ids = [int(n) for n in _IDS.findall(args)]
        if command == "cancel" and not ids:
            return Usage("tg.usage.cancel")
        return spec(f"task.{command}", task_ids=ids)
    if command == "digest":
        if args.lower() in _DIGEST_OFF:
            return spec("digest.unsubscribe", channel=None)
        return spec("digest.subscribe", probe=args or "at 9am")
    raise ValueError(f"/{command} is not a request")
