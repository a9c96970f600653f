"""The one contract between :class:`models.generation.hf.HFGenerator` and its batching engines.

An engine serves :class:`Job` objects: the generator tokenizes a request into a job and awaits
``engine.run(job)``; the engine batches concurrent jobs as it sees fit (our step-level loop, or
transformers' continuous batching) and reports progress through the job's callback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from models.generation.base import (
    GenerationError,
    GenerationRequest,
    GenerationResult,
    ProgressCallback,
)

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Job:
    """One request travelling through an engine (mutated only by the engine's thread)."""

    request: GenerationRequest
    prompt_ids: list[int]
    max_new_tokens: int
    on_progress: ProgressCallback | None
    future: asyncio.Future[GenerationResult]
    generated: list[int] = field(default_factory=list)
    text: str = ""
    finish_reason: str | None = None
    error: GenerationError | None = None
    reported_tokens: int = 0
    progress_due: bool = False
    sampler: torch.Generator | None = None

    @property
    def done(self) -> bool:
        """Whether the job has a result or an error."""
        return self.finish_reason is not None or self.error is not None

    @property
    def abandoned(self) -> bool:
        """Whether nobody waits for the result any more (the caller was cancelled)."""
        return self.future.done()

    def result(self) -> GenerationResult:
        """The finished job as a result (``finish_reason`` "length" when none was set)."""
        return GenerationResult(
            text=self.text,
            prompt_tokens=len(self.prompt_ids),
            completion_tokens=len(self.generated),
            finish_reason=self.finish_reason or "length",
        )


class Engine(Protocol):
    """A batching engine: started once, serves concurrent ``run`` calls, closed once."""

    #: Shown in logs and benchmarks: ``"step"`` or ``"continuous-batching"``.
    name: str

    async def start(self) -> None:
        """Prepare to serve (may raise when the model does not support this engine)."""
        ...

    async def run(self, job: Job) -> GenerationResult:
        """Generate ``job`` to the end; raise GenerationError when it fails."""
        ...

    async def close(self) -> None:
        """Stop serving; jobs still waiting fail with a GenerationError."""
        ...


def cut_at_stop(text: str, stops: Iterable[str]) -> str | None:
    """Return ``text`` cut before the earliest stop string, or None when none occurs."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return None if cut < 0 else text[:cut]


def report(job: Job) -> None:
    """Call the job's progress callback; a failing callback must not break generation."""
    if job.on_progress is None:
        return
    try:
        job.on_progress(len(job.generated), job.text)
    except Exception:
        logger.exception("progress callback failed")
