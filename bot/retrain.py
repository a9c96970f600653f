"""The retraining job: each scope with new or dropped corrections gets a candidate
classifier, saved as a new version with its figures and promoted only if it is not worse.

It runs on the scheduler's leader (nightly on ``ATOMBOT_RETRAIN_CRON``, and once
``ATOMBOT_RETRAIN_AFTER`` new active corrections arrived since the last run) and from
``atombot intents retrain``. Training runs in a thread, so neither the event loop nor the
scheduler's other jobs wait for it; one run at a time (in a process by a lock, across
processes by a lock file). What it learned from is remembered in
``data_dir / "classifiers" / "retrain.json"``: a scope whose active corrections are the
same as at its last retrain is not retrained again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from bot.learning import (
    classifiers_root,
    example_of,
    remember_scope,
    scope_of,
    scopes_on_disk,
    split_scope,
)
from storage.tables import CorrectionStatus, utcnow

if TYPE_CHECKING:
    from bot.scheduler import Scheduler
    from models.intents.learning import CorrectionExample
    from storage.repository import Repository
    from storage.tables import Correction

log = logging.getLogger(__name__)

STATE_FILE = "retrain.json"
LOCK_FILE = ".retrain.lock"
#: How often the leader checks whether enough new corrections arrived (one count query).
CHECK_SECONDS = 30.0
CRON_FIELDS = ("minute", "hour", "day", "month", "day_of_week")


class RetrainBusy(RuntimeError):
    """Another retraining is running (in this process or another one)."""


def cron_fields(expression: str) -> dict[str, str]:
    """APScheduler cron fields of a five-field expression (``"0 3 * * *"``); ValueError
    when it does not have five fields or APScheduler rejects it."""
    from apscheduler.triggers.cron import CronTrigger

    parts = expression.split()
    if len(parts) != len(CRON_FIELDS):
        raise ValueError(f"a cron needs five fields (minute hour day month weekday): {expression}")
    fields = dict(zip(CRON_FIELDS, parts, strict=True))
    CronTrigger(**fields)  # raises ValueError for a bad field
    return fields


@dataclass(frozen=True)
class ScopeResult:
    """What one scope's retraining gave: the saved version, whether it is now in use, the
    version it was compared with (None: the base classifier) and the figures."""

    scope: str
    version: str
    promoted: bool
    previous: str | None
    figures: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "tenant": self.scope,
            "version": self.version,
            "promoted": self.promoted,
            "previous": self.previous,
            "figures": dict(self.figures),
        }


@dataclass
class RunResult:
    """One run of the job: a result per retrained scope, and how long it took."""

    scopes: list[ScopeResult] = field(default_factory=list)
    seconds: float = 0.0


def _digest(rows: list[Correction], readings: list[CorrectionExample] | None = None) -> str:
    """What a scope learned from: its active corrections (ids and labels) and accepted
    readings (task ids)."""
    text = ",".join(f"{row.id}={row.right_kind}" for row in sorted(rows, key=lambda r: r.id or 0))
    if readings:  # without any, the digest stays what it was before accepted readings
        text += "|" + ",".join(str(r.id) for r in sorted(readings, key=lambda r: r.id or 0))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Retrainer:
    """Retrains the scopes whose corrections changed (see the module text)."""

    #: Who runs it, for the audit log: the scheduled job, or ``cli:<name>`` for a command.
    actor: str = "system"

    def __init__(
        self,
        *,
        repo: Repository,
        data_dir: Path,
        intents: Path | None,
        encoder: str | None = None,
        after: int = 50,
        cron: str = "",
        timezone: str = "UTC",
        on_promoted: Callable[[], None] | None = None,
        accepted: bool = True,
        accept_after: timedelta = timedelta(hours=24),
        accepted_max: int = 20_000,
    ) -> None:
        self.repo = repo
        #: Learn from accepted readings too (tasks nobody corrected within ``accept_after``).
        self.accepted = accepted
        self.accept_after = accept_after
        self.accepted_max = accepted_max
        self.data_dir = Path(data_dir)
        self.intents = intents
        self.encoder = encoder
        self.after = after
        self.cron = cron
        self.timezone = timezone
        self.on_promoted = on_promoted
        self._lock = asyncio.Lock()

    @property
    def root(self) -> Path:
        """Where the versions and the job's state live."""
        return classifiers_root(self.data_dir)

    # -- scheduling --------------------------------------------------------------------------

    def install(self, scheduler: Scheduler) -> None:
        """Register the nightly run and the new-corrections check (leader-only jobs)."""
        if self.cron.strip():
            scheduler.cron(
                cron_fields(self.cron), self.timezone, self.nightly, job_id="retrain-nightly"
            )
        if self.after > 0:
            scheduler.every(CHECK_SECONDS, self.run_if_due, job_id="retrain-after")

    async def nightly(self) -> None:
        """The cron run: retrain whatever changed."""
        with contextlib.suppress(RetrainBusy):
            await self.run()

    async def due(self) -> bool:
        """Whether ``after`` new active corrections arrived since the last run."""
        if self.after <= 0:
            return False
        last = int(self._state().get("last_id", 0))
        return await self.repo.count_corrections(after_id=last) >= self.after

    async def run_if_due(self) -> RunResult | None:
        """Run when :meth:`due` (None when not due or another run is going on)."""
        if not await self.due():
            return None
        with contextlib.suppress(RetrainBusy):
            return await self.run()
        return None

    # -- the run -----------------------------------------------------------------------------

    async def run(self, *, scopes: list[str] | None = None, force: bool = False) -> RunResult:
        """Retrain each scope (of ``scopes``, None: all) whose active corrections changed
        since its last retrain; ``force`` retrains them even if nothing changed.

        Raises :class:`RetrainBusy` when a run is already going on.
        """
        if self._lock.locked():
            raise RetrainBusy()
        async with self._lock:
            with _file_lock(self.root / LOCK_FILE):
                return await self._run(scopes, force)

    async def _run(self, wanted: list[str] | None, force: bool) -> RunResult:
        started = time.perf_counter()
        rows = await self.repo.corrections(status=CorrectionStatus.active)
        by_scope: dict[str, list[Correction]] = {}
        for row in rows:
            by_scope.setdefault(scope_of(row.platform, row.tenant), []).append(row)
        state = self._state()
        learned: dict[str, str] = dict(state.get("scopes", {}))
        before = utcnow() - self.accept_after
        with_readings: set[str] = set()
        if self.accepted:
            pairs = await self.repo.accepted_scopes(before=before)
            with_readings = {scope_of(p, t) for p, t in pairs}
        # A scope whose corrections were all dropped still has a version that learned them.
        candidates = sorted(set(by_scope) | set(scopes_on_disk(self.data_dir)) | with_readings)
        if wanted is not None:
            candidates = [s for s in candidates if s in wanted]
        result = RunResult()
        for scope in candidates:
            own = by_scope.get(scope, [])
            readings = await self._readings(scope, before) if scope in with_readings else []
            digest = _digest(own, readings)
            if not force and learned.get(scope) == digest:
                continue
            if not own and not readings and scope not in learned and not force:
                continue
            examples = [example_of(row) for row in own] + readings
            outcome = await asyncio.to_thread(self._retrain_scope, scope, examples)
            result.scopes.append(outcome)
            await self._audit(outcome)
            learned[scope] = digest
            # Saved after each scope: a crash later in the run does not redo this one.
            self._save_state(
                {"last_id": int(state.get("last_id", 0)), "scopes": learned},
            )
        last_id = max([int(state.get("last_id", 0)), *(row.id or 0 for row in rows)])
        self._save_state({"last_id": last_id, "scopes": learned})
        result.seconds = time.perf_counter() - started
        self._log(result)
        if any(s.promoted for s in result.scopes) and self.on_promoted is not None:
            self.on_promoted()
        return result

    async def _readings(self, scope: str, before: datetime) -> list[CorrectionExample]:
        """The scope's accepted readings as training examples (newest ``accepted_max``)."""
        from models.intents.learning import CorrectionExample

        platform, tenant = split_scope(scope)
        rows = await self.repo.accepted_readings(
            platform=platform, tenant=tenant, before=before, limit=self.accepted_max
        )
        return [
            CorrectionExample(r.text, r.intent, scope, r.created_at, id=r.task_id, accepted=True)
            for r in rows
        ]

    async def _audit(self, outcome: ScopeResult) -> None:
        """Record a retrained scope in the audit log: the version, whether it was promoted,
        and its figures (no examples)."""
        platform, tenant = split_scope(outcome.scope)
        await self.repo.audit(
            actor=self.actor,
            action="classifier.promoted" if outcome.promoted else "classifier.kept",
            platform=platform,
            tenant=tenant,
            subject=f"classifier:{outcome.scope}",
            detail={
                "version": outcome.version,
                "previous": outcome.previous,
                "figures": {k: v for k, v in outcome.figures.items() if isinstance(v, int | float)},
            },
        )

    def _retrain_scope(self, scope: str, examples: list[CorrectionExample]) -> ScopeResult:
        """Train, save and maybe promote one scope's candidate (CPU-bound: in a thread)."""
        from models.intents import load_intents
        from models.intents.learning import retrain
        from models.intents.shared import shared_encoder
        from models.intents.versions import VersionStore

        # The encoder's ONNX export of the base classifier (bot.app.build_parser) is reused.
        shared_encoder(self.encoder, cache_dir=self.data_dir / "intents" / "onnx")
        store = VersionStore.for_scope(self.data_dir, scope)
        previous = store.current()
        current = store.load(previous, encoder=self.encoder) if previous else None
        outcome = retrain(
            load_intents(self.intents),
            examples,
            current,
            encoder=self.encoder,
            cache_dir=self.data_dir / "intents" / "onnx",
        )
        remember_scope(store.root, scope)
        info = store.save(
            outcome.candidate,
            figures=outcome.figures,
            corrections=int(outcome.figures.get("corrections_used", len(examples))),
            parent=previous,
        )
        if outcome.promote:
            store.promote(info.version)
        return ScopeResult(scope, info.version, outcome.promote, previous, dict(outcome.figures))

    def _log(self, result: RunResult) -> None:
        # Tenants and figures only: message texts never go to the log at INFO.
        if not result.scopes:
            log.info("retraining: nothing changed (%.1fs)", result.seconds)
            return
        parts = [
            f"{s.scope} {s.version} {'promoted' if s.promoted else 'kept back'} "
            f"({s.figures.get('candidate_accuracy', 0):.3f} vs "
            f"{s.figures.get('current_accuracy', 0):.3f})"
            for s in result.scopes
        ]
        log.info(
            "retraining: %d tenant(s) in %.1fs: %s",
            len(result.scopes),
            result.seconds,
            "; ".join(parts),
        )

    # -- state ---------------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        path = self.root / STATE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save_state(self, data: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / STATE_FILE
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path``; :class:`RetrainBusy` when another process has it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = path.open("a", encoding="utf-8")
    try:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: the in-process lock only
            yield
            return
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise RetrainBusy() from exc
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()
