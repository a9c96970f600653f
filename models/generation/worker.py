"""The generation worker: claim → prompt → generate (concurrently) → store, with leases.

The worker claims up to ``generator.capacity`` ready tasks, runs one ``generate`` call per
task concurrently (the backend batches them), writes throttled progress, heartbeats its
leases and stores results. A task whose worker dies comes back when its lease expires
(the scheduler's reaper); a clean stop releases what it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot import logcontext
from models.generation.base import (
    GenerationError,
    Generator,
    GeneratorUnavailable,
    PromptBuilder,
)
from models.generation.observe import NoObserver, WorkerObserver
from models.generation.variants import VariantPicker
from storage.health import OutageLog, is_outage
from storage.repository import Repository
from storage.tables import Task, TaskStatus

log = logging.getLogger(__name__)


def default_worker_id() -> str:
    """``host:pid:random`` — unique per worker process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class PartialThrottle:
    """When the text generated so far is stored again (``Task.partial``).

    A partial is due once *both* ``interval`` seconds and ``tokens`` tokens have passed since
    the last one ("whichever comes later"), so a fast model does not write a row per second
    per token and a slow one does not write a row per token. The first one is the exception:
    it is due as soon as there is any visible text, so the first words reach the chat one
    delivery tick after the model produced them (well within a second on CPU with the tiny
    model), instead of after ``tokens`` tokens, which on a slow model can take seconds.
    """

    interval: float = 0.5
    tokens: int = 64
    _stored_tokens: int | None = None
    _stored_at: float = 0.0
    #: Whether a stored partial held a word yet (a letter, digit or CJK character).
    _worded: bool = False

    def due(self, tokens: int, text: str, now: float) -> bool:
        """Whether a partial of ``tokens`` tokens (``text``) should be stored at ``now``."""
        if not text.strip():
            return False
        if self._stored_tokens is None:
            return True
        if not self._worded and tokens > self._stored_tokens and has_word(text):
            return True  # the first partial held only punctuation: the first word at once
        return (
            tokens - self._stored_tokens >= self.tokens and now - self._stored_at >= self.interval
        )

    def stored(self, tokens: int, now: float, text: str | None = None) -> None:
        """Record that a partial of ``tokens`` tokens (``text``; not given: one with words)
        was stored at ``now``."""
        self._stored_tokens = tokens
        self._stored_at = now
        self._worded = self._worded or text is None or has_word(text)


def has_word(text: str) -> bool:
    """Whether ``text`` holds a word character (a letter, digit or CJK character)."""
    return any(ch.isalnum() for ch in text)


@dataclass
class _Running:
    task: Task
    tokens: int = 0
    #: The text generated so far (the backend reports it whole, not as a delta).
    text: str = ""
    max_tokens: int = 1
    handle: asyncio.Task[None] | None = None
    #: Set when the backend reported new tokens (the writer wakes on it).
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    throttle: PartialThrottle = field(default_factory=PartialThrottle)


@dataclass
class Worker:
    """Runs generative tasks from the shared queue on one generator.

    ``prompts`` builds each task's generation request (the task-kind registry) and
    ``kinds`` are the task kinds this worker claims (the registry's generative kinds).
    """

    repo: Repository
    generator: Generator
    prompts: PromptBuilder
    kinds: Sequence[str]
    worker_id: str = field(default_factory=default_worker_id)
    lease_seconds: float = 60.0
    poll_seconds: float = 0.5
    progress_interval: float = 0.5
    #: The partial-text throttle (ATOMBOT_STREAM_INTERVAL / ATOMBOT_STREAM_TOKENS): a new
    #: ``Task.partial`` at most every this many seconds *and* this many tokens.
    stream_interval: float = 0.5
    stream_tokens: int = 64
    #: The clock of the throttles (monotonic seconds); tests pass their own.
    clock: Callable[[], float] = time.monotonic
    backoff_seconds: float = 2.0
    release_grace_seconds: float = 10.0
    _running: dict[int, _Running] = field(default_factory=dict)
    _unavailable: str | None = None
    _started: bool = False
    _loaded: bool = False
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    #: Called after partial text or a result was stored (the app wakes its delivery job
    #: with it, so streamed words reach the chat without waiting for the next poll).
    on_stored: Callable[[], None] | None = None
    #: Told about claims, generations and final outcomes (the bot's metrics).
    observer: WorkerObserver = field(default_factory=NoObserver)
    _outage: OutageLog = field(default_factory=lambda: OutageLog(log, "worker"))
    #: Chooses each task's prompt variant (Thompson sampling on its tenant's votes); one on
    #: ``repo`` is made when none is given.
    variant_picker: VariantPicker | None = None

    async def start(self) -> None:
        """Load the model once; on failure remember why, so tasks fail with that reason."""
        if self._started:
            return
        self._started = True
        try:
            await self.generator.start()
            self._loaded = True
            log.info("worker %s ready (capacity %d)", self.worker_id, self.generator.capacity)
        except GeneratorUnavailable as exc:
            self._unavailable = exc.reason
            log.error("text model unavailable, tasks will fail with this reason: %s", exc.reason)

    @property
    def model_status(self) -> tuple[bool, str]:
        """(ready, why): the model is loaded, still loading, or unavailable (with the reason)."""
        if self._unavailable is not None:
            return False, f"unavailable: {self._unavailable}"
        if not self._loaded:
            return False, "loading" if self._started else "not started"
        return True, "loaded"

    def _stored(self) -> None:
        if self.on_stored is not None:
            self.on_stored()

    def wake(self) -> None:
        """Claim now instead of at the next poll (called when new tasks were queued)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then finish or release what is held."""
        await self.start()
        heartbeat = asyncio.create_task(self._heartbeat(stop))
        try:
            while not stop.is_set():
                claimed = await self._step_through_outages()
                if not claimed:
                    self._wake.clear()
                    waiters = [
                        asyncio.ensure_future(stop.wait()),
                        asyncio.ensure_future(self._wake.wait()),
                    ]
                    await asyncio.wait(
                        waiters, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED
                    )
                    for w in waiters:
                        w.cancel()
        finally:
            await self._drain()
            heartbeat.cancel()

    async def _step_through_outages(self) -> int:
        """:meth:`step`, but a database outage is logged once and waited out, not raised."""
        try:
            claimed = await self.step()
        except Exception as exc:
            if not is_outage(exc):
                raise
            self._outage.failed(exc)
            return 0
        self._outage.ok()
        return claimed

    async def step(self) -> int:
        """Claim as many tasks as there is room for and start them; returns how many."""
        room = self.generator.capacity - len(self._running) if self._unavailable is None else 64
        if room <= 0:
            return 0
        tasks = await self.repo.claim(
            worker_id=self.worker_id, limit=room, lease_seconds=self.lease_seconds, kinds=self.kinds
        )
        for task in tasks:
            self.observer.claimed(task)
            state = _Running(
                task=task,
                throttle=PartialThrottle(interval=self.stream_interval, tokens=self.stream_tokens),
            )
            self._running[task.id or 0] = state
            state.handle = asyncio.create_task(self._process(state))
        return len(tasks)

    async def run_until_idle(self, timeout: float = 60.0) -> None:
        """Process tasks until none is ready or running (for tests and one-shot CLI use)."""
        await self.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            claimed = await self.step()
            if not claimed and not self._running:
                return
            await asyncio.sleep(0.02 if self._running else 0)
        raise TimeoutError("worker did not become idle in time")

    async def _process(self, state: _Running) -> None:
        task = state.task
        task_id = task.id or 0
        logcontext.begin(
            task_id=task_id, request_id=task.request_id, platform=task.platform, tenant=task.tenant
        )
        progress_writer: asyncio.Task[None] | None = None
        try:
            if self._unavailable is not None:
                await self._fail(
                    task,
                    task_id=task_id,
                    worker_id=self.worker_id,
                    error=f"model_unavailable: {self._unavailable}",
                    retryable=False,
                )
                return
            dep_ids = list(task.depends_on) or [int(i) for i in task.inputs.get("results_of", [])]
            dependencies = await self.repo.tasks_by_ids(dep_ids)
            if self.variant_picker is None:
                self.variant_picker = VariantPicker(self.repo)
            await self.variant_picker.assign(task, self.prompts, worker_id=self.worker_id)
            request = self.prompts.build(task, dependencies)
            state.max_tokens = max(request.max_new_tokens, 1)

            loop = asyncio.get_running_loop()

            def on_progress(tokens: int, text: str) -> None:
                # May run on the backend's thread: only record, the writer coroutine persists.
                state.tokens = tokens
                state.text = text
                loop.call_soon_threadsafe(state.changed.set)

            progress_writer = asyncio.create_task(self._write_progress(state))
            began = time.monotonic()
            result = await self.generator.generate(request, on_progress)
            progress_writer.cancel()
            self.observer.generated(
                task,
                seconds=time.monotonic() - began,
                tokens=result.completion_tokens or state.tokens,
            )
            text = result.text.strip()
            stored = await self.repo.complete(
                task_id=task_id,
                worker_id=self.worker_id,
                result=text,
                variant=task.variant,
                prompt=request.messages,
                tokens=result.completion_tokens or state.tokens or self._count(text),
            )
            if stored:
                self._stored()
                self.observer.finished(task, "succeeded")
                # Figures only: the result text never goes to the log.
                log.info(
                    "task %s %s succeeded in %.1fs", task_id, task.kind, time.monotonic() - began
                )
            else:
                log.info(
                    "task %s finished but is no longer ours (cancelled or lease lost)", task_id
                )
        except asyncio.CancelledError:
            raise
        except GeneratorUnavailable as exc:
            await self._fail(
                task,
                task_id=task_id,
                worker_id=self.worker_id,
                error=f"model_unavailable: {exc.reason}",
                retryable=False,
            )
        except GenerationError as exc:
            log.warning("task %s: generation failed: %s", task_id, exc.reason)
            await self._fail(
                task,
                task_id=task_id,
                worker_id=self.worker_id,
                error=f"generation_failed: {exc.reason}",
                retryable=exc.retryable,
                backoff_seconds=self.backoff_seconds,
            )
        except Exception as exc:
            if is_outage(exc):
                # The lease runs out and the reaper re-queues the task once the database is back.
                self._outage.failed(exc)
                return
            log.exception("task %s: unexpected error", task_id)
            await self._fail(
                task,
                task_id=task_id,
                worker_id=self.worker_id,
                error=f"generation_failed: {type(exc).__name__}: {exc}",
                retryable=True,
                backoff_seconds=self.backoff_seconds,
            )
        finally:
            if progress_writer is not None:
                progress_writer.cancel()
            self._running.pop(task_id, None)

    async def _fail(self, task: Task, **kwargs: Any) -> None:
        """``repo.fail`` (same arguments), telling the observer when the failure is final."""
        updated = await self.repo.fail(**kwargs)
        if updated is not None and updated.status == TaskStatus.failed:
            self.observer.finished(task, TaskStatus.failed)

    def _count(self, text: str) -> int:
        """Tokens of a result whose backend reported none (a remote server without usage)."""
        return self.generator.count_tokens(text) if text else 0

    async def _write_progress(self, state: _Running) -> None:
        """Persist progress (at most every ``progress_interval``) and the partial text (when
        :class:`PartialThrottle` says so) as the backend reports tokens."""
        task_id = state.task.id or 0
        written = -1
        progress_at = self.clock()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.changed.wait(), timeout=self.progress_interval)
            state.changed.clear()
            tokens, text, now = state.tokens, state.text, self.clock()
            partial = state.throttle.due(tokens, text, now)
            if not partial and (tokens == written or now - progress_at < self.progress_interval):
                continue
            try:
                if partial:
                    held = await self.repo.set_partial(
                        task_id=task_id,
                        worker_id=self.worker_id,
                        text=text,
                        progress=tokens / state.max_tokens,
                    )
                    state.throttle.stored(tokens, now, text)
                    if held:
                        self._stored()
                else:
                    held = await self.repo.set_progress(
                        task_id=task_id,
                        worker_id=self.worker_id,
                        progress=tokens / state.max_tokens,
                    )
            except Exception as exc:
                if not is_outage(exc):
                    raise
                self._outage.failed(exc)
                continue
            written, progress_at = tokens, now
            if not held and state.handle is not None:
                # Cancelled by the user (or the lease was lost): stop working on it.
                state.handle.cancel()
                return

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        interval = max(self.lease_seconds / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            if self._running:
                try:
                    await self.repo.heartbeat(
                        worker_id=self.worker_id,
                        task_ids=list(self._running),
                        lease_seconds=self.lease_seconds,
                    )
                except Exception as exc:
                    if not is_outage(exc):
                        raise
                    self._outage.failed(exc)

    async def _drain(self) -> None:
        """Give running tasks a grace period, then release the rest to the queue."""
        handles = [s.handle for s in self._running.values() if s.handle is not None]
        if handles:
            await asyncio.wait(handles, timeout=self.release_grace_seconds)
        for task_id, state in list(self._running.items()):
            if state.handle is not None:
                state.handle.cancel()
            await self.repo.release(task_id=task_id, worker_id=self.worker_id)
            self._running.pop(task_id, None)

    async def close(self) -> None:
        """Release the generator."""
        await self.generator.close()
