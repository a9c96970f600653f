"""What every part of the Slack adapter shares: settings, the Web API clients, the services
the core handed over, and how a Web API failure becomes a :class:`DeliveryError`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
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
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
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


#: The workspace (team id) the Web API calls of this task are made for: set around every
#: outbound call of a Target and around every listener (many-workspace mode only).
_TEAM: ContextVar[str | None] = ContextVar("atombot_slack_team", default=None)
#: Workspaces whose clients are kept (the least recently installed or used go first).
MAX_WORKSPACES = 1_000


def current_team() -> str | None:
    """The workspace the calls being made now are for (None: single-token mode, or none)."""
    return _TEAM.get()


def use_team(team: str | None) -> None:
    """Make the rest of this task's Web API calls (and the tasks it starts) for ``team``:
    bolt's middleware sets it, and the listeners bolt starts after it inherit it. The HTTP
    edge wraps every dispatch in :func:`in_team` so that it ends with the request."""
    _TEAM.set(team)


@contextmanager
def in_team(team: str | None) -> Iterator[None]:
    """Make the Web API calls inside (and in tasks started inside) for workspace ``team``."""
    reset = _TEAM.set(team)
    try:
        yield
    finally:
        _TEAM.reset(reset)


@dataclass
class Workspace:
    """One installed workspace: its bot's clients (token from the installation store)."""

    team_id: str
    token: str
    client: AsyncWebClient
    post_client: AsyncWebClient
    bot_user_id: str | None = None


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
        if not settings.slack_enabled:
            raise ValueError(
                "SLACK_BOT_TOKEN (one workspace) or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET "
                "(OAuth installs) are required for the Slack adapter"
            )
        self.settings = settings
        #: Many workspaces: each team's token comes from the installation store.
        self.multi_workspace = settings.slack_oauth
        self.installation_store: AsyncInstallationStore | None = None
        self._workspaces: dict[str, Workspace] = {}
        self.private_results = settings.slack_private_results
        self.min_edit_interval = min_edit_interval
        self.max_rate_limit_retries = max_rate_limit_retries
        self._bot_user_id: str | None = None
        self._services: Services | None = None
        self._client: AsyncWebClient | None = None
        self._post_client: AsyncWebClient | None = None
        self._background: set[asyncio.Task[Any]] = set()
        # Routing (classification, database writes) waits its turn, so that under a burst
        # the event loop stays free for acknowledging the requests still arriving.
        self._routing = asyncio.Semaphore(route_concurrency)

    @property
    def client(self) -> AsyncWebClient:
        """The Web API client (after start): in many-workspace mode, that of the workspace
        the current call is for (see :meth:`workspace`)."""
        if self.multi_workspace:
            return self._current().client
        if self._client is None:
            raise RuntimeError("the Slack adapter is not started")
        return self._client

    @property
    def bot_user_id(self) -> str | None:
        """The bot's user id (in many-workspace mode: in the current call's workspace)."""
        if self.multi_workspace:
            team = _TEAM.get()
            found = self._workspaces.get(team) if team else None
            return found.bot_user_id if found is not None else None
        return self._bot_user_id

    @bot_user_id.setter
    def bot_user_id(self, value: str | None) -> None:
        self._bot_user_id = value

    def _current(self) -> Workspace:
        team = _TEAM.get()
        if team is None:
            raise RuntimeError("a Slack call outside of a workspace (many-workspace mode)")
        found = self._workspaces.get(team)
        if found is None:
            raise RuntimeError(f"Slack workspace {team} is not loaded")
        return found

    @asynccontextmanager
    async def workspace(self, team: str | None) -> AsyncIterator[None]:
        """Make the calls inside for workspace ``team`` (the Target's tenant): its token,
        looked up once in the installation store and then cached. A no-op with a single
        token. A workspace without an installation raises a non-retryable DeliveryError."""
        if not self.multi_workspace:
            yield
            return
        if not team or (await self._workspace(team)) is None:
            raise DeliveryError(f"slack: workspace {team or '?'} is not installed", retryable=False)
        with in_team(team):
            yield

    async def _workspace(self, team: str) -> Workspace | None:
        """The cached clients of ``team``, loaded from the installation store when missing."""
        found = self._workspaces.get(team)
        if found is not None or self.installation_store is None:
            return found
        bot = await self.installation_store.async_find_bot(enterprise_id=None, team_id=team)
        if bot is None or not bot.bot_token:
            return None
        return self.remember_workspace(team, str(bot.bot_token), bot.bot_user_id)

    def remember_workspace(self, team: str, token: str, bot_user_id: str | None) -> Workspace:
        """Cache ``team``'s clients for ``token`` (kept when the token is the same)."""
        found = self._workspaces.get(team)
        if found is not None and found.token == token:
            if bot_user_id and found.bot_user_id != bot_user_id:
                found.bot_user_id = bot_user_id
            return found
        if len(self._workspaces) >= MAX_WORKSPACES:
            self._workspaces.pop(next(iter(self._workspaces)))
        client, post_client = self._client_pair(token)
        found = Workspace(team, token, client, post_client, bot_user_id)
        self._workspaces[team] = found
        return found

    def forget_workspace(self, team: str) -> None:
        """Drop ``team``'s cached clients (uninstalled, its tokens revoked or replaced)."""
        self._workspaces.pop(team, None)

    @property
    def services(self) -> Services:
        """What the core handed over at start."""
        if self._services is None:
            raise RuntimeError("the Slack adapter is not started")
        return self._services

    def _build_clients(self) -> None:
        # Many workspaces: the app-level client has no token (bolt's OAuth flow and request
        # contexts use it with a token of their own); each team's pair comes later.
        token = None if self.multi_workspace else self.settings.slack_bot_token
        self._client, self._post_client = self._client_pair(token)

    def _client_pair(self, token: str | None) -> tuple[AsyncWebClient, AsyncWebClient]:
        client = AsyncWebClient(
            token=token,
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
        post_client = AsyncWebClient(
            token=token,
            base_url=self.settings.slack_api_url,
            retry_handlers=[
                CountingRateLimitHandler(
                    max_retry_count=self.max_rate_limit_retries, on_429=self._rate_limited
                )
            ],
        )
        return client, post_client

    @property
    def app_client(self) -> AsyncWebClient:
        """The app-level client bolt is built with (in many-workspace mode: no token)."""
        if self._client is None:
            raise RuntimeError("the Slack adapter is not started")
        return self._client

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
        if self.multi_workspace:
            found = self._current()
            return await (found.post_client if once else found.client).api_call(
                method, json=arguments
            )
        client = self._post_client if once else None
        return await (client or self.client).api_call(method, json=arguments)
