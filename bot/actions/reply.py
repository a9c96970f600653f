"""``reply.post``: post the approved reply into the thread it answers, as the bot, with
the person it is sent for named ("— on behalf of @ana").

The performer posts through a callable the runner gives it: the chat adapter's
``notify(target, text, *, client_id=...)``. The client id is the task's idempotency key,
so after a crash the adapter's ``find_sent`` can tell whether the post went out; when a
post fails in a way that leaves this unknown, the performer asks ``find_sent`` itself
(when given one) instead of posting twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from bot.actions.base import ActionContext, ActionFailed, ActionOutcome, Commit
from bot.adapters.base import DeliveryError, PostLookup
from bot.texts import t
from bot.types import Target

if TYPE_CHECKING:
    from bot.adapters.base import ChatAdapter
    from bot.config import Settings

log = logging.getLogger(__name__)


class Poster(Protocol):
    """Posts a plain message (``ChatAdapter.notify``)."""

    async def __call__(self, target: Target, text: str, *, client_id: str | None = None) -> None:
        """Post ``text`` to ``target``; raises DeliveryError."""
        ...


class SentFinder(Protocol):
    """Finds a post by its client id (``ChatAdapter.find_sent``)."""

    async def __call__(self, target: Target, client_id: str, *, since: datetime) -> PostLookup:
        """Look for the post; raises DeliveryError."""
        ...


def attributed(text: str, name: str, locale: str = "en") -> str:
    """The reply with the line naming the person it is posted for."""
    return t("perform.reply.attribution", locale, text=text.strip(), name=name.lstrip("@"))


def thread_of(ctx: ActionContext) -> Target:
    """Where the reply goes: the request's thread (``thread`` / ``channel`` slots, when the
    runner sets them, name another), posted in the open even when results are private."""
    target = ctx.target
    channel = ctx.slots.get("channel")
    thread = ctx.slots.get("thread")
    if isinstance(channel, str) and channel and isinstance(thread, str) and thread:
        target = replace(target, channel=channel, thread=thread)
    elif isinstance(thread, str) and thread:
        target = replace(target, thread=thread)
    return replace(target, private=False)


class ReplyPostPerformer:
    """``reply.post``.

    ``post``: the chat adapter's ``notify`` (for the target's platform); ``find_sent``:
    its ``find_sent`` (optional, used when a post may or may not have gone out). Always
    available: the runner builds it only where a chat adapter posts for it.
    """

    kind = "reply.post"

    def __init__(self, post: Poster, *, find_sent: SentFinder | None = None) -> None:
        self.post = post
        self.find_sent = find_sent

    def available(self) -> bool:
        """Needs no settings beyond the chat adapter it was given."""
        return True

    async def prepare(self, ctx: ActionContext) -> dict[str, Any]:
        """Nothing to resolve: the slots, with the line the approval shows (``preview``);
        an empty reply fails now."""
        if not ctx.draft.strip():
            raise ActionFailed(t("perform.reply.empty", ctx.locale), permanent=True)
        name = (ctx.requester_name or ctx.requester).lstrip("@")
        return {**ctx.slots, "preview": t("perform.preview.reply", ctx.locale, name=name)}

    async def perform(self, ctx: ActionContext, commit: Commit) -> ActionOutcome:
        """Post the reply once (``commit`` right before the post). Raises ActionFailed."""
        if not ctx.draft.strip():
            raise ActionFailed(t("perform.reply.empty", ctx.locale), permanent=True)
        target = thread_of(ctx)
        text = attributed(ctx.draft, ctx.requester_name or ctx.requester, ctx.locale)
        since = datetime.now(UTC) - timedelta(seconds=5)
        await commit()
        try:
            await self.post(target, text, client_id=ctx.key)
        except DeliveryError as exc:
            if exc.maybe_sent:
                lookup = await self._lookup(target, ctx.key, since)
                if lookup is not None and lookup.message_id is not None:
                    return self._outcome(ctx, target)
                if lookup is None or not lookup.searchable:
                    raise ActionFailed(
                        t("perform.reply.maybe_posted", ctx.locale), permanent=True
                    ) from exc
            raise ActionFailed(
                t("perform.reply.failed", ctx.locale, reason=exc.reason),
                permanent=not exc.retryable,
                retry_after=exc.retry_after,
            ) from exc
        return self._outcome(ctx, target)

    async def _lookup(self, target: Target, key: str, since: datetime) -> PostLookup | None:
        """What the platform says about the post (None: it cannot be asked)."""
        if self.find_sent is None:
            return None
        try:
            return await self.find_sent(target, key, since=since)
        except DeliveryError:
            return None

    def _outcome(self, ctx: ActionContext, target: Target) -> ActionOutcome:
        log.info("action reply.post: task %s posted in %s", ctx.task_id, target.channel)
        return ActionOutcome(
            summary=t("perform.reply.posted", ctx.locale),
            detail={"channel": target.channel, "thread": target.thread, "client_id": ctx.key},
        )

    @classmethod
    def for_adapters(cls, adapters: Mapping[str, ChatAdapter]) -> ReplyPostPerformer:
        """Posting through the adapter of each target's platform."""

        def adapter_of(target: Target) -> ChatAdapter:
            adapter = adapters.get(target.platform)
            if adapter is None:
                raise DeliveryError(f"no {target.platform} adapter", retryable=False)
            return adapter

        async def post(target: Target, text: str, *, client_id: str | None = None) -> None:
            await adapter_of(target).notify(target, text, client_id=client_id)

        async def find_sent(target: Target, client_id: str, *, since: datetime) -> PostLookup:
            return await adapter_of(target).find_sent(target, client_id, since=since)

        return cls(post, find_sent=find_sent)


def build_performer(
    settings: Settings, adapters: Mapping[str, ChatAdapter]
) -> ReplyPostPerformer | None:
    """``reply.post`` wherever a chat adapter runs (it needs no settings of its own)."""
    if not adapters:
        return None
    return ReplyPostPerformer.for_adapters(adapters)
