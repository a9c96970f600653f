"""SQLModel tables. Every column that a query filters or orders by is indexed."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (how every timestamp is stored)."""
    return datetime.now(UTC)


class TaskStatus(StrEnum):
    """Where a task is in its life: ``queued → running → succeeded | failed``, or cancelled."""

    queued = "queued"
    running = "running"
    #: An action task (send an email, post a reply) waits for a person's approval.
    awaiting_approval = "awaiting_approval"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


TERMINAL_STATUSES = (TaskStatus.succeeded, TaskStatus.failed, TaskStatus.cancelled)


class Request(SQLModel, table=True):
    """One inbound message, stored once per ``(platform, tenant, event_id)``."""

    __table_args__ = (
        UniqueConstraint("platform", "tenant", "event_id", name="uq_request_event"),
        Index("ix_request_chat", "platform", "tenant", "channel", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    tenant: str = Field(max_length=128)
    channel: str = Field(max_length=128)
    thread: str | None = Field(default=None, max_length=128)
    user: str = Field(max_length=128)
    text: str = Field(sa_column=Column(Text, nullable=False))
    event_id: str = Field(max_length=255)
    locale: str = Field(default="en", max_length=8)
    timezone: str = Field(default="UTC", max_length=64)
    private: bool = False
    context: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class Task(SQLModel, table=True):
    """One atomic unit of work with its state, lease, result and retries."""

    __table_args__ = (
        Index("ix_task_claim", "status", "priority", "id"),
        Index("ix_task_updated", "updated_at"),
        Index("ix_task_lease", "status", "lease_expires_at"),
        Index("ix_task_owner", "platform", "tenant", "user", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="request.id", index=True)
    position: int = 0
    kind: str = Field(max_length=64)
    status: str = Field(default=TaskStatus.queued, sa_type=String(24))
    progress: float = 0.0
    inputs: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    result: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    attempts: int = 0
    max_attempts: int = 3
    priority: int = 0
    not_before: datetime | None = None
    lease_owner: str | None = Field(default=None, max_length=128)
    lease_expires_at: datetime | None = None
    depends_on: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    retry_of: int | None = Field(default=None, foreign_key="task.id")
    #: Which prompt variant of its kind the worker used (Thompson-sampled on the kind's votes).
    variant: str | None = Field(default=None, max_length=64)
    #: The chat messages the model was given, kept for training exports (SFT/DPO).
    prompt: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    #: Tokens generated for the result.
    tokens: int | None = None
    #: The text generated so far while the task runs (stored throttled by the worker, so
    #: the delivery job can stream it into the chat); cleared when the result is stored.
    partial: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    partial_at: datetime | None = None
    # Denormalised from the request so ownership checks and listings need no join.
    platform: str = Field(max_length=32)
    tenant: str = Field(max_length=128)
    user: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class TaskDependency(SQLModel, table=True):
    """Edge ``task_id`` waits for ``depends_on_id``: lets the claim query check readiness in SQL."""

    task_id: int = Field(foreign_key="task.id", primary_key=True)
    depends_on_id: int = Field(foreign_key="task.id", primary_key=True, index=True)


class Delivery(SQLModel, table=True):
    """The chat message that shows a request's progress and results, and what it last showed."""

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="request.id", unique=True)
    platform: str = Field(max_length=32)
    tenant: str = Field(max_length=128)
    channel: str = Field(max_length=128)
    thread: str | None = Field(default=None, max_length=128)
    message_id: str | None = Field(default=None, max_length=128)
    last_rendered: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    last_edit_at: datetime | None = None
    parts_sent: int = 0
    done: bool = Field(default=False, index=True)
    failures: int = 0
    next_attempt_at: datetime | None = None
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    #: The client-side id of a post that may be in flight (the message while ``message_id``
    #: is None, else follow-up part ``parts_sent``), recorded before the platform call: after
    #: a crash it finds the post that went out instead of posting it again.
    posting: str | None = Field(default=None, max_length=64)
    posting_since: datetime | None = None
    #: The platform's id of the live stream (Slack stream message ts, Telegram draft id)
    #: showing this request's text while it is generated; None when not streaming.
    stream_id: str | None = Field(default=None, max_length=128)
    #: ``open`` while streaming, ``closed`` once the final message replaced it,
    #: ``fallback`` when the platform refused streaming and edits are used instead.
    stream_state: str | None = Field(default=None, sa_type=String(16))
    #: What the stream already shows, per task id (characters appended, statuses), so a
    #: restart appends only what is missing.
    streamed: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    stream_since: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Feedback(SQLModel, table=True):
    """One user's rating of one task: +1 or -1; a new vote replaces the old one."""

    __table_args__ = (UniqueConstraint("task_id", "user", name="uq_feedback_task_user"),)

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id", index=True)
    user: str = Field(max_length=128)
    score: int
    #: Why a 👎: one of ``FEEDBACK_REASONS`` (None for a 👍 or an unexplained 👎).
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    #: The voter's own words, when they added any.
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


#: Why a result got a 👎 (what the "why?" menu offers).
FEEDBACK_REASONS = ("wrong_kind", "content", "too_long", "too_short", "wrong_language")


class CorrectionStatus(StrEnum):
    """``active`` corrections train the classifier; ``pending`` ones await review."""

    active = "active"
    pending = "pending"


class Correction(SQLModel, table=True):
    """A person's fix of a misread request: this text is of that kind (``oos``: not a request).

    Corrections are training examples of their tenant (``platform`` + ``tenant``)."""

    __table_args__ = (Index("ix_correction_scope", "platform", "tenant", "status", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    tenant: str = Field(max_length=128)
    channel: str = Field(max_length=128)
    user: str = Field(max_length=128)
    text: str = Field(sa_column=Column(Text, nullable=False))
    wrong_kind: str | None = Field(default=None, max_length=64)
    right_kind: str = Field(max_length=64)
    task_id: int | None = Field(default=None, foreign_key="task.id", index=True)
    status: str = Field(default=CorrectionStatus.active, sa_type=String(16))
    created_at: datetime = Field(default_factory=utcnow, index=True)


class DigestSubscription(SQLModel, table=True):
    """A scheduled recap of a channel: cron fields, timezone and what it covers."""

    __table_args__ = (UniqueConstraint("platform", "tenant", "channel", name="uq_digest_channel"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    tenant: str = Field(max_length=128)
    channel: str = Field(max_length=128)
    user: str = Field(max_length=128)
    cron: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    timezone: str = Field(default="UTC", max_length=64)
    scope: str = Field(default="channel", max_length=32)
    locale: str = Field(default="en", max_length=8)
    last_window_end: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class ChatMessage(SQLModel, table=True):
    """A message the bot saw in a chat, kept for summaries (platforms without history APIs)."""

    __table_args__ = (
        UniqueConstraint("platform", "tenant", "channel", "message_id", name="uq_chat_message"),
        Index("ix_chat_message_time", "platform", "tenant", "channel", "sent_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    tenant: str = Field(max_length=128)
    channel: str = Field(max_length=128)
    message_id: str = Field(max_length=128)
    thread: str | None = Field(default=None, max_length=128)
    reply_to: str | None = Field(default=None, max_length=128)
    author: str = Field(max_length=255)
    text: str = Field(sa_column=Column(Text, nullable=False))
    sent_at: datetime = Field(default_factory=utcnow)


class ChatSetting(SQLModel, table=True):
    """Per-chat switches, e.g. the opt-out from chat memory."""

    __table_args__ = (UniqueConstraint("platform", "tenant", "channel", name="uq_chat_setting"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    tenant: str = Field(max_length=128)
    channel: str = Field(max_length=128)
    memory_opt_out: bool = False
    #: The chat's requests and results never go into training exports.
    training_opt_out: bool = False
    updated_at: datetime = Field(default_factory=utcnow)


class Reminder(SQLModel, table=True):
    """A one-shot or recurring reminder; fired by the scheduler when ``next_fire_at`` passes."""

    __table_args__ = (Index("ix_reminder_due", "active", "next_fire_at"),)

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id", unique=True)
    platform: str = Field(max_length=32)
    tenant: str = Field(max_length=128)
    channel: str = Field(max_length=128)
    thread: str | None = Field(default=None, max_length=128)
    user: str = Field(max_length=128)
    what: str = Field(sa_column=Column(Text, nullable=False))
    next_fire_at: datetime
    recurrence: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    timezone: str = Field(default="UTC", max_length=64)
    locale: str = Field(default="en", max_length=8)
    active: bool = True
    fired_count: int = 0
    created_at: datetime = Field(default_factory=utcnow)


class NoticeStatus(StrEnum):
    """Where a notice is: ``pending → sending → sent``, back to ``pending`` after a refused
    send (retried later), ``failed`` when given up."""

    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"


class Notice(SQLModel, table=True):
    """A reminder or digest message to send exactly once.

    Recorded in the transaction that claims the firing (so it is never lost), then sent and
    retried with backoff by the scheduler. ``client_id`` goes with every post so that, after
    a crash mid-send, the platform can be asked whether it went out (see ``bot/notices.py``).
    """

    __table_args__ = (Index("ix_notice_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    #: What it is the message of (``reminder:<id>:<fire time>``, ``digest:<id>:<window end>``).
    key: str = Field(max_length=255, unique=True)
    client_id: str = Field(max_length=64, unique=True)
    platform: str = Field(max_length=32)
    tenant: str = Field(max_length=128)
    channel: str = Field(max_length=128)
    thread: str | None = Field(default=None, max_length=128)
    text: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default=NoticeStatus.pending, sa_type=String(16))
    #: Parts of a long text already posted (each part is one message with its own id).
    parts_sent: int = 0
    attempts: int = 0
    next_attempt_at: datetime | None = None
    sending_since: datetime | None = None
    message_id: str | None = Field(default=None, max_length=128)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None


class AuditEntry(SQLModel, table=True):
    """Who did what, when, in which tenant. Holds ids and redacted text, never raw messages.

    ``action`` is a dotted name (``request.accepted``, ``task.cancelled``, ``vote``,
    ``correction``, ``export``, ``forget``, ``purge``, ``approval.approved``, ...);
    ``subject`` names what it was done to (``task:12``, ``chat:slack/T1/C9``)."""

    __table_args__ = (
        Index("ix_audit_time", "at"),
        Index("ix_audit_scope", "platform", "tenant", "at"),
        Index("ix_audit_actor", "actor", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow)
    platform: str | None = Field(default=None, max_length=32)
    tenant: str | None = Field(default=None, max_length=128)
    #: The user id who acted, or ``system`` / ``cli`` for jobs and admin commands.
    actor: str = Field(max_length=128)
    action: str = Field(max_length=64)
    subject: str | None = Field(default=None, max_length=255)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class ActionState(StrEnum):
    """Where an action task's run is: ``new`` (to prepare) → ``asking`` (waits for a detail
    only a person knows) | ``awaiting`` (waits for approval) → ``approved`` → ``prepared``
    (performing, key recorded) → ``committing`` (past the point of no return) → ``done``;
    or ``failed`` / ``rejected`` / ``expired`` / ``cancelled``."""

    new = "new"
    asking = "asking"
    awaiting = "awaiting"
    approved = "approved"
    prepared = "prepared"
    committing = "committing"
    done = "done"
    failed = "failed"
    rejected = "rejected"
    expired = "expired"
    cancelled = "cancelled"


class ActionRun(SQLModel, table=True):
    """The approval and exactly-once bookkeeping of one action task (send an email, post a
    reply): the text to carry out, who may and who did approve it, the idempotency key
    recorded before performing, attempts with backoff, and the outcome."""

    __table_args__ = (
        Index("ix_actionrun_due", "state", "next_attempt_at"),
        Index("ix_actionrun_expiry", "state", "expires_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id", unique=True)
    kind: str = Field(max_length=64)
    platform: str = Field(max_length=32)
    tenant: str = Field(max_length=128)
    #: The user who asked for it (may approve it, like those in ATOMBOT_APPROVERS).
    requester: str = Field(max_length=128)
    state: str = Field(default=ActionState.new, sa_type=String(16))
    #: The text version: 1 for the draft, one more per edit (part of the idempotency key).
    version: int = 1
    #: The text to carry out: the draft's result, or what a person put in its place.
    draft: str = Field(default="", sa_column=Column(Text, nullable=False))
    #: The slots the performer resolved (recipients, ...) plus answers people gave.
    slots: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    #: What is being asked (``recipient:Dana``) while ``asking``.
    asking: str | None = Field(default=None, max_length=255)
    #: The idempotency key, recorded when approved (``atombot-<task>-<version>``).
    key: str | None = Field(default=None, max_length=128)
    approved_by: str | None = Field(default=None, max_length=128)
    approved_at: datetime | None = None
    #: Past this an approval (or an answer) is no longer accepted.
    expires_at: datetime | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    lease_owner: str | None = Field(default=None, max_length=128)
    lease_expires_at: datetime | None = None
    #: What the performer reported (ids for the audit log, never message text).
    outcome: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


# slack_sdk's installation and OAuth state tables share this metadata (migrations, schema check).
import storage.slack_tables  # noqa: E402, F401
