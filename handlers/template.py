"""The handler of every template-driven task kind: a prompt with named slots, no Python.

Task kinds declared in the intents file (a ``task:`` block) use it, and so do the built-in
kinds whose prompt is one template (``email.draft``). The user's clause is always fenced as
data; so is any earlier result the task consumes, and so is the conversation the request
points at ("turn this thread into action items"), fetched when the task is planned.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.texts import language_name
from handlers.base import (
    FENCE_CLOSE,
    FENCE_OPEN,
    Handler,
    HandlerContext,
    Plan,
    fence,
    system_prompt,
)
from handlers.summarize import CHUNK_CHARS, format_messages
from models.generation.base import GenerationRequest
from models.intents.slots import SlotContext, pasted_text, summarize_slots
from models.intents.spec import TaskSpec
from storage.schemas import TaskCreate
from storage.tables import Task

#: What each output format asks of the model.
FORMAT_RULES: dict[str, str] = {
    "plain": "Reply with plain text only (no Markdown).",
    "markdown": "Format the answer in Markdown (short headings and bullet points).",
    "list": "Reply with a bulleted list only, one item per line.",
    "table": "Reply with a Markdown table only.",
    "email": "Reply with the email only: a first line 'Subject: ...', a blank line, then the body.",
    "same": (
        "Keep the format of the earlier result: keep its Markdown (headings, bullets, tables) "
        "if it has any, its subject line if it is an email, plain text if it is plain."
    ),
}
#: Slot values are single short phrases inside a sentence of the prompt.
MAX_SLOT_CHARS = 200
UNSET = "(not specified: infer it from the request)"
#: A conversation given to one prompt is at most one summary chunk (its newest lines).
MAX_MATERIAL_CHARS = CHUNK_CHARS

# The request points at the chat rather than at text it carries ("this thread", "above",
# "the discussion", "这个讨论", "上面"); "#channel" only counts with a window ("since …").
# Not 以上: "5年以上经验" means "or more".
_REFERS = re.compile(
    r"\b(?:this|that|the|our|current)\s+(?:thread|conversation|discussion|chat|channel)\b"
    r"|\b(?:above|so far|in here)\b|\bwe\s+(?:discussed|talked about)\b"
    r"|这个(?:讨论|对话|线程|频道|群)|讨论串|上面|上述|聊天记录|群里|刚才(?:的)?讨论",
    re.IGNORECASE,
)
#: Language names a request may ask the output in, with the name a prompt uses.
_LANGUAGES: dict[str, str] = {
    "chinese": language_name("zh"), "mandarin": language_name("zh"),
    "english": language_name("en"), "french": "French", "german": "German",
    "spanish": "Spanish", "japanese": "Japanese", "korean": "Korean",
    "portuguese": "Portuguese", "italian": "Italian", "russian": "Russian",
    "中文": language_name("zh"), "汉语": language_name("zh"), "简体中文": language_name("zh"),
    "英文": language_name("en"), "英语": language_name("en"), "法语": "French",
    "法文": "French", "德语": "German", "德文": "German", "西班牙语": "Spanish",
    "日语": "Japanese", "日文": "Japanese", "韩语": "Korean", "韩文": "Korean",
}  # fmt: skip
_EN_NAMES = "|".join(k for k in _LANGUAGES if k.isascii())
_ZH_NAMES = "|".join(sorted((k for k in _LANGUAGES if not k.isascii()), key=len, reverse=True))
_TARGET = re.compile(
    rf"\b(?:into|in|translat\w*\s+(?:\w+\s+){{0,4}}?to)\s+(?:plain\s+|simplified\s+|formal\s+)?"
    rf"(?P<en>{_EN_NAMES})\b"
    rf"|(?:翻译成|翻译为|翻成|译成|译为|改成|改为|换成|转成|写成|用)\s*(?P<zh>{_ZH_NAMES})"
    rf"|(?P<ver>{_ZH_NAMES})版",
    re.IGNORECASE,
)


def slot_text(value: Any) -> str:
    """A slot value as one defused line (lists are joined; fence markers cannot appear)."""
    if value is None or value == "" or value == []:
        return ""
    if isinstance(value, list | tuple):
        text = ", ".join(str(v) for v in value)
    elif isinstance(value, dict):
        text = " ".join(f"{k}={v}" for k, v in value.items())
    else:
        text = str(value)
    text = " ".join(text.replace(FENCE_OPEN, "").replace(FENCE_CLOSE, "").split())
    return text[:MAX_SLOT_CHARS]


def conversation_scope(text: str, ctx: SlotContext) -> dict[str, Any] | None:
    """What to fetch when a request points at the chat, not at text it carries.

    The summary's scope slots (``scope``, ``channel``, ``since``, ``until``, ``last_n``),
    or None: nothing points at the conversation ("this thread", "above", "这个讨论",
    "#sales since Monday") or the request pastes its own material.
    """
    window = summarize_slots(text, ctx)
    if window["scope"] == "text":
        return None
    dated = window["since"] is not None or window["last_n"] is not None
    if not _REFERS.search(text) and not (window["channel"] is not None and dated):
        return None
    body, _ = pasted_text(text)
    if body is not None and len(body) >= 20:
        return None
    return {k: v for k, v in window.items() if k != "text"}


def target_language(text: str) -> str | None:
    """The language a request asks the answer in ("into Chinese", "翻译成英文"), if any.

    Text the request pastes is not searched (notes may say "in English" themselves).
    """
    _, start = pasted_text(text)
    match = _TARGET.search(text if start < 0 else text[:start])
    if match is None:
        return None
    name = match.group("en") or match.group("zh") or match.group("ver")
    return _LANGUAGES.get(name.lower())


def previous_material(dependencies: Sequence[Task]) -> str:
    """The results a task consumes, joined in order (unfenced)."""
    return "\n\n".join((d.result or "").strip() for d in dependencies if (d.result or "").strip())


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt template and how its answer is shaped.

    ``defaults`` fill slots the request did not give (else :data:`UNSET`); ``budget`` may
    pick the token budget from the task's inputs (``email.draft``'s length).
    """

    text: str
    format: str = "plain"
    max_tokens: int = 512
    role: str = "You write workplace documents for the person asking."
    defaults: Mapping[str, str] = field(default_factory=dict)
    budget: Callable[[Mapping[str, Any]], int] | None = None

    @property
    def placeholders(self) -> frozenset[str]:
        """The names the template uses."""
        return frozenset(n for _, n, _, _ in string.Formatter().parse(self.text) if n)


def newest_lines(text: str, limit: int = MAX_MATERIAL_CHARS) -> str:
    """The end of ``text`` that fits in ``limit`` characters, cut at a line boundary."""
    if len(text) <= limit:
        return text
    tail = text[-limit:]
    cut = tail.find("\n")
    return tail[cut + 1 :] if 0 <= cut < len(tail) - 1 else tail


class TemplateHandler(Handler):
    """Plans one task of its kind and builds its prompt from a template.

    Planning records the language the request asks the answer in (``target_language``)
    and, with ``reads_conversation`` (the intents-file kinds), attaches the conversation
    the request points at (``material``) when the platform can fetch it.

    ``variants`` are named alternatives to ``template`` (usually including it); the
    worker records one in ``task.variant`` before it builds the prompt, and a task naming
    no known variant gets ``template``.
    """

    def __init__(
        self,
        kind: str,
        template: PromptTemplate,
        *,
        variants: Sequence[tuple[str, PromptTemplate]] = (),
        reads_conversation: bool = False,
    ) -> None:
        self.kind = kind
        self.template = template
        self.variants: dict[str, PromptTemplate] = dict(variants)
        if len(self.variants) != len(variants):
            raise ValueError(f"task kind {kind!r} names a prompt variant twice")
        self.reads_conversation = reads_conversation

    @property
    def variant_names(self) -> tuple[str, ...]:
        """The prompt variants the worker may choose between (empty: one prompt only)."""
        return tuple(self.variants)

    def template_for(self, variant: str | None) -> PromptTemplate:
        """The template of ``variant`` (``template`` when it names none of the variants)."""
        return self.variants.get(variant or "", self.template)

    async def plan(self, spec: TaskSpec, ctx: HandlerContext) -> Plan:
        """One task; the conversation is fetched now, as a summary's is (it may change)."""
        inputs = dict(spec.slots)
        request_text = str(inputs.get("request_text", ""))
        target = target_language(request_text)
        if target is not None:
            inputs["target_language"] = target
        consumes = bool(spec.depends_on or inputs.get("results_of"))
        fetch = ctx.fetch_messages if self.reads_conversation else None
        if fetch is not None and not consumes and not inputs.get("material"):
            context = SlotContext(now=ctx.now, timezone=ctx.request.timezone)
            scope = conversation_scope(request_text, context)
            if scope is not None:
                messages = await fetch(str(scope["scope"]), {**inputs, **scope})
                if messages:
                    inputs["material"] = newest_lines(format_messages(messages))
        return Plan(tasks=(TaskCreate(kind=spec.intent, inputs=inputs),))

    def prompt(self, task: Task, dependencies: Sequence[Task]) -> GenerationRequest:
        """Fill the template; the request (and any consumed result or conversation) fenced."""
        inputs = task.inputs
        template = self.template_for(task.variant)
        request_text = str(inputs.get("request_text", ""))
        target = inputs.get("target_language") or target_language(request_text)
        language = str(target) if target else language_name(str(inputs.get("locale", "en")))
        previous = previous_material(dependencies)
        material = str(inputs.get("material") or "").strip()
        values: dict[str, str] = {
            name: slot_text(inputs.get(name)) or template.defaults.get(name, UNSET)
            for name in template.placeholders
        }
        values["request"] = fence(request_text)
        values["previous"] = fence(previous or "(no earlier result)")
        values["material"] = fence(material or "(no conversation: use the request)")
        values["language"] = language
        values["today"] = task.created_at.date().isoformat()
        body = template.text.format_map(values).strip()
        if previous and "previous" not in template.placeholders:
            body += f"\n\nThe earlier result this builds on:\n{values['previous']}"
        if material and "material" not in template.placeholders:
            body += f"\n\nThe conversation the request refers to:\n{values['material']}"
        if "request" not in template.placeholders:
            body += f"\n\nThe request that asked for this:\n{values['request']}"
        if target:
            body += f"\nWrite the answer in {language}, as the request asks."
        body += "\n" + FORMAT_RULES.get(template.format, FORMAT_RULES["plain"])
        budget = template.budget(inputs) if template.budget is not None else template.max_tokens
        return GenerationRequest(
            messages=(
                {"role": "system", "content": system_prompt(template.role, language)},
                {"role": "user", "content": body},
            ),
            max_new_tokens=budget,
            temperature=float(inputs.get("temperature", 0.0)),
            seed=inputs.get("seed"),
        )
