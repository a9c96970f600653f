"""Approving, editing and rejecting action tasks (the Approve / Edit / Reject buttons).

Only the requester or a user named in ``ATOMBOT_APPROVERS`` may decide; everyone else is
refused and nothing changes. An approval carries the text version it was shown for (the
button's choice ``v<n>``), so an Approve pressed under an older text is refused instead of
sending a text the presser never saw. Edit asks for the new text (a Slack modal, a Telegram
reply) and then asks for approval again; the same Edit answers a question the performer
asked while preparing ("I don't know Dana's address"). Every decision goes to the audit log
with ids and sizes only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.texts import t
from bot.types import Action, ActionEvent, Reply
from handlers.kinds import KindRegistry
from storage.repo.actions import WAITING_STATES, TaskChange
from storage.repository import Repository
from storage.tables import ActionRun, ActionState, Task, TaskStatus, utcnow


@dataclass(frozen=True)
class ApprovalPolicy:
    """Who may decide on an action besides its requester, and how long approval waits."""

    #: ``U123`` (any platform) or ``slack:U123`` (one platform).
    approvers: frozenset[str] = frozenset()
    hours: float = 24.0

    @classmethod
    def parse(cls, approvers: str, hours: float = 24.0) -> ApprovalPolicy:
        """From ``ATOMBOT_APPROVERS`` (comma separated) and ``ATOMBOT_APPROVAL_HOURS``."""
        names = frozenset(p.strip() for p in approvers.split(",") if p.strip())
        return cls(approvers=names, hours=hours)

    def may_decide(self, run: ActionRun, platform: str, tenant: str, user: str) -> bool:
        """Whether ``user`` may approve, edit or reject ``run``."""
        if run.platform != platform or run.tenant != tenant:
            return False
        return (
            user == run.requester
            or user in self.approvers
            or (f"{platform}:{user}" in self.approvers)
        )

    def expiry(self, now: datetime) -> datetime:
        """When an approval asked for at ``now`` expires."""
        return now + timedelta(hours=self.hours)


def version_choice(version: int) -> str:
    """The Approve button's choice for text ``version``."""
    return f"v{version}"


def fingerprint(text: str) -> str:
    """A short hash of a text for the audit log (the text itself never goes there)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def until_text(when: datetime | None) -> str:
    """An expiry time as the approval message shows it."""
    if when is None:
        return "?"
    return when.strftime("%Y-%m-%d %H:%M UTC")


def preview(draft: str, slots: dict[str, Any], locale: str) -> str:
    """What the approval message shows: where it goes, then the text that will be sent.

    A performer's ``prepare`` may return ``preview`` (a line such as ``To: dana@example.com
    · Subject: …``); otherwise ``recipients`` (a list of names or addresses) is shown.
    """
    lines: list[str] = []
    head = slots.get("preview")
    if isinstance(head, str) and head.strip():
        lines.append(head.strip())
    else:
        recipients = slots.get("recipients")
        if isinstance(recipients, list) and recipients:
            lines.append(t("approval.preview_to", locale, to=", ".join(map(str, recipients))))
    lines.append(t("approval.draft_header", locale))
    lines.append(draft.strip())
    lines.append(t("approval.hint", locale))
    return "\n".join(lines)


def question(asking: str, locale: str) -> str:
    """What to ask for a performer's :class:`~bot.actions.base.NeedsInput` (``what:name``)."""
    what, _, name = asking.partition(":")
    if what == "recipient":
        return t("approval.ask.recipient", locale, name=name)
    return t("approval.ask.generic", locale, what=what, name=name)


def waiting_marker(run: ActionRun, state: str) -> dict[str, Any]:
    """What the task keeps for the renderer while it waits (``task.inputs["approval"]``)."""
    return {"state": state, "version": run.version, "until": until_text(run.expires_at)}


class Approvals:
    """Handles the Approve / Edit / Reject presses and the text sent back by Edit."""

    def __init__(
        self,
        repo: Repository,
        kinds: KindRegistry,
        policy: ApprovalPolicy,
        *,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self.repo = repo
        self.kinds = kinds
        self.policy = policy
        #: Called after an approval or an answer so the runner does not wait for its tick.
        self.wake = wake

    def handles(self, event: ActionEvent) -> bool:
        """Whether this press is for an action task (approve, reject, or an edit)."""
        return event.action in (Action.approve, Action.reject, Action.edit)

    async def handle(self, event: ActionEvent, locale: str) -> Reply:
        """Apply one press (or the text an Edit sent back) and say what happened."""
        task = await self.repo.get_task(event.task_id)
        run = await self.repo.action_run(event.task_id)
        if (
            task is None
            or run is None
            or task.platform != event.platform
            or task.tenant != event.tenant
        ):
            return _say("approval.not_found", locale, id=event.task_id)
        subject = f"task:{task.id}"
        if not self.policy.may_decide(run, event.platform, event.tenant, event.user):
            await self._audit(event, "approval.refused", subject, run, press=event.action.value)
            return _say("approval.not_allowed", locale, id=task.id)
        if run.state not in WAITING_STATES or task.status != TaskStatus.awaiting_approval:
            if run.state == ActionState.expired:
                return _say("approval.expired", locale, id=task.id)
            status = t(f"state.{task.status}", locale)
            return _say("approval.not_waiting", locale, id=task.id, status=status)
        now = utcnow()
        if run.expires_at is not None and _aware(run.expires_at) <= now:
            await self.repo.sweep_actions(now=now)
            await self._audit(event, "approval.expired", subject, run, attempted=event.action.value)
            return _say("approval.expired", locale, id=task.id)
        if event.action == Action.reject:
            return await self._reject(event, task, run, locale)
        if event.action == Action.approve:
            return await self._approve(event, task, run, locale)
        return await self._edit(event, task, run, locale)

    async def _approve(self, event: ActionEvent, task: Task, run: ActionRun, locale: str) -> Reply:
        if run.state != ActionState.awaiting:
            return _say(
                "approval.not_waiting", locale, id=task.id, status=t("state.running", locale)
            )
        if event.choice is not None and event.choice != version_choice(run.version):
            return _say("approval.stale", locale, id=task.id)
        key = f"atombot-{task.id}-{run.version}"
        moved = await self.repo.move_action(
            run_id=run.id or 0,
            from_states=(ActionState.awaiting,),
            to_state=ActionState.approved,
            version=run.version,
            run={"key": key, "approved_by": event.user, "approved_at": utcnow()},
            task=TaskChange(
                status=TaskStatus.running,
                clear_approval=True,
                require=(TaskStatus.awaiting_approval,),
            ),
        )
        if moved is None:
            return _say("approval.stale", locale, id=task.id)
        await self._audit(
            event, "approval.approved", f"task:{task.id}", moved, key=key, version=moved.version
        )
        if self.wake is not None:
            self.wake()
        return _say("approval.approved", locale, id=task.id)

    async def _reject(self, event: ActionEvent, task: Task, run: ActionRun, locale: str) -> Reply:
        moved = await self.repo.move_action(
            run_id=run.id or 0,
            from_states=WAITING_STATES,
            to_state=ActionState.rejected,
            run={"error": f"rejected by {event.user}"},
            task=TaskChange(
                status=TaskStatus.cancelled,
                error="rejected",
                clear_approval=True,
                require=(TaskStatus.awaiting_approval,),
            ),
        )
        if moved is None:
            return _say("approval.stale", locale, id=task.id)
        await self._audit(event, "approval.rejected", f"task:{task.id}", moved)
        return _say("approval.rejected", locale, id=task.id)

    async def _edit(self, event: ActionEvent, task: Task, run: ActionRun, locale: str) -> Reply:
        asking = run.state == ActionState.asking
        if event.comment is None:  # the button: ask for the text
            return Reply(
                question(run.asking or "", locale)
                if asking
                else t("approval.edit_prompt", locale, id=task.id),
                ephemeral=True,
                ask_comment=True,
                comment_task=task.id,
                ask_action=Action.edit,
                ask_prefill=None if asking else run.draft,
                ask_title=t("approval.answer_title" if asking else "approval.edit_title", locale),
            )
        text = event.comment.strip()
        if not text:
            return _say("approval.empty", locale)
        if asking:
            return await self._answer(event, task, run, text, locale)
        version = run.version + 1
        expires = self.policy.expiry(utcnow())
        shown = ActionRun(**{**run.model_dump(), "version": version, "expires_at": expires})
        moved = await self.repo.move_action(
            run_id=run.id or 0,
            from_states=(ActionState.awaiting,),
            to_state=ActionState.awaiting,
            version=run.version,
            run={"draft": text, "version": version, "expires_at": expires},
            task=TaskChange(
                result=preview(text, run.slots, locale),
                approval=waiting_marker(shown, ActionState.awaiting),
                require=(TaskStatus.awaiting_approval,),
            ),
        )
        if moved is None:
            return _say("approval.stale", locale, id=task.id)
        await self._audit(
            event,
            "approval.edited",
            f"task:{task.id}",
            moved,
            version=version,
            chars=len(text),
            sha256=fingerprint(text),
        )
        return _say("approval.edited", locale, id=task.id)

    async def _answer(
        self, event: ActionEvent, task: Task, run: ActionRun, text: str, locale: str
    ) -> Reply:
        """The person's answer to what the performer asked: prepare again with it."""
        asked = run.asking or ""
        answers = dict(run.slots.get("answers") or {})
        answers[asked] = text
        moved = await self.repo.move_action(
            run_id=run.id or 0,
            from_states=(ActionState.asking,),
            to_state=ActionState.new,
            run={"slots": {**run.slots, "answers": answers}, "asking": None},
            task=TaskChange(
                status=TaskStatus.running,
                clear_approval=True,
                require=(TaskStatus.awaiting_approval,),
            ),
        )
        if moved is None:
            return _say("approval.stale", locale, id=task.id)
        await self._audit(
            event, "approval.answered", f"task:{task.id}", moved, asked=asked.partition(":")[0]
        )
        if self.wake is not None:
            self.wake()
        return _say("approval.answered", locale, id=task.id)

    async def _audit(
        self, event: ActionEvent, action: str, subject: str, run: ActionRun, **detail: Any
    ) -> None:
        await self.repo.audit(
            actor=event.user,
            action=action,
            platform=event.platform,
            tenant=event.tenant,
            subject=subject,
            detail={"kind": run.kind, "run": run.id, **detail},
        )


def _say(key: str, locale: str, **values: Any) -> Reply:
    return Reply(t(key, locale, **values), ephemeral=True)


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
