"""The ``task:`` block of an intent: a task kind declared in the intents file, no Python.

::

    - intent: report.draft
      slots: [topic]
      task:
        label: {en: status report, zh: 状态报告}
        prompt: |
          Write a concise status report about {topic}.
        format: markdown        # plain | markdown | list | table | email | same
        max_tokens: 512         # 16..4096
        consumes: none          # none | previous | thread
        produces: true
        required:
          topic: {en: "What should the report cover?", zh: "报告要涵盖什么内容？"}
        then: email.send        # optional: the action(s) that may carry the result out

A kind may offer several prompts instead of one; the worker picks one per task by Thompson
sampling on the kind's 👍/👎 votes per variant, per tenant (:mod:`models.bandit`)::

      task:
        label: status report
        variants:
          - name: sections
            prompt: |
              Write a status report with the sections Done, In progress, Next steps.
          - name: headline
            prompt: |
              Write a status report that opens with one line: on track, at risk or off track.

``variants`` replaces ``prompt`` or comes alongside it (then ``prompt`` is the variant named
``default``); there are at least two prompts in all, each checked like ``prompt``. Names are
lowercase letters, digits, ``-`` and ``_`` (up to 32), unique within the kind.

Placeholders of ``prompt``: ``{request}``, ``{previous}`` (only when ``consumes`` is not
``none``), ``{material}`` (the conversation the request points at, fetched when the task is
planned), ``{language}``, ``{today}`` and the intent's ``slots``. ``format: same`` keeps the
format of the consumed result (only with ``consumes``). Parsing works on YAML
nodes so that every problem names its line; :class:`TaskBlockError` carries the line and
:mod:`models.intents.data` adds the file.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

#: Output shapes a task block may ask for (``email`` = a subject line, then the body;
#: ``same`` = the shape of the result it consumes).
FORMATS: tuple[str, ...] = ("plain", "markdown", "list", "table", "email", "same")
#: What a task may build on: nothing, the earlier task of the same message, or the last
#: result in the same thread/chat.
CONSUMES: tuple[str, ...] = ("none", "previous", "thread")
#: Placeholders every prompt may use besides the intent's slots.
BUILTIN_PLACEHOLDERS: frozenset[str] = frozenset(
    {"request", "previous", "material", "language", "today"}
)
MIN_TOKENS, MAX_TOKENS = 16, 4096
DEFAULT_MAX_TOKENS = 512

_REQUIRED_KEYS = frozenset({"label"})
_OPTIONAL_KEYS = frozenset(
    {"prompt", "variants", "format", "max_tokens", "consumes", "produces", "required", "then"}
)
#: The action kinds a block's ``then`` may name: when the request asks for it in so many
#: words ("… and email it to Dana"), the action follows the task, after approval.
ACTIONS: tuple[str, ...] = ("calendar.invite", "email.send", "reply.post")
#: The name of ``prompt`` when a block has ``variants`` too.
DEFAULT_VARIANT = "default"
_VARIANT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_VARIANT_KEYS = frozenset({"name", "prompt"})
_LANGS = frozenset({"en", "zh"})


class TaskBlockError(ValueError):
    """A malformed task block; ``line`` is 1-based (the caller adds the file)."""

    def __init__(self, line: int, problem: str) -> None:
        self.line = line
        self.problem = problem
        super().__init__(f"line {line}: {problem}")


@dataclass(frozen=True)
class Localized:
    """A text in English and Chinese."""

    en: str
    zh: str

    def get(self, locale: str) -> str:
        """The text for ``locale`` (``zh`` or anything else → English)."""
        return self.zh if locale == "zh" else self.en


@dataclass(frozen=True)
class TaskBlock:
    """A validated ``task:`` block; ``line`` is where the block starts."""

    label: Localized
    prompt: str
    format: str = "plain"
    max_tokens: int = DEFAULT_MAX_TOKENS
    consumes: str = "none"
    produces: bool = True
    required: tuple[tuple[str, Localized], ...] = ()
    line: int = 0
    #: ``(name, prompt)`` of every prompt variant, the first one being ``prompt`` (empty when
    #: the block has one prompt only).
    variants: tuple[tuple[str, str], ...] = ()
    #: Action kinds that may follow the task (see :data:`ACTIONS`), tried in order.
    then: tuple[str, ...] = ()

    @property
    def placeholders(self) -> frozenset[str]:
        """The names the prompt template uses (the first variant's, when there are several)."""
        return frozenset(name for _, name, _, _ in string.Formatter().parse(self.prompt) if name)


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _string(node: Node, what: str) -> str:
    if not isinstance(node, ScalarNode) or not node.tag.endswith(":str"):
        raise TaskBlockError(_line(node), f"{what} must be a string")
    return str(node.value)


def _localized(node: Node, what: str) -> Localized:
    """One string (both languages) or a mapping ``{en: ..., zh: ...}``."""
    if isinstance(node, ScalarNode):
        text = _string(node, what).strip()
        if not text:
            raise TaskBlockError(_line(node), f"{what} is empty")
        return Localized(en=text, zh=text)
    if not isinstance(node, MappingNode):
        raise TaskBlockError(_line(node), f"{what} must be a string or {{en: ..., zh: ...}}")
    texts: dict[str, str] = {}
    for key_node, value_node in node.value:
        lang = _string(key_node, f"a language of {what}")
        if lang not in _LANGS:
            raise TaskBlockError(
                _line(key_node), f"unknown language {lang!r} in {what} (allowed: en, zh)"
            )
        texts[lang] = _string(value_node, f"{what} ({lang})").strip()
        if not texts[lang]:
            raise TaskBlockError(_line(value_node), f"{what} ({lang}) is empty")
    missing = sorted(_LANGS - set(texts))
    if missing:
        raise TaskBlockError(_line(node), f"{what} has no {' or '.join(missing)} text")
    return Localized(en=texts["en"], zh=texts["zh"])


def _prompt_line(node: ScalarNode, offset: int) -> int:
    """The file line of character ``offset`` of a prompt scalar (exact for ``|`` blocks)."""
    if node.style != "|":
        return _line(node)
    return _line(node) + 1 + str(node.value).count("\n", 0, offset)


def _check_prompt(node: Node, allowed: frozenset[str], consumes: str) -> str:
    prompt = _string(node, "'prompt'")
    if not prompt.strip():
        raise TaskBlockError(_line(node), "'prompt' is empty")
    assert isinstance(node, ScalarNode)
    formatter = string.Formatter()
    try:
        fields = list(formatter.parse(prompt))
    except ValueError as exc:
        raise TaskBlockError(
            _line(node), f"'prompt' is not a valid template ({exc}); write {{{{ and }}}} for braces"
        ) from exc
    position = 0
    for literal, name, spec, conversion in fields:
        position += len(literal)
        if name is None:
            continue
        where = _prompt_line(node, prompt.find("{" + name, position))
        position += len(name) + 2
        if spec or conversion:
            raise TaskBlockError(
                where, f"placeholder {{{name}}} may not carry a conversion or format"
            )
        if name == "previous" and consumes == "none":
            raise TaskBlockError(
                where, "placeholder {previous} needs 'consumes: previous' or 'consumes: thread'"
            )
        if name not in allowed:
            shown = allowed if consumes != "none" else allowed - {"previous"}
            names = ", ".join("{" + n + "}" for n in sorted(shown))
            raise TaskBlockError(where, f"unknown placeholder {{{name}}} (allowed: {names})")
    return prompt


def _check_variants(
    node: Node, prompt: str | None, allowed: frozenset[str], consumes: str
) -> tuple[tuple[str, str], ...]:
    """The ``(name, prompt)`` pairs of a ``variants`` list (``prompt`` first, as ``default``)."""
    if not isinstance(node, SequenceNode) or not node.value:
        raise TaskBlockError(
            _line(node), "'variants' must be a list of {name: ..., prompt: ...} mappings"
        )
    found: list[tuple[str, str]] = [] if prompt is None else [(DEFAULT_VARIANT, prompt)]
    for item in node.value:
        if not isinstance(item, MappingNode):
            raise TaskBlockError(
                _line(item), "each item of 'variants' must be a mapping with 'name' and 'prompt'"
            )
        fields: dict[str, Node] = {}
        for key_node, value_node in item.value:
            key = _string(key_node, "a key of a variant")
            if key not in _VARIANT_KEYS:
                raise TaskBlockError(
                    _line(key_node), f"unknown key {key!r} in a variant (allowed: name, prompt)"
                )
            fields[key] = value_node
        missing = sorted(_VARIANT_KEYS - set(fields))
        if missing:
            raise TaskBlockError(_line(item), f"a variant has no {missing[0]!r}")
        name = _string(fields["name"], "a variant's 'name'").strip()
        if not _VARIANT_NAME.fullmatch(name):
            raise TaskBlockError(
                _line(fields["name"]),
                f"variant name {name!r} must be 1 to 32 lowercase letters, digits, '-' or '_'",
            )
        if any(name == taken for taken, _ in found):
            why = " ('default' is the name of 'prompt')" if name == DEFAULT_VARIANT else ""
            raise TaskBlockError(_line(fields["name"]), f"variant {name!r} is named twice{why}")
        found.append((name, _check_prompt(fields["prompt"], allowed, consumes)))
    if len(found) < 2:
        raise TaskBlockError(
            _line(node),
            "'variants' needs at least two prompts (or one besides 'prompt'); "
            "with a single prompt, write 'prompt' only",
        )
    return tuple(found)


def _choice(node: Node, what: str, choices: tuple[str, ...]) -> str:
    value = _string(node, what).strip()
    if value not in choices:
        raise TaskBlockError(
            _line(node), f"{what} must be one of {', '.join(choices)}, got {value!r}"
        )
    return value


def _int(node: Node, what: str) -> int:
    if not isinstance(node, ScalarNode) or not node.tag.endswith(":int"):
        raise TaskBlockError(_line(node), f"{what} must be a whole number")
    try:
        value = SafeConstructor().construct_yaml_int(node)
    except (ConstructorError, ValueError) as exc:
        raise TaskBlockError(_line(node), f"{what} must be a whole number") from exc
    return int(value)


def _bool(node: Node, what: str) -> bool:
    if not isinstance(node, ScalarNode) or not node.tag.endswith(":bool"):
        raise TaskBlockError(_line(node), f"{what} must be true or false")
    return bool(SafeConstructor().construct_yaml_bool(node))


def parse_task_block(node: Node, intent: str, slots: tuple[str, ...]) -> TaskBlock:
    """Validate the ``task:`` node of ``intent`` (whose declared slots are ``slots``)."""
    if not isinstance(node, MappingNode):
        raise TaskBlockError(_line(node), f"'task' of intent {intent!r} must be a mapping")
    reserved = sorted(BUILTIN_PLACEHOLDERS & set(slots))
    if reserved:
        raise TaskBlockError(
            _line(node), f"slot {reserved[0]!r} of intent {intent!r} clashes with a placeholder"
        )
    fields: dict[str, Node] = {}
    for key_node, value_node in node.value:
        key = _string(key_node, "a key of 'task'")
        if key not in _REQUIRED_KEYS | _OPTIONAL_KEYS:
            keys = ", ".join(sorted(_REQUIRED_KEYS | _OPTIONAL_KEYS))
            raise TaskBlockError(
                _line(key_node), f"unknown key {key!r} in 'task' (allowed: {keys})"
            )
        fields[key] = value_node
    missing = sorted(_REQUIRED_KEYS - set(fields))
    if missing:
        raise TaskBlockError(
            _line(node),
            f"'task' of intent {intent!r} has no {' or '.join(repr(m) for m in missing)}",
        )
    if "prompt" not in fields and "variants" not in fields:
        raise TaskBlockError(
            _line(node), f"'task' of intent {intent!r} has no 'prompt' (or 'variants')"
        )
    consumes = (
        _choice(fields["consumes"], "'consumes'", CONSUMES) if "consumes" in fields else "none"
    )
    label = _localized(fields["label"], "'label'")
    allowed = BUILTIN_PLACEHOLDERS | set(slots)
    prompt = _check_prompt(fields["prompt"], allowed, consumes) if "prompt" in fields else None
    variants: tuple[tuple[str, str], ...] = ()
    if "variants" in fields:
        variants = _check_variants(fields["variants"], prompt, allowed, consumes)
        prompt = variants[0][1]
    assert prompt is not None
    shape = _choice(fields["format"], "'format'", FORMATS) if "format" in fields else "plain"
    if shape == "same" and consumes == "none":
        raise TaskBlockError(
            _line(fields["format"]),
            "'format: same' keeps the format of a consumed result; it needs "
            "'consumes: previous' or 'consumes: thread'",
        )
    max_tokens = DEFAULT_MAX_TOKENS
    if "max_tokens" in fields:
        max_tokens = _int(fields["max_tokens"], "'max_tokens'")
        if not MIN_TOKENS <= max_tokens <= MAX_TOKENS:
            raise TaskBlockError(
                _line(fields["max_tokens"]),
                f"'max_tokens' must be between {MIN_TOKENS} and {MAX_TOKENS}, got {max_tokens}",
            )
    produces = _bool(fields["produces"], "'produces'") if "produces" in fields else True
    required: list[tuple[str, Localized]] = []
    if "required" in fields:
        req = fields["required"]
        if not isinstance(req, MappingNode):
            raise TaskBlockError(_line(req), "'required' must map slot names to questions")
        for key_node, value_node in req.value:
            slot = _string(key_node, "a slot name in 'required'")
            if slot not in slots:
                raise TaskBlockError(
                    _line(key_node),
                    f"required slot {slot!r} is not one of the intent's slots ({', '.join(slots) or 'none'})",
                )
            required.append((slot, _localized(value_node, f"the question for slot {slot!r}")))
    then: list[str] = []
    if "then" in fields:
        items = fields["then"]
        nodes = items.value if isinstance(items, SequenceNode) else [items]
        for item in nodes:
            then.append(_choice(item, "'then'", ACTIONS))
    return TaskBlock(
        then=tuple(then),
        label=label,
        prompt=prompt,
        format=shape,
        max_tokens=max_tokens,
        consumes=consumes,
        produces=produces,
        required=tuple(required),
        line=_line(node),
        variants=variants,
    )
