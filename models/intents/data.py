"""Loading intents files (YAML, Rasa ``nlu.yml``-like) and labelled JSONL data.

An intents file looks like this::

    version: "1"
    nlu:
      - intent: email.draft
        description: Draft an email for someone.
        slots: [recipients, topic, tone, length]
        examples: |
          - draft an email to Dana about the delayed shipment
          - 给王经理写封邮件，说明发货延迟

``examples`` may also be a YAML list of strings. The label ``oos`` holds out-of-scope
examples. An intent may carry a ``task:`` block that declares a task kind with no Python
(:mod:`models.intents.taskblock`). Every structural problem is reported with the line it
was found on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from models.intents.spec import OOS
from models.intents.taskblock import TaskBlock, TaskBlockError, parse_task_block

#: Where the shipped default intents file lives.
DEFAULT_INTENTS_PATH = Path(__file__).with_name("default_intents.yaml")

_ALLOWED_INTENT_KEYS = frozenset({"intent", "description", "examples", "slots", "task"})


class IntentsFileError(ValueError):
    """An intents or data file that cannot be used; the message names the file and line."""

    def __init__(self, path: Path | str, line: int | None, problem: str) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class IntentDef:
    """One intent of an intents file: its name, description, examples and slot hints.

    ``task`` is its task kind when the file declares one; ``line`` is where the intent starts.
    """

    name: str
    description: str = ""
    examples: tuple[str, ...] = ()
    slots: tuple[str, ...] = ()
    task: TaskBlock | None = None
    line: int = 0


@dataclass(frozen=True)
class IntentsFile:
    """A parsed intents file; ``digest`` identifies its content (for cache invalidation)."""

    intents: tuple[IntentDef, ...]
    digest: str
    path: str = ""
    descriptions: dict[str, str] = field(default_factory=dict)

    def examples(self) -> tuple[list[str], list[str]]:
        """All ``(texts, labels)`` pairs of the file, ``oos`` included."""
        texts: list[str] = []
        labels: list[str] = []
        for intent in self.intents:
            texts.extend(intent.examples)
            labels.extend([intent.name] * len(intent.examples))
        return texts, labels


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _scalar_str(node: Node, path: Path | str, what: str) -> str:
    if not isinstance(node, ScalarNode) or node.tag.endswith((":null", ":map", ":seq")):
        raise IntentsFileError(path, _line(node), f"{what} must be a string")
    return str(node.value)


def _parse_examples(node: Node, path: Path | str, intent: str) -> list[str]:
    examples: list[str] = []
    if isinstance(node, SequenceNode):
        for item in node.value:
            text = _scalar_str(item, path, f"an example of intent {intent!r}").strip()
            if not text:
                raise IntentsFileError(path, _line(item), f"empty example in intent {intent!r}")
            examples.append(text)
        return examples
    if isinstance(node, ScalarNode):
        # Rasa style: a block scalar of "- example" lines. The block starts on the line after
        # the "examples: |" key, so its first content line is start_mark.line + 2 (1-based).
        first = _line(node) + (1 if node.style in ("|", ">") else 0)
        for offset, raw in enumerate(str(node.value).splitlines()):
            stripped = raw.strip()
            if not stripped:
                continue
            if not stripped.startswith("- "):
                raise IntentsFileError(
                    path,
                    first + offset,
                    f"example lines of intent {intent!r} must start with '- ', got {stripped!r}",
                )
            text = stripped[2:].strip()
            if not text:
                raise IntentsFileError(path, first + offset, f"empty example in intent {intent!r}")
            examples.append(text)
        return examples
    raise IntentsFileError(path, _line(node), f"examples of intent {intent!r} must be a list")


def _parse_intent(node: Node, path: Path | str) -> IntentDef:
    if not isinstance(node, MappingNode):
        raise IntentsFileError(path, _line(node), "each item of 'nlu' must be a mapping")
    fields: dict[str, Node] = {}
    for key_node, value_node in node.value:
        key = _scalar_str(key_node, path, "a key")
        if key not in _ALLOWED_INTENT_KEYS:
            allowed = ", ".join(sorted(_ALLOWED_INTENT_KEYS))
            raise IntentsFileError(
                path, _line(key_node), f"unknown key {key!r} (allowed: {allowed})"
            )
        fields[key] = value_node
    if "intent" not in fields:
        raise IntentsFileError(path, _line(node), "item has no 'intent' name")
    name = _scalar_str(fields["intent"], path, "'intent'").strip()
    if not name:
        raise IntentsFileError(path, _line(fields["intent"]), "intent name is empty")
    description = ""
    if "description" in fields:
        description = _scalar_str(fields["description"], path, "'description'").strip()
    if "examples" not in fields:
        raise IntentsFileError(path, _line(node), f"intent {name!r} has no 'examples'")
    examples = _parse_examples(fields["examples"], path, name)
    if not examples:
        raise IntentsFileError(path, _line(fields["examples"]), f"intent {name!r} has no examples")
    slots: list[str] = []
    if "slots" in fields:
        slot_node = fields["slots"]
        if isinstance(slot_node, SequenceNode):
            slots = [_scalar_str(s, path, "a slot name") for s in slot_node.value]
        elif isinstance(slot_node, MappingNode):
            slots = [_scalar_str(k, path, "a slot name") for k, _ in slot_node.value]
        else:
            raise IntentsFileError(path, _line(slot_node), "'slots' must be a list or mapping")
    task: TaskBlock | None = None
    if "task" in fields:
        if name == OOS:
            raise IntentsFileError(path, _line(fields["task"]), f"{OOS!r} cannot have a 'task'")
        try:
            task = parse_task_block(fields["task"], name, tuple(slots))
        except TaskBlockError as exc:
            raise IntentsFileError(path, exc.line, exc.problem) from exc
    return IntentDef(
        name=name,
        description=description,
        examples=tuple(examples),
        slots=tuple(slots),
        task=task,
        line=_line(node),
    )


def parse_intents(text: str, path: Path | str = "<string>") -> IntentsFile:
    """Parse the content of an intents file; raise :class:`IntentsFileError` naming the line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = int(mark.line) + 1 if mark is not None else None
        raise IntentsFileError(path, line, f"invalid YAML: {exc.problem or exc}") from exc
    if root is None:
        raise IntentsFileError(path, None, "the file is empty")
    if not isinstance(root, MappingNode):
        raise IntentsFileError(path, _line(root), "the top level must be a mapping with 'nlu'")
    nlu: Node | None = None
    for key_node, value_node in root.value:
        key = _scalar_str(key_node, path, "a key")
        if key == "nlu":
            nlu = value_node
        elif key != "version":
            raise IntentsFileError(path, _line(key_node), f"unknown top-level key {key!r}")
    if nlu is None:
        raise IntentsFileError(path, _line(root), "missing top-level 'nlu' list")
    if not isinstance(nlu, SequenceNode):
        raise IntentsFileError(path, _line(nlu), "'nlu' must be a list of intents")
    intents: list[IntentDef] = []
    seen: dict[str, int] = {}
    for item in nlu.value:
        intent = _parse_intent(item, path)
        if intent.name in seen:
            raise IntentsFileError(
                path,
                _line(item),
                f"intent {intent.name!r} is defined twice (first on line {seen[intent.name]})",
            )
        seen[intent.name] = _line(item)
        intents.append(intent)
    if len([i for i in intents if i.name != OOS]) < 1:
        raise IntentsFileError(path, _line(nlu), "the file defines no in-scope intent")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return IntentsFile(
        intents=tuple(intents),
        digest=digest,
        path=str(path),
        descriptions={i.name: i.description for i in intents},
    )


def load_intents(path: Path | None = None) -> IntentsFile:
    """Read and parse an intents file (the shipped default when ``path`` is None)."""
    target = path if path is not None else DEFAULT_INTENTS_PATH
    try:
        text = target.read_text(encoding="utf-8")
    except OSError as exc:
        raise IntentsFileError(target, None, f"cannot read the file: {exc.strerror}") from exc
    return parse_intents(text, target)


def load_jsonl(path: Path) -> tuple[list[str], list[str]]:
    """Read labelled rows ``{"text": ..., "label": ...}``; errors name the line."""
    texts: list[str] = []
    labels: list[str] = []
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise IntentsFileError(path, number, f"invalid JSON: {exc.msg}") from exc
            if not isinstance(row, dict):
                raise IntentsFileError(path, number, "each row must be a JSON object")
            text, label = row.get("text"), row.get("label")
            if not isinstance(text, str) or not isinstance(label, str):
                raise IntentsFileError(path, number, "each row needs string 'text' and 'label'")
            texts.append(text)
            labels.append(label)
    if not texts:
        raise IntentsFileError(path, None, "no rows")
    return texts, labels
