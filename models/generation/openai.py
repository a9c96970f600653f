"""OpenAI-compatible streaming backend: vLLM, TGI, Ollama, llama.cpp server, ``transformers serve``.

Each :meth:`OpenAIGenerator.generate` is one streamed ``POST {base_url}/chat/completions``;
many run at once (the server batches them). Connection errors, timeouts, HTTP 429 and 5xx
are retried with exponential backoff (``Retry-After`` is honoured); other 4xx answers fail
the request at once because repeating it cannot help.

With ``ATOMBOT_REDACT`` in effect the composition root wraps this backend in
:class:`models.generation.redact.RedactingGenerator`: everything here (the request body, the
stream, every log line, error reasons quoting the server) holds placeholders, never the
redacted values; the wrapper restores them in the result and in each progress text.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
from typing import Any

import aiohttp

from models.generation.base import (
    GenerationError,
    GenerationRequest,
    GenerationResult,
    GeneratorUnavailable,
    ProgressCallback,
)

logger = logging.getLogger(__name__)

#: The OpenAI API accepts at most this many stop sequences; extra ones are applied here.
_MAX_SERVER_STOPS = 4
_MAX_BACKOFF_S = 30.0


class _RetryableFailure(Exception):
    """A failure worth another attempt, with the server's suggested delay if it gave one."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After")
    try:
        return min(_MAX_BACKOFF_S, max(0.0, float(value))) if value is not None else None
    except ValueError:
        return None


class OpenAIGenerator:
    """Chat completions streamed from an OpenAI-compatible server.

    ``base_url`` is the API root including the version, e.g. ``http://localhost:8000/v1``.
    ``timeout`` bounds the wait for each chunk of the stream (not the whole completion);
    ``connect_timeout`` bounds connecting. ``retries`` is the number of extra attempts after
    a transient failure, spaced by ``backoff * 2**attempt`` seconds (with jitter).
    """

    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        api_key: str | None = None,
        max_concurrency: int = 64,
        timeout: float = 120.0,
        connect_timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        context_length: int = 8192,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._api_key = api_key
        self._max_concurrency = max(1, max_concurrency)
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._retries = max(0, retries)
        self._backoff = backoff
        self._context_length = context_length
        self._session: aiohttp.ClientSession | None = None
        self._slots: asyncio.Semaphore | None = None

    @property
    def capacity(self) -> int:
        """How many requests are kept in flight at once."""
        return self._max_concurrency

    @property
    def context_length(self) -> int:
        """The context window assumed for the served model."""
        return self._context_length

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    async def start(self) -> None:
        """Open the HTTP session and check the server answers ``GET /models``.

        A server without ``/models`` (404/405) is accepted; an unreachable server or a
        rejected API key raises :class:`GeneratorUnavailable`.
        """
        if self._session is not None:
            return
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self._connect_timeout, sock_read=self._timeout
        )
        connector = aiohttp.TCPConnector(limit=self._max_concurrency + 4)
        session = aiohttp.ClientSession(timeout=timeout, connector=connector)
        try:
            async with session.get(f"{self.base_url}/models", headers=self._headers()) as resp:
                if resp.status in (401, 403):
                    raise GeneratorUnavailable(
                        f"{self.base_url} rejected the API key (HTTP {resp.status}); "
                        "check ATOMBOT_OPENAI_API_KEY"
                    )
                if resp.status == 200:
                    self._warn_if_model_missing(await resp.json(content_type=None))
                elif resp.status not in (404, 405):
                    logger.warning("%s/models answered HTTP %d", self.base_url, resp.status)
        except GeneratorUnavailable:
            await session.close()
            raise
        except (aiohttp.ClientError, TimeoutError) as error:
            await session.close()
            raise GeneratorUnavailable(
                f"cannot reach the inference server at {self.base_url} "
                f"({type(error).__name__}: {error}); check ATOMBOT_OPENAI_BASE_URL and that "
                "the server is running"
            ) from error
        self._session = session
        self._slots = asyncio.Semaphore(self._max_concurrency)

    def _warn_if_model_missing(self, payload: Any) -> None:
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list):
            return
        served = {str(item.get("id")) for item in data if isinstance(item, dict)}
        if served and self.model not in served:
            logger.warning("model %r is not among the served models %s", self.model, sorted(served))

    def count_tokens(self, text: str) -> int:
        """An estimate (about four characters per token): the server's tokenizer is remote."""
        return max(1, math.ceil(len(text) / 4)) if text else 0

    async def generate(
        self, request: GenerationRequest, on_progress: ProgressCallback | None = None
    ) -> GenerationResult:
        """Stream one completion, retrying transient failures; report progress per chunk."""
        if self._session is None or self._slots is None:
            raise GeneratorUnavailable("the generator is not started")
        async with self._slots:
            for attempt in range(self._retries + 1):
                try:
                    return await self._stream(request, on_progress)
                except _RetryableFailure as failure:
                    if attempt == self._retries:
                        raise GenerationError(
                            f"{failure.reason} (after {attempt + 1} attempts)", retryable=True
                        ) from failure
                    delay = failure.retry_after
                    if delay is None:
                        delay = min(_MAX_BACKOFF_S, self._backoff * 2**attempt)
                        delay *= 1 + random.random() / 4
                    logger.info("retrying in %.2fs: %s", delay, failure.reason)
                    await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _payload(self, request: GenerationRequest) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(m) for m in request.messages],
            "max_tokens": request.max_new_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "stream": True,
        }
        if request.stop:
            payload["stop"] = list(request.stop[:_MAX_SERVER_STOPS])
        if request.seed is not None:
            payload["seed"] = request.seed
        return payload

    async def _stream(
        self, request: GenerationRequest, on_progress: ProgressCallback | None
    ) -> GenerationResult:
        assert self._session is not None
        url = f"{self.base_url}/chat/completions"
        try:
            async with self._session.post(
                url, json=self._payload(request), headers=self._headers()
            ) as resp:
                if resp.status == 429 or resp.status >= 500:
                    body = (await resp.text())[:200]
                    raise _RetryableFailure(
                        f"server answered HTTP {resp.status}: {body}", _retry_after(resp.headers)
                    )
                if resp.status != 200:
                    body = (await resp.text())[:300]
                    raise GenerationError(
                        f"server answered HTTP {resp.status}: {body}", retryable=False
                    )
                return await self._read_events(resp, request, on_progress)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise _RetryableFailure(f"{type(error).__name__}: {error or 'timed out'}") from error

    async def _read_events(
        self,
        resp: aiohttp.ClientResponse,
        request: GenerationRequest,
        on_progress: ProgressCallback | None,
    ) -> GenerationResult:
        """Accumulate the streamed deltas of one ``text/event-stream`` answer."""
        text = ""
        chunks = 0
        finish_reason = "length"
        usage: dict[str, Any] = {}
        async for raw in resp.content:
            line = raw.decode("utf-8").strip()
            if not line.startswith("data:"):
                continue
            data = line[len("data:") :].strip()
            if data == "[DONE]":
                break
            try:
                event = json.loads(data)
            except json.JSONDecodeError:
                logger.debug("ignoring a malformed stream line: %r", data[:100])
                continue
            if "error" in event:
                raise _RetryableFailure(f"server error in stream: {event['error']}")
            if isinstance(event.get("usage"), dict):
                usage = event["usage"]
            for choice in event.get("choices") or ():
                delta = (choice.get("delta") or {}).get("content") or ""
                if delta:
                    text += delta
                    chunks += 1
                    # Servers honour only a few stop strings; the rest are applied here.
                    cut = _earliest_stop(text, request.stop)
                    if cut is not None:
                        return self._result(text[:cut], request, chunks, "stop", usage)
                    if on_progress is not None:
                        _report(on_progress, chunks, text)
                if choice.get("finish_reason"):
                    finish_reason = "length" if choice["finish_reason"] == "length" else "stop"
        return self._result(text, request, chunks, finish_reason, usage)

    def _result(
        self,
        text: str,
        request: GenerationRequest,
        chunks: int,
        finish_reason: str,
        usage: dict[str, Any],
    ) -> GenerationResult:
        prompt = sum(self.count_tokens(m.get("content", "")) for m in request.messages)
        return GenerationResult(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens", prompt)),
            completion_tokens=int(usage.get("completion_tokens", chunks)),
            finish_reason=finish_reason,
        )

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def _earliest_stop(text: str, stops: tuple[str, ...]) -> int | None:
    positions = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(positions) if positions else None


def _report(on_progress: ProgressCallback, chunks: int, text: str) -> None:
    try:
        on_progress(chunks, text)
    except Exception:
        logger.exception("progress callback failed")
