"""Checks of a Slack configuration for ``atombot doctor``: is the token accepted, which
scopes does it carry (Slack reports them in the ``x-oauth-scopes`` response header)."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient


@dataclass(frozen=True)
class SlackAuth:
    """What ``auth.test`` said about a token."""

    #: Slack accepted the token.
    ok: bool
    #: Slack's error code (``invalid_auth``, ``not_authed``, …), when it answered with one.
    error: str | None = None
    #: Why the Web API could not be reached at all.
    unreachable: str | None = None
    #: The workspace's name, when accepted.
    team: str | None = None
    #: The token's scopes, when Slack reported them.
    scopes: frozenset[str] | None = None


async def check_token(token: str, *, api_url: str, timeout: float = 5.0) -> SlackAuth:
    """Call ``auth.test`` with ``token`` once (no retries)."""
    client = AsyncWebClient(token=token, base_url=api_url, timeout=int(max(timeout, 1)))
    client.retry_handlers = []
    try:
        response = await client.auth_test()
    except SlackApiError as exc:
        return SlackAuth(ok=False, error=str(exc.response.get("error") or "error"))
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return SlackAuth(ok=False, unreachable=f"{type(exc).__name__}: {exc}"[:200])
    headers = {str(k).lower(): str(v) for k, v in (response.headers or {}).items()}
    raw = headers.get("x-oauth-scopes")
    scopes = frozenset(s.strip() for s in raw.split(",") if s.strip()) if raw is not None else None
    return SlackAuth(ok=True, team=str(response.get("team") or ""), scopes=scopes)


async def check_app_token(app_token: str, *, api_url: str, timeout: float = 5.0) -> SlackAuth:
    """Whether Slack accepts ``app_token`` for Socket Mode (``apps.connections.open``)."""
    client = AsyncWebClient(base_url=api_url, timeout=int(max(timeout, 1)))
    client.retry_handlers = []
    try:
        await client.apps_connections_open(app_token=app_token)
    except SlackApiError as exc:
        return SlackAuth(ok=False, error=str(exc.response.get("error") or "error"))
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return SlackAuth(ok=False, unreachable=f"{type(exc).__name__}: {exc}"[:200])
    return SlackAuth(ok=True)
