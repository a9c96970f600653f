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


class KindTraits(Protocol):
    """What atomization needs to know of task kinds to link chained requests.

    The task-kind registry (built in the composition root) implements it; the parser uses
    it to decide which earlier task a clause consumes ("email Dana *the outcome*").
    """

    def produces(self, intent: str) -> bool:
        """Whether a task of this intent yields text a later task can use."""
        ...

    def consumes(self, intent: str) -> bool:
        """Whether a task of this intent can build on an earlier task's result."""
        ...


@dataclass(frozen=True)
class StaticTraits:
    """:class:`KindTraits` from two fixed sets (the built-in kinds, or tests)."""

    producers: frozenset[str] = frozenset({"summarize", "email.draft", "reply.draft"})
    consumers: frozenset[str] = frozenset({"summarize", "email.draft", "reply.draft"})

    def produces(self, intent: str) -> bool:
        """Whether ``intent`` is one of :attr:`producers`."""
        return intent in self.producers

    def consumes(self, intent: str) -> bool:
        """Whether ``intent`` is one of :attr:`consumers`."""
        return intent in self.consumers


class Overrides(Protocol):
    """Intents people have corrected, used at parse time before any retraining
    (:class:`models.intents.memory.ScopeOverrides` is the implementation)."""

    def lookup(self, text: str) -> tuple[str, float] | None:
        """``(intent, similarity)`` of the correction that applies to ``text``, or None."""
        ...


class IntentParser(Protocol):
    """What the router needs from a classifier: text in, ordered task specs out.

    An empty list or a single ``oos`` spec means out of scope. ``parse`` is CPU-bound and
    synchronous; async callers run it in a thread. ``traits`` tells which intents produce
    and consume results (dependencies between chained requests); ``None`` means the
    built-in kinds' traits.
    """

    def parse(
        self,
        text: str,
        *,
        now_iso: str | None = None,
        timezone: str = "UTC",
        traits: KindTraits | None = None,
    ) -> list[TaskSpec]:
        """Split ``text`` into task specs, in the order they should run."""
        ...
