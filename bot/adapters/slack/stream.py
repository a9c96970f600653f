"""Live results in Slack (the :class:`~bot.adapters.base.StreamingAdapter` side): Slack's chat
streaming (``chat.startStream`` / ``chat.appendStream`` / ``chat.stopStream``), with the tasks
of a request of several as a plan (``task_display_mode="plan"``, a ``task_update`` chunk per
task).

The delivery job owns the stream's state (its id is the message id ``channel/ts``), so the
methods are called directly rather than through slack_sdk's ``chat_stream()`` helper, whose
buffer lives in memory and would not survive a restart. Whatever Slack refuses to stream
(no recipient, an expired or user-stopped stream, a workspace without streaming) becomes
:class:`~bot.adapters.base.StreamUnavailable` carrying the message left behind, which the
core then edits with ``chat.update`` like any result.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.models.messages.chunk import Chunk, MarkdownTextChunk, TaskUpdateChunk

from bot.adapters.base import StreamUnavailable
from bot.adapters.slack.assistant import pane_finish, pane_follow, pane_posted
from bot.adapters.slack.core import SLACK_ERRORS, delivery_error, slack_error
from bot.adapters.slack.outbound import SlackOutbound, post_metadata, split_id
from bot.texts import detect_locale, t
from bot.types import Action, PlanItem, PlanStatus, Section, StreamUpdate, Target, View

log = logging.getLogger(__name__)

#: ``markdown_text`` of one stream call: Slack's limit.
MAX_STREAM_TEXT = 12_000
#: A task's title in the plan (Slack cuts longer ones).
MAX_TASK_TITLE = 256
#: chat.appendStream is Tier 4 (100+/min per workspace), chat.startStream and
#: chat.stopStream Tier 2 (20+/min): one append a second per stream leaves room for a few
#: streams at once, and a result's start and stop are one call each.
DEFAULT_STREAM_INTERVAL = 1.0
#: The stream is over on Slack's side (it expired, or it was stopped, by us or the user):
#: its message stays and takes chat.update.
STREAM_OVER = frozenset({"message_not_in_streaming_state", "stopped_by_user"})
#: Streaming cannot be used for this message (the message was never opened).
CANNOT_STREAM = frozenset(
    {
        "missing_recipient_team_id",
        "missing_recipient_user_id",
        "channel_type_not_supported",
        "thread_not_found",
        "invalid_thread_ts",
        "user_not_found",
        "team_not_found",
    }
)
#: This workspace or token does not stream at all: stop trying until a restart.
NO_STREAMING = frozenset(
    {
        "unknown_method",
        "method_deprecated",
        "not_allowed",
        "not_allowed_token_type",
        "no_permission",
    }
)
#: Plan status → Slack's task status (``pending``, ``in_progress``, ``complete``, ``error``).
TASK_STATUS = {
    PlanStatus.queued: "pending",
    PlanStatus.running: "in_progress",
    PlanStatus.done: "complete",
    PlanStatus.failed: "error",
    PlanStatus.cancelled: "error",
    PlanStatus.waiting: "pending",
}
#: Statuses Slack draws alike, told apart by the task's details line.
_DETAILS = {
    PlanStatus.cancelled: "state.cancelled",
    PlanStatus.failed: "state.failed",
    PlanStatus.waiting: "slack.stream.waiting",
}


def text_pieces(text: str, limit: int = MAX_STREAM_TEXT) -> list[str]:
    """``text`` cut into consecutive pieces of at most ``limit`` characters, nothing dropped
    (the pieces are appended to one message, so they join back exactly)."""
    return [text[i : i + limit] for i in range(0, len(text), limit)]


def still_working(view: View) -> bool:
    """Whether a task the view shows is still queued or running (it offers Cancel)."""
    return any(b.action == Action.cancel for row in view.buttons for b in row)


def task_chunk(item: PlanItem, locale: str) -> TaskUpdateChunk:
    """One task of the plan as Slack's ``task_update`` chunk (its id is the task id)."""
    details = _DETAILS.get(item.status)
    return TaskUpdateChunk(
        id=str(item.task_id),
        title=(item.title or f"#{item.task_id}")[:MAX_TASK_TITLE],
        status=TASK_STATUS[item.status],
        details=t(details, locale) if details else None,
    )


class SlackStreams(SlackOutbound):
    """Slack's chat streaming (see the module docstring)."""

    def __init__(
        self,
        *args: Any,
        stream: bool = True,
        min_stream_interval: float = DEFAULT_STREAM_INTERVAL,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        #: Seconds between two stream calls for one message (the core paces appends).
        self.min_stream_interval = min_stream_interval
        self._streaming = stream

    def _stream_where(self, target: Target) -> tuple[str, str | None]:
        # A private result of a channel request goes to the user's DM, where it has no
        # thread to stream into; a request made in a DM stays in that DM (and its thread).
        if target.private and target.user and not target.channel.startswith("D"):
            return target.user, None
        return target.channel, target.thread

    def can_stream(self, target: Target) -> bool:
        """Threads (channel or DM) with a known recipient: Slack streams only replies, and
        into a channel only for a recipient (``recipient_user_id`` + ``recipient_team_id``)."""
        _, thread = self._stream_where(target)
        return self._streaming and bool(thread and target.user and target.tenant)

    def _plan_chunks(self, update: StreamUpdate, items: tuple[PlanItem, ...]) -> list[Chunk]:
        if len(update.plan) < 2:
            return []  # one task: its text is the whole story
        locale = detect_locale(update.text)
        return [task_chunk(item, locale) for item in items]

    def _refused(self, method: str, exc: Exception, *, message_id: str | None) -> Exception:
        """What a failed stream call means for the core."""
        error = slack_error(exc)
        if error in STREAM_OVER and message_id is not None:
            return StreamUnavailable(f"{method}: {error}", message_id=message_id)
        if error in CANNOT_STREAM:
            return StreamUnavailable(f"{method}: {error}", message_id=message_id)
        if error in NO_STREAMING or (
            isinstance(exc, SlackApiError) and exc.response.status_code == 404
        ):
            log.warning("Slack: streaming is not available (%s); editing messages instead", error)
            self._streaming = False
            return StreamUnavailable(f"{method}: {error}", message_id=message_id)
        return delivery_error(method, exc)

    async def _stream_call(
        self, method: str, *, message_id: str | None, **kwargs: Any
    ) -> dict[str, Any]:
        try:
            response = await self._raw_call(method, **kwargs)
        except SLACK_ERRORS as exc:
            raise self._refused(method, exc, message_id=message_id) from exc
        return dict(response.data) if isinstance(response.data, dict) else {}

    async def _append_all(
        self, channel: str, ts: str, text: str, chunks: list[Chunk], *, message_id: str
    ) -> None:
        pieces = text_pieces(text)
        if chunks and not pieces:
            pieces = [""]
        for index, piece in enumerate(pieces):
            extra = chunks if index == 0 else []
            await self._stream_call(
                "chat.appendStream",
                message_id=message_id,
                **self._content(channel=channel, ts=ts, text=piece, chunks=extra),
            )

    @staticmethod
    def _content(*, text: str, chunks: list[Chunk], **where: Any) -> dict[str, Any]:
        """Text alone as ``markdown_text``; with task updates, all as chunks (as slack_sdk's
        own stream helper sends them)."""
        if not chunks:
            return {**where, "markdown_text": text}
        parts = [chunk.to_dict() for chunk in chunks]
        if text:
            parts.append(MarkdownTextChunk(text=text).to_dict())
        return {**where, "chunks": parts}

    async def stream_start(self, target: Target, update: StreamUpdate, *, client_id: str) -> str:
        """Open the stream in the target's thread with the plan and the text so far;
        returns the message id ``channel/ts``."""
        channel, thread = self._stream_where(target)
        if not self.can_stream(target) or thread is None:
            raise StreamUnavailable("slack: no thread or recipient to stream to")
        pieces = text_pieces(update.text)
        chunks = self._plan_chunks(update, update.plan)
        first = pieces[0] if pieces else ""
        response = await self._stream_call(
            "chat.startStream",
            message_id=None,
            task_display_mode="plan" if chunks else None,
            recipient_user_id=target.user,
            recipient_team_id=target.tenant,
            **self._content(channel=channel, thread_ts=thread, text=first, chunks=chunks),
        )
        pane_posted(self, target)
        await pane_follow(self, target, update.plan)
        channel = str(response.get("channel") or channel)
        message_id = f"{channel}/{response.get('ts')}"
        if len(pieces) > 1:
            await self._append_all(
                channel, str(response.get("ts")), "".join(pieces[1:]), [], message_id=message_id
            )
        return message_id

    async def stream_append(self, target: Target, stream_id: str, update: StreamUpdate) -> None:
        """Append ``update.delta`` (in pieces of at most 12,000 characters) and the changed
        tasks' statuses."""
        channel, ts = split_id(stream_id)
        chunks = self._plan_chunks(update, update.changed)
        if update.changed:
            await pane_follow(self, target, update.plan)
        if not update.delta and not chunks:
            return
        await self._append_all(channel, ts, update.delta, chunks, message_id=stream_id)

    async def edit(self, target: Target, message_id: str, view: View) -> None:
        """Edit as :class:`SlackOutbound` does; once the view shows no task being worked on,
        the assistant pane's status is cleared as after a stop: a result that fell back from
        its stream to edits (expired, refused, restarted) finishes the pane thread too."""
        await super().edit(target, message_id, view)
        if not still_working(view):
            await pane_finish(self, target)

    async def stream_stop(
        self,
        target: Target,
        stream_id: str,
        view: View,
        *,
        client_id: str,
        rest: str | None = None,
    ) -> str:
        """End the stream with the final ``view`` (sections, Slack's native 👍/👎,
        Regenerate / Cancel).

        When the stream holds the start of the one result (``rest`` given), the stop itself
        appends the rest and puts the titles and buttons below it, as Slack's own assistants
        finish a stream: one call. Otherwise the stop is followed by a ``chat.update`` that
        replaces what was streamed with the view, whole. A stream Slack already ended
        (expired, stopped before a restart) is finished with that edit; the same id comes
        back every time.
        """
        channel, ts = split_id(stream_id)
        finish: dict[str, Any] = {}
        if rest is not None:
            pieces = text_pieces(rest)
            if len(pieces) > 1:
                await self._append_all(channel, ts, "".join(pieces[:-1]), [], message_id=stream_id)
            tail = View(
                sections=tuple(Section(text="", title=s.title) for s in view.sections),
                buttons=view.buttons,
            )
            finish["blocks"] = await self._blocks(tail, native_feedback=True)
            if pieces:
                finish["markdown_text"] = pieces[-1]
        try:
            await self._raw_call(
                "chat.stopStream",
                channel=channel,
                ts=ts,
                metadata=post_metadata(client_id),
                **finish,
            )
        except SLACK_ERRORS as exc:
            if slack_error(exc) not in STREAM_OVER:
                raise delivery_error("chat.stopStream", exc) from exc
            finish = {}  # already over: only an edit can show the result now
        if not finish:
            await self._update(target, stream_id, view, native_feedback=True)
        await pane_finish(self, target)
        return stream_id
