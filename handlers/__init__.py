"""Intent handlers, one module per intent family, and the task-kind registry that finds them.

:func:`~handlers.kinds.build_registry` (called by the composition root) gives the one
:class:`~handlers.kinds.KindRegistry` of a running atombot: the built-in kinds of
:func:`~handlers.kinds.builtin_kinds` plus the ``task:`` blocks of the intents file.
"""

from __future__ import annotations

from handlers.kinds import BUILT_IN, KindRegistry, TaskKind, build_registry, builtin_kinds

__all__ = ["BUILT_IN", "KindRegistry", "TaskKind", "build_registry", "builtin_kinds"]
