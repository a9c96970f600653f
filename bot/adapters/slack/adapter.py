"""The Slack adapter: slack-bolt's ``AsyncApp`` over HTTP (aiohttp) or Socket Mode.

Inbound: the slash command, ``@atombot`` mentions (in channels and threads), direct
messages, the "Summarize thread" / "Draft reply" message shortcuts, result buttons and the
Home tab. Every listener acknowledges before Slack's 3 s deadline; classification runs
against a budget and, when it might overrun, the receipt follows through the response_url.

Outbound (the :class:`~bot.adapters.base.ChatAdapter` side): one message per request, posted
and then edited with Block Kit; edits are spaced per channel; 429s are retried after
``Retry-After`` by slack_sdk's rate-limit retry handler and otherwise reported as a
retryable :class:`~bot.adapters.base.DeliveryError`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.adapters.base import DeliveryError, Services
from bot.adapters.slack.blocks import fallback_text, home_view, message_blocks
from bot.adapters.slack.manifest import SHORTCUT_DRAFT_REPLY, SHORTCUT_SUMMARIZE
from bot.config import Settings
from bot.errors import report
from bot.render import split_text
from bot.texts import detect_locale, t
from bot.types import ActionEvent, Button, Inbound, Reply, Target, View
from handlers.base import MessageFetcher
from handlers.digest import describe_schedule
from handlers.status import kind_label

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
_CHANNEL_REF = re.compile(r"<#([CG][A-Z0-9]+)(?:\|[^>]*)?>")
_RETRYABLE_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
)
#: Messages a summary reads at most (history pages are 200).
MAX_FETCHED = 1_000
HISTORY_PAGE = 200
HOME_TASKS = 15

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


def _delivery_error(method: str, exc: Exception) -> DeliveryError:
    if isinstance(exc, SlackApiError):
        error = str(exc.response.get("error", "unknown"))
        if exc.response.status_code == 429:
            retry_after = float(exc.response.headers.get("Retry-After", "1"))
            return DeliveryError(f"{method}: ratelimited", retry_after=retry_after)
        retryable = error in _RETRYABLE_ERRORS or exc.response.status_code >= 500
        return DeliveryError(f"{method}: {error}", retryable=retryable)
    return DeliveryError(f"{method}: {type(exc).__name__}: {exc}")


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
        ack_budget: float = 1.5,
        min_edit_interval: float = 1.0,
        max_rate_limit_retries: int = 3,
    ) -> None:
        if not settings.slack_bot_token:
            raise ValueError("SLACK_BOT_TOKEN is required for the Slack adapter")
        self.settings = settings
        self.host = host
        self.port = port
        self.path = path
        self.ack_budget = ack_budget
        self.private_results = settings.slack_private_results
        self.min_edit_interval = min_edit_interval
        self.max_rate_limit_retries = max_rate_limit_retries
        self.bot_user_id: str | None = None
        self._services: Services | None = None
        self._client: AsyncWebClient | None = None
        self._bolt: AsyncApp | None = None
        self._runner: web.AppRunner | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self._bound_port: int | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._edit_locks: dict[str, asyncio.Lock] = {}
        self._last_edit: dict[str, float] = {}
        self._user_cache: dict[str, tuple[str, str]] = {}

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
        """The bolt app with atombot's listeners (also usable on its own, e.g. in benchmarks)."""
        if not self.socket_mode and not self.settings.slack_signing_secret:
            raise ValueError("SLACK_SIGNING_SECRET is required for Slack's HTTP mode")
        self._client = AsyncWebClient(
            token=self.settings.slack_bot_token,
            base_url=self.settings.slack_api_url,
            retry_handlers=[
                AsyncConnectionErrorRetryHandler(),
                AsyncRateLimitErrorRetryHandler(max_retry_count=self.max_rate_limit_retries),
            ],
        )
        app = AsyncApp(
            client=self._client,
            signing_secret=self.settings.slack_signing_secret or "socket-mode",
            request_verification_enabled=not self.socket_mode,
            process_before_response=False,
            logger=log,
        )
        app.command(self.settings.slack_command)(self._tracked(self._on_command))
        app.event("app_mention")(self._tracked(self._on_mention))
        app.event("message")(self._tracked(self._on_message))
        app.event("app_home_opened")(self._tracked(self._on_home_opened))
        app.action(re.compile(r"^ab:"))(self._tracked(self._on_button))
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
            self._socket = AsyncSocketModeHandler(app, self.settings.slack_app_token)
            await self._socket.connect_async()  # type: ignore[no-untyped-call]
            log.info("Slack: connected over Socket Mode")
            return
        web_app = web.Application()
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

    async def _handle_http(self, request: web.Request) -> web.StreamResponse:
        try:
            bolt_request = await to_bolt_request(request)
            if not isinstance(bolt_request.body, dict):
                raise ValueError("body is not an object")
        except (ValueError, AttributeError, TypeError):
            # Bolt parses the body before verifying the signature; garbage never gets further.
            return web.Response(status=400, text="malformed body")
        response = await self._app().async_dispatch(bolt_request)
        return await to_aiohttp_response(response)

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    def _app(self) -> AsyncApp:
        if self._bolt is None:
            raise RuntimeError("the Slack adapter is not started")
        return self._bolt

    def _tracked(self, listener: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        """Keep a listener's task in ``_background`` while it runs (bolt starts it after acking).

        ``functools.wraps`` keeps the listener's parameter names, which bolt injects by name.
        """

        @functools.wraps(listener)
        async def run(**kwargs: Any) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._background.add(task)
            try:
                await listener(**kwargs)
            finally:
                if task is not None:
                    self._background.discard(task)

        return run

    async def wait_idle(self) -> None:
        """Wait until no listener work is running (tests, benchmarks, shutdown)."""
        me = asyncio.current_task()
        while pending := {task for task in self._background if task is not me}:
            await asyncio.wait(pending)

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

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
            return await self._route(inbound, thread=thread)
        except Exception as exc:
            report(exc, where=f"Slack routing of {inbound.event_id}")
            return Reply(t("error.internal", detect_locale(inbound.text)))

    async def _on_command(self, ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        """``/atom <request>``: ack with the receipt if classification is quick, else follow up."""
        request_text = str(command.get("text") or "").strip() or "help"
        channel = str(command["channel_id"])
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
        work = self._spawn(self._route_or_apologise(inbound, thread=None))
        done, _ = await asyncio.wait({work}, timeout=self.ack_budget)
        if work in done:
            await ack(text=work.result().text, response_type="ephemeral")
            return
        await ack(
            text=text("slack.ack.working", detect_locale(request_text)), response_type="ephemeral"
        )
        reply: Reply = await work
        await respond(text=reply.text, response_type="ephemeral")

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
            await respond(text=reply.text, response_type="ephemeral")

    async def _on_button(
        self, ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond
    ) -> None:
        """👍 / 👎 / Regenerate / Cancel under a result."""
        await ack()
        parsed = Button.parse(str(action.get("value") or action.get("action_id") or ""))
        if parsed is None:
            return
        kind, task_id = parsed
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
        )
        try:
            reply = await self.services.router.handle_action(event)
        except Exception as exc:
            report(exc, where=f"Slack button {event.event_id}")
            reply = Reply(t("error.internal", "en"), ephemeral=True)
        self.services.notify()
        if reply.text:
            await respond(text=reply.text, response_type="ephemeral", replace_original=False)

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
        tasks = [x for x in tasks if not x.kind.endswith(".partial")]
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
                    kind=kind_label(x.kind, locale),
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
        try:
            return await self.client.api_call(method, json=arguments)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            raise _delivery_error(method, exc) from exc

    async def send(self, target: Target, view: View) -> str:
        """Post a message (in the thread, or by DM when private); id is ``channel/ts``."""
        channel, thread = self._where(target)
        response = await self._call(
            "chat.postMessage",
            channel=channel,
            thread_ts=thread,
            text=fallback_text(view),
            blocks=await self._blocks(view),
        )
        return f"{response['channel']}/{response['ts']}"

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

    async def notify(self, target: Target, text: str) -> None:
        """Post a plain message (reminders, digests), split when long."""
        channel, thread = self._where(target)
        for part in split_text(text, self.max_text):
            await self._call("chat.postMessage", channel=channel, thread_ts=thread, text=part)
