"""The Slack adapter: slack-bolt's ``AsyncApp`` over HTTP (aiohttp) or Socket Mode.

Inbound: the slash command, ``@atombot`` mentions (in channels and threads), direct
messages, the "Summarize thread" / "Draft reply" message shortcuts, result buttons and the
Home tab. Every request passes the edge first (:mod:`bot.adapters.slack.payloads`): over
HTTP its size and v0 signature are checked before anything parses it, then its JSON (with a
nesting limit) and its shape; a request that is not authentic gets 401, a malformed one 400
(413 when too large), one that is not atombot's 200 and is ignored. Socket Mode envelopes
get the same checks (:mod:`bot.adapters.slack.socket_mode`). Every listener acknowledges at
once, before any routing: a slash command is acked "working on it" and its receipt follows
through the response_url.

Outbound (the :class:`~bot.adapters.base.ChatAdapter` side): one message per request, posted
and then edited with Block Kit; edits are spaced per channel; 429s are retried after
``Retry-After`` by slack_sdk's rate-limit retry handler and otherwise reported as a
retryable :class:`~bot.adapters.base.DeliveryError`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.error import BoltError
from slack_bolt.request.async_request import AsyncBoltRequest
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

from bot.adapters.base import DeliveryError, PostLookup, Services
from bot.adapters.slack.blocks import (
    NOTE_CALLBACK,
    fallback_text,
    home_view,
    menu_blocks,
    message_blocks,
    note_modal,
    note_of,
)
from bot.adapters.slack.manifest import SHORTCUT_DRAFT_REPLY, SHORTCUT_SUMMARIZE
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
from bot.config import Settings
from bot.errors import report
from bot.render import split_text
from bot.texts import detect_locale, t
from bot.training_optout import training_argument, training_command
from bot.types import Action, ActionEvent, Button, Inbound, Reply, Target, View
from handlers.base import MessageFetcher
from handlers.digest import describe_schedule

log = logging.getLogger(__name__)

PLATFORM = "slack"
DEFAULT_PORT = 3000
EVENTS_PATH = "/slack/events"

#: What a message shortcut asks for, in words the intent classifier understands.
SHORTCUT_REQUESTS = {
    SHORTCUT_SUMMARIZE: "summarize this thread",
    SHORTCUT_DRAFT_REPLY: "draft a reply to this message",
}

_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
_BUTTON = re.compile(r"^ab:")
_CHANNEL_REF = re.compile(r"<#([CG][A-Z0-9]+)(?:\|[^>]*)?>")
_RETRYABLE_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
)
#: Messages a summary reads at most (history pages are 200).
MAX_FETCHED = 1_000
HISTORY_PAGE = 200
HOME_TASKS = 15
#: Message metadata ``event_type`` of posts that carry our client-side id (see ``find_sent``).
POST_EVENT_TYPE = "atombot_post"
#: How many recent messages ``find_sent`` reads at most.
FIND_SENT_LIMIT = 1_000

Ack = Callable[..., Awaitable[Any]]
Respond = Callable[..., Awaitable[Any]]


def text(key: str, locale: str, /, **values: Any) -> str:
    """A user-visible string from :mod:`bot.texts`."""
    return t(key, locale, **values)


def channel_id_of(ref: Any) -> str | None:
    """The channel id in an escaped reference such as ``<#C0123|sales>``, else None."""
    match = _CHANNEL_REF.search(ref) if isinstance(ref, str) else None
    return match.group(1) if match else None


def _epoch(iso: Any) -> str | None:
    if not isinstance(iso, str) or not iso:
        return None
    try:
        return f"{datetime.fromisoformat(iso).timestamp():.6f}"
    except ValueError:
        return None


def _post_metadata(client_id: str | None) -> dict[str, Any] | None:
    """Message metadata carrying our client-side id (None: no metadata)."""
    if client_id is None:
        return None
    return {"event_type": POST_EVENT_TYPE, "event_payload": {"client_id": client_id}}


def _delivery_error(method: str, exc: Exception) -> DeliveryError:
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


class SlackAdapter:
    """atombot in Slack (see the module docstring).

    HTTP mode serves ``POST /slack/events`` on ``host:port`` (the CLI sets ``port`` from
    ``--slack-port``); Socket Mode is used when ``SLACK_APP_TOKEN`` is set.
    """

    platform = PLATFORM
    #: Text per message: chat.update rejects more than 4,000 characters.
    max_text = 3_900

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
    ) -> None:
        if not settings.slack_bot_token:
            raise ValueError("SLACK_BOT_TOKEN is required for the Slack adapter")
        self.settings = settings
        self.host = host
        self.port = port
        self.path = path
        self.private_results = settings.slack_private_results
        self.min_edit_interval = min_edit_interval
        self.max_rate_limit_retries = max_rate_limit_retries
        self.bot_user_id: str | None = None
        self._services: Services | None = None
        self._client: AsyncWebClient | None = None
        self._post_client: AsyncWebClient | None = None
        self._bolt: AsyncApp | None = None
        self._runner: web.AppRunner | None = None
        self._socket: CheckedSocketModeHandler | None = None
        self._bound_port: int | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._edit_locks: dict[str, asyncio.Lock] = {}
        self._last_edit: dict[str, float] = {}
        self._user_cache: dict[str, tuple[str, str]] = {}
        # Routing (classification, database writes) waits its turn, so that under a burst
        # the event loop stays free for acknowledging the requests still arriving.
        self._routing = asyncio.Semaphore(route_concurrency)

    # ------------------------------------------------------------------ lifecycle

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

    def build_bolt_app(self) -> AsyncApp:
        """The bolt app with atombot's listeners.

        bolt's own signature check is off: it gets only requests that passed the edge
        (:meth:`_handle_http` verifies the signature on the raw bytes, Socket Mode needs none).
        """
        if not self.socket_mode and not self.settings.slack_signing_secret:
            raise ValueError("SLACK_SIGNING_SECRET is required for Slack's HTTP mode")
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
        # delivery looks the post up (find_sent) before sending it again.
        self._post_client = AsyncWebClient(
            token=self.settings.slack_bot_token,
            base_url=self.settings.slack_api_url,
            retry_handlers=[
                CountingRateLimitHandler(
                    max_retry_count=self.max_rate_limit_retries, on_429=self._rate_limited
                )
            ],
        )
        app = AsyncApp(
            client=self._client,
            signing_secret=self.settings.slack_signing_secret or "socket-mode",
            request_verification_enabled=False,
            process_before_response=False,
            logger=log,
        )
        app.command(self.settings.slack_command)(self._tracked(self._on_command))
        app.event("app_mention")(self._tracked(self._on_mention))
        app.event("message")(self._tracked(self._on_message))
        app.event("app_home_opened")(self._tracked(self._on_home_opened))
        app.action(_BUTTON)(self._tracked(self._on_button))
        app.view(NOTE_CALLBACK)(self._tracked(self._on_note))
        app.message_shortcut(SHORTCUT_SUMMARIZE)(self._tracked(self._on_shortcut))
        app.message_shortcut(SHORTCUT_DRAFT_REPLY)(self._tracked(self._on_shortcut))
        self._bolt = app
        return app

    async def start(self, services: Services) -> None:
        """Connect: check the token, then serve HTTP or open the Socket Mode connection."""
        self._services = services
        app = self.build_bolt_app()
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

    def _inspect(self, body: JSONDict, envelope: str | None = None) -> Checked:
        """Check a payload's shape, and whether one of atombot's listeners takes it."""
        return inspect(
            body,
            command=self.settings.slack_command,
            shortcuts=SHORTCUT_REQUESTS,
            action=lambda action_id: bool(_BUTTON.match(action_id)),
            envelope=envelope,
            views=(NOTE_CALLBACK,),
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
            response = await self._app().async_dispatch(bolt_request)
        except Exception as exc:  # bolt building its context from a payload we let through
            log.error("Slack: bolt could not take a %s: %s", checked.kind, type(exc).__name__)
            return web.Response(status=400, text="unprocessable request")
        if response.status >= 500:
            log.error("Slack: bolt answered %d to a %s", response.status, checked.kind)
            return web.Response(status=400, text="unprocessable request")
        return await to_aiohttp_response(response)

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    def _rate_limited(self, method: str) -> None:
        if self._services is not None:
            self._services.metrics.platform_rate_limited(PLATFORM, method)

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

    def _tracked(self, listener: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        """Keep a listener's task in ``_background`` while it runs (bolt starts it after acking).

        ``functools.wraps`` keeps the listener's parameter names, which bolt injects by name.
        An error is reported here and never reaches bolt: bolt's handler of a listener error
        clears an ack made just before it, and then answers 404 after 3 s.
        """

        @functools.wraps(listener)
        async def run(**kwargs: Any) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._background.add(task)
            try:
                await listener(**kwargs)
            except Exception as exc:
                report(exc, where=f"Slack listener {listener.__name__}")
            finally:
                if task is not None:
                    self._background.discard(task)

        return run

    async def wait_idle(self) -> None:
        """Wait until no listener work is running (tests, benchmarks, shutdown)."""
        me = asyncio.current_task()
        while pending := {task for task in self._background if task is not me}:
            await asyncio.wait(pending)

    # ------------------------------------------------------------------ inbound

    async def _user(self, user_id: str) -> tuple[str, str]:
        """(name, timezone) of a workspace member, cached; falls back to (id, default tz)."""
        if user_id not in self._user_cache:
            name, tz = user_id, self.settings.timezone
            try:
                info = (await self.client.users_info(user=user_id)).get("user") or {}
                profile = info.get("profile") or {}
                name = (
                    profile.get("display_name") or info.get("real_name") or info.get("name") or name
                )
                tz = info.get("tz") or tz
            except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
                log.warning("Slack: users.info %s failed: %s", user_id, exc)
            self._user_cache[user_id] = (str(name), str(tz))
        return self._user_cache[user_id]

    async def _route(self, inbound: Inbound, *, thread: str | None) -> Reply:
        """Add the user's name and timezone, route with a fetcher for this conversation."""
        name, tz = await self._user(inbound.user)
        inbound = replace(inbound, timezone=tz, user_name=inbound.user_name or name)
        reply = await self.services.router.handle(
            inbound, fetch=self.fetcher(inbound.channel, thread)
        )
        if reply.task_ids and not reply.duplicate:
            self.services.notify()
        return reply

    async def _route_or_apologise(self, inbound: Inbound, *, thread: str | None) -> Reply:
        try:
            async with self._routing:
                return await self._route(inbound, thread=thread)
        except Exception as exc:
            report(exc, where=f"Slack routing of {inbound.event_id}")
            return Reply(t("error.internal", detect_locale(inbound.text)))

    async def _on_command(self, ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        """``/atom <request>``: ack at once, route, then send the receipt (response_url)."""
        request_text = str(command.get("text") or "").strip() or "help"
        locale = detect_locale(request_text)
        # Nothing slow before the ack: under load every wait here adds to Slack's 3 s.
        await ack(text=text("slack.ack.working", locale), response_type="ephemeral")
        channel = str(command["channel_id"])
        if (argument := training_argument(request_text)) is not None:
            answer = await self._training(str(command["team_id"]), channel, argument, locale)
            await self._respond(respond, answer, where=f"cmd:{command['trigger_id']}")
            return
        inbound = Inbound(
            platform=PLATFORM,
            tenant=str(command["team_id"]),
            channel=channel,
            user=str(command["user_id"]),
            text=request_text,
            event_id=f"cmd:{command['trigger_id']}",
            private=channel.startswith("D") or self.private_results,
            user_name=command.get("user_name"),
        )
        reply = await self._route_or_apologise(inbound, thread=None)
        if reply.text and not reply.duplicate:
            await self._respond(respond, reply.text, where=inbound.event_id)

    async def _training(self, tenant: str, channel: str, argument: str, locale: str) -> str:
        """``/atom training [on|off]``: the channel's switch for training exports."""
        try:
            return await training_command(
                self.services.repo,
                platform=PLATFORM,
                tenant=tenant,
                channel=channel,
                argument=argument,
                locale=locale,
                command=f"{self.settings.slack_command} training",
            )
        except Exception as exc:
            report(exc, where=f"Slack training switch of {channel}")
            return t("error.internal", locale)

    async def _respond(self, respond: Respond, reply: str, *, where: str) -> None:
        try:
            await respond(text=reply, response_type="ephemeral", replace_original=False)
        except (BoltError, SlackApiError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
            # BoltError: the payload came without a response_url (a Home tab button).
            log.warning("Slack: answer to %s not sent: %s", where, type(exc).__name__)

    async def _on_mention(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        """``@atombot …`` in a channel or thread; results go to the thread."""
        thread_ts = event.get("thread_ts")
        request_text = _MENTION.sub("", str(event.get("text") or "")).strip() or "help"
        inbound = Inbound(
            platform=PLATFORM,
            tenant=str(body.get("team_id") or event.get("team")),
            channel=str(event["channel"]),
            user=str(event["user"]),
            text=request_text,
            event_id=str(body["event_id"]),
            thread=str(thread_ts or event["ts"]),
        )
        reply = await self._route_or_apologise(inbound, thread=thread_ts)
        if reply.duplicate or not reply.text:
            return
        await self._post_receipt(inbound, reply.text, ephemeral=True)

    async def _on_message(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        """A direct message to the bot (other message events are not ours)."""
        if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id"):
            return
        if not event.get("user") or event.get("user") == self.bot_user_id:
            return
        inbound = Inbound(
            platform=PLATFORM,
            tenant=str(body.get("team_id") or event.get("team")),
            channel=str(event["channel"]),
            user=str(event["user"]),
            text=str(event.get("text") or "").strip() or "help",
            event_id=str(body["event_id"]),
            thread=event.get("thread_ts"),
            private=True,
        )
        reply = await self._route_or_apologise(inbound, thread=event.get("thread_ts"))
        if reply.duplicate or not reply.text:
            return
        await self._post_receipt(inbound, reply.text, ephemeral=False)

    async def _post_receipt(self, inbound: Inbound, receipt: str, *, ephemeral: bool) -> None:
        try:
            if ephemeral:
                await self.client.chat_postEphemeral(
                    channel=inbound.channel,
                    user=inbound.user,
                    thread_ts=inbound.thread,
                    text=receipt,
                )
            else:
                await self.client.chat_postMessage(
                    channel=inbound.channel, thread_ts=inbound.thread, text=receipt
                )
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("Slack: receipt for %s not posted: %s", inbound.event_id, exc)

    async def _on_shortcut(self, ack: Ack, shortcut: dict[str, Any], respond: Respond) -> None:
        """The "Summarize thread" / "Draft reply" message shortcuts."""
        await ack()
        message = shortcut.get("message") or {}
        thread = str(message.get("thread_ts") or message.get("ts") or shortcut.get("message_ts"))
        channel = str((shortcut.get("channel") or {}).get("id"))
        user = shortcut.get("user") or {}
        inbound = Inbound(
            platform=PLATFORM,
            tenant=str((shortcut.get("team") or {}).get("id") or user.get("team_id")),
            channel=channel,
            user=str(user.get("id")),
            text=SHORTCUT_REQUESTS[str(shortcut.get("callback_id"))],
            event_id=f"sc:{shortcut.get('trigger_id')}",
            thread=thread,
            private=self.private_results,
            user_name=user.get("username") or user.get("name"),
        )
        reply = await self._route_or_apologise(inbound, thread=thread)
        if not reply.duplicate and reply.text:
            await self._respond(respond, reply.text, where=inbound.event_id)

    async def _on_button(
        self, ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond
    ) -> None:
        """👍 / 👎 / Regenerate / Cancel under a result, and the "why 👎?" menu's choices.

        The menu is an ephemeral answer (only the voter sees it); a choice replaces it with
        the next step, "Other…" opens a modal for their own words (the trigger_id works for
        3 s, so nothing slow runs before it).
        """
        await ack()
        parsed = Button.decode(str(action.get("value") or action.get("action_id") or ""))
        if parsed is None:
            return
        kind, task_id, choice = parsed
        container = body.get("container") or {}
        channel = str(container.get("channel_id") or (body.get("channel") or {}).get("id"))
        user = body.get("user") or {}
        user_id = str(user.get("id"))
        event = ActionEvent(
            platform=PLATFORM,
            tenant=str((body.get("team") or {}).get("id") or user.get("team_id")),
            channel=channel,
            user=user_id,
            action=kind,
            task_id=task_id,
            # One key per (message, button, user): a double click is the same event.
            event_id=f"act:{channel}:{container.get('message_ts')}:{action.get('action_id')}:{user_id}",
            user_name=user.get("username") or user.get("name"),
            choice=choice,
        )
        try:
            reply = await self.services.router.handle_action(event, fetch_for=self.fetcher)
        except Exception as exc:
            report(exc, where=f"Slack button {event.event_id}")
            reply = Reply(t("error.internal", "en"), ephemeral=True)
        self.services.notify()
        if reply.ask_comment and reply.comment_task is not None:
            await self._open_note(body, reply, channel)
        elif reply.buttons or (reply.update_menu and container.get("is_ephemeral")):
            replace_menu = bool(reply.update_menu and container.get("is_ephemeral"))
            await self._respond_menu(respond, reply, replace=replace_menu, where=event.event_id)
        elif reply.text:
            await self._respond(respond, reply.text, where=event.event_id)

    async def _respond_menu(
        self, respond: Respond, reply: Reply, *, replace: bool, where: str
    ) -> None:
        """An answer with choices, ephemeral: in place of the menu it came from, or new."""
        try:
            await respond(
                text=reply.text or " ",
                blocks=menu_blocks(reply.text, reply.buttons),
                response_type="ephemeral",
                replace_original=replace,
            )
        except (BoltError, SlackApiError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("Slack: menu for %s not sent: %s", where, type(exc).__name__)

    async def _open_note(self, body: dict[str, Any], reply: Reply, channel: str) -> None:
        """The modal asking for the voter's words (views.open with the press's trigger_id)."""
        locale = detect_locale(reply.text)
        metadata = json.dumps({"task": reply.comment_task, "channel": channel})
        view = note_modal(
            title=t("why.modal_title", locale),
            submit=t("why.modal_submit", locale),
            label=reply.text,
            placeholder=t("why.comment_placeholder", locale),
            metadata=metadata,
        )
        try:
            await self.client.views_open(trigger_id=str(body.get("trigger_id") or ""), view=view)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("Slack: note modal not opened: %s", exc)

    async def _on_note(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        """The note modal was submitted: keep the words with the voter's 👎."""
        await ack()
        try:
            about = json.loads(str(view.get("private_metadata") or "{}"))
            task_id, channel = int(about["task"]), str(about["channel"])
        except (ValueError, KeyError, TypeError):
            return
        user = body.get("user") or {}
        user_id = str(user.get("id"))
        event = ActionEvent(
            platform=PLATFORM,
            tenant=str((body.get("team") or {}).get("id") or user.get("team_id")),
            channel=channel,
            user=user_id,
            action=Action.note,
            task_id=task_id,
            event_id=f"note:{view.get('id')}:{user_id}",
            user_name=user.get("username") or user.get("name"),
            comment=note_of(view),
        )
        try:
            reply = await self.services.router.handle_action(event)
        except Exception as exc:
            report(exc, where=f"Slack note {event.event_id}")
            reply = Reply(t("error.internal", "en"), ephemeral=True)
        if reply.text:
            try:
                await self.client.chat_postEphemeral(channel=channel, user=user_id, text=reply.text)
            except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
                log.warning("Slack: note answer not posted: %s", exc)

    async def _on_home_opened(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        """Publish the Home tab: the user's recent tasks and digest subscriptions."""
        if event.get("tab", "home") != "home":
            return
        user = str(event["user"])
        tenant = str(body.get("team_id") or "")
        await self.publish_home(tenant, user)

    async def publish_home(self, tenant: str, user: str) -> None:
        """Build and publish ``user``'s Home tab (views.publish)."""
        repo = self.services.repo
        tasks = await repo.list_tasks(platform=PLATFORM, tenant=tenant, user=user, limit=HOME_TASKS)
        kinds = self.services.router.kinds
        tasks = [x for x in tasks if kinds.visible(x.kind)]
        locale = str(tasks[0].inputs.get("locale", "en")) if tasks else "en"
        digests = [
            d
            for d in await repo.list_digests()
            if d.platform == PLATFORM and d.tenant == tenant and d.user == user
        ]
        view = home_view(
            title=text("slack.home.title", locale),
            tasks_header=t("status.header", locale),
            task_lines=[
                text(
                    "slack.home.task_line",
                    locale,
                    id=x.id,
                    kind=kinds.label(x.kind, locale),
                    status=t(f"state.{x.status}", locale),
                )
                for x in tasks
            ],
            empty_tasks=t("status.none", locale),
            digests_header=text("slack.home.digests", locale),
            digest_lines=[
                text(
                    "slack.home.digest_line",
                    locale,
                    channel=d.channel,
                    schedule=describe_schedule(d.cron, locale),
                    timezone=d.timezone,
                )
                for d in digests
            ],
            empty_digests=text("slack.home.no_digests", locale),
        )
        try:
            await self.client.views_publish(user_id=user, view=view)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("Slack: Home tab of %s not published: %s", user, exc)

    # ------------------------------------------------------------------ reading conversations

    def fetcher(self, channel: str, thread: str | None) -> MessageFetcher:
        """What summaries and reply drafts read: this thread, or a channel's history."""

        async def fetch(scope: str, slots: dict[str, Any]) -> list[dict[str, str]]:
            try:
                if scope == "thread" and thread is not None:
                    raw = await self._replies(channel, thread)
                else:
                    raw = await self._history(
                        channel_id_of(slots.get("channel")) or channel,
                        oldest=_epoch(slots.get("since")),
                        latest=_epoch(slots.get("until")),
                        last_n=slots.get("last_n")
                        if isinstance(slots.get("last_n"), int)
                        else None,
                    )
            except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
                log.warning("Slack: reading %s in %s failed: %s", scope, channel, exc)
                return []
            return [await self._as_fetched(m) for m in raw if self._worth_reading(m)]

        return fetch

    def _worth_reading(self, message: dict[str, Any]) -> bool:
        if message.get("subtype") not in (None, "thread_broadcast"):
            return False
        if message.get("bot_id") and message.get("user") == self.bot_user_id:
            return False
        body = str(message.get("text") or "")
        # Requests addressed to the bot are instructions, not conversation.
        return bool(body.strip()) and not (
            self.bot_user_id is not None and f"<@{self.bot_user_id}>" in body
        )

    async def _as_fetched(self, message: dict[str, Any]) -> dict[str, str]:
        user = str(message.get("user") or message.get("username") or "?")
        name = (await self._user(user))[0] if user.startswith(("U", "W")) else user
        return {
            "author": name,
            "text": str(message.get("text") or ""),
            "ts": str(message.get("ts")),
        }

    async def _replies(self, channel: str, thread: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while len(found) < MAX_FETCHED:
            page = await self.client.conversations_replies(
                channel=channel, ts=thread, cursor=cursor, limit=HISTORY_PAGE
            )
            found.extend(page.get("messages") or [])
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        return found[:MAX_FETCHED]

    async def _history(
        self, channel: str, *, oldest: str | None, latest: str | None, last_n: int | None
    ) -> list[dict[str, Any]]:
        wanted = min(last_n or MAX_FETCHED, MAX_FETCHED)
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while len(found) < wanted:
            page = await self.client.conversations_history(
                channel=channel,
                cursor=cursor,
                limit=min(HISTORY_PAGE, wanted - len(found)),
                oldest=oldest,
                latest=latest,
            )
            found.extend(page.get("messages") or [])
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        # History comes newest first; a conversation reads oldest first.
        return list(reversed(found[:wanted]))

    # ------------------------------------------------------------------ outbound

    def _where(self, target: Target) -> tuple[str, str | None]:
        if target.private and target.user:
            return target.user, None
        return target.channel, target.thread

    async def _blocks(self, view: View) -> list[dict[str, Any]]:
        votes: dict[int, list[tuple[str, int]]] = {}
        rated = {row[0].task_id for row in view.buttons if row and len(row) > 1}
        for task_id in sorted(rated):
            feedback = await self.services.repo.feedback_of(task_id)
            votes[task_id] = [(f.user, f.score) for f in feedback]
        by = t("rate.by", detect_locale(view.text))
        return message_blocks(view, votes=votes, by=by)

    async def _call(self, method: str, **kwargs: Any) -> AsyncSlackResponse:
        arguments = {k: v for k, v in kwargs.items() if v is not None}
        client = self._post_client if method == "chat.postMessage" else None
        try:
            return await (client or self.client).api_call(method, json=arguments)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            raise _delivery_error(method, exc) from exc

    async def send(self, target: Target, view: View, *, client_id: str | None = None) -> str:
        """Post a message (in the thread, or by DM when private); id is ``channel/ts``."""
        channel, thread = self._where(target)
        response = await self._call(
            "chat.postMessage",
            channel=channel,
            thread_ts=thread,
            text=fallback_text(view),
            blocks=await self._blocks(view),
            metadata=_post_metadata(client_id),
        )
        return f"{response['channel']}/{response['ts']}"

    async def find_sent(self, target: Target, client_id: str, *, since: datetime) -> PostLookup:
        """Find our post with ``client_id`` (its metadata) among the recent messages."""
        channel, thread = self._where(target)
        oldest = f"{since.timestamp():.6f}"
        cursor: str | None = None
        seen = 0
        try:
            if target.private and target.user:
                opened = await self.client.conversations_open(users=target.user)
                channel = str((opened.get("channel") or {}).get("id") or channel)
            while seen < FIND_SENT_LIMIT:
                if thread:
                    page = await self.client.conversations_replies(
                        channel=channel,
                        ts=thread,
                        oldest=oldest,
                        include_all_metadata=True,
                        limit=HISTORY_PAGE,
                        cursor=cursor,
                    )
                else:
                    page = await self.client.conversations_history(
                        channel=channel,
                        oldest=oldest,
                        include_all_metadata=True,
                        limit=HISTORY_PAGE,
                        cursor=cursor,
                    )
                messages: list[dict[str, Any]] = page.get("messages") or []
                seen += len(messages)
                for message in messages:
                    metadata = message.get("metadata") or {}
                    payload = metadata.get("event_payload") or {}
                    if (
                        metadata.get("event_type") == POST_EVENT_TYPE
                        and payload.get("client_id") == client_id
                    ):
                        return PostLookup(message_id=f"{channel}/{message['ts']}")
                cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
                if not cursor or not messages:
                    break
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            raise _delivery_error("find_sent", exc) from exc
        return PostLookup()

    async def edit(self, target: Target, message_id: str, view: View) -> None:
        """Replace a message's content, at most one edit per second per channel."""
        channel, _, ts = message_id.rpartition("/")
        channel = channel or self._where(target)[0]
        blocks = await self._blocks(view)
        await self._edit_slot(channel)
        await self._call(
            "chat.update", channel=channel, ts=ts, text=fallback_text(view), blocks=blocks
        )

    async def _edit_slot(self, channel: str) -> None:
        if self.min_edit_interval <= 0:
            return
        loop = asyncio.get_running_loop()
        lock = self._edit_locks.setdefault(channel, asyncio.Lock())
        async with lock:
            wait = (
                self._last_edit.get(channel, float("-inf")) + self.min_edit_interval - loop.time()
            )
            if wait > 0:
                await asyncio.sleep(wait)
            self._last_edit[channel] = loop.time()

    async def notify(self, target: Target, text: str, *, client_id: str | None = None) -> None:
        """Post a plain message (reminders, digests), split when long."""
        channel, thread = self._where(target)
        for part in split_text(text, self.max_text):
            await self._call(
                "chat.postMessage",
                channel=channel,
                thread_ts=thread,
                text=part,
                metadata=_post_metadata(client_id),
            )
