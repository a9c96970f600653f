"""The ops endpoints as an HTTP server facing a network: odd methods, paths and headers get
a 4xx (never a 5xx), bodies carry no secrets, and garbage leaves no traceback in the log."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.metrics import Metrics
from bot.ops import OpsServer, Readiness
from storage.repository import Repository

SECRET = "xoxb-0000-secret-token"
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "FOO"]
PATHS = [
    "/metrics", "/healthz", "/readyz", "/", "/metrics/", "/healthz?probe=1", "//metrics",
    "/%2e%2e/etc/passwd", "/readyz/../metrics", "/METRICS", "/%ff", "/ä", "/x" * 3000,
]  # fmt: skip


@pytest.fixture
async def server(repo: Repository) -> AsyncIterator[OpsServer]:
    readiness = Readiness(repo=repo, adapters={}, worker=None, scheduler=None)
    ops = OpsServer(metrics=Metrics(["summarize"]), readiness=readiness, host="127.0.0.1", port=0)
    await ops.start()
    yield ops
    await ops.stop()


async def test_every_method_and_path_gets_a_sane_status_and_no_secret(
    server: OpsServer,
) -> None:
    statuses: dict[tuple[str, str], int] = {}
    async with aiohttp.ClientSession() as session:
        for method, path in itertools.product(METHODS, PATHS):
            headers = {"Authorization": f"Bearer {SECRET}", "X-Pad": "a" * 4000}
            async with session.request(method, server.url + path, headers=headers) as response:
                body = await response.read()
            statuses[method, path] = response.status
            assert response.status < 500, (method, path)
            assert SECRET.encode() not in body

    for path in ("/metrics", "/healthz", "/readyz"):
        assert statuses["GET", path] == statuses["HEAD", path] == 200
        assert statuses["POST", path] == statuses["DELETE", path] == 405
    assert statuses["GET", "/"] == statuses["GET", "/METRICS"] == 404


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"s" * 100_000 + b"\r\n\r\n",
        b"GET /readyz HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        b"GET /metrics HTTP/9.9\r\n\r\n",
        b"\x00\x01\x02 garbage\r\n\r\n",
    ],
)
async def test_a_request_that_cannot_be_read_is_a_400_and_no_logged_traceback(
    server: OpsServer, raw: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    caplog.set_level(logging.DEBUG)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    answer = await reader.read(200)
    writer.close()
    await writer.wait_closed()

    assert answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n")[0]
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert b"sss" not in "".join(r.getMessage() for r in caplog.records).encode()
