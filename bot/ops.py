"""The operations HTTP server: ``/metrics``, ``/healthz`` and ``/readyz`` on ``ATOMBOT_OPS_PORT``.

It runs in every mode of ``atombot run`` (console, Slack over HTTP or Socket Mode, Telegram
polling or webhook) and in ``atombot worker``, on its own port — separate from Slack's
events endpoint. Each process serves its own metrics.

- ``/healthz`` answers 200 while the process is alive (its event loop turns).
- ``/readyz`` answers 200 only when every check passes, else 503; the JSON body lists each
  check with ``ok`` and a short reason (never a secret): the database answers a real ping
  (within a short timeout), the model is loaded or the inference endpoint answers (where
  this process generates), each chat adapter is connected, and the scheduler knows whether
  it leads (where this process schedules).
- ``/metrics`` is the Prometheus text format of :class:`~bot.metrics.Metrics`; the queue
  gauges are read from the database at each scrape.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from bot.adapters.base import ChatAdapter
from bot.leader import Leader
from bot.metrics import CONTENT_TYPE, Metrics
from bot.scheduler import Scheduler
from models.generation.worker import Worker
from storage.health import describe
from storage.repository import Repository

log = logging.getLogger(__name__)
#: aiohttp's own log of the ops server (what it logs when a request cannot be read).
http_log = logging.getLogger(f"{__name__}.http")

#: The default operations port of ``atombot run`` and ``atombot worker``.
DEFAULT_OPS_PORT = 9090
#: Seconds a readiness check (database ping, endpoint probe) may take.
CHECK_TIMEOUT = 2.0


@dataclass(frozen=True)
class Check:
    """One readiness check: its name, whether it passed, and why (short, no secrets)."""

    name: str
    ok: bool
    reason: str


class Readiness:
    """The checks behind ``/readyz`` for the parts this process runs.

    ``worker`` is None where this process does not generate (``run --no-worker``);
    ``scheduler`` is None where it does not schedule (``atombot worker``). ``endpoint`` is
    the OpenAI-compatible server's base URL when generation goes there.
    """

    def __init__(
        self,
        *,
        repo: Repository,
        adapters: Mapping[str, ChatAdapter],
        worker: Worker | None,
        scheduler: Scheduler | None,
        endpoint: str | None = None,
        timeout: float = CHECK_TIMEOUT,
    ) -> None:
        self.repo = repo
        self.adapters = adapters
        self.worker = worker
        self.scheduler = scheduler
        self.endpoint = endpoint.rstrip("/") if endpoint else None
        self.timeout = timeout

    async def checks(self) -> list[Check]:
        """Run every check (concurrently); a failing check never raises."""
        probes = [self._database()]
        if self.worker is not None:
            probes.append(self._model(self.worker))
        results = list(await asyncio.gather(*probes))
        results += [self._adapter(name, a) for name, a in sorted(self.adapters.items())]
        if self.scheduler is not None:
            results.append(self._scheduler(self.scheduler))
        return results

    async def _database(self) -> Check:
        try:
            await self.repo.ping_database(timeout=self.timeout)
        except TimeoutError:
            return Check("database", False, f"no answer within {self.timeout:g}s")
        except Exception as exc:
            return Check("database", False, describe(exc))
        return Check("database", True, "reachable")

    async def _model(self, worker: Worker) -> Check:
        ok, reason = worker.model_status
        if not ok or self.endpoint is None:
            return Check("model", ok, reason)
        # The endpoint answered when the worker started; ask again, it may have gone since.
        try:
            timeout = aiohttp.ClientTimeout(total=self.timeout)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(f"{self.endpoint}/models") as response,
            ):
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Check("model", False, f"inference endpoint unreachable ({type(exc).__name__})")
        if status >= 500:
            return Check("model", False, f"inference endpoint answered HTTP {status}")
        return Check("model", True, "inference endpoint answers")

    @staticmethod
    def _adapter(name: str, adapter: ChatAdapter) -> Check:
        try:
            ok, reason = adapter.ready()
        except Exception as exc:  # an adapter's readiness must not break the endpoint
            return Check(f"adapter.{name}", False, type(exc).__name__)
        return Check(f"adapter.{name}", ok, reason)

    @staticmethod
    def _scheduler(scheduler: Scheduler) -> Check:
        if not scheduler.running:
            return Check("scheduler", False, "not started")
        leader: Leader | None = scheduler.leader
        if leader is None:
            return Check("scheduler", True, "leader (single process)")
        if not leader.known:
            return Check("scheduler", False, "leadership not decided yet")
        return Check("scheduler", True, "leader" if leader.is_leader else "standby")


class _ClientErrors(logging.Filter):
    """Drops aiohttp's error record (and traceback) for a request that could not be parsed.

    The client already got its 400; on a port open to a network, scanners and garbage would
    otherwise fill the log with tracebacks that quote what they sent.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (isinstance(error, HttpProcessingError) and 400 <= error.code < 500)


class OpsServer:
    """Serves ``/metrics``, ``/healthz`` and ``/readyz`` (port 0: any free port)."""

    def __init__(
        self,
        *,
        metrics: Metrics,
        readiness: Readiness,
        host: str = "0.0.0.0",
        port: int = DEFAULT_OPS_PORT,
    ) -> None:
        self.metrics = metrics
        self.readiness = readiness
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self._bound: int | None = None

    @property
    def url(self) -> str:
        """The server's base URL (after :meth:`start`)."""
        if self._bound is None:
            raise RuntimeError("the ops server is not running")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host
        return f"http://{host}:{self._bound}"

    async def start(self) -> None:
        """Listen; raises OSError when the port is taken."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        if not any(isinstance(f, _ClientErrors) for f in http_log.filters):
            http_log.addFilter(_ClientErrors())
        runner = web.AppRunner(app, handle_signals=False, access_log=None, logger=http_log)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        self._bound = int(runner.addresses[0][1])
        log.info("operations endpoints on %s (/metrics, /healthz, /readyz)", self.url)

    async def stop(self) -> None:
        """Stop listening."""
        runner, self._runner, self._bound = self._runner, None, None
        if runner is not None:
            await runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def _readyz(self, request: web.Request) -> web.Response:
        checks = await self.readiness.checks()
        ready = all(c.ok for c in checks)
        body = {"ready": ready, "checks": [asdict(c) for c in checks]}
        return web.json_response(body, status=200 if ready else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        await self.refresh()
        return web.Response(body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def refresh(self) -> None:
        """Read the gauges that come from the database and the scheduler (before a scrape)."""
        scheduler = self.readiness.scheduler
        leading = scheduler is not None and scheduler.running
        if leading and scheduler is not None and scheduler.leader is not None:
            leading = scheduler.leader.is_leader
        self.metrics.leadership(leading)
        # The queue gauges keep their last value while the database is unreachable.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.readiness.timeout):
                self.metrics.queue(await self.readiness.repo.queue_stats())
