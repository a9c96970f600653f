"""Writing to Slack (the :class:`~bot.adapters.base.ChatAdapter` side): results posted and
then edited with Block Kit (edits spaced per channel), plain notices, finding a post made
before a crash, and the answers to inbound requests (receipts, menus, ask modals).

429s are retried after ``Retry-After`` by slack_sdk's rate-limit retry handler and
otherwise reported as a retryable :class:`~bot.adapters.base.DeliveryError`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from slack_bolt.error import BoltError

from bot.adapters.base import PostLookup
from bot.adapters.slack.assistant import pane_posted
from bot.adapters.slack.blocks import (
    MAX_EDIT_CHARS,
    MAX_NOTE_CHARS,
    fallback_text,
    menu_blocks,
    message_blocks,
    note_modal,
)
from bot.adapters.slack.core import SLACK_ERRORS, SlackCore, delivery_error
from bot.adapters.slack.inbound import ask_metadata
from bot.render import split_text
from bot.texts import detect_locale, t
from bot.types import Action, Inbound, Reply, Target, View
from handlers.home import votes_of

log = logging.getLogger(__name__)

#: Message metadata ``event_type`` of posts that carry our client-side id (see ``find_sent``).
POST_EVENT_TYPE = "atombot_post"
#: How many recent messages ``find_sent`` reads at most.
FIND_SENT_LIMIT = 1_000
HISTORY_PAGE = 200

Respond = Callable[..., Awaitable[Any]]


def post_metadata(client_id: str | None) -> dict[str, Any] | None:
    """Message metadata carrying our client-side id (None: no metadata)."""
    if client_id is None:
        return None
    return {"event_type": POST_EVENT_TYPE, "event_payload": {"client_id": client_id}}


def split_id(message_id: str) -> tuple[str, str]:
    """A message id ``channel/ts`` as (channel, ts); channel empty when the id has none."""
    channel, _, ts = message_id.rpartition("/")
    return channel, ts


class SlackOutbound(SlackCore):
    """Posting, editing and answering (see the module docstring)."""

    #: Text per message: chat.update rejects more than 4,000 characters.
    max_text = 3_900

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._edit_locks: dict[str, asyncio.Lock] = {}
        self._last_edit: dict[str, float] = {}

    def _where(self, target: Target) -> tuple[str, str | None]:
        if target.private and target.user:
            return target.user, None
        return target.channel, target.thread

    async def _blocks(self, view: View, *, native_feedback: bool = False) -> list[dict[str, Any]]:
        rated = {row[0].task_id for row in view.buttons if row and len(row) > 1}
        votes = await votes_of(self.services.repo, rated) if rated else {}
        by = t("rate.by", detect_locale(view.text))
        return message_blocks(view, votes=votes, by=by, native_feedback=native_feedback)

    async def send(self, target: Target, view: View, *, client_id: str | None = None) -> str:
        """Post a message (in the thread, or by DM when private); id is ``channel/ts``."""
        channel, thread = self._where(target)
        async with self.workspace(target.tenant):
            response = await self._call(
                "chat.postMessage",
                channel=channel,
                thread_ts=thread,
                text=fallback_text(view),
                blocks=await self._blocks(view),
                metadata=post_metadata(client_id),
            )
        pane_posted(self, target)
        return f"{response['channel']}/{response['ts']}"

    async def find_sent(self, target: Target, client_id: str, *, since: datetime) -> PostLookup:
        """Find our post with ``client_id`` (its metadata) among the recent messages."""
        async with self.workspace(target.tenant):
            return await self._find_sent(target, client_id, since=since)

    async def _find_sent(self, target: Target, client_id: str, *, since: datetime) -> PostLookup:
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
        except SLACK_ERRORS as exc:
            raise delivery_error("find_sent", exc) from exc
        return PostLookup()

    async def edit(self, target: Target, message_id: str, view: View) -> None:
        """Replace a message's content, at most one edit per second per channel."""
        async with self.workspace(target.tenant):
            await self._update(target, message_id, view)

    async def _update(
        self, target: Target, message_id: str, view: View, *, native_feedback: bool = False
    ) -> None:
        channel, ts = split_id(message_id)
        channel = channel or self._where(target)[0]
        blocks = await self._blocks(view, native_feedback=native_feedback)
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
        async with self.workspace(target.tenant):
            for part in split_text(text, self.max_text):
                await self._call(
                    "chat.postMessage",
                    channel=channel,
                    thread_ts=thread,
                    text=part,
                    metadata=post_metadata(client_id),
                )
                pane_posted(self, target)

    # ------------------------------------------------------------------ answers to requests

    async def _respond(self, respond: Respond, reply: str, *, where: str) -> None:
        try:
            await respond(text=reply, response_type="ephemeral", replace_original=False)
        except (BoltError, *SLACK_ERRORS, ValueError) as exc:
            # BoltError: the payload came without a response_url (a Home tab button).
            log.warning("Slack: answer to %s not sent: %s", where, type(exc).__name__)

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
        except (BoltError, *SLACK_ERRORS, ValueError) as exc:
            log.warning("Slack: menu for %s not sent: %s", where, type(exc).__name__)

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
        except SLACK_ERRORS as exc:
            log.warning("Slack: receipt for %s not posted: %s", inbound.event_id, exc)

    async def open_ask(self, trigger_id: str, reply: Reply, channel: str) -> None:
        """The modal asking for free text (views.open with the press's trigger_id): a note
        about a vote, or the new text of a draft (``reply.ask_action``), prefilled with
        ``reply.ask_prefill``; its submission comes back as that action."""
        locale = detect_locale(reply.text or reply.ask_prefill or "")
        editing = reply.ask_action == Action.edit
        view = note_modal(
            title=reply.ask_title
            or t("slack.ask.edit_title" if editing else "why.modal_title", locale),
            submit=t("why.modal_submit", locale),
            label=reply.text or t("slack.ask.edit_title", locale),
            placeholder=t("why.comment_placeholder", locale),
            metadata=ask_metadata(
                task_id=reply.comment_task or 0, channel=channel, action=reply.ask_action
            ),
            initial_value=reply.ask_prefill,
            max_chars=MAX_EDIT_CHARS if editing else MAX_NOTE_CHARS,
        )
        try:
            await self.client.views_open(trigger_id=trigger_id, view=view)
        except SLACK_ERRORS as exc:
            log.warning("Slack: ask modal not opened: %s", exc)

    async def _post_ephemeral(self, channel: str, user: str, text: str) -> None:
        try:
            await self.client.chat_postEphemeral(channel=channel, user=user, text=text)
        except SLACK_ERRORS as exc:
            log.warning("Slack: answer not posted: %s", exc)
