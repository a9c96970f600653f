"""ATOMBOT_REDACT end to end: a console request holding an e-mail address, a phone number
and a card number goes router → worker → a fake OpenAI-compatible server (real HTTP) →
delivery; the server sees none of them, the person sees all of them in the draft."""

from __future__ import annotations

import asyncio
import io
import re
from typing import Any

from bot.adapters.console import ConsoleAdapter
from bot.app import UnavailableGenerator, build_app, build_generator
from bot.config import Settings
from models.generation.openai import OpenAIGenerator
from models.generation.redact import RedactingGenerator
from models.intents.spec import IntentParser
from storage.tables import TaskStatus
from tests.fakes.openai_api import serve_openai

EMAIL, PHONE, CARD = "jane.doe@example.com", "+1 415-555-2671", "4111 1111 1111 1111"
REQUEST = (
    f"draft an email to Dana asking her to call me at {PHONE} or write to {EMAIL}, "
    f"and to charge the card {CARD}"
)


def draft_with_placeholders(body: dict[str, Any]) -> list[str]:
    """A "model" that drafts with every placeholder it was given (streamed in small
    chunks, so that placeholders arrive split) and writes one back in lower case."""
    prompt = "\n".join(m["content"] for m in body["messages"])
    found = list(dict.fromkeys(re.findall(r"\[(?:EMAIL|PHONE|CARD)_\d+\]", prompt)))
    text = "Subject: Call me\n\nHi Dana, " + ", ".join([*found[:-1], found[-1].lower()]) + "."
    return [text[i : i + 4] for i in range(0, len(text), 4)]


async def test_a_request_with_pii_reaches_the_server_redacted_and_is_delivered_restored(
    settings: Settings, parser: IntentParser
) -> None:
    async with serve_openai(draft_with_placeholders) as fake:
        settings = settings.model_copy(
            update={
                "generator": "openai",
                "openai_base_url": fake.base_url,
                "model": "tiny",
                "redact": "always",  # the fake listens on 127.0.0.1: "external" would not
            }
        )
        out = io.StringIO()
        console = ConsoleAdapter(stdin=io.StringIO(REQUEST + "\n"), stdout=out, wait_timeout=60)
        app = await build_app(settings, parser=parser, adapters=[console], learning=False)
        await app.start()
        try:
            await asyncio.wait_for(console.finished.wait(), 90)
            tasks = await app.repo.list_tasks(limit=10)
        finally:
            await app.stop()

    sent = fake.sent_text()
    assert fake.requests, "the worker never called the server"
    for value in (EMAIL, PHONE, CARD, "4111111111111111", "415-555-2671"):
        assert value not in sent
    assert "[EMAIL_1]" in sent and "[PHONE_1]" in sent and "[CARD_1]" in sent
    [task] = tasks
    assert task.status == TaskStatus.succeeded
    for value in (EMAIL, PHONE, CARD):
        assert value in (task.result or "")
        assert value in out.getvalue()
    for text in (out.getvalue(), task.result or "", getattr(task, "partial", None) or ""):
        assert not re.search(r"(?i)(email|phone|card)_\d", text)


def test_the_default_external_redacts_a_remote_server_only(settings: Settings) -> None:
    def built(**update: Any) -> object:
        return build_generator(settings.model_copy(update={"generator": "openai", **update}))

    remote = built(openai_base_url="https://inference.example.com/v1")
    local = built(openai_base_url="http://localhost:8000/v1")
    off = built(openai_base_url="https://inference.example.com/v1", redact="off")

    assert isinstance(remote, RedactingGenerator) and isinstance(remote.inner, OpenAIGenerator)
    assert isinstance(local, OpenAIGenerator) and isinstance(off, OpenAIGenerator)


def test_a_bad_pattern_makes_the_generator_unavailable_rather_than_unredacted(
    settings: Settings,
) -> None:
    generator = build_generator(
        settings.model_copy(
            update={
                "generator": "openai",
                "openai_base_url": "https://inference.example.com/v1",
                "redact_patterns": '{"EMPLOYEE_ID": "EMP-(\\\\d"}',
            }
        )
    )

    assert isinstance(generator, UnavailableGenerator)
    assert "EMPLOYEE_ID" in generator.reason
