"""What the worker reports about its work (queue wait, generation time, tokens, outcomes).

The worker knows nothing of metrics: the composition root hands it an observer (the bot's
Prometheus metrics); without one, nothing is recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from storage.tables import Task


class WorkerObserver(Protocol):
    """Receives one call per event of a task's life in the worker."""

    def claimed(self, task: Task) -> None:
        """``task`` was just claimed (its queue wait ends now)."""
        ...

    def generated(self, task: Task, *, seconds: float, tokens: int) -> None:
        """``task``'s text was generated: ``tokens`` tokens in ``seconds`` seconds."""
        ...

    def finished(self, task: Task, status: str) -> None:
        """``task`` reached the final ``status`` (succeeded or failed for good)."""
        ...


class NoObserver:
    """Records nothing."""

    def claimed(self, task: Task) -> None:
        """Nothing to record."""

    def generated(self, task: Task, *, seconds: float, tokens: int) -> None:
        """Nothing to record."""

    def finished(self, task: Task, status: str) -> None:
        """Nothing to record."""
