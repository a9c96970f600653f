"""Intent classification and atomization: one message → ordered atomic task specs.

``IntentClassifier.load_or_train(intents_path=..., cache_dir=...)`` gives an
:class:`~models.intents.spec.IntentParser` whose ``parse(text)`` returns ``TaskSpec``s.

The classifier and fine-tuning need torch / transformers; they are imported on first use
(PEP 562), so that importing the light parts (``models.intents.spec``, ``data``) — which
handlers and the bot do at import time — does not load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from models.intents.data import (
    DEFAULT_INTENTS_PATH,
    IntentDef,
    IntentsFile,
    IntentsFileError,
    load_intents,
    load_jsonl,
    parse_intents,
)
from models.intents.spec import DEFAULT_INTENTS, OOS, IntentParser, TaskSpec

if TYPE_CHECKING:
    from models.intents.classifier import ClassifierLoadError, IntentClassifier
    from models.intents.finetune import FinetuneConfig

#: Names that load torch, by the module that defines them.
_HEAVY = {
    "ClassifierLoadError": "models.intents.classifier",
    "IntentClassifier": "models.intents.classifier",
    "FinetuneConfig": "models.intents.finetune",
}


def __getattr__(name: str) -> Any:
    module = _HEAVY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_INTENTS",
    "DEFAULT_INTENTS_PATH",
    "OOS",
    "ClassifierLoadError",
    "FinetuneConfig",
    "IntentClassifier",
    "IntentDef",
    "IntentParser",
    "IntentsFile",
    "IntentsFileError",
    "TaskSpec",
    "load_intents",
    "load_jsonl",
    "parse_intents",
]
