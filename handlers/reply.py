"""``reply.draft``: draft a reply to a message or thread."""

from __future__ import annotations

from collections.abc import Sequence

from bot.texts import language_name
from handlers.base import (
    Handler,
    HandlerContext,
    Plan,
    dependency_material,
    fence,
    system_prompt,
)
from handlers.summarize import format_messages
from models.generation.base import GenerationRequest
from models.intents.spec import TaskSpec
from storage.schemas import TaskCreate
from storage.tables import Task


class ReplyHandler(Handler):
    """Drafts a reply; the thread or message replied to is fetched when the request is made."""

    async def plan(self, spec: TaskSpec, ctx: HandlerContext) -> Plan:
        """Attach the conversation being replied to, when the platform can give it."""
        inputs = dict(spec.slots)
        if not inputs.get("text") and ctx.fetch_messages is not None:
            messages = await ctx.fetch_messages("thread", inputs)
            if messages:
                inputs["conversation"] = format_messages(messages)
        return Plan(tasks=(TaskCreate(kind="reply.draft", inputs=inputs),))

    def prompt(self, task: Task, dependencies: Sequence[Task]) -> GenerationRequest:
        """The message(s) to answer, fenced, plus any extra instructions."""
        inputs = task.inputs
        material = (
            inputs.get("text") or inputs.get("conversation") or inputs.get("request_text", "")
        )
        user = (
            "Draft a reply to the conversation below, ready to send.\n"
            f"{dependency_material(dependencies)}"
            f"Conversation or message to reply to:\n{fence(material)}\n"
            f"Instructions from the person asking:\n{fence(inputs.get('request_text', ''))}"
        )
        return GenerationRequest(
            messages=(
                {
                    "role": "system",
                    "content": system_prompt(
                        "You draft replies to workplace messages.",
                        language_name(inputs.get("locale", "en")),
                    ),
                },
                {"role": "user", "content": user},
            ),
            max_new_tokens=300,
            temperature=float(inputs.get("temperature", 0.0)),
            seed=inputs.get("seed"),
        )
