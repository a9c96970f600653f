"""``summarize``: summarize a thread, a channel or pasted text (map-reduce when long)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.texts import language_name, t
from handlers.base import Handler, HandlerContext, Plan, fence, system_prompt
from models.generation.base import GenerationRequest
from models.intents.spec import TaskSpec
from storage.schemas import TaskCreate
from storage.tables import Task

#: Characters of material one generation call summarizes (about 2,000 tokens): longer
#: material is split into chunks whose partial summaries a final task combines.
CHUNK_CHARS = 8_000
PARTIAL = "summarize.partial"
#: ``Inbound.context`` flag of a message sent as a slash command (its value: the command).
SLASH_COMMAND = "slash_command"

SUMMARY_SHAPE = (
    "Give: 1) the key points, 2) decisions made, 3) action items with their owners. "
    "Be brief; use bullet points."
)


def format_messages(messages: Sequence[dict[str, Any]]) -> str:
    """Chat messages as ``[time] author: text`` lines."""
    lines = []
    for m in messages:
        when = f"[{m['ts']}] " if m.get("ts") else ""
        lines.append(f"{when}{m.get('author', '?')}: {m.get('text', '')}")
    return "\n".join(lines)


def split_material(text: str, limit: int = CHUNK_CHARS) -> list[str]:
    """Split at line boundaries into chunks of at most ``limit`` characters."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.splitlines() or [text]:
        while len(line) > limit:
            if current:
                chunks.append("\n".join(current))
                current, size = [], 0
            chunks.append(line[:limit])
            line = line[limit:]
        if size + len(line) + 1 > limit and current:
            chunks.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        chunks.append("\n".join(current))
    return [c for c in chunks if c.strip()]


class SummarizeHandler(Handler):
    """Plans one summary task, or partial summaries plus a combining task for long material."""

    async def plan(self, spec: TaskSpec, ctx: HandlerContext) -> Plan:
        """Fetch the material now (it may change later) and split it when it is long."""
        inputs = dict(spec.slots)
        scope = inputs.get("scope") or "text"
        material = inputs.get("text") or ""
        if scope == "thread" and not ctx.request.thread and ctx.extra.get(SLASH_COMMAND):
            # A slash command carries no thread: "this thread" would silently become the
            # whole channel. Say how to ask in a thread instead.
            return Plan(answer=t("summarize.thread_from_command", ctx.request.locale))
        if scope in ("thread", "channel") and ctx.fetch_messages is not None:
            messages = await ctx.fetch_messages(scope, inputs)
            if messages:
                material = format_messages(messages)
        if not material.strip():
            material = inputs.get("request_text", "")
        chunks = split_material(material)
        if len(chunks) <= 1:
            inputs["material"] = material
            return Plan(tasks=(TaskCreate(kind="summarize", inputs=inputs),))
        partials = tuple(
            TaskCreate(
                kind=PARTIAL,
                inputs={
                    "material": chunk,
                    "part": i + 1,
                    "parts": len(chunks),
                    "locale": inputs.get("locale", "en"),
                },
            )
            for i, chunk in enumerate(chunks)
        )
        final = TaskCreate(kind="summarize", inputs=inputs, depends_on=tuple(range(len(partials))))
        return Plan(tasks=(*partials, final))

    def prompt(self, task: Task, dependencies: Sequence[Task]) -> GenerationRequest:
        """A summary of the material, or of the partial summaries it depends on."""
        inputs = task.inputs
        partials = [d for d in dependencies if d.kind == PARTIAL]
        if partials:
            material = "\n\n".join((d.result or "").strip() for d in partials)
            ask = "Combine these partial summaries of one conversation into one summary. "
        elif task.kind == PARTIAL:
            material = inputs.get("material", "")
            ask = (
                f"Summarize part {inputs.get('part')} of {inputs.get('parts')} of a conversation. "
            )
        else:
            material = inputs.get("material", "")
            ask = "Summarize the following. "
        return GenerationRequest(
            messages=(
                {
                    "role": "system",
                    "content": system_prompt(
                        "You summarize workplace conversations.",
                        language_name(inputs.get("locale", "en")),
                    ),
                },
                {"role": "user", "content": f"{ask}{SUMMARY_SHAPE}\n{fence(material)}"},
            ),
            max_new_tokens=400 if task.kind == "summarize" else 250,
            temperature=float(inputs.get("temperature", 0.0)),
            seed=inputs.get("seed"),
        )
