"""Which prompt variant a claimed task uses: Thompson sampling on its tenant's votes.

The worker asks :meth:`VariantPicker.assign` before it builds a task's prompt. A kind with
several prompt variants gets one drawn by :func:`models.bandit.thompson_choice` on the 👍/👎
counts of that kind's variants in the task's own workspace (``platform`` + ``tenant``), so
one team's votes never steer another's prompts. A task keeps its variant across retries, and
a regenerate uses the variant of the task it regenerates, so both attempts of a regenerate
pair share one prompt (what a DPO export compares is then the two answers, not two prompts).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from models.bandit import Votes, thompson_choice
from storage.repo.base import Tally
from storage.repository import Repository
from storage.tables import Task

#: How long a tenant's vote counts are reused before they are read again.
VOTES_TTL_SECONDS = 30.0


@runtime_checkable
class VariantSource(Protocol):
    """A prompt builder whose kinds may offer several prompt variants (the kind registry)."""

    def variants(self, kind: str) -> tuple[str, ...]:
        """The variant names of ``kind`` (empty: one prompt only)."""
        ...


@dataclass
class VariantPicker:
    """Chooses and records each task's prompt variant; vote counts are cached per tenant.

    ``rng`` makes the choices reproducible when seeded (tests, benchmarks); ``clock`` and
    ``ttl_seconds`` decide when cached counts are read again.
    """

    repo: Repository
    rng: np.random.Generator = field(default_factory=np.random.default_rng)
    ttl_seconds: float = VOTES_TTL_SECONDS
    clock: Callable[[], float] = time.monotonic
    _cache: dict[tuple[str, str], tuple[float, dict[tuple[str, str], Tally]]] = field(
        default_factory=dict
    )
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def assign(self, task: Task, prompts: object, *, worker_id: str) -> str | None:
        """Set ``task.variant`` for a kind with variants, store it, and return it.

        Leaves the task alone (and returns its variant, usually None) when ``prompts`` offers
        no variants for its kind.
        """
        if not isinstance(prompts, VariantSource):
            return task.variant
        variants = prompts.variants(task.kind)
        if not variants:
            return task.variant
        chosen = await self.choose(task, variants)
        if chosen != task.variant:
            task.variant = chosen
            await self.repo.set_variant(task_id=task.id or 0, worker_id=worker_id, variant=chosen)
        return chosen

    async def choose(self, task: Task, variants: Sequence[str]) -> str:
        """The variant for ``task``: its own (a retry), its original's (a regenerate), or drawn."""
        if task.variant in variants:
            return str(task.variant)
        if task.retry_of is not None:
            original = await self.repo.get_task(task.retry_of)
            if original is not None and original.variant in variants:
                return str(original.variant)
        counts = await self.votes(task.platform, task.tenant)
        of_kind = {v: Votes(up=t.up, down=t.down) for (k, v), t in counts.items() if k == task.kind}
        return thompson_choice(list(variants), of_kind, self.rng)

    async def votes(self, platform: str, tenant: str) -> dict[tuple[str, str], Tally]:
        """The tenant's counts by ``(kind, variant)``, read at most once per ``ttl_seconds``."""
        key = (platform, tenant)
        async with self._lock:
            cached = self._cache.get(key)
            now = self.clock()
            if cached is not None and now - cached[0] < self.ttl_seconds:
                return cached[1]
            counts = await self.repo.variant_votes(platform=platform, tenant=tenant)
            self._cache[key] = (now, counts)
            return counts
