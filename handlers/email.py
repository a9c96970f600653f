"""``email.draft``: draft an email to the named recipients."""

from __future__ import annotations

from collections.abc import Sequence

from bot.texts import language_name
from handlers.base import Handler, dependency_material, fence, system_prompt
from models.generation.base import GenerationRequest
from storage.tables import Task

LENGTH_TOKENS = {"short": 200, "medium": 350, "long": 600}


class EmailHandler(Handler):
    """Drafts an email from the request (and earlier results it depends on)."""

    intents = ("email.draft",)
    kinds = ("email.draft",)

    def prompt(self, task: Task, dependencies: Sequence[Task]) -> GenerationRequest:
        """Recipients, purpose, tone and length, with the request fenced as data."""
        inputs = task.inputs
        recipients = ", ".join(inputs.get("recipients") or []) or "the recipient"
        tone = inputs.get("tone") or "professional and friendly"
        length = inputs.get("length") or "medium"
        user = (
            f"Draft an email to {recipients}. Tone: {tone}. Length: {length}.\n"
            f"Topic: {inputs.get('topic') or 'see the request'}\n"
            f"{dependency_material(dependencies)}"
            f"The request that asked for this email:\n{fence(inputs.get('request_text', ''))}\n"
            "Reply with the email only: a subject line, then the body."
        )
        return GenerationRequest(
            messages=(
                {
                    "role": "system",
                    "content": system_prompt(
                        "You draft emails.", language_name(inputs.get("locale", "en"))
                    ),
                },
                {"role": "user", "content": user},
            ),
            max_new_tokens=LENGTH_TOKENS.get(length, 350),
            temperature=float(inputs.get("temperature", 0.0)),
            seed=inputs.get("seed"),
        )
