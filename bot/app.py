"""The composition root: the one place where atombot's objects are built and wired."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.actions.approval import ApprovalPolicy, Approvals
from bot.actions.registry import build_action_registry
from bot.actions.runner import ActionRunner
from bot.adapters.base import ChatAdapter, Services
from bot.config import Settings
from bot.leader import Leader
from bot.learning import Learning, build_learning
from bot.metrics import Metrics
from bot.ops import OpsServer, Readiness
from bot.router import Router
from bot.scheduler import Jobs, Scheduler
from handlers.kinds import KindRegistry, build_registry
from models.generation.base import (
    GenerationRequest,
    GenerationResult,
    Generator,
    GeneratorUnavailable,
    ProgressCallback,
)
from models.generation.worker import Worker
from models.intents.spec import IntentParser
from storage.builder import open_repository
from storage.repository import Repository

log = logging.getLogger(__name__)


@dataclass
class App:
    """A wired atombot: storage, router, worker, scheduler and adapters."""

    settings: Settings
    repo: Repository
    router: Router
    adapters: dict[str, ChatAdapter]
    scheduler: Scheduler
    jobs: Jobs
    worker: Worker | None
    kinds: KindRegistry
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)
    _worker_task: asyncio.Task[None] | None = None
    #: This app's metrics (its own registry), served by the ops server.
    metrics: Metrics = field(default_factory=Metrics)
    #: Where to serve /metrics, /healthz and /readyz (None: not served; 0: any free port).
    ops_port: int | None = None
    #: The ops server while it runs (after :meth:`start` / :meth:`run_worker`).
    ops: OpsServer | None = None
    #: Learning from corrections (per-tenant classifiers, reload, retraining), when on.
    learning: Learning | None = None
    _learning_task: asyncio.Task[None] | None = None
    #: The action runner (approved emails, replies, invitations), when any action is on.
    actions: ActionRunner | None = None

    def notify(self) -> None:
        """New work was accepted: claim and deliver without waiting for the next poll."""
        if self.worker is not None:
            self.worker.wake()

    async def start_ops(self, *, scheduling: bool = True) -> None:
        """Serve the ops endpoints (if configured); a taken port is a warning, not a crash."""
        if self.ops_port is None or self.ops is not None:
            return
        readiness = Readiness(
            repo=self.repo,
            adapters=self.adapters,
            worker=self.worker,
            scheduler=self.scheduler if scheduling else None,
            endpoint=self.settings.openai_base_url if self.settings.generator == "openai" else None,
        )
        ops = OpsServer(
            metrics=self.metrics,
            readiness=readiness,
            host=self.settings.ops_host,
            port=self.ops_port,
        )
        try:
            await ops.start()
        except OSError as exc:
            log.warning(
                "ops port %s unavailable (%s): /metrics, /healthz and /readyz are off; "
                "set ATOMBOT_OPS_PORT to a free port (0 turns them off)",
                self.ops_port,
                exc.strerror or exc,
            )
            return
        self.ops = ops

    async def run_worker(self) -> None:
        """``atombot worker``: the generation worker (and the ops endpoints) until stopped."""
        assert self.worker is not None
        await self.start_ops(scheduling=False)
        try:
            await self.worker.run(self.stop_event)
        finally:
            if self.ops is not None:
                await self.ops.stop()
                self.ops = None
            await self.worker.close()
            await self.repo.dispose()

    async def start(self) -> None:
        """Start the ops endpoints, the worker, the scheduler jobs and the adapters."""
        await self.start_ops()
        if self.worker is not None:
            self._worker_task = asyncio.create_task(self.worker.run(self.stop_event))
        if self.learning is not None:
            # Corrections and promoted versions apply from the first message on.
            await self.learning.reloader.try_refresh()
            self._learning_task = asyncio.create_task(self.learning.reloader.run(self.stop_event))
        self.jobs.install(
            poll_seconds=self.settings.poll_seconds, lease_seconds=self.settings.lease_seconds
        )
        if self.actions is not None:
            self.scheduler.every(self.settings.poll_seconds, self.actions.tick, job_id="actions")
        self.scheduler.start()
        services = Services(
            router=self.router, repo=self.repo, notify=self.notify, metrics=self.metrics
        )
        for adapter in self.adapters.values():
            await adapter.start(services)

    async def run(self) -> None:
        """Start, then run until stopped (SIGINT/SIGTERM or the console input ends)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop_event.set)
        await self.start()
        try:
            await self.stop_event.wait()
        finally:
            await self.stop()

    async def stop(self) -> None:
        """Stop adapters, scheduler and worker (releasing claimed tasks), close the database."""
        self.stop_event.set()
        if self.ops is not None:
            await self.ops.stop()
            self.ops = None
        for adapter in self.adapters.values():
            with contextlib.suppress(Exception):
                await adapter.stop()
        await self.scheduler.shutdown()
        if self._learning_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._learning_task
            self._learning_task = None
        if self._worker_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker_task
            self._worker_task = None
        if self.worker is not None:
            await self.worker.close()
        await self.repo.dispose()


def build_kinds(settings: Settings, actions: Sequence[str] = ()) -> KindRegistry:
    """The task-kind registry: the built-in kinds plus the intents file's ``task:`` blocks,
    and the action kinds named in ``actions`` (those whose performer is available).

    Raises :class:`~models.intents.IntentsFileError` (naming the file and line) for a bad
    block.
    """
    from models.intents import load_intents

    return build_registry(load_intents(settings.intents), actions=actions)


def build_parser(settings: Settings) -> IntentParser:
    """The intent classifier: loaded from the data directory, trained on first start."""
    from models.intents import IntentClassifier

    return IntentClassifier.load_or_train(
        intents_path=settings.intents,
        cache_dir=settings.data_dir / "intents",
        encoder=settings.encoder,
    )


class UnavailableGenerator:
    """Stands in for a generator whose configuration cannot work: every task fails with why."""

    capacity = 1
    context_length = 0

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def start(self) -> None:
        """Always fails with the configuration problem."""
        raise GeneratorUnavailable(self.reason)

    async def generate(
        self, request: GenerationRequest, on_progress: ProgressCallback | None = None
    ) -> GenerationResult:
        """Always fails with the configuration problem."""
        raise GeneratorUnavailable(self.reason)

    def count_tokens(self, text: str) -> int:
        """Nothing to count with."""
        return 0

    async def close(self) -> None:
        """Nothing to release."""


def build_generator(settings: Settings) -> Generator:
    """The text generator named by the settings (loaded later, in ``Worker.start``).

    When ``ATOMBOT_MODEL`` was not set and the default model cannot be fetched, the offline
    fallback model (``atombot[offline]``) is used if installed.
    """
    from models.generation import build_generator as build
    from models.generation.redact import with_redaction

    try:
        generator = build(
            kind=settings.generator,
            model=settings.model,
            openai_base_url=settings.openai_base_url,
            openai_api_key=settings.openai_api_key,
            device=settings.device,
            max_batch=settings.max_batch,
            adapter=settings.adapter,
            offline_fallback_dir=(
                None
                if "model" in settings.model_fields_set
                else settings.data_dir / "offline-model"
            ),
        )
        # ATOMBOT_REDACT: a bad pattern or region is unavailable, so nothing goes out raw.
        return with_redaction(
            generator,
            mode=settings.redact,
            kind=settings.generator,
            base_url=settings.openai_base_url,
            patterns=settings.redact_patterns,
            regions=settings.redact_regions,
        )
    except GeneratorUnavailable as exc:
        return UnavailableGenerator(exc.reason)


def default_adapters(settings: Settings) -> list[ChatAdapter]:
    """Slack and/or Telegram when their tokens are set, else the console."""
    adapters: list[ChatAdapter] = []
    if settings.slack_enabled:
        from bot.adapters.slack import SlackAdapter

        adapters.append(SlackAdapter(settings))
    if settings.telegram_bot_token:
        from bot.adapters.telegram import TelegramAdapter

        adapters.append(
            TelegramAdapter(
                settings,
                webhook_listen=settings.telegram_webhook_listen,
                webhook_port=settings.telegram_webhook_port,
            )
        )
    if not adapters:
        from bot.adapters.console import ConsoleAdapter

        adapters.append(ConsoleAdapter(timezone=settings.timezone))
    return adapters


async def build_app(
    settings: Settings,
    *,
    parser: IntentParser | None = None,
    generator: Generator | None = None,
    adapters: Sequence[ChatAdapter] | None = None,
    with_worker: bool = True,
    migrate: bool = True,
    ops_port: int | None = None,
    learning: bool | None = None,
) -> App:
    """Build a wired :class:`App`. Tests pass their own parser, generator and adapters.

    ``ops_port`` is where :meth:`App.start` serves the ops endpoints (None: nowhere, 0: any
    free port); the CLI passes ``ATOMBOT_OPS_PORT``. ``learning`` (default: on when the
    parser is built here) reads each tenant with its own classifier version and corrections,
    and registers the retraining job; it needs an ``IntentClassifier`` as the parser.
    """
    chosen = list(adapters) if adapters is not None else default_adapters(settings)
    performers = build_action_registry(settings, {a.platform: a for a in chosen})
    kinds = await asyncio.to_thread(build_kinds, settings, performers.kinds)
    policy = ApprovalPolicy.parse(settings.approvers, settings.approval_hours)
    repo = await open_repository(settings.resolved_database_url(), migrate=migrate)
    if learning is None:
        learning = parser is None
    if parser is None:
        parser = await asyncio.to_thread(build_parser, settings)
    learned = _learning(settings, repo, parser) if learning else None
    if learned is not None:
        parser = learned.parser
    metrics = Metrics(k.name for k in kinds)
    router = Router(
        repo=repo,
        parser=parser,
        max_input_chars=settings.max_input_chars,
        max_attempts=settings.max_attempts,
        kinds=kinds,
        metrics=metrics,
        corrections_mode=settings.corrections_mode,
        approvals=Approvals(repo, kinds, policy),
    )
    adapter_map = {a.platform: a for a in chosen}
    worker = None
    if with_worker:
        worker = Worker(
            repo=repo,
            generator=generator if generator is not None else build_generator(settings),
            prompts=kinds,
            kinds=kinds.generative_kinds,
            lease_seconds=settings.lease_seconds,
            poll_seconds=min(settings.poll_seconds, 1.0),
            stream_interval=settings.stream_interval,
            stream_tokens=settings.stream_tokens,
            observer=metrics,
        )
    # On PostgreSQL only the replica holding the advisory lock runs the jobs.
    scheduler = Scheduler(settings.timezone, leader=Leader(repo))
    jobs = Jobs(
        repo=repo,
        adapters=adapter_map,
        scheduler=scheduler,
        memory_days=settings.memory_days,
        retention_days=settings.retention_days,
        kinds=kinds,
        metrics=metrics,
        retrainer=learned.retrainer if learned is not None else None,
    )
    jobs.deliverer.stream = settings.stream
    if worker is not None:
        # In one process, stored partial text is delivered at once, not at the next poll.
        worker.on_stored = lambda: scheduler.run_soon("deliver")
    return App(
        settings=settings,
        repo=repo,
        router=router,
        adapters=adapter_map,
        scheduler=scheduler,
        jobs=jobs,
        worker=worker,
        kinds=kinds,
        metrics=metrics,
        ops_port=ops_port,
        learning=learned,
        actions=(
            ActionRunner(
                repo,
                performers,
                policy=policy,
                kinds=kinds,
                lease_seconds=max(settings.lease_seconds, 30.0),
            )
            if performers.kinds
            else None
        ),
    )


def _learning(settings: Settings, repo: Repository, parser: IntentParser) -> Learning:
    from models.intents import IntentClassifier

    if not isinstance(parser, IntentClassifier):
        raise TypeError("learning from corrections needs an IntentClassifier as the parser")
    return build_learning(
        repo=repo,
        base=parser,
        data_dir=settings.data_dir,
        intents=settings.intents,
        encoder=settings.encoder,
        retrain_after=settings.retrain_after,
        retrain_cron=settings.retrain_cron,
        timezone=settings.timezone,
        reload_seconds=settings.reload_seconds,
        learn_accepted=settings.learn_accepted,
        accept_after_hours=settings.accept_after_hours,
        accepted_max=settings.accepted_max,
    )


class NoParser:
    """The classifier of a process that classifies nothing (``atombot worker``)."""

    def parse(
        self, text: str, *, now_iso: str | None = None, timezone: str = "UTC", traits: Any = None
    ) -> list[Any]:
        """No tasks, ever."""
        return []


async def build_worker_app(
    settings: Settings, *, generator: Generator | None = None, ops_port: int | None = None
) -> App:
    """The app of ``atombot worker``: storage and a worker; run it with :meth:`App.run_worker`."""
    return await build_app(
        settings, parser=NoParser(), generator=generator, adapters=[], ops_port=ops_port
    )
