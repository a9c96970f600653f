"""bolt's listeners: the slash command, ``@atombot`` mentions, direct messages, the message
shortcuts, result buttons (ours and Slack's native feedback buttons), the ask modal and the
Home tab. Every listener acknowledges at once, before any routing (a slash command is acked
"working on it" and its receipt follows through the response_url; a channel command —
``forget``, ``privacy``, ``training`` — is answered through it without routing); the
payloads are translated by :mod:`bot.adapters.slack.inbound`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from slack_bolt.app.async_app import AsyncApp

from bot.adapters.slack import inbound as translate
from bot.adapters.slack.blocks import ASK_CALLBACK
from bot.adapters.slack.home import SlackHome
from bot.adapters.slack.inbound import BUTTON, PLATFORM
from bot.adapters.slack.manifest import SHORTCUT_DRAFT_REPLY, SHORTCUT_SUMMARIZE
from bot.adapters.slack.outbound import Respond
from bot.adapters.slack.stream import SlackStreams
from bot.errors import report
from bot.texts import detect_locale, t
from bot.training_optout import training_command
from bot.types import Inbound, Reply
from handlers import privacy

if TYPE_CHECKING:
    from bot.adapters.slack.adapter import SlackAdapter

log = logging.getLogger(__name__)

Ack = Callable[..., Awaitable[Any]]


def text(key: str, locale: str, /, **values: Any) -> str:
    """A user-visible string from :mod:`bot.texts`."""
    return t(key, locale, **values)


async def _home_tab(event: dict[str, Any]) -> bool:
    """Whether an ``app_home_opened`` event is about the Home tab."""
    return bool(event.get("tab", "home") == "home")


class SlackListeners(SlackStreams, SlackHome):
    """The listeners bolt calls (see the module docstring)."""

    def register(self, app: AsyncApp, adapter: SlackAdapter) -> None:
        """Add atombot's listeners to ``app``, then the assistant pane's
        (:func:`bot.adapters.slack.assistant.register_assistant`)."""
        from bot.adapters.slack.assistant import register_assistant

        app.command(self.settings.slack_command)(self._tracked(self._on_command))
        app.event("app_mention")(self._tracked(self._on_mention))
        app.event("message")(self._tracked(self._on_message))
        # Only the Home tab is ours here: the Messages tab (the assistant pane) is left to
        # the listeners register_assistant adds.
        app.event("app_home_opened", matchers=[_home_tab])(self._tracked(self._on_home_opened))
        app.action(BUTTON)(self._tracked(self._on_button))
        app.view(ASK_CALLBACK)(self._tracked(self._on_ask))
        app.message_shortcut(SHORTCUT_SUMMARIZE)(self._tracked(self._on_shortcut))
        app.message_shortcut(SHORTCUT_DRAFT_REPLY)(self._tracked(self._on_shortcut))
        register_assistant(app, adapter)

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

    # ------------------------------------------------------------------ routing

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

    # ------------------------------------------------------------------ listeners

    async def _on_command(self, ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        """``/atom <request>``: ack at once, route, then send the receipt (response_url).

        A channel command (``/atom forget``, ``/atom privacy``, ``/atom training on|off``:
        :func:`~bot.adapters.slack.inbound.chat_command`) is acked, answered ephemerally and
        never routed to the classifier.
        """
        request_text = str(command.get("text") or "").strip() or "help"
        locale = detect_locale(request_text)
        if (asked := translate.chat_command(request_text)) is not None:
            await ack()
            answer = await self._chat_command(command, asked, locale)
            await self._respond(respond, answer, where=f"cmd:{command['trigger_id']}")
            return
        # Nothing slow before the ack: under load every wait here adds to Slack's 3 s.
        await ack(text=text("slack.ack.working", locale), response_type="ephemeral")
        inbound = translate.command_inbound(
            {**command, "command": self.settings.slack_command},
            text=request_text,
            private_results=self.private_results,
        )
        reply = await self._route_or_apologise(inbound, thread=None)
        if reply.text and not reply.duplicate:
            await self._respond(respond, reply.text, where=inbound.event_id)

    async def _chat_command(
        self, command: dict[str, Any], asked: translate.ChatCommand, locale: str
    ) -> str:
        """The answer to a channel command: ``forget`` deletes everything held for the
        channel (:func:`handlers.forgetting.forget_everything`) and says what went;
        ``privacy`` says what is kept; ``training [on|off]`` is the training-export switch.
        The user who typed it is the audit log's actor."""
        slash = self.settings.slack_command
        where = {
            "platform": PLATFORM,
            "tenant": str(command["team_id"]),
            "channel": str(command["channel_id"]),
        }
        user = str(command["user_id"])
        repo = self.services.repo
        try:
            if asked.name == "forget":
                return await privacy.forget(
                    repo, **where, locale=locale, user=user, stop_keeping=False
                )
            if asked.name == "privacy":
                kept = await privacy.what_is_kept(
                    repo,
                    **where,
                    locale=locale,
                    retention_days=self.settings.retention_days,
                    forget_command=f"{slash} forget",
                )
                training = await training_command(
                    repo, **where, argument="", locale=locale, command=f"{slash} training"
                )
                return f"{kept}\n{training}"
            return await training_command(
                repo,
                **where,
                argument=asked.argument,
                locale=locale,
                command=f"{slash} training",
                user=user,
            )
        except Exception as exc:
            report(exc, where=f"Slack {asked.name} command of {where['channel']}")
            return t("error.internal", locale)

    async def _on_mention(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        """``@atombot …`` in a channel or thread; results go to the thread."""
        inbound = translate.mention_inbound(event, body)
        reply = await self._route_or_apologise(inbound, thread=event.get("thread_ts"))
        if reply.duplicate or not reply.text:
            return
        await self._post_receipt(inbound, reply.text, ephemeral=True)

    async def _on_message(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        """A direct message to the bot (other message events are not ours)."""
        inbound = translate.direct_inbound(event, body, bot_user_id=self.bot_user_id)
        if inbound is None:
            return
        reply = await self._route_or_apologise(inbound, thread=event.get("thread_ts"))
        if reply.duplicate or not reply.text:
            return
        await self._post_receipt(inbound, reply.text, ephemeral=False)

    async def _on_shortcut(self, ack: Ack, shortcut: dict[str, Any], respond: Respond) -> None:
        """The "Summarize thread" / "Draft reply" message shortcuts."""
        await ack()
        inbound = translate.shortcut_inbound(shortcut, private_results=self.private_results)
        reply = await self._route_or_apologise(inbound, thread=inbound.thread)
        if not reply.duplicate and reply.text:
            await self._respond(respond, reply.text, where=inbound.event_id)

    async def _on_button(
        self, ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond
    ) -> None:
        """👍 / 👎 (ours or Slack's native pair) / Regenerate / Cancel / Approve / Edit /
        Reject under a result, and the "why 👎?" menu's choices.

        The menu is an ephemeral answer (only the voter sees it); a choice replaces it with
        the next step; "Other…" or Edit opens a modal for free text (the trigger_id works
        for 3 s, so nothing slow runs before it).
        """
        await ack()
        event = translate.button_event(body, action)
        if event is None:
            return
        container = body.get("container") or {}
        try:
            reply = await self.services.router.handle_action(event, fetch_for=self.fetcher)
        except Exception as exc:
            report(exc, where=f"Slack button {event.event_id}")
            reply = Reply(t("error.internal", "en"), ephemeral=True)
        self.services.notify()
        if reply.ask_comment and reply.comment_task is not None:
            await self.open_ask(str(body.get("trigger_id") or ""), reply, event.channel)
        elif reply.buttons or (reply.update_menu and container.get("is_ephemeral")):
            replace_menu = bool(reply.update_menu and container.get("is_ephemeral"))
            await self._respond_menu(respond, reply, replace=replace_menu, where=event.event_id)
        elif reply.text:
            await self._respond(respond, reply.text, where=event.event_id)

    async def _on_ask(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        """The ask modal was submitted: the text goes back as the action it answers (a note
        kept with the voter's 👎, or a draft's new text)."""
        await ack()
        event = translate.ask_event(body, view)
        if event is None:
            return
        try:
            reply = await self.services.router.handle_action(event)
        except Exception as exc:
            report(exc, where=f"Slack ask {event.event_id}")
            reply = Reply(t("error.internal", "en"), ephemeral=True)
        self.services.notify()
        if reply.text:
            await self._post_ephemeral(event.channel, event.user, reply.text)

    async def _on_home_opened(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        """Publish the Home tab: the user's recent tasks and digest subscriptions."""
        if event.get("tab", "home") != "home":
            return
        await self.publish_home(str(body.get("team_id") or ""), str(event["user"]))
