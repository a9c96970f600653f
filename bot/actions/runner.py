"""The action runner: prepares action tasks, asks for approval, and performs approved ones
exactly once.

A scheduler job (:meth:`ActionRunner.tick`, next to delivery) works through the runs:

- ``new``: the draft the task depends on succeeded. ``performer.prepare`` resolves what the
  action needs; a :class:`~bot.actions.base.NeedsInput` asks once in the chat (``asking``),
  otherwise the task waits for approval (``awaiting``) with Approve / Edit / Reject.
- ``approved``: the key ``atombot-<task>-<version>`` is recorded and the run goes
  ``prepared`` *before* ``perform`` is called; the performer calls ``commit`` right before
  its point of no return, which records ``committing`` (refused when the task was cancelled
  meanwhile); then ``done`` with the outcome (the task succeeds with its summary).
- after a crash, a run whose lease expired is taken up again: ``prepared`` is performed
  again with the same key (nothing went out before ``commit``), ``committing`` counts as
  done and is never performed again; the chat says so honestly.

Transient failures (and unexpected exceptions, in ``prepare`` or before ``commit``) are
retried with exponential backoff up to ``max_attempts``; permanent ones, and the last
attempt, fail the task with the reason shown in the chat. Every step goes to the audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from bot.actions.approval import (
    ApprovalPolicy,
    preview,
    question,
    waiting_marker,
)
from bot.actions.base import ActionContext, ActionFailed, ActionOutcome, NeedsInput, Performer
from bot.actions.registry import ActionRegistry
from bot.texts import t
from bot.types import Target
from handlers.kinds import KindRegistry, build_registry
from storage.repo.actions import TaskChange
from storage.repository import Repository
from storage.tables import TERMINAL_STATUSES, ActionRun, ActionState, Task, TaskStatus, utcnow

log = logging.getLogger(__name__)

SYSTEM = "system"


class CommitRefused(Exception):
    """Raised by ``commit`` when the action must not go past its point of no return: the
    task was cancelled meanwhile, or this runner no longer holds the run. A performer lets
    it propagate (nothing has been done yet)."""


def action_key(task_id: int, version: int) -> str:
    """The idempotency key of text ``version`` of action task ``task_id``."""
    return f"atombot-{task_id}-{version}"


class ActionRunner:
    """Works through action runs with a lease; one tick does a bounded amount of work."""

    def __init__(
        self,
        repo: Repository,
        performers: ActionRegistry,
        *,
        policy: ApprovalPolicy | None = None,
        kinds: KindRegistry | None = None,
        owner: str | None = None,
        lease_seconds: float = 60.0,
        max_attempts: int = 5,
        backoff_seconds: float = 2.0,
        max_backoff_seconds: float = 300.0,
        batch: int = 10,
    ) -> None:
        self.repo = repo
        self.performers = performers
        self.policy = policy if policy is not None else ApprovalPolicy()
        self.kinds = kinds if kinds is not None else build_registry(actions=performers.kinds)
        self.owner = owner or f"actions-{uuid.uuid4().hex[:12]}"
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.batch = batch

    async def tick(self) -> int:
        """Expire stale approvals, open runs for ready action tasks, then work on the due
        runs; returns how many runs were worked on."""
        await self.sweep()
        if not self.performers.kinds:
            return 0
        await self.repo.open_action_runs(kinds=self.performers.kinds)
        claimed = await self.repo.claim_action_runs(
            owner=self.owner, lease_seconds=self.lease_seconds, limit=self.batch
        )
        for run, task in claimed:
            try:
                await self._step(run, task)
            except Exception:
                # A bug or an outage: the lease runs out and the run is taken up again.
                log.exception("action run %s (task %s) failed unexpectedly", run.id, run.task_id)
        return len(claimed)

    async def sweep(self) -> int:
        """Expire runs that waited for a person too long; returns how many expired."""
        expired = await self.repo.sweep_actions()
        for run in expired:
            await self._audit(run, "approval.expired", actor=SYSTEM)
        return len(expired)

    # -- one run -----------------------------------------------------------------------

    async def _step(self, run: ActionRun, task: Task) -> None:
        if run.state == ActionState.committing:
            await self._settle(run, task)
            return
        if task.status in TERMINAL_STATUSES:  # cancelled while it waited for the runner
            await self.repo.move_action(
                run_id=run.id or 0,
                from_states=(run.state,),
                to_state=ActionState.cancelled,
                owner=self.owner,
                run={"error": task.error},
            )
            return
        performer = self.performers.get(run.kind)
        if performer is None:
            await self._failed(run, ActionFailed("action not available", permanent=True))
            return
        if run.state == ActionState.new:
            await self._prepare(run, task, performer)
        else:
            await self._perform(run, task, performer)

    async def _prepare(self, run: ActionRun, task: Task, performer: Performer) -> None:
        ctx = await self._context(run, task, action_key(task.id or 0, run.version))
        try:
            resolved = await performer.prepare(ctx)
        except NeedsInput as need:
            await self._ask(run, ctx, need)
            return
        except ActionFailed as exc:
            await self._failed(run, exc)
            return
        except Exception as exc:
            # A bug or an outage (the address book, the platform): retried like a transient
            # SMTP failure, with backoff up to ``max_attempts``, then the task fails.
            log.warning("preparing action task %s failed", task.id, exc_info=True)
            reason = t("action.prepare_error", ctx.locale, error=type(exc).__name__)
            await self._failed(run, ActionFailed(reason, permanent=False))
            return
        slots = {**run.slots, **resolved}
        expires = self.policy.expiry(utcnow())
        shown = run.model_copy(update={"expires_at": expires, "slots": slots})
        moved = await self.repo.move_action(
            run_id=run.id or 0,
            from_states=(ActionState.new,),
            to_state=ActionState.awaiting,
            owner=self.owner,
            run={"slots": slots, "expires_at": expires, "asking": None, "error": None},
            task=TaskChange(
                status=TaskStatus.awaiting_approval,
                result=preview(run.draft, slots, ctx.locale),
                approval=waiting_marker(shown, ActionState.awaiting),
                require=(TaskStatus.running,),
            ),
        )
        if moved is not None:
            await self._audit(moved, "action.awaiting_approval", version=moved.version)

    async def _ask(self, run: ActionRun, ctx: ActionContext, need: NeedsInput) -> None:
        asked = f"{need.what}:{need.name}"[:255]
        answers = run.slots.get("answers") or {}
        if asked in answers:  # asked once already: do not ask again and again
            reason = t("action.asked_already", ctx.locale, answer=answers[asked], name=need.name)
            await self._failed(run, ActionFailed(reason, permanent=True))
            return
        expires = self.policy.expiry(utcnow())
        shown = run.model_copy(update={"expires_at": expires})
        moved = await self.repo.move_action(
            run_id=run.id or 0,
            from_states=(ActionState.new,),
            to_state=ActionState.asking,
            owner=self.owner,
            run={"asking": asked, "expires_at": expires},
            task=TaskChange(
                status=TaskStatus.awaiting_approval,
                result=question(asked, ctx.locale),
                approval=waiting_marker(shown, ActionState.asking),
                require=(TaskStatus.running,),
            ),
        )
        if moved is not None:
            await self._audit(moved, "action.asking", asked=need.what)

    async def _perform(self, run: ActionRun, task: Task, performer: Performer) -> None:
        key = run.key or action_key(task.id or 0, run.version)
        started = await self.repo.move_action(
            run_id=run.id or 0,
            from_states=(ActionState.approved, ActionState.prepared),
            to_state=ActionState.prepared,
            owner=self.owner,
            keep_lease=True,
            run={"key": key, "attempts": run.attempts + 1, "next_attempt_at": None},
            task=TaskChange(require=(TaskStatus.running,)),
        )
        if started is None:
            return
        if run.state == ActionState.prepared:
            # Taken up after a crash before the point of no return: safe to do again.
            await self._audit(started, "action.resumed", key=key)
        ctx = await self._context(started, task, key)
        committed = False

        async def commit() -> None:
            nonlocal committed
            moved = await self.repo.move_action(
                run_id=started.id or 0,
                from_states=(ActionState.prepared,),
                to_state=ActionState.committing,
                owner=self.owner,
                keep_lease=True,
                task=TaskChange(require=(TaskStatus.running,)),
            )
            if moved is None:
                raise CommitRefused(f"task {task.id} was cancelled or its run was taken over")
            committed = True

        try:
            async with self._holding(started):
                outcome = await performer.perform(ctx, commit)
        except CommitRefused:
            await self._refused(started)
            return
        except ActionFailed as exc:
            await self._failed(started, exc, committed=committed)
            return
        except Exception as exc:
            if committed:
                raise  # past the point of no return: settled as done after the lease
            await self._failed(started, ActionFailed(type(exc).__name__, permanent=False))
            return
        await self._done(started, outcome)

    async def _done(self, run: ActionRun, outcome: ActionOutcome) -> None:
        moved = await self.repo.move_action(
            run_id=run.id or 0,
            from_states=(ActionState.prepared, ActionState.committing),
            to_state=ActionState.done,
            owner=self.owner,
            run={"outcome": dict(outcome.detail), "error": None},
            task=TaskChange(status=TaskStatus.succeeded, result=outcome.summary),
        )
        if moved is not None:
            await self._audit(moved, "action.done", key=moved.key, **_ids(outcome.detail))

    async def _settle(self, run: ActionRun, task: Task) -> None:
        """A run found in ``committing``: its runner stopped past the point of no return.
        It counts as done (at most once); the chat says so honestly."""
        request = await self.repo.get_request(task.request_id)
        locale = request.locale if request is not None else "en"
        summary = t("action.maybe_done", locale, kind=self.kinds.label(run.kind, locale))
        moved = await self.repo.move_action(
            run_id=run.id or 0,
            from_states=(ActionState.committing,),
            to_state=ActionState.done,
            owner=self.owner,
            run={"outcome": {"assumed": True}},
            task=TaskChange(status=TaskStatus.succeeded, result=summary),
        )
        if moved is not None:
            await self._audit(moved, "action.assumed_done", key=moved.key)

    async def _refused(self, run: ActionRun) -> None:
        moved = await self.repo.move_action(
            run_id=run.id or 0,
            from_states=(ActionState.prepared,),
            to_state=ActionState.cancelled,
            owner=self.owner,
            run={"error": "cancelled before it was carried out"},
        )
        if moved is not None:
            await self._audit(moved, "action.cancelled", key=moved.key)

    async def _failed(self, run: ActionRun, exc: ActionFailed, *, committed: bool = False) -> None:
        """Retry a transient failure later (with backoff), or fail the task for good."""
        if run.state == ActionState.new:
            attempts = run.attempts + 1  # a failed prepare counts too
            retry_state = ActionState.new
        else:
            attempts = run.attempts
            retry_state = ActionState.approved
        states = (
            ActionState.new,
            ActionState.approved,
            ActionState.prepared,
            ActionState.committing,
        )
        reason = exc.reason[:500]
        if not exc.permanent and attempts < self.max_attempts:
            delay = exc.retry_after
            if delay is None:
                delay = min(
                    self.backoff_seconds * 2 ** max(attempts - 1, 0), self.max_backoff_seconds
                )
            moved = await self.repo.move_action(
                run_id=run.id or 0,
                from_states=states,
                to_state=retry_state,
                owner=self.owner,
                run={
                    "attempts": attempts,
                    "error": reason,
                    "next_attempt_at": utcnow() + timedelta(seconds=delay),
                },
                task=TaskChange(error=f"action_failed: {reason}"),
            )
            if moved is not None:
                await self._audit(
                    moved,
                    "action.retry",
                    attempt=attempts,
                    delay=round(delay, 3),
                    committed=committed,
                )
            return
        moved = await self.repo.move_action(
            run_id=run.id or 0,
            from_states=states,
            to_state=ActionState.failed,
            owner=self.owner,
            run={"attempts": attempts, "error": reason},
            task=TaskChange(
                status=TaskStatus.failed, error=f"action_failed: {reason}", clear_approval=True
            ),
        )
        if moved is not None:
            await self._audit(
                moved,
                "action.failed",
                attempt=attempts,
                permanent=exc.permanent,
                committed=committed,
            )

    # -- helpers -----------------------------------------------------------------------

    async def _context(self, run: ActionRun, task: Task, key: str) -> ActionContext:
        request = await self.repo.get_request(task.request_id)
        slots: dict[str, Any] = {k: v for k, v in task.inputs.items() if k != "approval"}
        slots.update(run.slots)
        if request is None:
            target = Target(platform=task.platform, tenant=task.tenant, channel="", user=task.user)
            return ActionContext(
                task_id=task.id or 0,
                kind=run.kind,
                key=key,
                draft=run.draft,
                slots=slots,
                requester=run.requester,
                target=target,
            )
        name = request.context.get("user_name")
        return ActionContext(
            task_id=task.id or 0,
            kind=run.kind,
            key=key,
            draft=run.draft,
            slots=slots,
            requester=run.requester,
            target=Target(
                platform=request.platform,
                tenant=request.tenant,
                channel=request.channel,
                thread=request.thread,
                user=request.user,
                private=request.private,
            ),
            locale=request.locale,
            requester_name=str(name) if name else None,
            extra={
                "request_id": request.id,
                "version": run.version,
                "approved_by": run.approved_by,
                # The requester's (tenant's) timezone, for times without an offset
                # (calendar.invite); a ``timezone`` slot still wins.
                "timezone": request.timezone,
            },
        )

    @contextlib.asynccontextmanager
    async def _holding(self, run: ActionRun) -> AsyncIterator[None]:
        """Keep the run's lease while its performer works (another runner must not take a
        ``prepared`` run over while it is still being performed)."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(self.lease_seconds / 3)
                await self.repo.renew_action_lease(
                    run_id=run.id or 0, owner=self.owner, lease_seconds=self.lease_seconds
                )

        keeper = asyncio.create_task(renew())
        try:
            yield
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await keeper

    async def _audit(
        self, run: ActionRun, action: str, *, actor: str = SYSTEM, **detail: Any
    ) -> None:
        await self.repo.audit(
            actor=actor,
            action=action,
            platform=run.platform,
            tenant=run.tenant,
            subject=f"task:{run.task_id}",
            detail={"kind": run.kind, "run": run.id, **detail},
        )


def _ids(detail: dict[str, Any]) -> dict[str, Any]:
    """The scalar ids of an outcome (message ids, counts) for the audit log."""
    return {
        k: v for k, v in detail.items() if isinstance(v, str | int | float | bool) and k != "text"
    }
