"""Redaction in front of the OpenAI-compatible backend, against a real local fake server:
what the server receives holds only placeholders; what comes back is restored, in the result
and in every streamed partial text."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from models.generation.base import GenerationRequest
from models.generation.openai import OpenAIGenerator
from models.generation.redact import Redactor, with_redaction
from tests.fakes.openai_api import serve_openai

EMAIL, PHONE, CARD = "jane.doe@example.com", "+1 415-555-2671", "4111 1111 1111 1111"
PII = (EMAIL, PHONE, CARD, "4111111111111111", "415-555-2671", "4155552671")
ASK = GenerationRequest(
    messages=(
        {"role": "system", "content": "You draft short emails."},
        {
            "role": "user",
            "content": f"Tell Dana to write to {EMAIL}, call {PHONE} and charge {CARD}.",
        },
    )
)


def echo_placeholders(body: dict[str, Any]) -> list[str]:
    """A "model" that writes back the placeholders of the last message (one of them in
    lower case, as models sometimes do), streamed three characters at a time."""
    last = body["messages"][-1]["content"]
    email, phone, card = re.findall(r"\[[A-Z]+_\d+\]", last)
    text = f"Hi Dana, write to {email}, call {phone.lower()}, card {card}. Thanks"
    return [text[i : i + 3] for i in range(0, len(text), 3)]


async def test_the_server_never_sees_the_values_and_the_result_has_them_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serve_openai(echo_placeholders) as fake:
        backend = OpenAIGenerator(fake.base_url, model="tiny", retries=0)
        generator = with_redaction(backend, mode="always", kind="openai", base_url=fake.base_url)
        await generator.start()
        shown: list[str] = []
        try:
            result = await generator.generate(ASK, lambda _n, text: shown.append(text))
        finally:
            await generator.close()

    sent = fake.sent_text()
    for value in PII:
        assert value not in sent
    assert "[EMAIL_1]" in sent and "[PHONE_1]" in sent and "[CARD_1]" in sent
    assert result.text == f"Hi Dana, write to {EMAIL}, call {PHONE}, card {CARD}. Thanks"
    # Streamed three characters at a time, each placeholder spans several chunks: no partial
    # shows a piece of one, and each partial is the start of the final text.
    assert len(shown) == len(fake.streamed[0])
    for text in shown:
        assert result.text.startswith(text)
        assert "[" not in text and "_1" not in text
    assert EMAIL in shown[-1] and PHONE in shown[-1]
    # Logs, at every level, hold figures and placeholders only.
    assert "redacted before generation" in caplog.text
    for value in PII:
        assert value not in caplog.text


async def test_off_sends_the_text_as_it_is() -> None:
    async with serve_openai() as fake:
        backend = OpenAIGenerator(fake.base_url, model="tiny", retries=0)
        generator = with_redaction(backend, mode="off", kind="openai", base_url="https://x.io/v1")
        await generator.start()
        try:
            await generator.generate(ASK)
        finally:
            await generator.close()

    assert generator is backend
    assert fake.requests[0]["messages"] == [dict(m) for m in ASK.messages]


async def test_external_leaves_a_local_server_alone_but_redacts_for_any_other() -> None:
    async with serve_openai() as fake:
        local = with_redaction(
            OpenAIGenerator(fake.base_url, model="tiny"),
            mode="external",
            kind="openai",
            base_url=fake.base_url,
        )
        # Decided as for a server elsewhere; the request still goes to the fake to be seen.
        remote = with_redaction(
            OpenAIGenerator(fake.base_url, model="tiny"),
            mode="external",
            kind="openai",
            base_url="https://inference.example.com/v1",
        )
        for generator in (local, remote):
            await generator.start()
            try:
                await generator.generate(ASK)
            finally:
                await generator.close()

    plain, redacted = (body["messages"][1]["content"] for body in fake.requests)
    assert EMAIL in plain and CARD in plain
    assert EMAIL not in redacted and "[EMAIL_1]" in redacted


async def test_an_error_reason_quoting_the_request_holds_only_placeholders() -> None:
    from aiohttp import web

    seen: list[str] = []

    async def reject(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append(body["messages"][-1]["content"])
        return web.json_response({"error": f"bad prompt: {seen[-1]}"}, status=400)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", reject)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/v1"
    generator = with_redaction(
        OpenAIGenerator(url, model="tiny", retries=0), mode="always", kind="openai", base_url=url
    )
    await generator.start()
    try:
        try:
            await generator.generate(ASK)
        except Exception as exc:
            reason = str(exc)
        else:
            raise AssertionError("a 400 must fail the request")
    finally:
        await generator.close()
        await runner.cleanup()

    assert "[EMAIL_1]" in reason
    for value in PII:
        assert value not in reason


def test_redactor_default_regions_cover_us_and_cn() -> None:
    assert Redactor().regions == ("US", "CN")
