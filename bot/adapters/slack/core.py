"""What every part of the Slack adapter shares: settings, the Web API clients, the services
the core handed over, and how a Web API failure becomes a :class:`DeliveryError`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.adapters.base import DeliveryError, Services
from bot.adapters.slack.inbound import PLATFORM
from bot.config import Settings

log = logging.getLogger(__name__)

#: What a Web API call may raise besides our own errors.
SLACK_ERRORS = (SlackApiError, aiohttp.ClientError, TimeoutError)
_RETRYABLE_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
)


def slack_error(exc: Exception) -> str | None:
    """Slack's error code of a refused call (``message_not_in_streaming_state``), else None."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error", "unknown"))
    return None


def delivery_error(method: str, exc: Exception) -> DeliveryError:
    """A failed Web API call as the core sees it (retryable or not, maybe applied or not)."""
    if isinstance(exc, SlackApiError):
        error = str(exc.response.get("error", "unknown"))
        if exc.response.status_code == 429:
            retry_after = float(exc.response.headers.get("Retry-After", "1"))
            return DeliveryError(f"{method}: ratelimited", retry_after=retry_after)
        retryable = error in _RETRYABLE_ERRORS or exc.response.status_code >= 500
        # Slack's internal_error: "some aspect of the operation may have succeeded".
        maybe_sent = error == "internal_error" or exc.response.status_code >= 500
        return DeliveryError(f"{method}: {error}", retryable=retryable, maybe_sent=maybe_sent)
    # A timeout or dropped connection: the request may have reached Slack.
    return DeliveryError(f"{method}: {type(exc).__name__}: {exc}", maybe_sent=True)


class CountingRateLimitHandler(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's 429 retry handler, telling ``on_429`` the Web API method of every 429."""

    def __init__(self, *, max_retry_count: int, on_429: Callable[[str], None]) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.on_429 = on_429

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        """Count a 429 (retried or not), then decide as slack_sdk does."""
        if response is not None and response.status_code == 429:
            self.on_429(request.url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0])
        retry: bool = await super().can_retry_async(
            state=state, request=request, response=response, error=error
        )
        return retry


class SlackCore:
    """The state the adapter's parts share (see :class:`~bot.adapters.slack.SlackAdapter`)."""

    platform = PLATFORM

    def __init__(
        self,
        settings: Settings,
        *,
        min_edit_interval: float = 1.0,
        max_rate_limit_retries: int = 3,
        route_concurrency: int = 2,
    ) -> None:
        if not settings.slack_bot_token:
            raise ValueError("SLACK_BOT_TOKEN is required for the Slack adapter")
        self.settings = settings
        self.private_results = settings.slack_private_results
        self.min_edit_interval = min_edit_interval
        self.max_rate_limit_retries = max_rate_limit_retries
        self.bot_user_id: str | None = None
        self._services: Services | None = None
        self._client: AsyncWebClient | None = None
        self._post_client: AsyncWebClient | None = None
        self._background: set[asyncio.Task[Any]] = set()
        # Routing (classification, database writes) waits its turn, so that under a burst
        # the event loop stays free for acknowledging the requests still arriving.
        self._routing = asyncio.Semaphore(route_concurrency)

    @property
    def client(self) -> AsyncWebClient:
        """The Web API client (after start)."""
        if self._client is None:
            raise RuntimeError("the Slack adapter is not started")
        return self._client

    @property
    def services(self) -> Services:
        """What the core handed over at start."""
        if self._services is None:
            raise RuntimeError("the Slack adapter is not started")
        return self._services

    def _build_clients(self) -> None:
        self._client = AsyncWebClient(
            token=self.settings.slack_bot_token,
            base_url=self.settings.slack_api_url,
            retry_handlers=[
                AsyncConnectionErrorRetryHandler(),
                CountingRateLimitHandler(
                    max_retry_count=self.max_rate_limit_retries, on_429=self._rate_limited
                ),
            ],
        )
        # Posts must not be resent blindly after a dropped connection: Slack may already
        # have taken the first try. A connection error surfaces as a post "in doubt", and
        # delivery looks the post up (find_sent) before sending it again. The stream
        # methods add to a message the same way, so they go through this client too.
        self._post_client = AsyncWebClient(
            token=self.settings.slack_bot_token,
            base_url=self.settings.slack_api_url,
            retry_handlers=[
                CountingRateLimitHandler(
                    max_retry_count=self.max_rate_limit_retries, on_429=self._rate_limited
                )
            ],
        )

    def _rate_limited(self, method: str) -> None:
        if self._services is not None:
            self._services.metrics.platform_rate_limited(PLATFORM, method)

    async def _call(self, method: str, **kwargs: Any) -> AsyncSlackResponse:
        """One Web API call; a failure becomes a :class:`DeliveryError`."""
        try:
            return await self._raw_call(method, **kwargs)
        except SLACK_ERRORS as exc:
            raise delivery_error(method, exc) from exc

    async def _raw_call(self, method: str, **kwargs: Any) -> AsyncSlackResponse:
        """One Web API call, its failure raised as slack_sdk raises it."""
        arguments = {k: v for k, v in kwargs.items() if v is not None}
        once = method == "chat.postMessage" or method.endswith("Stream")
        client = self._post_client if once else None
        return await (client or self.client).api_call(method, json=arguments)
