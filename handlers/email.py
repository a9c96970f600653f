"""``email.draft``: draft an email to the named recipients (a template-driven kind)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
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


#: The same email, asked for in a fixed order: why the reader gets it, what they need to
#: know, what they should do. (A prompt variant: the worker tries both and keeps using the
#: one a team rates better, see ``models/bandit.py``.)
EMAIL_STRUCTURED = replace(
    EMAIL_TEMPLATE,
    text=(
        EMAIL_TEMPLATE.text
        + "\nStructure: a greeting; the purpose of the email in the first sentence; the details "
        "in one short paragraph or a few bullets; one clear next step or question for the "
        "reader; a sign-off."
    ),
)
#: The prompt variants of ``email.draft`` (the first is used when a task names none).
EMAIL_VARIANTS = (("default", EMAIL_TEMPLATE), ("structured", EMAIL_STRUCTURED))


class EmailHandler(TemplateHandler):
    """Drafts an email from the request (and earlier results it depends on)."""

    def __init__(self) -> None:
        super().__init__("email.draft", EMAIL_TEMPLATE, variants=EMAIL_VARIANTS)
