"""Input shapes for the repository (what callers hand in to create rows)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RequestCreate:
    """A new inbound message to store."""

    platform: str
    tenant: str
    channel: str
    user: str
    text: str
    event_id: str
    thread: str | None = None
    locale: str = "en"
    timezone: str = "UTC"
    private: bool = False
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskCreate:
    """A new task of a request. ``depends_on`` holds indexes into the same batch of tasks."""

    kind: str
    inputs: dict[str, Any] = field(default_factory=dict)
    depends_on: tuple[int, ...] = ()
    priority: int = 0
    max_attempts: int = 3
    status: str = "queued"
    result: str | None = None
    retry_of: int | None = None
