"""What a log line is about: the request, task, tenant and platform being handled.

The router, the delivery job and the worker call :func:`begin` where they start handling a
request or a task; every record logged afterwards in the same asyncio task (and in tasks it
creates, which copy the context) carries those fields, whoever logs it — our code, httpx, the
chat SDKs. The JSON formatter of :mod:`bot.logs` writes them out.

It imports nothing of atombot's, so every layer may call it (like :mod:`bot.texts`): the
worker lives in ``models/`` and must not import the rest of ``bot``.
"""

from __future__ import annotations

from contextvars import ContextVar
from types import MappingProxyType
from typing import Final

#: The fields a log line may carry, in the order they are written.
FIELDS: Final = ("request_id", "task_id", "tenant", "platform")

_EMPTY: Final[MappingProxyType[str, str | int]] = MappingProxyType({})
_current: ContextVar[MappingProxyType[str, str | int]] = ContextVar(
    "atombot_log_context", default=_EMPTY
)


def begin(
    *,
    platform: str | None = None,
    tenant: str | None = None,
    request_id: int | None = None,
    task_id: int | None = None,
) -> None:
    """Start a new unit of work: the fields given replace everything known before."""
    _set({}, platform=platform, tenant=tenant, request_id=request_id, task_id=task_id)


def bind(
    *,
    platform: str | None = None,
    tenant: str | None = None,
    request_id: int | None = None,
    task_id: int | None = None,
) -> None:
    """Add fields learned later in the same unit of work (a request's id once stored)."""
    _set(
        dict(_current.get()),
        platform=platform,
        tenant=tenant,
        request_id=request_id,
        task_id=task_id,
    )


def current() -> MappingProxyType[str, str | int]:
    """The fields known here (empty outside any request or task)."""
    return _current.get()


def clear() -> None:
    """Forget every field (the unit of work is over)."""
    _current.set(_EMPTY)


def _set(base: dict[str, str | int], **fields: str | int | None) -> None:
    for name, value in fields.items():
        if value is not None:
            base[name] = value
    _current.set(MappingProxyType(base))
