"""Stand-ins for the GPU backend: they record every request and answer at once.

A test subclasses :class:`FakeGenerator` and overrides :meth:`FakeGenerator.answer` (what the
"model" writes for a request); everything else a worker needs from a generation backend is
here once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from models.generation.base import GenerationRequest, GenerationResult, ProgressCallback


@dataclass
class FakeGenerator:
    """A backend that records each request and answers with :meth:`answer`."""

    prompts: list[GenerationRequest] = field(default_factory=list)
    capacity: int = 4
    context_length: int = 2048

    async def start(self) -> None: ...
    async def close(self) -> None: ...

    def count_tokens(self, text: str) -> int:
        """Words as tokens: enough for the worker's budget checks."""
        return len(text.split())

    def answer(self, request: GenerationRequest) -> GenerationResult:
        """The result for ``request`` (the ``len(prompts)``-th one, already recorded)."""
        return GenerationResult(text="ok")

    async def generate(
        self, request: GenerationRequest, on_progress: ProgressCallback | None = None
    ) -> GenerationResult:
        """Record the request, then answer it."""
        self.prompts.append(request)
        return self.answer(request)


__all__ = ["FakeGenerator"]
