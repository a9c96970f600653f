"""Without a reachable hub, a hub model id is given up on at once, and the fallback is explained.

The hub is a local address: a closed port (no hub) or a small HTTP server (a hub that
answers, even with an error status).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from models.generation.base import GeneratorUnavailable
from models.generation.hf import HFGenerator, hub_unreachable

UNCACHED = "atombot-tests/not-in-any-cache"


@pytest.fixture
def no_hub() -> str:
    """The URL of a port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def answering_hub() -> Iterator[str]:
    """A hub that answers every request with 404."""

    class NotFound(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_hub_that_answers_is_reachable_even_with_an_error_status(answering_hub: str) -> None:
    assert hub_unreachable(answering_hub) is None


def test_a_closed_port_is_no_hub(no_hub: str) -> None:
    assert "refused" in (hub_unreachable(no_hub) or "").lower()


async def test_an_uncached_model_without_a_hub_fails_with_why(
    no_hub: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    generator = HFGenerator(UNCACHED, device="cpu", hub_endpoint=no_hub)
    with pytest.raises(GeneratorUnavailable, match="not in the local Hugging Face cache") as caught:
        await generator.start()
    assert no_hub in caught.value.reason


async def test_without_a_hub_the_fallback_serves_and_one_line_says_why(
    no_hub: str,
    tiny_model: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    generator = HFGenerator(
        UNCACHED,
        device="cpu",
        hub_endpoint=no_hub,
        fallback=lambda: tiny_model,
        fallback_label="the tiny test model",
    )
    events: list[str] = []
    generator.on_status = lambda event, _seconds: events.append(event)
    with caplog.at_level(logging.INFO):
        await generator.start()
    try:
        assert generator.model_name == str(tiny_model)
        assert events == ["loading", "ready"]
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        line = warnings[0].getMessage()
        assert UNCACHED in line and "cannot be reached" in line
        assert "using the tiny test model instead" in line and "ATOMBOT_MODEL" in line
    finally:
        await generator.close()
