"""The assistant pane: the app's Messages tab as Slack's agent surface (bolt's ``AsyncAssistant``).

* A user opens the pane (``assistant_thread_started``): a greeting, and suggested prompts
  built from the task kinds (each kind's label and example, in the person's Slack locale).
* A message in a pane thread goes to the router like a direct message, its results stay in
  that thread. Right away the thread gets a status with loading messages
  (``assistant.threads.setStatus``) and, from its first request, a title
  (``assistant.threads.setTitle``); after routing, the receipt is posted and the status
  says the tasks are being worked on.
* While the request's tasks run, the status follows them: the outbound side tells the pane
  what it posted and which plan it streams (:func:`pane_posted`, :func:`pane_follow`,
  :func:`pane_finish`), and the status is cleared once everything is finished.

Rate tiers: setStatus has Slack's "special" limits and is the frequent one, so it is called
only when what the thread should show changes (the pane remembers what it shows, and that a
post into the thread clears it on Slack's side, so no call is needed then). A 429 is waited
out by slack_sdk's rate-limit retry handler (``Retry-After``). A status, prompt or title
that cannot be set is logged and dropped: it never fails a request or a delivery.

The thread context Slack sends (the channel the user is looking at) is kept in memory
rather than written into a message, as bolt's default store would, to spare those calls.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from slack_bolt.app.async_app import AsyncApp
from slack_bolt.middleware.assistant.async_assistant import AsyncAssistant

from bot.adapters.slack.core import SLACK_ERRORS
from bot.adapters.slack.inbound import PLATFORM, direct_inbound
from bot.texts import EN, detect_locale, t
from bot.types import PlanItem, PlanStatus, Target
from handlers.kinds import KindRegistry

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.adapters.slack.adapter import SlackAdapter

log = logging.getLogger(__name__)

#: Slack shows at most four suggested prompts and rotates through ten loading messages.
MAX_PROMPTS = 4
MAX_LOADING_MESSAGES = 10
#: Kept short: Slack shows a status and a loading message on one line.
MAX_STATUS_CHARS = 150
MAX_TITLE_CHARS = 60
#: Threads remembered per adapter before the memory starts over (old threads matter no more).
_MEMORY = 10_000
_FINISHED = frozenset({PlanStatus.done, PlanStatus.failed, PlanStatus.cancelled})
#: Not being worked on: finished, or waiting for a person's approval.
_IDLE = _FINISHED | {PlanStatus.waiting}

ThreadKey = tuple[str, str]
Shown = tuple[str, tuple[str, ...]]


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def suggested_prompts(kinds: KindRegistry, locale: str) -> list[dict[str, str]]:
    """Up to four prompts from the task kinds people ask for, in registry order: the kind's
    label as the title and its example request (``pane.prompt.<kind>``) as the message."""
    prompts: list[dict[str, str]] = []
    for kind in kinds:
        key = f"pane.prompt.{kind.name}"
        if not (kind.planned and kind.visible) or key not in EN:
            continue
        label = kind.label.get(locale)
        prompts.append({"title": label[:1].upper() + label[1:], "message": t(key, locale)})
        if len(prompts) == MAX_PROMPTS:
            break
    return prompts


def plan_status(plan: Sequence[PlanItem], locale: str) -> Shown | None:
    """What a pane thread shows while ``plan`` runs (None: nothing is being worked on)."""
    busy = [item for item in plan if item.status not in _IDLE]
    if not busy:
        return None
    done = sum(1 for item in plan if item.status in _FINISHED)
    running = [i for i in busy if i.status == PlanStatus.running] or busy
    loading = tuple(
        _short(t("pane.loading.task", locale, title=item.title), MAX_STATUS_CHARS)
        for item in running[:MAX_LOADING_MESSAGES]
    )
    return t("pane.status.working", locale, done=done, total=len(plan)), loading


def pane_thread(target: Target) -> ThreadKey | None:
    """The pane thread a target writes into: a thread of a DM with the app (with the
    assistant view on, every DM thread is an assistant thread); else None."""
    if target.platform != PLATFORM or not target.thread or not target.channel.startswith("D"):
        return None
    return target.channel, target.thread


@dataclass
class _Thread:
    """What the pane knows of one of its threads."""

    locale: str = "en"
    titled: bool = False
    context: dict[str, Any] | None = None
    #: The status the thread shows because we set it (None: none, or cleared by a post).
    shown: Shown | None = None


class AssistantPane:
    """The assistant pane of one Slack adapter: its listeners and what its threads show."""

    def __init__(self, adapter: SlackAdapter) -> None:
        self.adapter = adapter
        self._threads: dict[ThreadKey, _Thread] = {}
        self._locks: dict[ThreadKey, asyncio.Lock] = {}
        self._locales: dict[str, str] = {}

    # ------------------------------------------------------------------ wiring

    def register(self, app: AsyncApp) -> None:
        """Add the pane's listeners to ``app`` (bolt's assistant middleware: it takes the
        pane's events and the user messages in DM threads before the app's listeners)."""
        tracked = self.adapter._tracked
        assistant = AsyncAssistant(logger=log)
        assistant.thread_started(tracked(self._on_thread_started))
        assistant.thread_context_changed(tracked(self._on_context_changed))
        assistant.user_message(tracked(self._on_user_message))
        app.assistant(assistant)

    @property
    def _client(self) -> AsyncWebClient:
        return self.adapter.client

    def _thread(self, key: ThreadKey) -> _Thread:
        if key not in self._threads and len(self._threads) >= _MEMORY:
            self._threads.clear()
            self._locks.clear()
        return self._threads.setdefault(key, _Thread())

    # ------------------------------------------------------------------ listeners

    async def _on_thread_started(self, payload: dict[str, Any]) -> None:
        """Greet and offer prompts in the person's Slack language."""
        thread = payload["assistant_thread"]
        key: ThreadKey = (str(thread["channel_id"]), str(thread["thread_ts"]))
        state = self._thread(key)
        state.context = dict(thread.get("context") or {}) or None
        state.locale = await self._user_locale(str(thread.get("user_id") or ""))
        channel, ts = key
        try:
            await self._client.chat_postMessage(
                channel=channel, thread_ts=ts, text=t("pane.greeting", state.locale)
            )
        except SLACK_ERRORS as exc:
            log.warning("Slack: pane greeting in %s not posted: %s", channel, exc)
        prompts = suggested_prompts(self.adapter.services.router.kinds, state.locale)
        if not prompts:
            return
        try:
            await self._client.assistant_threads_setSuggestedPrompts(
                channel_id=channel,
                thread_ts=ts,
                prompts=prompts,
                title=t("pane.prompts_title", state.locale),
            )
        except SLACK_ERRORS as exc:
            log.warning("Slack: suggested prompts for %s not set: %s", channel, exc)

    async def _on_context_changed(self, payload: dict[str, Any]) -> None:
        """Remember which channel the user is looking at (no Web API call)."""
        thread = payload["assistant_thread"]
        key: ThreadKey = (str(thread["channel_id"]), str(thread["thread_ts"]))
        self._thread(key).context = dict(thread.get("context") or {}) or None

    async def _on_user_message(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        """A request in a pane thread: status and title at once, then route it like a DM
        whose results stay in the thread, post the receipt, and show the work going on."""
        found = direct_inbound(event, body, bot_user_id=self.adapter.bot_user_id)
        if found is None or not found.thread:
            return
        # A DM is the user's own: results go into the pane's thread, not "privately" to the
        # user's DM top level (which is where a private result would go).
        inbound = replace(found, private=False)
        key: ThreadKey = (inbound.channel, str(inbound.thread))
        state = self._thread(key)
        state.locale = detect_locale(inbound.text)
        await self.set_status(
            key,
            t("pane.status.thinking", state.locale),
            [t("pane.loading.reading", state.locale), t("pane.loading.planning", state.locale)],
        )
        if not state.titled:
            state.titled = await self._set_title(key, inbound.text)
        reply = await self.adapter._route_or_apologise(inbound, thread=inbound.thread)
        if reply.duplicate:
            await self.set_status(key, None)
            return
        if reply.text:
            try:
                await self._client.chat_postMessage(
                    channel=inbound.channel, thread_ts=inbound.thread, text=reply.text
                )
                self.posted(key)
            except SLACK_ERRORS as exc:
                log.warning("Slack: receipt for %s not posted: %s", inbound.event_id, exc)
        if reply.task_ids:
            receipt = _short(reply.text, MAX_STATUS_CHARS) if reply.text else None
            await self.set_status(
                key,
                t("pane.status.working", state.locale, done=0, total=len(reply.task_ids)),
                [receipt] if receipt else None,
            )
        else:
            await self.set_status(key, None)

    async def _user_locale(self, user: str) -> str:
        """``zh`` or ``en`` from the person's Slack client language (``users.info``)."""
        if not user:
            return "en"
        if user not in self._locales:
            locale = "en"
            try:
                info = (await self._client.users_info(user=user, include_locale=True)).get("user")
                if str((info or {}).get("locale") or "").lower().startswith("zh"):
                    locale = "zh"
            except SLACK_ERRORS as exc:
                log.warning("Slack: locale of %s unknown: %s", user, exc)
            if len(self._locales) >= _MEMORY:
                self._locales.clear()
            self._locales[user] = locale
        return self._locales[user]

    async def _set_title(self, key: ThreadKey, request: str) -> bool:
        title = _short(request.splitlines()[0] if request.strip() else request, MAX_TITLE_CHARS)
        try:
            await self._client.assistant_threads_setTitle(
                channel_id=key[0], thread_ts=key[1], title=title or "…"
            )
        except SLACK_ERRORS as exc:
            log.warning("Slack: title of pane thread %s not set: %s", key[1], exc)
            return False
        return True

    # ------------------------------------------------------------------ status

    async def set_status(
        self, key: ThreadKey, status: str | None, loading: Sequence[str] | None = None
    ) -> None:
        """Show ``status`` (with ``loading`` messages) in a pane thread, or clear it (None).

        Calls setStatus only when that changes what the thread shows; clearing a thread
        that shows nothing costs no call.
        """
        wanted: Shown | None = None
        if status:
            shown_loading = tuple(_short(m, MAX_STATUS_CHARS) for m in (loading or ()))
            wanted = (_short(status, MAX_STATUS_CHARS), shown_loading[:MAX_LOADING_MESSAGES])
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            state = self._thread(key)
            if state.shown == wanted:
                return
            try:
                await self._client.assistant_threads_setStatus(
                    channel_id=key[0],
                    thread_ts=key[1],
                    status=wanted[0] if wanted else "",
                    loading_messages=list(wanted[1]) if wanted and wanted[1] else None,
                )
            except SLACK_ERRORS as exc:
                log.warning("Slack: status of pane thread %s not set: %s", key[1], exc)
                return
            state.shown = wanted

    def posted(self, key: ThreadKey) -> None:
        """The app posted into the thread: Slack cleared its status (no call needed)."""
        state = self._threads.get(key)
        if state is not None:
            state.shown = None

    async def follow(self, key: ThreadKey, plan: Sequence[PlanItem]) -> None:
        """Show the state of the request's tasks (cleared once none is being worked on)."""
        state = self._thread(key)
        titles = " ".join(item.title for item in plan)
        locale = state.locale if not titles else detect_locale(titles)
        shown = plan_status(plan, locale)
        if shown is None:
            await self.set_status(key, None)
        else:
            await self.set_status(key, shown[0], shown[1])


# One pane per adapter; weak, so that a stopped adapter takes its pane with it.
_PANES: weakref.WeakKeyDictionary[object, AssistantPane] = weakref.WeakKeyDictionary()


def register_assistant(app: AsyncApp, adapter: SlackAdapter) -> AssistantPane:
    """Add the assistant pane's listeners to ``app``; the pane is also found again by
    :func:`pane_posted` / :func:`pane_follow` / :func:`pane_finish` from ``adapter``."""
    pane = AssistantPane(adapter)
    pane.register(app)
    _PANES[adapter] = pane
    return pane


def pane_of(adapter: object) -> AssistantPane | None:
    """The assistant pane registered for ``adapter``, if any."""
    return _PANES.get(adapter)


def pane_posted(adapter: object, target: Target) -> None:
    """Call after every message posted to ``target`` (``chat.postMessage``, ``chat.startStream``):
    in a pane thread Slack clears the status then, and the pane must know it."""
    pane, key = _PANES.get(adapter), pane_thread(target)
    if pane is not None and key is not None:
        pane.posted(key)


async def pane_follow(adapter: object, target: Target, plan: Sequence[PlanItem]) -> None:
    """Call with the request's plan when a stream starts and on every append: in a pane
    thread the status follows the tasks (a setStatus call only when it changes)."""
    pane, key = _PANES.get(adapter), pane_thread(target)
    if pane is not None and key is not None:
        await pane.follow(key, plan)


async def pane_finish(adapter: object, target: Target) -> None:
    """Call once a result is final (after ``chat.stopStream`` and its edit): a pane
    thread's status is cleared, if it shows one."""
    pane, key = _PANES.get(adapter), pane_thread(target)
    if pane is not None and key is not None:
        await pane.set_status(key, None)
