"""Shared fixtures: a real database (SQLite by default, PostgreSQL when DATABASE_URL says so),
the real intent classifier, and a tiny random-weight causal LM built locally."""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from typing import TYPE_CHECKING

from bot.config import Settings
from storage.db import create_engine
from storage.migrate import upgrade
from storage.repository import Repository

if TYPE_CHECKING:
    from models.generation.hf import HFGenerator
    from models.intents import IntentClassifier

POSTGRES_URL = os.environ.get("DATABASE_URL", "")
ON_POSTGRES = POSTGRES_URL.startswith("postgresql")
#: pytest-xdist's worker name ("gw0", …), empty when the tests run in one process.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


@functools.cache
def per_worker(url: str) -> str:
    """``url`` for this worker: under pytest-xdist each worker resets and migrates a database
    of its own on the server (``<name>_gw0``, …), created on first use."""
    if not WORKER:
        return url
    from sqlalchemy import create_engine as sync_engine
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from storage.db import sync_url

    parsed = make_url(url)
    name = f"{parsed.database}_{WORKER}"
    engine = sync_engine(sync_url(url), isolation_level="AUTOCOMMIT")
    try:
        try:
            conn = engine.connect()
        except Exception:  # the named database itself is missing: ask the server's own
            engine.dispose()
            maintenance = parsed.set(database="postgres").render_as_string(hide_password=False)
            engine = sync_engine(sync_url(maintenance), isolation_level="AUTOCOMMIT")
            conn = engine.connect()
        with conn:
            found = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).scalar()
            if not found:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return parsed.set(database=name).render_as_string(hide_password=False)


def shared_dir(factory: pytest.TempPathFactory, name: str) -> Path:
    """A folder every worker of this run sees (the run's temporary root under xdist)."""
    root = factory.getbasetemp()
    folder = (root.parent if WORKER else root) / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine as sync_engine
    from sqlalchemy import text

    from storage.db import sync_url

    engine = sync_engine(sync_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated to head, copied for each test (cheaper than migrating each)."""
    path = tmp_path_factory.mktemp("migrated") / "atombot.db"
    upgrade(f"sqlite:///{path.as_posix()}")
    return path


@pytest.fixture
def database_url(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh, migrated database for one test."""
    if ON_POSTGRES:
        url = per_worker(POSTGRES_URL)
        _reset_postgres(url)
        upgrade(url)
        return url
    target = tmp_path / "atombot.db"
    # Every connection to the template is closed, so its WAL is folded into the one file.
    shutil.copyfile(request.getfixturevalue("migrated_sqlite"), target)
    return f"sqlite:///{target.as_posix()}"


@pytest.fixture
async def repo(database_url: str) -> AsyncIterator[Repository]:
    """A repository on the fresh database."""
    repository = Repository(create_engine(database_url))
    yield repository
    await repository.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings for a test app: fresh database, fast polling, short leases."""
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        poll_seconds=0.05,
        lease_seconds=5.0,
        max_input_chars=20_000,
    )


@pytest.fixture(scope="session")
def parser(tmp_path_factory: pytest.TempPathFactory) -> IntentClassifier:
    """The real intent classifier (all-MiniLM-L6-v2 + head on the default intents file)."""
    from filelock import FileLock

    from models.intents import IntentClassifier

    cache = Path(os.environ.get("ATOMBOT_TEST_CACHE") or shared_dir(tmp_path_factory, "cls"))
    cache.mkdir(parents=True, exist_ok=True)
    # One worker trains, the others wait and load what it saved.
    with FileLock(str(cache / "intents.lock")):
        return IntentClassifier.load_or_train(intents_path=None, cache_dir=cache / "intents")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight causal LM and tokenizer, built locally (no download)."""
    from models.generation.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-lm"))


@pytest.fixture
async def generator(tiny_model: Path) -> AsyncIterator[HFGenerator]:
    """The transformers backend on the tiny model (not yet started: the worker starts it)."""
    from models.generation.hf import HFGenerator

    gen = HFGenerator(str(tiny_model), device="cpu", max_batch=8)
    yield gen
    await gen.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


DEFAULT_TEST_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def postgres_url() -> str:
    """A fresh, migrated PostgreSQL database; skips only when no server can be reached."""
    url = (
        POSTGRES_URL
        if ON_POSTGRES
        else os.environ.get("ATOMBOT_TEST_POSTGRES_URL", DEFAULT_TEST_POSTGRES)
    )
    try:
        url = per_worker(url)
        _reset_postgres(url)
    except Exception as exc:  # the server is down or absent on this machine
        if (
            "Connection refused" in str(exc)
            or "could not connect" in str(exc).lower()
            or "connection failed" in str(exc).lower()
        ):
            pytest.skip(f"PostgreSQL not reachable at {url}: {exc}")
        raise
    upgrade(url)
    return url


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Remove atombot's environment variables so Settings() sees only defaults."""
    for name in list(os.environ):
        if name.startswith(("ATOMBOT_", "SLACK_", "TELEGRAM_")) or name == "DATABASE_URL":
            monkeypatch.delenv(name, raising=False)
    yield
