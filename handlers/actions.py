"""Action kinds: atomic tasks that carry out what an earlier task drafted (send the email,
post the reply, send the invitation), once a person approves.

An action kind is never planned from a message on its own: a drafting kind names the
actions that may follow it (``then`` in the kind registry, ``then:`` in an intents-file
``task:`` block), and :func:`follow_up` adds the first one whose wording the request uses
("email Dana the outcome", "send it", "把结果发邮件给Dana") as a task that depends on the
draft. "Draft an email to Dana" stays a draft. The runner (``bot/actions``) prepares,
asks for approval and performs action tasks; the worker never claims them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.texts import t
from handlers.base import Handler
from models.intents import slots as slot_extraction
from models.intents.taskblock import Localized
from storage.schemas import TaskCreate
from storage.tables import Task

if TYPE_CHECKING:
    from handlers.kinds import KindRegistry, TaskKind

EMAIL_SEND = "email.send"
REPLY_POST = "reply.post"
CALENDAR_INVITE = "calendar.invite"
#: The action kinds atombot knows, in the order a drafting kind tries them.
ACTION_KINDS = (CALENDAR_INVITE, EMAIL_SEND, REPLY_POST)

# Words that ask for a draft only; with them, only an explicit "send" makes it an action.
_DRAFT_WORDS = re.compile(r"\b(draft|write|compose|prepare|create|suggest)\b", re.IGNORECASE)
_SEND_WORD = re.compile(r"\b(send|sent|deliver)\b", re.IGNORECASE)
# "email Dana …", "please mail the team …": "email" as the clause's verb.
_EMAIL_VERB = re.compile(
    r"^(?:(?:and|then|also|please|pls|could you|can you|kindly)\s+)*(?:e-?mail|mail)\s+(?!to\b)",
    re.IGNORECASE,
)
# "… and email it to Dana": an email verb after a conjunction, whatever came before.
_THEN_EMAIL = re.compile(
    r"(?:\band|\bthen|,)\s+(?:please\s+|also\s+)?(?:e-?mail|mail)\s+(?!to\b)", re.IGNORECASE
)
_ZH_SEND = re.compile(r"发送|发邮件|发电邮|发一封|发封|发给|寄给|邮件给|发过去|发出")
_ZH_DRAFT = re.compile(r"起草|草拟|拟一封|写一封|写封|写个|写一份")
_ZH_THEN_SEND = re.compile(r"(?:并|再|然后|之后|后)(?:发送|发出|发给|发)")
_INVITE = re.compile(
    r"\b(invite|invitation|calendar (?:invite|event)|meeting request)\b", re.IGNORECASE
)
_ZH_INVITE = re.compile(r"邀请|会议邀请|日程邀请|日历邀请")
_POST = re.compile(r"\b(post|publish|send)\b|\breply (?:in|to) (?:the|this) thread\b", re.I)
_ZH_POST = re.compile(r"发布|发到|发在|贴到|回复到|直接回复")


def asks_to_send(clause: str) -> bool:
    """Whether a clause asks for an email to go out, not only to be drafted."""
    text = clause.strip()
    if _ZH_SEND.search(text):
        return not _ZH_DRAFT.search(text) or bool(_ZH_THEN_SEND.search(text))
    if _SEND_WORD.search(text) or _THEN_EMAIL.search(text):
        return True
    return bool(_EMAIL_VERB.search(text)) and not _DRAFT_WORDS.search(text)


def asks_to_invite(clause: str) -> bool:
    """Whether a clause asks for a calendar invitation to go out."""
    text = clause.strip()
    if _ZH_INVITE.search(text):
        return not _ZH_DRAFT.search(text) or bool(_ZH_THEN_SEND.search(text))
    if not _INVITE.search(text):
        return False
    return not _DRAFT_WORDS.search(text) or bool(_SEND_WORD.search(text))


def asks_to_post(clause: str) -> bool:
    """Whether a clause asks for a drafted reply to be posted into the thread."""
    text = clause.strip()
    if _ZH_POST.search(text):
        return not _ZH_DRAFT.search(text) or bool(_ZH_THEN_SEND.search(text))
    return bool(_POST.search(text))


#: What in a request's wording calls for each action kind (used for file kinds' ``then``).
TRIGGERS: dict[str, Callable[[str], bool]] = {
    EMAIL_SEND: asks_to_send,
    CALENDAR_INVITE: asks_to_invite,
    REPLY_POST: asks_to_post,
}
#: Slots an action kind needs besides those of the draft (found in the same clause).
EXTRA_SLOTS: dict[str, tuple[str, ...]] = {CALENDAR_INVITE: ("when",)}


class ActionHandler(Handler):
    """The handler of an action kind: its result is the performer's one-line outcome."""

    def render(self, task: Task) -> str:
        """The outcome line (what was sent, to whom)."""
        return (task.result or "").strip()


def _label(name: str) -> Localized:
    return Localized(en=t(f"kind.{name}", "en"), zh=t(f"kind.{name}", "zh"))


def action_kinds(available: Sequence[str]) -> list[TaskKind]:
    """The task kinds of the ``available`` actions (those whose performer has settings)."""
    from handlers.kinds import TaskKind

    handler = ActionHandler()
    return [
        TaskKind(
            name,
            _label(name),
            handler,
            planned=False,
            generative=False,
            consumes="previous",
            action=True,
        )
        for name in ACTION_KINDS
        if name in available
    ]


def follow_up(
    kind: TaskKind,
    clause: str,
    slots: dict[str, Any],
    registry: KindRegistry,
    *,
    now: datetime,
    timezone: str,
) -> TaskCreate | None:
    """The action task to add after ``kind``'s draft, if the clause asks for one and the
    action is available; None otherwise. Its inputs are the draft's slots (recipients,
    topic, …) plus what the action needs of its own (a time for an invitation); the caller
    makes it depend on the draft."""
    for name in kind.then:
        action = registry.get(name)
        if action is None or not action.action:
            continue
        trigger = TRIGGERS.get(name, asks_to_send)
        if not trigger(clause):
            continue
        inputs: dict[str, Any] = {k: v for k, v in slots.items() if k != "results_of"}
        wanted = [s for s in EXTRA_SLOTS.get(name, ()) if not inputs.get(s)]
        if wanted:
            context = slot_extraction.SlotContext(now=now, timezone=timezone)
            inputs.update(slot_extraction.generic(wanted, clause, context))
            if any(not inputs.get(s) for s in wanted):
                continue  # an invitation without a time: try the next action (a plain email)
        inputs["draft_kind"] = kind.name
        return TaskCreate(kind=name, inputs=inputs)
    return None
