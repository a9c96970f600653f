"""The classifier's output: platform-neutral atomic task specifications."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

#: The intents atombot ships with (ARCHITECTURE.md). ``oos`` means out of scope.
DEFAULT_INTENTS: tuple[str, ...] = (
    "email.draft",
    "reply.draft",
    "summarize",
    "reminder.create",
    "task.status",
    "task.cancel",
    "digest.subscribe",
    "digest.unsubscribe",
    "help",
)
OOS = "oos"


@dataclass(frozen=True)
class TaskSpec:
    """One atomic task found in a message.

    ``span`` is the ``(start, end)`` character range of the message the task came from;
    ``depends_on`` holds indexes into the same list of specs whose results this task needs.
    ``missing`` names required slots the message did not give (the router asks for them).
    """

    intent: str
    slots: dict[str, Any] = field(default_factory=dict)
    confidence: float = 1.0
    span: tuple[int, int] = (0, 0)
    depends_on: tuple[int, ...] = ()
    missing: tuple[str, ...] = ()


class IntentParser(Protocol):
    """What the router needs from a classifier: text in, ordered task specs out.

    An empty list or a single ``oos`` spec means out of scope. ``parse`` is CPU-bound and
    synchronous; async callers run it in a thread.
    """

    def parse(
        self, text: str, *, now_iso: str | None = None, timezone: str = "UTC"
    ) -> list[TaskSpec]:
        """Split ``text`` into task specs, in the order they should run."""
        ...
