"""Action runs: the approval and exactly-once bookkeeping of action tasks.

Every change of a run and of its task happens in one transaction, guarded by the states it
may start from (and the lease or text version it expects), so two presses, two runners or a
press racing a runner never both win. The runner keeps its own lease on the run; the task
stays ``running`` without a task lease while an action is prepared or performed, so the
generation reaper (which re-queues tasks with an expired task lease) leaves it alone.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import aliased

from storage.repo.base import RepoBase
from storage.tables import (
    TERMINAL_STATUSES,
    ActionRun,
    ActionState,
    Task,
    TaskDependency,
    TaskStatus,
    utcnow,
)

#: Run states the runner works on (with a lease): prepare, perform, or settle after a crash.
DUE_STATES = (
    ActionState.new,
    ActionState.approved,
    ActionState.prepared,
    ActionState.committing,
)
#: Run states that wait for a person.
WAITING_STATES = (ActionState.asking, ActionState.awaiting)
#: Run states that are over.
FINAL_STATES = (
    ActionState.done,
    ActionState.failed,
    ActionState.rejected,
    ActionState.expired,
    ActionState.cancelled,
)


@dataclass(frozen=True)
class TaskChange:
    """What to do to the run's task in the same transaction (None fields: leave as is)."""

    status: str | None = None
    result: str | None = None
    error: str | None = None
    #: Stored as ``task.inputs["approval"]`` (what the renderer needs: state, version).
    approval: dict[str, Any] | None = None
    #: Clear ``task.inputs["approval"]`` (the run no longer waits for a person).
    clear_approval: bool = False
    #: The task must be in one of these statuses (else nothing changes).
    require: tuple[str, ...] | None = None


class ActionRuns(RepoBase):
    """Action runs (one per action task): open, lease, move between states, sweep."""

    async def open_action_runs(self, *, kinds: Collection[str], limit: int = 50) -> list[ActionRun]:
        """Start a run for each queued action task whose dependencies all succeeded.

        The run's text is the result of the task it depends on (the newest one when it
        depends on several); the task goes ``running``. Idempotent: a task gets one run.
        """
        if not kinds:
            return []
        now = utcnow()
        dep_task = aliased(Task)
        blocked = (
            select(TaskDependency.task_id)
            .join(dep_task, dep_task.id == TaskDependency.depends_on_id)  # type: ignore[arg-type]
            .where(TaskDependency.task_id == Task.id, dep_task.status != TaskStatus.succeeded)
        )
        has_run = select(ActionRun.id).where(ActionRun.task_id == Task.id)
        query = (
            select(Task)
            .where(
                Task.status == TaskStatus.queued,
                Task.kind.in_(list(kinds)),  # type: ignore[attr-defined]
                or_(Task.not_before.is_(None), Task.not_before <= now),  # type: ignore[union-attr, operator]
                ~exists(blocked),
                ~exists(has_run),
            )
            .order_by(Task.id)  # type: ignore[arg-type]
            .limit(limit)
        )
        if self.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True, of=Task)  # type: ignore[arg-type]
        opened: list[ActionRun] = []
        async with self._sessions() as session:
            tasks = list((await session.execute(query)).scalars().all())
            for task in tasks:
                draft = ""
                if task.depends_on:
                    source = await session.get(Task, max(task.depends_on))
                    draft = (source.result or "") if source is not None else ""
                elif task.inputs.get("results_of"):
                    source = await session.get(Task, max(int(i) for i in task.inputs["results_of"]))
                    draft = (source.result or "") if source is not None else ""
                run = ActionRun(
                    task_id=task.id or 0,
                    kind=task.kind,
                    platform=task.platform,
                    tenant=task.tenant,
                    requester=task.user,
                    draft=draft,
                )
                session.add(run)
                task.status = TaskStatus.running
                task.started_at = task.started_at or now
                task.updated_at = now
                session.add(task)
                opened.append(run)
            await session.commit()
            for run in opened:
                await session.refresh(run)
        return opened

    async def claim_action_runs(
        self, *, owner: str, lease_seconds: float, limit: int = 10
    ) -> list[tuple[ActionRun, Task]]:
        """Lease up to ``limit`` runs the runner should work on now (new, approved, prepared,
        committing; lease free or expired; backoff passed), with their tasks."""
        now = utcnow()
        query = (
            select(ActionRun)
            .where(
                ActionRun.state.in_(list(DUE_STATES)),  # type: ignore[attr-defined]
                or_(
                    ActionRun.lease_expires_at.is_(None),  # type: ignore[union-attr]
                    ActionRun.lease_expires_at < now,  # type: ignore[operator]
                ),
                or_(
                    ActionRun.next_attempt_at.is_(None),  # type: ignore[union-attr]
                    ActionRun.next_attempt_at <= now,  # type: ignore[operator]
                ),
            )
            .order_by(ActionRun.id)  # type: ignore[arg-type]
            .limit(limit)
        )
        if self.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        claimed: list[tuple[ActionRun, Task]] = []
        async with self._sessions() as session:
            runs = list((await session.execute(query)).scalars().all())
            for run in runs:
                task = await session.get(Task, run.task_id)
                if task is None:
                    continue
                run.lease_owner = owner
                run.lease_expires_at = now + timedelta(seconds=lease_seconds)
                run.updated_at = now
                session.add(run)
                claimed.append((run, task))
            await session.commit()
            for run, task in claimed:
                await session.refresh(run)
                await session.refresh(task)
        return claimed

    async def action_run(self, task_id: int) -> ActionRun | None:
        """The run of action task ``task_id``, if it has one."""
        async with self._sessions() as session:
            rows = await session.execute(select(ActionRun).where(ActionRun.task_id == task_id))
            return rows.scalars().first()

    async def action_runs(
        self, *, states: Sequence[str] | None = None, limit: int = 1000
    ) -> list[ActionRun]:
        """Runs, oldest first, optionally only those in ``states``."""
        query = select(ActionRun)
        if states is not None:
            query = query.where(ActionRun.state.in_(list(states)))  # type: ignore[attr-defined]
        async with self._sessions() as session:
            rows = await session.execute(query.order_by(ActionRun.id).limit(limit))  # type: ignore[arg-type]
            return list(rows.scalars().all())

    async def move_action(
        self,
        *,
        run_id: int,
        from_states: Sequence[str],
        to_state: str,
        owner: str | None = None,
        version: int | None = None,
        run: dict[str, Any] | None = None,
        task: TaskChange | None = None,
        keep_lease: bool = False,
    ) -> ActionRun | None:
        """Move a run from one of ``from_states`` to ``to_state`` and change its task, in one
        transaction; None (nothing changed) when the run is elsewhere, ``owner`` no longer
        holds its lease, its text is no longer ``version``, or the task is not in
        ``task.require``. ``run`` sets further run columns. The lease is released unless
        ``keep_lease``."""
        now = utcnow()
        async with self._sessions() as session:
            query = select(ActionRun).where(ActionRun.id == run_id)
            if self.dialect == "postgresql":
                query = query.with_for_update()
            found = (await session.execute(query)).scalars().first()
            if found is None or found.state not in from_states:
                return None
            if owner is not None and found.lease_owner != owner:
                return None
            if version is not None and found.version != version:
                return None
            row = await session.get(Task, found.task_id)
            if row is None:
                return None
            change = task or TaskChange()
            if change.require is not None and row.status not in change.require:
                return None
            for column, value in (run or {}).items():
                setattr(found, column, value)
            found.state = to_state
            found.updated_at = now
            if not keep_lease:
                found.lease_owner = None
                found.lease_expires_at = None
            session.add(found)
            _change_task(row, change, now)
            session.add(row)
            await session.commit()
            await session.refresh(found)
            return found

    async def renew_action_lease(self, *, run_id: int, owner: str, lease_seconds: float) -> bool:
        """Extend the lease ``owner`` holds on a run; False when it no longer holds it."""
        now = utcnow()
        async with self._sessions() as session:
            result = await session.execute(
                update(ActionRun)
                .where(ActionRun.id == run_id, ActionRun.lease_owner == owner)  # type: ignore[arg-type]
                .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
                .execution_options(synchronize_session=False)
            )
            await session.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def sweep_actions(self, *, now: datetime | None = None) -> list[ActionRun]:
        """Expire runs that waited for a person past ``expires_at`` (their task fails with
        ``approval_expired``), and close runs whose task was cancelled or failed meanwhile
        (before its point of no return). Returns the runs expired now."""
        now = now or utcnow()
        expired: list[ActionRun] = []
        async with self._sessions() as session:
            rows = await session.execute(
                select(ActionRun, Task)
                .join(Task, Task.id == ActionRun.task_id)  # type: ignore[arg-type]
                .where(
                    or_(
                        and_(
                            ActionRun.state.in_(list(WAITING_STATES)),  # type: ignore[attr-defined]
                            ActionRun.expires_at < now,  # type: ignore[operator]
                        ),
                        and_(
                            ActionRun.state.in_(  # type: ignore[attr-defined]
                                [*WAITING_STATES, ActionState.new, ActionState.approved]
                            ),
                            Task.status.in_(list(TERMINAL_STATUSES)),  # type: ignore[attr-defined]
                        ),
                    )
                )
            )
            for run, task in rows.all():
                if task.status in TERMINAL_STATUSES:
                    run.state = ActionState.cancelled
                    run.error = task.error
                else:
                    run.state = ActionState.expired
                    run.error = "approval_expired"
                    _change_task(
                        task,
                        TaskChange(
                            status=TaskStatus.failed,
                            error="approval_expired",
                            result=None,
                            clear_approval=True,
                        ),
                        now,
                        clear_result=True,
                    )
                    session.add(task)
                    expired.append(run)
                run.updated_at = now
                session.add(run)
            await session.commit()
            for run in expired:
                await session.refresh(run)
        return expired


def _change_task(
    task: Task, change: TaskChange, now: datetime, *, clear_result: bool = False
) -> None:
    if change.status is not None:
        task.status = change.status
        if change.status in TERMINAL_STATUSES:
            task.finished_at = now
        if change.status == TaskStatus.succeeded:
            task.progress = 1.0
            task.error = None
    if clear_result:
        task.result = None
    if change.result is not None:
        task.result = change.result
    if change.error is not None:
        task.error = change.error
    if change.approval is not None or change.clear_approval:
        inputs = dict(task.inputs)
        if change.clear_approval:
            inputs.pop("approval", None)
        else:
            inputs["approval"] = dict(change.approval or {})
        task.inputs = inputs
    task.updated_at = now
