"""The handler of every template-driven task kind: a prompt with named slots, no Python.

Task kinds declared in the intents file (a ``task:`` block) use it, and so do the built-in
kinds whose prompt is one template (``email.draft``). The user's clause is always fenced as
data; so is any earlier result the task consumes.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.texts import language_name
from handlers.base import FENCE_CLOSE, FENCE_OPEN, Handler, fence, system_prompt
from models.generation.base import GenerationRequest
from storage.tables import Task

#: What each output format asks of the model.
FORMAT_RULES: dict[str, str] = {
    "plain": "Reply with plain text only (no Markdown).",
    "markdown": "Format the answer in Markdown (short headings and bullet points).",
    "list": "Reply with a bulleted list only, one item per line.",
    "table": "Reply with a Markdown table only.",
    "email": "Reply with the email only: a first line 'Subject: ...', a blank line, then the body.",
}
#: Slot values are single short phrases inside a sentence of the prompt.
MAX_SLOT_CHARS = 200
UNSET = "(not specified: infer it from the request)"


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


class TemplateHandler(Handler):
    """Plans one task of its kind (the default plan) and builds its prompt from a template."""

    def __init__(self, kind: str, template: PromptTemplate) -> None:
        self.kind = kind
        self.template = template

    def prompt(self, task: Task, dependencies: Sequence[Task]) -> GenerationRequest:
        """Fill the template; the request (and any consumed result) goes in fenced."""
        inputs = task.inputs
        template = self.template
        language = language_name(str(inputs.get("locale", "en")))
        request_text = str(inputs.get("request_text", ""))
        previous = previous_material(dependencies)
        values: dict[str, str] = {
            name: slot_text(inputs.get(name)) or template.defaults.get(name, UNSET)
            for name in template.placeholders
        }
        values["request"] = fence(request_text)
        values["previous"] = fence(previous or "(no earlier result)")
        values["language"] = language
        values["today"] = task.created_at.date().isoformat()
        body = template.text.format_map(values).strip()
        if previous and "previous" not in template.placeholders:
            body += f"\n\nThe earlier result this builds on:\n{values['previous']}"
        if "request" not in template.placeholders:
            body += f"\n\nThe request that asked for this:\n{values['request']}"
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
