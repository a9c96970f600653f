"""Learning from corrections, the running side: every tenant is read by its own classifier.

A message of ``<platform>:<tenant>`` (its *scope*) is classified by the scope's promoted
classifier version when it has one (:class:`~models.intents.versions.VersionStore` under
``data_dir / "classifiers"``), else by the base classifier (the intents file's), and the
scope's active corrections apply at once through a
:class:`~models.intents.memory.CorrectionMemory`, before any retraining. Scopes never see
each other's corrections or versions.

:class:`Reloader` keeps every process in step without a restart: every few seconds it reads
each store's pointer (a tiny file) and the corrections newer than the last one it saw (one
indexed query), plus a count that reveals drops and approvals.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from models.intents.spec import KindTraits, TaskSpec
from storage.health import OutageLog, is_outage
from storage.tables import CorrectionStatus

if TYPE_CHECKING:
    from bot.retrain import Retrainer
    from models.intents.classifier import IntentClassifier
    from models.intents.learning import CorrectionExample
    from models.intents.memory import CorrectionMemory
    from models.intents.versions import VersionStore
    from storage.repository import Repository
    from storage.tables import Correction

log = logging.getLogger(__name__)

#: The file a store directory names its scope in (the directory name is a one-way slug).
SCOPE_FILE = "SCOPE"
#: Every this many polls the corrections are read in full (catches an approve and a drop
#: between two polls that leave the count unchanged).
FULL_RELOAD_EVERY = 60


def scope_of(platform: str, tenant: str) -> str:
    """The scope of a tenant: ``"<platform>:<tenant>"``."""
    return f"{platform}:{tenant}"


def split_scope(value: str) -> tuple[str, str]:
    """``(platform, tenant)`` of ``"PLATFORM:TENANT"``; ValueError when it is not one."""
    platform, sep, tenant = value.strip().partition(":")
    if not sep or not platform or not tenant:
        raise ValueError(value)
    return platform, tenant


def classifiers_root(data_dir: Path) -> Path:
    """Where every scope's classifier versions live."""
    return Path(data_dir) / "classifiers"


def store_of(data_dir: Path, scope: str) -> VersionStore:
    """The version store of ``scope`` (``data_dir / "classifiers" / <slug>``)."""
    from models.intents.versions import VersionStore

    return VersionStore.for_scope(Path(data_dir), scope)


def remember_scope(store_root: Path, scope: str) -> None:
    """Write the scope next to its versions (so listings and reloads can find it)."""
    store_root.mkdir(parents=True, exist_ok=True)
    path = store_root / SCOPE_FILE
    if not path.is_file() or path.read_text(encoding="utf-8").strip() != scope:
        path.write_text(scope + "\n", encoding="utf-8")


def scopes_on_disk(data_dir: Path, known: dict[str, str] | None = None) -> list[str]:
    """Every scope that has a version store, sorted. ``known`` (directory name → scope)
    spares reading the scope files of directories seen before; it is filled in."""
    root = classifiers_root(data_dir)
    if not root.is_dir():
        return []
    cache = known if known is not None else {}
    found: list[str] = []
    for child in root.iterdir():
        scope = cache.get(child.name)
        if scope is None:
            marker = child / SCOPE_FILE
            if not (child.is_dir() and marker.is_file()):
                continue
            scope = marker.read_text(encoding="utf-8").strip()
            if scope:
                cache[child.name] = scope
        if scope:
            found.append(scope)
    return sorted(found)


def example_of(row: Correction) -> CorrectionExample:
    """A stored correction as a training example of its scope."""
    from models.intents.learning import CorrectionExample

    return CorrectionExample(
        text=row.text,
        label=row.right_kind,
        scope=scope_of(row.platform, row.tenant),
        created_at=row.created_at,
        id=row.id,
    )


@runtime_checkable
class ScopedParser(Protocol):
    """An intent parser that reads each message with its sender's scope."""

    def parse_in(
        self,
        scope: str,
        text: str,
        *,
        now_iso: str | None = None,
        timezone: str = "UTC",
        traits: KindTraits | None = None,
    ) -> list[TaskSpec]:
        """Split ``text`` of ``scope`` into task specs (its classifier, its corrections)."""
        ...

    def corrections_changed(self) -> None:
        """A correction was just stored: use it from the next message on."""
        ...


@dataclass
class _Loaded:
    stamp: str | None
    version: str | None
    classifier: IntentClassifier | None


class TenantParser:
    """The router's parser: per scope, the promoted version (else ``base``) plus the scope's
    corrections. Without a scope (``parse``) it is the base classifier alone."""

    def __init__(
        self,
        base: IntentClassifier,
        *,
        data_dir: Path,
        memory: CorrectionMemory,
        encoder: str | None = None,
    ) -> None:
        self.base = base
        self.data_dir = Path(data_dir)
        self.memory = memory
        self.encoder = encoder
        self._loaded: dict[str, _Loaded] = {}
        self._dirs: dict[str, str] = {}
        #: Called by :meth:`corrections_changed` (the reloader's wake-up).
        self.on_change: Callable[[], None] | None = None

    def corrections_changed(self) -> None:
        """A correction was just stored in this process: reload now, not at the next poll."""
        if self.on_change is not None:
            self.on_change()

    def classifier_of(self, scope: str) -> IntentClassifier:
        """The classifier messages of ``scope`` are read with now."""
        loaded = self._loaded.get(scope)
        return loaded.classifier if loaded and loaded.classifier is not None else self.base

    def version_of(self, scope: str) -> str | None:
        """The version ``scope`` is read with (None: the base classifier)."""
        loaded = self._loaded.get(scope)
        return loaded.version if loaded else None

    def parse(
        self,
        text: str,
        *,
        now_iso: str | None = None,
        timezone: str = "UTC",
        traits: KindTraits | None = None,
    ) -> list[TaskSpec]:
        """The base classifier's reading (no tenant known, no corrections)."""
        return self.base.parse(text, now_iso=now_iso, timezone=timezone, traits=traits)

    def parse_in(
        self,
        scope: str,
        text: str,
        *,
        now_iso: str | None = None,
        timezone: str = "UTC",
        traits: KindTraits | None = None,
    ) -> list[TaskSpec]:
        """Read ``text`` with the classifier and the active corrections of ``scope``."""
        return self.classifier_of(scope).parse(
            text,
            now_iso=now_iso,
            timezone=timezone,
            traits=traits,
            overrides=self.memory.for_scope(scope),
        )

    def reload_versions(self) -> list[str]:
        """Load each scope's version in use where it changed; the scopes that changed.

        CPU and disk work (loading a head): call it in a thread. A version that cannot be
        loaded leaves the scope on what it had, and is tried again at the next call.
        """
        changed: list[str] = []
        for scope in scopes_on_disk(self.data_dir, self._dirs):
            store = store_of(self.data_dir, scope)
            stamp = store.stamp()
            seen = self._loaded.get(scope)
            if seen is not None and seen.stamp == stamp:
                continue
            version = store.current()
            try:
                classifier = store.load(version, encoder=self.encoder) if version else None
            except Exception as exc:
                log.warning("cannot load classifier %s of %s: %s", version, scope, exc)
                continue
            self._loaded[scope] = _Loaded(stamp, version, classifier)
            changed.append(scope)
            log.info("%s now uses classifier %s", scope, version or "base")
        return changed


@dataclass
class CorrectionFeed:
    """Keeps a :class:`CorrectionMemory` equal to the active corrections in the database."""

    repo: Repository
    memory: CorrectionMemory
    _ids: dict[int, str] = field(default_factory=dict)  # correction id -> scope
    _last_id: int = 0
    _polls: int = 0

    async def refresh(self) -> bool:
        """Add new corrections; on a drop or approval rebuild the scopes it touched.

        Two cheap queries per call in the usual case (new rows by id, and a count). Returns
        whether the memory changed.
        """
        self._polls += 1
        fresh = await self.repo.corrections(status=CorrectionStatus.active, after_id=self._last_id)
        if fresh:
            examples = [example_of(row) for row in fresh]
            await asyncio.to_thread(self.memory.extend, examples)
            for row, ex in zip(fresh, examples, strict=True):
                self._ids[row.id or 0] = ex.scope
            self._last_id = max(self._last_id, *(row.id or 0 for row in fresh))
        count = await self.repo.count_corrections(status=CorrectionStatus.active)
        if count == len(self._ids) and self._polls % FULL_RELOAD_EVERY:
            return bool(fresh)
        return await self._rebuild() or bool(fresh)

    async def _rebuild(self) -> bool:
        rows = await self.repo.corrections(status=CorrectionStatus.active)
        now = {row.id or 0: scope_of(row.platform, row.tenant) for row in rows}
        gone = {scope for cid, scope in self._ids.items() if cid not in now}
        came = {scope for cid, scope in now.items() if cid not in self._ids}
        touched = gone | came
        if touched:
            examples = [example_of(row) for row in rows if now[row.id or 0] in touched]

            def swap() -> None:
                for scope in touched:
                    self.memory.clear(scope)
                self.memory.extend(examples)

            await asyncio.to_thread(swap)
        self._ids = now
        self._last_id = max([self._last_id, *now])
        return bool(touched)


class Reloader:
    """Polls, every ``interval`` seconds, for promoted or rolled-back versions and for new,
    dropped or approved corrections, so a running process needs no restart."""

    def __init__(self, parser: TenantParser, feed: CorrectionFeed, *, interval: float) -> None:
        self.parser = parser
        self.feed = feed
        self.interval = interval
        self._wake = asyncio.Event()
        self._outage = OutageLog(log, "learning reload")
        self._failing: str | None = None

    def wake(self) -> None:
        """Look now instead of at the next poll (e.g. after this process promoted one)."""
        self._wake.set()

    async def refresh(self) -> None:
        """One look at the versions and the corrections."""
        await asyncio.to_thread(self.parser.reload_versions)
        await self.feed.refresh()

    async def try_refresh(self) -> bool:
        """:meth:`refresh`, logging a failure once (until it works again) instead of raising:
        the process keeps reading messages with what it has."""
        try:
            await self.refresh()
        except Exception as exc:
            if is_outage(exc):
                self._outage.failed(exc)
            elif self._failing != repr(exc):
                self._failing = repr(exc)
                log.warning("learning reload failed (%s); trying again", exc, exc_info=True)
            return False
        self._outage.ok()
        self._failing = None
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh until ``stop`` is set; a failed look is logged and tried again."""
        while not stop.is_set():
            await self.try_refresh()
            self._wake.clear()
            waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())}
            await asyncio.wait(waiters, timeout=self.interval, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()


@dataclass
class Learning:
    """The learning parts of a running bot: the per-tenant parser, its reloader and the
    retraining job (registered on the scheduler, so it runs on the leader only)."""

    parser: TenantParser
    reloader: Reloader
    retrainer: Retrainer


def build_learning(
    *,
    repo: Repository,
    base: IntentClassifier,
    data_dir: Path,
    intents: Path | None,
    encoder: str | None,
    retrain_after: int,
    retrain_cron: str,
    timezone: str,
    reload_seconds: float,
    learn_accepted: bool = True,
    accept_after_hours: float = 24.0,
    accepted_max: int = 20_000,
) -> Learning:
    """Wire the learning parts around the base classifier (no I/O: the first
    :meth:`Reloader.refresh` loads versions and corrections)."""
    from bot.retrain import Retrainer
    from models.intents.memory import CorrectionMemory
    from models.intents.shared import adopt_encoder, shared_encoder

    # Every version of every scope, and the memory, run on the base classifier's encoder
    # (one copy of the weights); a fine-tuned base has weights of its own, not the shared ones.
    if base.info.mode == "fast":
        shared = adopt_encoder(base.encoder, encoder)
    else:
        shared = shared_encoder(encoder, cache_dir=Path(data_dir) / "intents" / "onnx")
    memory = CorrectionMemory(shared)
    parser = TenantParser(base, data_dir=data_dir, memory=memory, encoder=encoder)
    reloader = Reloader(parser, CorrectionFeed(repo, memory), interval=reload_seconds)
    parser.on_change = reloader.wake
    retrainer = Retrainer(
        repo=repo,
        data_dir=data_dir,
        intents=intents,
        encoder=encoder,
        after=retrain_after,
        cron=retrain_cron,
        timezone=timezone,
        on_promoted=reloader.wake,
        accepted=learn_accepted,
        accept_after=timedelta(hours=accept_after_hours),
        accepted_max=accepted_max,
    )
    return Learning(parser=parser, reloader=reloader, retrainer=retrainer)
