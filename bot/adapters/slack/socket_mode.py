"""Socket Mode with the edge checks of :mod:`bot.adapters.slack.payloads`.

slack_sdk's client parses every frame with an unbounded ``json.loads`` and hands any
envelope to bolt; bolt leaves an envelope it cannot dispatch unacknowledged (Slack then
redelivers it) and logs its body. Here a frame is parsed with the nesting limit, an envelope
is checked before bolt sees it, and one that is malformed or not atombot's is acknowledged
and dropped: logged by kind and size only, nothing stored.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from time import time
from typing import Any

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app, send_async_response
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.adapters.slack.payloads import (
    MAX_BODY_BYTES,
    SOCKET_ENVELOPES,
    Checked,
    JSONDict,
    Rejected,
    parse_json_object,
)

log = logging.getLogger(__name__)

_ENVELOPE_ID = re.compile(r'"envelope_id"\s*:\s*"([A-Za-z0-9._:-]{1,128})"')

Inspector = Callable[[JSONDict, str], Checked]


def read_frame(raw: str) -> tuple[JSONDict | None, str | None]:
    """(the envelope, or None if it is malformed; its envelope_id if one can be found)."""
    try:
        if len(raw) > MAX_BODY_BYTES:
            raise Rejected("too large", status=413)
        message = parse_json_object(raw)
    except Rejected:
        found = _ENVELOPE_ID.search(raw[:4096])
        return None, found.group(1) if found else None
    envelope_id = message.get("envelope_id")
    if not isinstance(envelope_id, str) or not envelope_id:
        envelope_id = None
    kind = message.get("type")
    if not isinstance(kind, str):
        return None, envelope_id
    if "payload" in message and not isinstance(message["payload"], dict):
        return None, envelope_id
    if kind in SOCKET_ENVELOPES and (envelope_id is None or "payload" not in message):
        return None, envelope_id
    return message, envelope_id


class CheckedSocketModeClient(SocketModeClient):
    """slack_sdk's aiohttp client, parsing frames with the nesting limit."""

    _listening: set[asyncio.Future[None]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._listening = set()
        super().__init__(*args, **kwargs)

    async def process_message(self) -> None:
        """Take one frame off the queue; run the listeners on a well-formed envelope."""
        raw = await self.message_queue.get()
        if raw is None:
            return
        text = raw if isinstance(raw, str) else str(raw)
        message, envelope_id = read_frame(text)
        if message is None:
            log.warning("Slack: dropped a malformed Socket Mode frame (%d characters)", len(text))
            if envelope_id is not None:
                await self.send_socket_mode_response(SocketModeResponse(envelope_id=envelope_id))
            return
        # As slack_sdk does: listeners run concurrently, the queue keeps draining.
        task = asyncio.ensure_future(self.run_message_listeners(message, text))
        self._listening.add(task)
        task.add_done_callback(self._listening.discard)


class CheckedSocketModeHandler(AsyncSocketModeHandler):
    """bolt's Socket Mode handler, with every envelope checked by ``inspect`` first."""

    def __init__(
        self,
        app: AsyncApp,
        app_token: str,
        *,
        inspect: Inspector,
        logger: logging.Logger | None = None,
        ping_interval: float = 10,
    ) -> None:
        # Not super().__init__(): it would start an unchecked client (a session and a task).
        self.app = app
        self.app_token = app_token
        self.inspect = inspect
        self.client = CheckedSocketModeClient(
            app_token=app_token,
            # slack_sdk logs every frame at DEBUG: keep that under its own name.
            logger=logger or logging.getLogger("slack_sdk.socket_mode"),
            web_client=app.client,
            ping_interval=ping_interval,
        )
        self.client.socket_mode_request_listeners.append(self.handle)

    async def handle(self, client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        """Check the envelope; give atombot's to bolt, acknowledge and drop the rest."""
        started = time()
        try:
            checked = self.inspect(req.payload, req.type)
        except Rejected as rejected:
            log.warning("Slack: refused a Socket Mode %s envelope: %s", req.type, rejected.reason)
            await self._ack(client, req)
            return
        if not checked.handled:
            log.debug("Slack: ignored a Socket Mode %s", checked.kind)
            await self._ack(client, req)
            return
        try:
            response = await run_async_bolt_app(self.app, req)
        except Exception as exc:  # bolt building its context from a payload we let through
            log.error("Slack: bolt could not take a %s: %s", checked.kind, type(exc).__name__)
            await self._ack(client, req)
            return
        if response.status != 200:
            log.warning("Slack: bolt answered %d to a %s", response.status, checked.kind)
            await self._ack(client, req)
            return
        await send_async_response(client, req, response, started)

    @staticmethod
    async def _ack(client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))


__all__ = ["CheckedSocketModeClient", "CheckedSocketModeHandler", "read_frame"]
