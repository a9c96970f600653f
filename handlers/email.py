"""``email.draft``: draft an email to the named recipients (a template-driven kind)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handlers.template import PromptTemplate, TemplateHandler

LENGTH_TOKENS = {"short": 200, "medium": 350, "long": 600}


def _budget(inputs: Mapping[str, Any]) -> int:
    return LENGTH_TOKENS.get(str(inputs.get("length") or "medium"), 350)


EMAIL_TEMPLATE = PromptTemplate(
    text="Draft an email to {recipients}. Tone: {tone}. Length: {length}.\nTopic: {topic}",
    format="email",
    max_tokens=350,
    role="You draft emails.",
    defaults={
        "recipients": "the recipient",
        "tone": "professional and friendly",
        "length": "medium",
        "topic": "see the request",
    },
    budget=_budget,
)


class EmailHandler(TemplateHandler):
    """Drafts an email from the request (and earlier results it depends on)."""

    def __init__(self) -> None:
        super().__init__("email.draft", EMAIL_TEMPLATE)
