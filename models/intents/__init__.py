"""Intent classification and atomization: one message → ordered atomic task specs.

``IntentClassifier.load_or_train(intents_path=..., cache_dir=...)`` gives an
:class:`~models.intents.spec.IntentParser` whose ``parse(text)`` returns ``TaskSpec``s.
"""

from models.intents.classifier import ClassifierLoadError, IntentClassifier
from models.intents.data import (
    DEFAULT_INTENTS_PATH,
    IntentDef,
    IntentsFile,
    IntentsFileError,
    load_intents,
    load_jsonl,
    parse_intents,
)
from models.intents.finetune import FinetuneConfig
from models.intents.spec import DEFAULT_INTENTS, OOS, IntentParser, TaskSpec

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
