"""The fake Slack's assistant surface: ``assistant.threads.*`` and the assistant pane's events.

Every :class:`~tests.fakes.slack_api.FakeSlack` serves these methods (it builds a
:class:`FakeAssistant` as ``fake.assistant``), with the checks real Slack makes:

* ``assistant.threads.setStatus``: ``channel_id``, ``thread_ts`` and ``status`` required
  (an empty ``status`` clears it); at most 10 ``loading_messages``; the scope
  ``assistant:write`` or ``chat:write``. Slack clears a status by itself when the app posts
  into the thread, and :meth:`FakeAssistant.status` shows it that way.
* ``assistant.threads.setSuggestedPrompts``: ``channel_id`` and 1–4 ``prompts``, each with a
  ``title`` and a ``message``; ``thread_ts`` optional (the Messages tab of an agent app).
* ``assistant.threads.setTitle``: ``channel_id``, ``thread_ts`` and ``title`` required.
* ``thread_ts`` must be a message of the channel (``invalid_thread_ts``), the channel must
  exist (``channel_not_found``); prompts and titles need ``assistant:write``
  (``missing_scope``).
* Rate tiers: setSuggestedPrompts and setTitle are Tier 4 (100 a minute); Slack gives
  setStatus "special" limits without a number, modelled here as Tier 3 (50 a minute). Over
  the limit: HTTP 429 with ``Retry-After`` (``fake.force_rate_limit`` / ``set_rate_limit``
  work as for every method).

Slack documents no length limit for a status or a loading message; the fake refuses more
than :data:`MAX_STATUS_CHARS` (``invalid_arguments``) so that an unbounded text is caught.

Events: :meth:`FakeAssistant.thread_started` (the user opens the pane: a new thread whose
root message Slack writes), :meth:`FakeAssistant.context_changed` and
:meth:`FakeAssistant.user_message` (a ``message.im`` in the pane's thread). Send them to the
app with ``fake.signed_event(event)`` + ``fake.post_to_app`` (HTTP) or ``fake.push_event``
(Socket Mode), like every other event.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.fakes.slack_api import JSONDict, RateLimit, SlackApiFailure

if TYPE_CHECKING:
    from tests.fakes.slack_api import FakeSlack

SET_STATUS = "assistant.threads.setStatus"
SET_PROMPTS = "assistant.threads.setSuggestedPrompts"
SET_TITLE = "assistant.threads.setTitle"
MAX_PROMPTS = 4
MAX_LOADING_MESSAGES = 10
#: The fake's own bound on a status, a loading message, a prompt's title and a thread title.
MAX_STATUS_CHARS = 250
MAX_PROMPT_MESSAGE_CHARS = 2_000
ASSISTANT_SCOPE = "assistant:write"
RATE_LIMITS = {
    SET_STATUS: RateLimit(per_minute=50),
    SET_PROMPTS: RateLimit(per_minute=100),
    SET_TITLE: RateLimit(per_minute=100),
}
#: The text of the root message Slack writes when a user opens a new assistant thread.
ROOT_TEXT = "New Assistant Thread"


@dataclass(frozen=True)
class StatusSet:
    """One accepted setStatus: what the thread was told to show (``""`` clears)."""

    status: str
    loading_messages: tuple[str, ...]
    #: Position of the call in ``fake.calls`` (a later post in the thread clears it).
    call_index: int


@dataclass
class PaneThread:
    """An assistant thread as the fake knows it: its statuses, prompts and title."""

    channel: str
    thread_ts: str
    user: str | None = None
    context: JSONDict = field(default_factory=dict)
    statuses: list[StatusSet] = field(default_factory=list)
    prompts: list[JSONDict] | None = None
    prompts_title: str | None = None
    title: str | None = None


def _missing(name: str) -> SlackApiFailure:
    return SlackApiFailure(
        "invalid_arguments", response_metadata={"messages": [f"[ERROR] missing '{name}'"]}
    )


def _invalid(message: str) -> SlackApiFailure:
    return SlackApiFailure("invalid_arguments", response_metadata={"messages": [message]})


def _json_list(value: Any, name: str) -> list[Any]:
    """A list argument as slack_sdk sends it: JSON body, or a JSON string in a form."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise _invalid(f"[ERROR] '{name}' is not valid JSON") from exc
    if not isinstance(value, list):
        raise _invalid(f"[ERROR] '{name}' must be an array")
    return value


class FakeAssistant:
    """The assistant surface of one :class:`FakeSlack` (see the module docstring)."""

    def __init__(self, fake: FakeSlack) -> None:
        self.fake = fake
        #: Assistant threads by (channel, thread_ts): opened by events or set by methods.
        self.threads: dict[tuple[str, str], PaneThread] = {}
        #: Prompts set on a whole channel (no ``thread_ts``: the agent app's Messages tab).
        self.channel_prompts: dict[str, list[JSONDict]] = {}
        fake.register_method(SET_STATUS, self._set_status, rate_limit=RATE_LIMITS[SET_STATUS])
        fake.register_method(SET_PROMPTS, self._set_prompts, rate_limit=RATE_LIMITS[SET_PROMPTS])
        fake.register_method(SET_TITLE, self._set_title, rate_limit=RATE_LIMITS[SET_TITLE])

    # --- inspection -------------------------------------------------------------------------

    def thread(self, channel: str, thread_ts: str) -> PaneThread:
        """The assistant thread (KeyError if no event or method touched it)."""
        return self.threads[(channel, thread_ts)]

    def status(self, channel: str, thread_ts: str) -> str | None:
        """The status the thread shows now: the last one set, unless it was cleared (an
        empty status) or the bot posted into the thread after it, as Slack clears it then."""
        pane = self.threads.get((channel, thread_ts))
        if pane is None or not pane.statuses or not pane.statuses[-1].status:
            return None
        last = pane.statuses[-1]
        for call in self.fake.calls[last.call_index + 1 :]:
            if (
                call.ok
                and call.method in ("chat.postMessage", "chat.startStream")
                and call.args.get("channel") == channel
                and call.args.get("thread_ts") == thread_ts
            ):
                return None
        return last.status

    def statuses(self, channel: str, thread_ts: str) -> list[str]:
        """Every status the thread was set to, in order (``""``: cleared)."""
        pane = self.threads.get((channel, thread_ts))
        return [s.status for s in pane.statuses] if pane is not None else []

    # --- events (what Slack sends the app) ---------------------------------------------------

    def thread_started(
        self, *, user_id: str = "U0ANA", context_channel: str | None = "C0GENERAL"
    ) -> JSONDict:
        """``assistant_thread_started``: ``user_id`` opens the pane; Slack writes the new
        thread's root message in the user's DM with the app."""
        fake = self.fake
        fake.add_user(user_id)
        channel = fake.dm_channel_id(user_id)
        root = fake.seed_message(channel, ROOT_TEXT, user=user_id)
        context = (
            {"channel_id": context_channel, "team_id": fake.team_id} if context_channel else {}
        )
        self.threads[(channel, root.ts)] = PaneThread(
            channel, root.ts, user=user_id, context=dict(context)
        )
        return {
            "type": "assistant_thread_started",
            "assistant_thread": {
                "user_id": user_id,
                "context": context,
                "channel_id": channel,
                "thread_ts": root.ts,
            },
            "event_ts": root.ts,
        }

    def context_changed(self, channel: str, thread_ts: str, *, context_channel: str) -> JSONDict:
        """``assistant_thread_context_changed``: the user looks at another channel."""
        pane = self.thread(channel, thread_ts)
        pane.context = {"channel_id": context_channel, "team_id": self.fake.team_id}
        return {
            "type": "assistant_thread_context_changed",
            "assistant_thread": {
                "user_id": pane.user,
                "context": dict(pane.context),
                "channel_id": channel,
                "thread_ts": thread_ts,
            },
            "event_ts": self.fake.seed_message(channel, "", user=pane.user or "U0ANA").ts,
        }

    def user_message(self, text: str, *, channel: str, thread_ts: str) -> JSONDict:
        """A ``message.im`` event: the pane's user writes into the thread (stored too)."""
        pane = self.thread(channel, thread_ts)
        user = pane.user or "U0ANA"
        message = self.fake.seed_message(channel, text, user=user, thread_ts=thread_ts)
        return {
            "type": "message",
            "channel_type": "im",
            "user": user,
            "text": text,
            "ts": message.ts,
            "thread_ts": thread_ts,
            "parent_user_id": user,
            "channel": channel,
            "event_ts": message.ts,
            "team": self.fake.team_id,
            "client_msg_id": str(uuid.uuid4()),
        }

    # --- Web API methods ---------------------------------------------------------------------

    def _need_scope(self, *accepted: str) -> None:
        if not any(scope in self.fake.scopes for scope in accepted):
            raise SlackApiFailure(
                "missing_scope", needed=",".join(accepted), provided=",".join(self.fake.scopes)
            )

    def _pane(self, args: JSONDict, *, thread_required: bool) -> PaneThread | None:
        channel_id = args.get("channel_id")
        if not channel_id:
            raise _missing("channel_id")
        channel = self.fake.channels.get(str(channel_id))
        if channel is None:
            raise SlackApiFailure("channel_not_found")
        thread_ts = args.get("thread_ts")
        if not thread_ts:
            if thread_required:
                raise _missing("thread_ts")
            return None
        message = channel.messages.get(str(thread_ts))
        if message is None or message.deleted or message.is_reply:
            raise SlackApiFailure("invalid_thread_ts")
        key = (channel.id, message.ts)
        if key not in self.threads:
            self.threads[key] = PaneThread(channel.id, message.ts, user=channel.user)
        return self.threads[key]

    @staticmethod
    def _short(value: Any, name: str, *, limit: int = MAX_STATUS_CHARS) -> str:
        if not isinstance(value, str):
            raise _invalid(f"[ERROR] '{name}' must be a string")
        if len(value) > limit:
            raise _invalid(f"[ERROR] '{name}' is longer than {limit} characters")
        return value

    def _set_status(self, args: JSONDict) -> JSONDict:
        self._need_scope(ASSISTANT_SCOPE, "chat:write")
        pane = self._pane(args, thread_required=True)
        assert pane is not None
        if "status" not in args or args["status"] is None:
            raise _missing("status")
        status = self._short(args["status"], "status")
        loading: Sequence[Any] = ()
        if args.get("loading_messages") is not None:
            loading = _json_list(args["loading_messages"], "loading_messages")
            if len(loading) > MAX_LOADING_MESSAGES:
                raise _invalid(f"[ERROR] at most {MAX_LOADING_MESSAGES} 'loading_messages'")
            loading = [self._short(m, "loading_messages") for m in loading]
        pane.statuses.append(StatusSet(status, tuple(loading), call_index=len(self.fake.calls)))
        return {"ok": True}

    def _set_prompts(self, args: JSONDict) -> JSONDict:
        self._need_scope(ASSISTANT_SCOPE)
        pane = self._pane(args, thread_required=False)
        if args.get("prompts") is None:
            raise _missing("prompts")
        prompts = _json_list(args["prompts"], "prompts")
        if not 1 <= len(prompts) <= MAX_PROMPTS:
            raise _invalid(f"[ERROR] 'prompts' must hold 1 to {MAX_PROMPTS} prompts")
        checked: list[JSONDict] = []
        for prompt in prompts:
            if not isinstance(prompt, dict) or not prompt.get("title") or not prompt.get("message"):
                raise _invalid("[ERROR] every prompt needs a 'title' and a 'message'")
            checked.append(
                {
                    "title": self._short(prompt["title"], "title"),
                    "message": self._short(
                        prompt["message"], "message", limit=MAX_PROMPT_MESSAGE_CHARS
                    ),
                }
            )
        title = args.get("title")
        if title is not None:
            title = self._short(title, "title")
        if pane is None:
            self.channel_prompts[str(args["channel_id"])] = checked
        else:
            pane.prompts, pane.prompts_title = checked, title
        return {"ok": True}

    def _set_title(self, args: JSONDict) -> JSONDict:
        self._need_scope(ASSISTANT_SCOPE)
        pane = self._pane(args, thread_required=True)
        assert pane is not None
        if not args.get("title"):
            raise _missing("title")
        pane.title = self._short(args["title"], "title")
        return {"ok": True}
