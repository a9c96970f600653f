"""The Slack adapter: slack-bolt's ``AsyncApp`` over HTTP (aiohttp) or Socket Mode.

Its parts, one module each: :mod:`~bot.adapters.slack.inbound` (payload → ``Inbound`` /
``ActionEvent``), :mod:`~bot.adapters.slack.listeners` (bolt's listeners),
:mod:`~bot.adapters.slack.history` (reading threads and channels),
:mod:`~bot.adapters.slack.outbound` (posting and editing),
:mod:`~bot.adapters.slack.stream` (chat streaming) and :mod:`~bot.adapters.slack.home`
(the Home tab). This module holds the lifecycle and the edge.

Every request passes the edge first (:mod:`bot.adapters.slack.payloads`): over HTTP its size
and v0 signature are checked before anything parses it, then its JSON (with a nesting limit)
and its shape; a request that is not authentic gets 401, a malformed one 400 (413 when too
large), one that is not atombot's 200 and is ignored. Socket Mode envelopes get the same
checks (:mod:`bot.adapters.slack.socket_mode`).
"""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.adapters.base import Services
from bot.adapters.slack.blocks import ASK_CALLBACK
from bot.adapters.slack.core import in_team
from bot.adapters.slack.inbound import BUTTON, PLATFORM, SHORTCUT_REQUESTS
from bot.adapters.slack.installs import SlackInstalls
from bot.adapters.slack.listeners import SlackListeners, text
from bot.adapters.slack.payloads import (
    MAX_BODY_BYTES,
    Checked,
    JSONDict,
    Rejected,
    authentic,
    inspect,
    parse_http_body,
)
from bot.adapters.slack.socket_mode import CheckedSocketModeHandler
from bot.adapters.slack.stream import DEFAULT_STREAM_INTERVAL
from bot.config import Settings

__all__ = ["DEFAULT_PORT", "EVENTS_PATH", "PLATFORM", "SHORTCUT_REQUESTS", "SlackAdapter", "text"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 3000
EVENTS_PATH = "/slack/events"


class SlackAdapter(SlackInstalls, SlackListeners):
    """atombot in Slack (see the module docstring): a
    :class:`~bot.adapters.base.ChatAdapter` and a
    :class:`~bot.adapters.base.StreamingAdapter`.

    HTTP mode serves ``POST /slack/events`` on ``host:port`` (the CLI sets ``port`` from
    ``--slack-port``); Socket Mode is used when ``SLACK_APP_TOKEN`` is set. ``stream=False``
    turns chat streaming off (results are then posted and edited).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        host: str = "0.0.0.0",
        port: int | None = None,
        path: str = EVENTS_PATH,
        min_edit_interval: float = 1.0,
        max_rate_limit_retries: int = 3,
        route_concurrency: int = 2,
        stream: bool = True,
        min_stream_interval: float = DEFAULT_STREAM_INTERVAL,
    ) -> None:
        super().__init__(
            settings,
            min_edit_interval=min_edit_interval,
            max_rate_limit_retries=max_rate_limit_retries,
            route_concurrency=route_concurrency,
            stream=stream,
            min_stream_interval=min_stream_interval,
        )
        self.host = host
        self.port = port
        self.path = path
        self._bolt: AsyncApp | None = None
        self._runner: web.AppRunner | None = None
        self._socket: CheckedSocketModeHandler | None = None
        self._bound_port: int | None = None

    @property
    def socket_mode(self) -> bool:
        """Whether the adapter connects over Socket Mode (``SLACK_APP_TOKEN`` set)."""
        return bool(self.settings.slack_app_token)

    @property
    def url(self) -> str:
        """The events URL actually served (HTTP mode, after start)."""
        if self._bound_port is None:
            raise RuntimeError("the Slack adapter is not serving HTTP")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self._bound_port}{self.path}"

    def build_bolt_app(self) -> AsyncApp:
        """The bolt app with atombot's listeners.

        bolt's own signature check is off: it gets only requests that passed the edge
        (:meth:`_handle_http` verifies the signature on the raw bytes, Socket Mode needs none).
        """
        if not self.socket_mode and not self.settings.slack_signing_secret:
            raise ValueError("SLACK_SIGNING_SECRET is required for Slack's HTTP mode")
        if self.multi_workspace and self.socket_mode:
            raise ValueError(
                "Slack OAuth installs (SLACK_CLIENT_ID/SLACK_CLIENT_SECRET) need HTTP mode: "
                "unset SLACK_APP_TOKEN"
            )
        self._build_clients()
        app = AsyncApp(
            client=self.app_client,
            signing_secret=self.settings.slack_signing_secret or "socket-mode",
            request_verification_enabled=False,
            process_before_response=False,
            logger=log,
            **self.oauth_options(),
        )
        if self.multi_workspace:
            self.register_installs(app, self._tracked)
        self.register(app, self)
        self._bolt = app
        return app

    async def start(self, services: Services) -> None:
        """Connect: check the token, then serve HTTP or open the Socket Mode connection."""
        self._services = services
        app = self.build_bolt_app()
        if not self.multi_workspace:
            identity = await self.client.auth_test()
            self.bot_user_id = str(identity.get("user_id") or "") or None
        if self.socket_mode:
            self._socket = CheckedSocketModeHandler(
                app, str(self.settings.slack_app_token), inspect=self._inspect
            )
            await self._socket.connect_async()  # type: ignore[no-untyped-call]
            log.info("Slack: connected over Socket Mode")
            return
        web_app = web.Application(client_max_size=MAX_BODY_BYTES)
        web_app.router.add_post(self.path, self._handle_http)
        web_app.router.add_get("/healthz", self._health)
        if self.multi_workspace:
            web_app.router.add_get(self.settings.slack_install_path, self._handle_oauth)
            web_app.router.add_get(self.settings.slack_redirect_uri_path, self._handle_oauth)
        self._runner = web.AppRunner(web_app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, self.host, DEFAULT_PORT if self.port is None else self.port
        )
        await site.start()
        self._bound_port = int(self._runner.addresses[0][1])
        log.info("Slack: serving %s", self.url)

    async def stop(self) -> None:
        """Stop listening, let running listeners finish briefly, close connections."""
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._background:
            await asyncio.wait(self._background, timeout=5)
            for task in self._background:
                task.cancel()

    def ready(self) -> tuple[bool, str]:
        """Connected: the Socket Mode connection is open, or the HTTP endpoint is served."""
        if self.socket_mode:
            client = self._socket.client if self._socket is not None else None
            session = getattr(client, "current_session", None)
            if client is None or client.closed or session is None or session.closed:
                return False, "Socket Mode not connected"
            return True, "Socket Mode connected"
        if self._runner is None or self._bound_port is None:
            return False, "not serving HTTP"
        return True, f"serving HTTP on port {self._bound_port}"

    def _app(self) -> AsyncApp:
        if self._bolt is None:
            raise RuntimeError("the Slack adapter is not started")
        return self._bolt

    def _inspect(self, body: JSONDict, envelope: str | None = None) -> Checked:
        """Check a payload's shape, and whether one of atombot's listeners takes it."""
        return inspect(
            body,
            command=self.settings.slack_command,
            shortcuts=SHORTCUT_REQUESTS,
            action=lambda action_id: bool(BUTTON.match(action_id)),
            envelope=envelope,
            views=(ASK_CALLBACK,),
            app_events=self.multi_workspace,
        )

    async def _handle_http(self, request: web.Request) -> web.StreamResponse:
        """The edge in front of bolt: size, signature, JSON depth and shape, then bolt.

        Nothing is parsed before the signature is verified, and only field names and sizes
        of a refused request are logged, never its content.
        """
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return web.Response(status=413, text="request too large")
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.Response(status=413, text="request too large")
        headers = request.headers
        if not authentic(
            raw,
            headers.get("X-Slack-Request-Timestamp"),
            headers.get("X-Slack-Signature"),
            str(self.settings.slack_signing_secret),
        ):
            log.warning("Slack: refused a request without a valid signature (%d bytes)", len(raw))
            return web.Response(status=401, text="invalid signature")
        try:
            body = parse_http_body(raw, headers.get("Content-Type"))
            checked = self._inspect(body)
        except Rejected as rejected:
            log.warning("Slack: refused a %d-byte request: %s", len(raw), rejected.reason)
            return web.Response(status=rejected.status, text=rejected.reason)
        if not checked.handled:
            log.debug("Slack: ignored a %s", checked.kind)
            return web.Response(status=200)
        try:
            # The body bolt parses is the one checked (bolt would misread some forms).
            bolt_request = AsyncBoltRequest(
                body=json.dumps(body), query=request.query_string, headers=dict(headers)
            )
            with in_team(None):  # the workspace middleware sets it for this request only
                response = await self._app().async_dispatch(bolt_request)
        except Exception as exc:  # bolt building its context from a payload we let through
            log.error("Slack: bolt could not take a %s: %s", checked.kind, type(exc).__name__)
            return web.Response(status=400, text="unprocessable request")
        if response.status >= 500:
            log.error("Slack: bolt answered %d to a %s", response.status, checked.kind)
            return web.Response(status=400, text="unprocessable request")
        return await to_aiohttp_response(response)

    async def _handle_oauth(self, request: web.Request) -> web.StreamResponse:
        """The install link and the OAuth redirect (browser GETs, not signed by Slack): bolt's
        OAuth flow issues the state (cookie and parameter), then checks both and exchanges
        the code for the workspace's bot token."""
        flow = self._app().oauth_flow
        if flow is None:
            return web.Response(status=404)
        bolt_request = AsyncBoltRequest(
            body="", query=request.query_string, headers=dict(request.headers)
        )
        if request.path == self.settings.slack_install_path:
            response = await flow.handle_installation(bolt_request)
        else:
            response = await flow.handle_callback(bolt_request)
        return await to_aiohttp_response(response)

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")
