"""A fake OpenAI-compatible inference server: a real local aiohttp server.

It serves ``GET /v1/models`` and a streamed ``POST /v1/chat/completions`` (server-sent
events, as vLLM/TGI/Ollama send them), records every request body, and answers with the
chunks ``reply(body)`` returns, so a test can make the "model" echo what it was sent,
split anywhere it likes (a placeholder across two chunks, for instance).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Reply = Callable[[dict[str, Any]], list[str]]


def fixed_reply(*chunks: str) -> Reply:
    """A reply of these chunks whatever the request."""
    return lambda _body: list(chunks)


@dataclass
class FakeOpenAI:
    """The server's state: what it answers and what it was sent."""

    reply: Reply = field(default_factory=lambda: fixed_reply("Hello ", "there."))
    model: str = "tiny"
    requests: list[dict[str, Any]] = field(default_factory=list)
    #: Each answer's chunks, in the order they were streamed.
    streamed: list[list[str]] = field(default_factory=list)
    base_url: str = ""

    def sent_text(self) -> str:
        """Every message content of every recorded request, joined (for assertions)."""
        return "\n".join(
            str(m.get("content", "")) for body in self.requests for m in body.get("messages", [])
        )

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": self.model}]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        chunks = self.reply(body)
        self.streamed.append(chunks)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for piece in chunks:
            event = {"choices": [{"index": 0, "delta": {"content": piece}}]}
            await response.write(f"data: {json.dumps(event)}\n\n".encode())
        end = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        await response.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
        await response.write_eof()
        return response


@asynccontextmanager
async def serve_openai(
    reply: Reply | None = None, *, host: str = "127.0.0.1"
) -> AsyncIterator[FakeOpenAI]:
    """Run a :class:`FakeOpenAI` on a free port of ``host``; its ``base_url`` ends in ``/v1``."""
    fake = FakeOpenAI() if reply is None else FakeOpenAI(reply=reply)
    app = web.Application()
    app.router.add_get("/v1/models", fake._models)
    app.router.add_post("/v1/chat/completions", fake._chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.base_url = f"http://{host}:{port}/v1"
    try:
        yield fake
    finally:
        await runner.cleanup()
