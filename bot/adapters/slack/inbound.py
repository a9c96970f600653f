"""Pure translators: a Slack payload (already checked at the edge) → an
:class:`~bot.types.Inbound` or :class:`~bot.types.ActionEvent`. No I/O here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.adapters.slack.blocks import note_of
from bot.adapters.slack.manifest import SHORTCUT_DRAFT_REPLY, SHORTCUT_SUMMARIZE
from bot.training_optout import SWITCHES, training_argument
from bot.types import Action, ActionEvent, Button, Inbound

# ``Inbound.context`` flag of a slash command (its value: the command, e.g. ``/atom``): a
# slash command carries no thread, and the summarize handler says so for "this thread".
from handlers.summarize import SLASH_COMMAND

PLATFORM = "slack"

#: What a message shortcut asks for, in words the intent classifier understands.
SHORTCUT_REQUESTS = {
    SHORTCUT_SUMMARIZE: "summarize this thread",
    SHORTCUT_DRAFT_REPLY: "draft a reply to this message",
}

MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
BUTTON = re.compile(r"^ab:")
_CHANNEL_REF = re.compile(r"<#([CG][A-Z0-9]+)(?:\|[^>]*)?>")


def channel_id_of(ref: Any) -> str | None:
    """The channel id in an escaped reference such as ``<#C0123|sales>``, else None."""
    match = _CHANNEL_REF.search(ref) if isinstance(ref, str) else None
    return match.group(1) if match else None


def epoch(iso: Any) -> str | None:
    """An ISO time as a Slack ts bound (``oldest`` / ``latest``), None when not a time."""
    if not isinstance(iso, str) or not iso:
        return None
    try:
        return f"{datetime.fromisoformat(iso).timestamp():.6f}"
    except ValueError:
        return None


#: The words of the privacy commands ``/atom`` answers itself (en, zh), besides training.
FORGET_WORDS = ("forget", "遗忘", "忘记")
PRIVACY_WORDS = ("privacy", "隐私")


@dataclass(frozen=True)
class ChatCommand:
    """A ``/atom`` command about the channel itself, answered at once and never classified:
    ``forget``, ``privacy`` or ``training`` (``argument``: ``on``/``off`` or "")."""

    name: str
    argument: str = ""


def chat_command(text: str) -> ChatCommand | None:
    """The channel command ``text`` is as a whole (``forget``, ``privacy``, ``training off``,
    ``遗忘``, ``隐私``, ``训练 关闭``), else None (an ordinary request for the classifier).

    ``forget`` deletes, so only the bare word is it: ``forget the Friday meeting`` is a
    request. Slack keeps no channel messages, so ``privacy on|off`` only says what is kept.
    """
    words = text.strip().lower().split()
    if len(words) == 1 and words[0] in FORGET_WORDS:
        return ChatCommand("forget")
    if words and words[0] in PRIVACY_WORDS and len(words) <= 2 and set(words[1:]) <= set(SWITCHES):
        return ChatCommand("privacy")
    argument = training_argument(text)
    return ChatCommand("training", argument) if argument is not None else None


def _user_name(user: dict[str, Any]) -> str | None:
    name = user.get("username") or user.get("name")
    return str(name) if name else None


def command_inbound(command: dict[str, Any], *, text: str, private_results: bool) -> Inbound:
    """``/atom <text>``: no thread (Slack gives slash commands none)."""
    channel = str(command["channel_id"])
    return Inbound(
        platform=PLATFORM,
        tenant=str(command["team_id"]),
        channel=channel,
        user=str(command["user_id"]),
        text=text,
        event_id=f"cmd:{command['trigger_id']}",
        private=channel.startswith("D") or private_results,
        user_name=command.get("user_name"),
        context={SLASH_COMMAND: str(command.get("command") or "/atom")},
    )


def mention_inbound(event: dict[str, Any], body: dict[str, Any]) -> Inbound:
    """``@atombot …`` in a channel or thread; results go to the thread."""
    return Inbound(
        platform=PLATFORM,
        tenant=str(body.get("team_id") or event.get("team")),
        channel=str(event["channel"]),
        user=str(event["user"]),
        text=MENTION.sub("", str(event.get("text") or "")).strip() or "help",
        event_id=str(body["event_id"]),
        thread=str(event.get("thread_ts") or event["ts"]),
    )


def direct_inbound(
    event: dict[str, Any], body: dict[str, Any], *, bot_user_id: str | None
) -> Inbound | None:
    """A direct message to the bot; None for every other message event."""
    if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id"):
        return None
    if not event.get("user") or event.get("user") == bot_user_id:
        return None
    return Inbound(
        platform=PLATFORM,
        tenant=str(body.get("team_id") or event.get("team")),
        channel=str(event["channel"]),
        user=str(event["user"]),
        text=str(event.get("text") or "").strip() or "help",
        event_id=str(body["event_id"]),
        thread=event.get("thread_ts"),
        private=True,
    )


def shortcut_inbound(shortcut: dict[str, Any], *, private_results: bool) -> Inbound:
    """The "Summarize thread" / "Draft reply" message shortcuts, about the message's thread."""
    message = shortcut.get("message") or {}
    thread = str(message.get("thread_ts") or message.get("ts") or shortcut.get("message_ts"))
    user = shortcut.get("user") or {}
    return Inbound(
        platform=PLATFORM,
        tenant=str((shortcut.get("team") or {}).get("id") or user.get("team_id")),
        channel=str((shortcut.get("channel") or {}).get("id")),
        user=str(user.get("id")),
        text=SHORTCUT_REQUESTS[str(shortcut.get("callback_id"))],
        event_id=f"sc:{shortcut.get('trigger_id')}",
        thread=thread,
        private=private_results,
        user_name=_user_name(user),
    )


def button_event(body: dict[str, Any], action: dict[str, Any]) -> ActionEvent | None:
    """A press of one of our buttons (or native feedback buttons); None when not ours.

    A native feedback button's ``value`` is the pressed side's data (``ab:up:41`` /
    ``ab:down:41``); its ``action_id`` only names the pair.
    """
    parsed = Button.decode(str(action.get("value") or action.get("action_id") or ""))
    if parsed is None:
        return None
    kind, task_id, choice = parsed
    container = body.get("container") or {}
    channel = str(container.get("channel_id") or (body.get("channel") or {}).get("id"))
    user_id = str((body.get("user") or {}).get("id"))
    # One key per (message, button, user): a double click is the same event. A feedback
    # pair shares an action_id, so the side pressed is part of the key.
    press = str(action.get("action_id"))
    if action.get("type") == "feedback_buttons":
        press = f"{press}:{kind.value}"
    return _action_event(
        body,
        channel=channel,
        action=kind,
        task_id=task_id,
        event_id=f"act:{channel}:{container.get('message_ts')}:{press}:{user_id}",
        choice=choice,
    )


def ask_metadata(*, task_id: int, channel: str, action: Action) -> str:
    """The ``private_metadata`` of an ask modal: what its text answers."""
    return json.dumps({"task": task_id, "channel": channel, "action": action.value})


def ask_event(body: dict[str, Any], view: dict[str, Any]) -> ActionEvent | None:
    """A submitted ask modal (a note about a vote, a draft's new text); None if malformed."""
    try:
        about = json.loads(str(view.get("private_metadata") or "{}"))
        task_id, channel = int(about["task"]), str(about["channel"])
        action = Action(str(about.get("action") or Action.note.value))
    except (ValueError, KeyError, TypeError):
        return None
    if action not in (Action.note, Action.edit):
        return None
    user_id = str((body.get("user") or {}).get("id"))
    return _action_event(
        body,
        channel=channel,
        action=action,
        task_id=task_id,
        event_id=f"{action.value}:{view.get('id')}:{user_id}",
        comment=note_of(view),
    )


def _action_event(
    body: dict[str, Any],
    *,
    channel: str,
    action: Action,
    task_id: int,
    event_id: str,
    choice: str | None = None,
    comment: str | None = None,
) -> ActionEvent:
    """An action by the user of an interaction payload (a button press, a modal), in the
    payload's workspace."""
    user = body.get("user") or {}
    return ActionEvent(
        platform=PLATFORM,
        tenant=str((body.get("team") or {}).get("id") or user.get("team_id")),
        channel=channel,
        user=str(user.get("id")),
        action=action,
        task_id=task_id,
        event_id=event_id,
        user_name=_user_name(user),
        choice=choice,
        comment=comment,
    )
