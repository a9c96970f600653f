"""The operations endpoints: /healthz and /readyz in every mode, and recovery from a
database outage without a restart.

The apps are the ones ``atombot run`` and ``atombot worker`` build, with the ops server on a
free port. An outage is made for real: on SQLite the database's directory is moved away (and
the open connections dropped, as an outage drops them); on PostgreSQL a TCP proxy between
the bot and the server is cut and restored — the server itself keeps running for the other
tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy.engine import make_url

from bot.adapters.console import ConsoleAdapter
from bot.adapters.slack import SlackAdapter
from bot.adapters.telegram import TelegramAdapter
from bot.app import App, NoParser, build_app, build_worker_app
from bot.config import Settings
from bot.texts import t
from bot.types import Inbound
from models.generation.base import Generator
from storage.migrate import upgrade
from storage.schemas import RequestCreate, TaskCreate
from storage.tables import TaskStatus
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeTelegram, RateLimits, free_port

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning"
)


async def get(url: str) -> tuple[int, Any]:
    """GET ``url``: the status and the JSON body."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


async def readiness(app: App) -> tuple[int, dict[str, bool]]:
    """/readyz: the status and each check's ok, by name."""
    assert app.ops is not None
    status, body = await get(f"{app.ops.url}/readyz")
    assert body["ready"] is (status == 200)
    assert all(isinstance(c["reason"], str) and c["reason"] for c in body["checks"])
    return status, {c["name"]: c["ok"] for c in body["checks"]}


async def eventually(check: Callable[[], Any], within: float = 60.0) -> Any:
    """Wait until ``check()`` (sync or async) is truthy; returns it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def ready_is(app: App, expected: bool) -> dict[str, bool]:
    """Wait until /readyz says ``expected``; returns the checks it then reported."""

    async def probe() -> dict[str, bool] | None:
        status, checks = await readiness(app)
        return checks if (status == 200) is expected else None

    found: dict[str, bool] = await eventually(probe)
    return found


def fast_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=data_dir,
        poll_seconds=0.05,
        lease_seconds=5.0,
        **overrides,
    )


# -- the outage harness -----------------------------------------------------------------------


@dataclass
class TcpProxy:
    """Forwards a local port to PostgreSQL; ``cut`` drops every connection and refuses new
    ones (as a server that went away), ``restore`` listens again on the same port."""

    target: tuple[str, int]
    port: int = 0
    _server: asyncio.Server | None = None
    _open: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._open.update({writer, up_writer})

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        self._open.difference_update({writer, up_writer})

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def restore(self) -> None:
        await self.start()


@dataclass
class Database:
    """A database the test can take away and give back."""

    url: str
    cut: Callable[[App], Awaitable[None]]
    restore: Callable[[], Awaitable[None]]


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        folder = tmp_path / "db"
        away = tmp_path / "db-away"
        url = f"sqlite:///{(folder / 'atombot.db').as_posix()}"
        folder.mkdir()
        upgrade(url)

        async def cut_sqlite(app: App) -> None:
            folder.rename(away)
            # An outage drops the open connections too: every query must now reconnect.
            await app.repo.engine.dispose()

        async def restore_sqlite() -> None:
            away.rename(folder)

        yield Database(url, cut_sqlite, restore_sqlite)
        return
    server = make_url(request.getfixturevalue("postgres_url"))
    proxy = TcpProxy((server.host or "127.0.0.1", server.port or 5432))
    await proxy.start()

    async def cut_postgres(app: App) -> None:
        await proxy.cut()

    url = server.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    yield Database(url, cut_postgres, proxy.restore)
    await proxy.cut()


async def queue_one(app: App, event_id: str) -> int:
    created = await app.repo.create_request(
        request=RequestCreate(
            platform="console",
            tenant="local",
            channel="console",
            user="u",
            text="x",
            event_id=event_id,
        ),
        tasks=[
            TaskCreate(
                kind="email.draft",
                inputs={"recipients": ["Dana"], "request_text": "the delayed shipment"},
            )
        ],
    )
    app.notify()
    return created.tasks[0].id or 0


async def succeeded(app: App, task_id: int) -> bool:
    task = await app.repo.get_task(task_id)
    return task is not None and task.status == TaskStatus.succeeded


async def outage_cycle(
    app: App, database: Database, caplog: pytest.LogCaptureFixture, expected: set[str]
) -> None:
    """Ready → the database goes → not ready, once-logged → it comes back → ready, working."""
    checks = await ready_is(app, True)
    assert set(checks) == expected and all(checks.values())
    assert await get(f"{app.ops.url}/healthz") == (200, {"status": "alive"})  # type: ignore[union-attr]
    done = await queue_one(app, "before")
    await eventually(lambda: succeeded(app, done))

    caplog.clear()
    await database.cut(app)
    checks = await ready_is(app, False)
    assert checks["database"] is False
    assert all(ok for name, ok in checks.items() if name != "database"), checks
    assert (await get(f"{app.ops.url}/healthz"))[0] == 200  # type: ignore[union-attr]
    if app.worker is not None:
        # The claim loop fails on every poll: it says so once and keeps going.
        await eventually(lambda: any("worker: database unreachable" in m for m in caplog.messages))
    if app.adapters:
        reply = await app.router.handle(
            Inbound(
                platform="console",
                tenant="local",
                channel="console",
                user="u",
                text="draft an email to Dana",
                event_id="during",
            )
        )
        assert reply.text == t("service.unavailable", "en")
    await asyncio.sleep(0.5)  # many more polls and ticks fail meanwhile
    outage_logs = [(r.name, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(outage_logs) == len(set(outage_logs)), "each outage is logged once per component"
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]

    await database.restore()
    checks = await ready_is(app, True)
    assert set(checks) == expected
    again = await queue_one(app, "after")
    await eventually(lambda: succeeded(app, again))
    assert app.worker is None or any("database reachable again" in m for m in caplog.messages)
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


# -- recovery, `run` and `worker` -------------------------------------------------------------


async def test_run_is_not_ready_while_the_database_is_away_and_recovers_without_a_restart(
    database: Database, tmp_path: Path, generator: Generator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    console = ConsoleAdapter(stdin=io.StringIO(""), stdout=io.StringIO())
    app = await build_app(
        fast_settings(database.url, tmp_path / "data"),
        parser=NoParser(),
        generator=generator,
        adapters=[console],
        ops_port=0,
    )
    await app.start()
    try:
        await outage_cycle(
            app, database, caplog, {"database", "model", "adapter.console", "scheduler"}
        )
    finally:
        await app.stop()


async def test_worker_is_not_ready_while_the_database_is_away_and_recovers_without_a_restart(
    database: Database, tmp_path: Path, generator: Generator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    app = await build_worker_app(
        fast_settings(database.url, tmp_path / "data"), generator=generator, ops_port=0
    )
    running = asyncio.create_task(app.run_worker())
    try:
        await eventually(lambda: app.ops is not None)
        await outage_cycle(app, database, caplog, {"database", "model"})
    finally:
        app.stop_event.set()
        await running


# -- every mode answers -----------------------------------------------------------------------


async def test_the_console_mode_answers_health_and_readiness(
    settings: Settings, generator: Generator
) -> None:
    console = ConsoleAdapter(stdin=io.StringIO(""), stdout=io.StringIO())
    app = await build_app(
        settings, parser=NoParser(), generator=generator, adapters=[console], ops_port=0
    )
    await app.start()
    try:
        assert app.ops is not None
        assert await get(f"{app.ops.url}/healthz") == (200, {"status": "alive"})
        checks = await ready_is(app, True)
        assert set(checks) == {"database", "model", "adapter.console", "scheduler"}
    finally:
        await app.stop()


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(rate_limits=RateLimits.unlimited()) as server:
        yield server


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_telegram_modes_answer_and_readiness_follows_the_adapter(
    settings: Settings, telegram: FakeTelegram, mode: str
) -> None:
    port = free_port()
    webhook = {"telegram_webhook_url": f"http://127.0.0.1:{port}/telegram"}
    configured = settings.model_copy(
        update={
            "telegram_bot_token": DEFAULT_TOKEN,
            "telegram_api_url": telegram.base_url,
            **(webhook if mode == "webhook" else {}),
        }
    )
    adapter = TelegramAdapter(
        configured, poll_timeout=1.0, webhook_listen="127.0.0.1", webhook_port=port
    )
    # `run --no-worker`: generation happens elsewhere, so there is no model to check.
    app = await build_app(
        configured, parser=NoParser(), adapters=[adapter], with_worker=False, ops_port=0
    )
    await app.start()
    try:
        assert app.ops is not None
        assert await get(f"{app.ops.url}/healthz") == (200, {"status": "alive"})
        checks = await ready_is(app, True)
        assert set(checks) == {"database", "adapter.telegram", "scheduler"}
        assert adapter.ready()[1] == ("polling" if mode == "polling" else "webhook served")

        await adapter.stop()
        checks = await ready_is(app, False)
        assert checks == {"database": True, "adapter.telegram": False, "scheduler": True}
        assert (await get(f"{app.ops.url}/healthz"))[0] == 200
    finally:
        await app.stop()


@pytest.mark.parametrize("socket_mode", [True, False], ids=["socket-mode", "http"])
async def test_slack_modes_answer_and_the_events_port_keeps_its_own_healthz(
    settings: Settings, socket_mode: bool
) -> None:
    async with FakeSlack() as fake:
        configured = settings.model_copy(
            update={
                "slack_bot_token": fake.bot_token,
                "slack_signing_secret": fake.signing_secret,
                "slack_api_url": fake.api_url,
                "slack_app_token": "xapp-fake-app-token" if socket_mode else None,
            }
        )
        adapter = SlackAdapter(configured, host="127.0.0.1", port=0)
        app = await build_app(
            configured, parser=NoParser(), adapters=[adapter], with_worker=False, ops_port=0
        )
        assert adapter.ready()[0] is False
        await app.start()
        try:
            assert app.ops is not None
            if socket_mode:
                await fake.wait_for_socket_connections(1)
            else:
                events_health = adapter.url.replace("/slack/events", "/healthz")
                async with aiohttp.ClientSession() as session, session.get(events_health) as r:
                    assert (r.status, await r.text()) == (200, "ok")
                assert str(app.ops.url) not in adapter.url
            assert await get(f"{app.ops.url}/healthz") == (200, {"status": "alive"})
            checks = await ready_is(app, True)
            assert set(checks) == {"database", "adapter.slack", "scheduler"}
        finally:
            await app.stop()
        assert adapter.ready()[0] is False


async def test_a_taken_ops_port_is_a_warning_and_the_bot_still_runs(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    taken = blocker.sockets[0].getsockname()[1]
    console = ConsoleAdapter(stdin=io.StringIO(""), stdout=io.StringIO())
    app = await build_app(
        settings.model_copy(update={"ops_host": "127.0.0.1"}),
        parser=NoParser(),
        adapters=[console],
        with_worker=False,
        ops_port=taken,
    )
    try:
        await app.start()
        assert app.ops is None
        assert any(f"ops port {taken} unavailable" in m for m in caplog.messages)
        assert console.ready() == (True, "input ended") or console.ready()[0]
    finally:
        await app.stop()
        blocker.close()


def test_the_ops_port_defaults_to_9090_and_0_turns_it_off(
    no_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings().ops_port == 9090
    monkeypatch.setenv("ATOMBOT_OPS_PORT", "0")
    assert Settings().ops_port == 0


@pytest.mark.slow
async def test_the_worker_command_serves_health_and_readiness_on_atombot_ops_port(
    database_url: str, tiny_model: Path, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ATOMBOT_", "SLACK_"))},
        "DATABASE_URL": database_url,
        "ATOMBOT_MODEL": str(tiny_model),
        "ATOMBOT_DATA_DIR": str(tmp_path / "data"),
        "ATOMBOT_OPS_PORT": str(port),
        "ATOMBOT_OPS_HOST": "127.0.0.1",
        "HF_HUB_OFFLINE": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "worker"],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"

    async def answers() -> tuple[int, Any] | None:
        with contextlib.suppress(aiohttp.ClientError):
            return await get(f"{base}/readyz")
        return None

    try:
        _, body = await eventually(lambda: _ready_answer(answers()), within=120)
        assert {c["name"]: c["ok"] for c in body["checks"]} == {"database": True, "model": True}
        assert await get(f"{base}/healthz") == (200, {"status": "alive"})
        async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as r:
            assert r.status == 200 and "atombot_queue_depth" in await r.text()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr


async def _ready_answer(pending: Awaitable[tuple[int, Any] | None]) -> tuple[int, Any] | None:
    answer = await pending
    return answer if answer is not None and answer[0] == 200 else None
