"""The narrow contract between the worker and a text-generation backend.

The worker only sees :class:`Generator`. Tokenizer, dtype, device and batching stay inside
the backend: the worker calls :meth:`Generator.generate` once per task, concurrently, and a
batching backend groups the concurrent calls into batches itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from storage.tables import Task

#: Called as tokens arrive: (tokens generated so far, text generated so far).
ProgressCallback = Callable[[int, str], None]


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt to complete.

    ``messages`` are chat messages (``{"role": "system"|"user"|"assistant", "content": ...}``);
    backends apply the tokenizer's chat template when it has one. ``temperature == 0`` means
    greedy decoding.
    """

    messages: tuple[dict[str, str], ...]
    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True)
class GenerationResult:
    """The completion of one request."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"  # "stop" | "length"
    extra: dict[str, str] = field(default_factory=dict)


class GenerationError(Exception):
    """Generation of one request failed; ``retryable`` says whether a retry may succeed."""

    def __init__(self, reason: str, *, retryable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class GeneratorUnavailable(GenerationError):
    """The backend cannot serve at all (model missing, server unreachable at start)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, retryable=False)


class Generator(Protocol):
    """A text-generation backend.

    ``capacity`` is how many requests the backend serves at once (the worker claims up to
    that many tasks). ``start`` loads weights or checks the server once; it raises
    :class:`GeneratorUnavailable` with a reason a person can act on.
    """

    @property
    def capacity(self) -> int:
        """How many concurrent ``generate`` calls the backend serves efficiently."""
        ...

    @property
    def context_length(self) -> int:
        """The model's context window in tokens (prompt plus completion)."""
        ...

    async def start(self) -> None:
        """Load the model or connect; raise GeneratorUnavailable on failure."""
        ...

    async def generate(
        self, request: GenerationRequest, on_progress: ProgressCallback | None = None
    ) -> GenerationResult:
        """Complete one request; call ``on_progress`` as tokens arrive."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this model (an estimate is fine for remote servers)."""
        ...

    async def close(self) -> None:
        """Release the model / connections."""
        ...


class PromptBuilder(Protocol):
    """Turns a claimed task (and the results it consumes) into a generation request.

    The composition root hands the worker the task-kind registry as its prompt builder, so
    ``models/`` never imports the handlers that know each kind's prompt.
    """

    def build(self, task: Task, dependencies: Sequence[Task]) -> GenerationRequest:
        """The request to generate for ``task``; ``dependencies`` are the results it reads."""
        ...
