"""Platform-neutral message types shared by adapters, the router and the scheduler."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

#: Telegram's limit on ``callback_data`` (bytes of UTF-8); Slack's ``action_id`` allows more.
MAX_BUTTON_DATA = 64
#: The ``why`` choice that asks for free text instead of a listed reason.
OTHER_REASON = "other"


class Action(StrEnum):
    """What a button under a result does."""

    rate_up = "up"
    rate_down = "down"
    regenerate = "regen"
    cancel = "cancel"
    #: Why a 👎: ``choice`` is a reason code of ``FEEDBACK_REASONS`` or ``OTHER_REASON``.
    why = "why"
    #: "Wrong kind of task" answered: ``choice`` is the kind meant (``oos``: not a request).
    replan = "kind"
    #: The voter's own words about their vote (a modal or a reply, never a button).
    note = "note"
    #: An action task awaiting approval: carry it out / change its text / drop it.
    approve = "approve"
    edit = "edit"
    reject = "reject"


@dataclass(frozen=True)
class Inbound:
    """One incoming message, translated by an adapter.

    ``event_id`` identifies the platform event (Slack ``event_id``, Telegram ``update_id``,
    a console line number) so a redelivery is recognised. ``context`` carries what a
    handler may need from the platform, already fetched (e.g. thread messages).
    """

    platform: str
    tenant: str
    channel: str
    user: str
    text: str
    event_id: str
    thread: str | None = None
    private: bool = False
    timezone: str = "UTC"
    user_name: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    #: The adapter turns its receipt into the request's progress message, so the delivery
    #: job must not post one of its own while that receipt is being sent.
    adopts_receipt: bool = False


@dataclass(frozen=True)
class ActionEvent:
    """A button press on a result message."""

    platform: str
    tenant: str
    channel: str
    user: str
    action: Action
    task_id: int
    event_id: str
    user_name: str | None = None
    #: What was picked in a menu (a reason, a kind); see :class:`Action`.
    choice: str | None = None
    #: Free text the person wrote (``Action.note``).
    comment: str | None = None


def choice_token(choice: str) -> str:
    """A short stand-in for a choice too long for a button's data (``~`` + 10 hex digits)."""
    return "~" + hashlib.sha1(choice.encode("utf-8")).hexdigest()[:10]


@dataclass(frozen=True)
class Button:
    """A button under a message: its label, what it does to which task, and the choice it
    stands for in a menu (a reason, a kind)."""

    label: str
    action: Action
    task_id: int
    choice: str | None = None

    @property
    def data(self) -> str:
        """A compact token for the platform's callback field (at most 64 bytes).

        A choice that would make it longer is replaced by :func:`choice_token`; whoever
        reads it matches the token against the choices it offers.
        """
        head = f"ab:{self.action.value}:{self.task_id}"
        if self.choice is None:
            return head
        data = f"{head}:{self.choice}"
        if len(data.encode("utf-8")) <= MAX_BUTTON_DATA:
            return data
        return f"{head}:{choice_token(self.choice)}"

    @staticmethod
    def decode(data: str) -> tuple[Action, int, str | None] | None:
        """Decode :attr:`data` into (action, task id, choice); None when it is not ours."""
        parts = data.split(":", 3)
        if len(parts) not in (3, 4) or parts[0] != "ab":
            return None
        try:
            action, task_id = Action(parts[1]), int(parts[2])
        except ValueError:
            return None
        choice = parts[3] if len(parts) == 4 else None
        if choice is not None and not choice:
            return None
        return action, task_id, choice

    @staticmethod
    def parse(data: str) -> tuple[Action, int] | None:
        """Decode :attr:`data` into (action, task id); None for anything that is not ours."""
        decoded = Button.decode(data)
        return None if decoded is None else decoded[:2]


@dataclass(frozen=True)
class Section:
    """A block of a message: optional title line and body text."""

    text: str
    title: str | None = None


@dataclass(frozen=True)
class View:
    """What a message shows: sections of text and rows of buttons.

    ``text`` is the whole message as plain text (what console and notifications show).
    """

    sections: tuple[Section, ...]
    buttons: tuple[tuple[Button, ...], ...] = ()

    @property
    def text(self) -> str:
        """The view flattened to plain text."""
        parts = []
        for section in self.sections:
            parts.append(f"{section.title}\n{section.text}" if section.title else section.text)
        return "\n\n".join(p for p in parts if p)


@dataclass(frozen=True)
class Target:
    """Where the bot writes: a chat (and thread) on a platform."""

    platform: str
    tenant: str
    channel: str
    thread: str | None = None
    user: str | None = None
    private: bool = False


@dataclass(frozen=True)
class Reply:
    """The router's immediate answer to an inbound message or action."""

    text: str
    task_ids: tuple[int, ...] = ()
    duplicate: bool = False
    ephemeral: bool = False
    request_id: int | None = None
    #: Choices offered with the answer (the "why 👎?" menu), rows of buttons.
    buttons: tuple[tuple[Button, ...], ...] = ()
    #: The answer is the next step of the menu it was picked from: shown in its place.
    update_menu: bool = False
    #: Ask the person for free text about ``comment_task`` (a modal, a forced reply).
    ask_comment: bool = False
    comment_task: int | None = None
    #: What the text answers: ``Action.note`` (words about a vote) or ``Action.edit`` (the
    #: new text of a draft awaiting approval). The adapter sends it back as an
    #: :class:`ActionEvent` with this action and the text in ``comment``.
    ask_action: Action = Action.note
    #: Text to start from (the draft being edited); None for an empty field.
    ask_prefill: str | None = None
    #: The modal's title (Slack); None for the adapter's default for ``ask_action``.
    ask_title: str | None = None


class PlanStatus(StrEnum):
    """A task's status as a stream's plan shows it (Slack draws these itself)."""

    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"
    cancelled = "cancelled"
    #: An action waiting for a person's approval.
    waiting = "waiting"


@dataclass(frozen=True)
class PlanItem:
    """One atomic task of a request as the stream's plan shows it."""

    task_id: int
    title: str
    status: PlanStatus


@dataclass(frozen=True)
class StreamUpdate:
    """What a live stream should show now: the plan of the request's tasks and the text
    generated so far (all visible tasks' text, in order, as one markdown string).

    The core keeps track of what the stream already shows; ``delta`` is the part of
    ``text`` that is new since the last call (``text`` always starts with what was shown
    before, so platforms that append use ``delta`` and platforms that replace use
    ``text``). ``changed`` lists the plan items whose status changed since the last call.
    """

    plan: tuple[PlanItem, ...]
    text: str
    delta: str = ""
    changed: tuple[PlanItem, ...] = ()
