"""Reading conversations for summaries and reply drafts: ``conversations.replies`` (a
thread) and ``conversations.history`` (a channel), page by page, and who wrote what."""

from __future__ import annotations

import logging
from typing import Any

from bot.adapters.base import DeliveryError
from bot.adapters.slack.core import SLACK_ERRORS, SlackCore, current_team
from bot.adapters.slack.inbound import channel_id_of, epoch
from handlers.base import MessageFetcher

log = logging.getLogger(__name__)

#: Messages a summary reads at most (history pages are 200).
MAX_FETCHED = 1_000
HISTORY_PAGE = 200


class SlackHistory(SlackCore):
    """The fetchers handed to the router with each request."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._user_cache: dict[tuple[str | None, str], tuple[str, str]] = {}

    async def _user(self, user_id: str) -> tuple[str, str]:
        """(name, timezone) of a workspace member, cached; falls back to (id, default tz)."""
        key = (current_team(), user_id)
        if key not in self._user_cache:
            name, tz = user_id, self.settings.timezone
            try:
                info = (await self.client.users_info(user=user_id)).get("user") or {}
                profile = info.get("profile") or {}
                name = (
                    profile.get("display_name") or info.get("real_name") or info.get("name") or name
                )
                tz = info.get("tz") or tz
            except SLACK_ERRORS as exc:
                log.warning("Slack: users.info %s failed: %s", user_id, exc)
            self._user_cache[key] = (str(name), str(tz))
        return self._user_cache[key]

    def fetcher(self, channel: str, thread: str | None) -> MessageFetcher:
        """What summaries and reply drafts read: this thread, or a channel's history (in
        the workspace of the request it is made for, with that workspace's token)."""
        team = current_team()

        async def fetch(scope: str, slots: dict[str, Any]) -> list[dict[str, str]]:
            try:
                async with self.workspace(team):
                    return await self._fetch(channel, thread, scope, slots)
            except DeliveryError as exc:  # the workspace is no longer installed
                log.warning("Slack: reading %s in %s failed: %s", scope, channel, exc)
                return []

        return fetch

    async def _fetch(
        self, channel: str, thread: str | None, scope: str, slots: dict[str, Any]
    ) -> list[dict[str, str]]:
        try:
            if scope == "thread" and thread is not None:
                raw = await self._replies(channel, thread)
            else:
                raw = await self._history(
                    channel_id_of(slots.get("channel")) or channel,
                    oldest=epoch(slots.get("since")),
                    latest=epoch(slots.get("until")),
                    last_n=slots.get("last_n") if isinstance(slots.get("last_n"), int) else None,
                )
        except SLACK_ERRORS as exc:
            log.warning("Slack: reading %s in %s failed: %s", scope, channel, exc)
            return []
        return [await self._as_fetched(m) for m in raw if self._worth_reading(m)]

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
