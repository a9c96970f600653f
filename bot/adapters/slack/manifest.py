"""The Slack app manifest: everything a workspace admin pastes to create atombot's app."""

from __future__ import annotations

from typing import Any

from bot.config import Settings

APP_NAME = "atombot"
SHORTCUT_SUMMARIZE = "atombot_summarize_thread"
SHORTCUT_DRAFT_REPLY = "atombot_draft_reply"
DESCRIPTION = "Turns requests into small tasks: drafts, summaries, reminders, digests."
DEFAULT_REQUEST_URL = "https://atombot.example.com/slack/events"
#: What Slack shows about the app in its assistant pane (the Messages tab).
ASSISTANT_DESCRIPTION = (
    "Ask for drafts, summaries, reminders and digests; I split the request into tasks."
)

BOT_SCOPES = (
    "app_mentions:read",
    "assistant:write",
    "channels:history",
    "channels:read",
    "chat:write",
    "chat:write.public",
    "commands",
    "groups:history",
    "groups:read",
    "im:history",
    "im:write",
    "users:read",
)
BOT_EVENTS = (
    "app_home_opened",
    "app_mention",
    "assistant_thread_context_changed",
    "assistant_thread_started",
    "message.im",
)
#: The events of a distributed app (OAuth installs): a workspace removed the app or its tokens.
UNINSTALL_EVENTS = ("app_uninstalled", "tokens_revoked")


def bot_scopes(settings: Settings) -> tuple[str, ...]:
    """The bot scopes an OAuth install asks for: ``SLACK_SCOPES``, else :data:`BOT_SCOPES`."""
    chosen = tuple(s.strip() for s in settings.slack_scopes.split(",") if s.strip())
    return chosen or BOT_SCOPES


def manifest(settings: Settings, *, request_url: str | None = None) -> dict[str, Any]:
    """A Slack app manifest for ``settings``.

    Socket Mode is switched on when ``SLACK_APP_TOKEN`` is set; otherwise events, the slash
    command and interactivity all point at ``request_url`` (atombot's ``/slack/events``).
    """
    socket_mode = bool(settings.slack_app_token)
    redirect = settings.slack_oauth and settings.slack_redirect_uri
    events = sorted({*BOT_EVENTS, *(UNINSTALL_EVENTS if settings.slack_oauth else ())})
    url = {} if socket_mode else {"url": request_url or DEFAULT_REQUEST_URL}
    request = {} if socket_mode else {"request_url": request_url or DEFAULT_REQUEST_URL}
    return {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": APP_NAME,
            "description": "Turns requests into small tasks: drafts, summaries, reminders digests.",
            "background_color": "#1d3557",
        },
        "features": {
            "app_home": {
                "home_tab_enabled": True,
                "messages_tab_enabled": True,
                "messages_tab_read_only_enabled": False,
            },
            "assistant_view": {"assistant_description": ASSISTANT_DESCRIPTION},
            "bot_user": {"display_name": APP_NAME, "always_online": True},
            "slash_commands": [
                {
                    "command": settings.slack_command,
                    "description": "Ask atombot: draft, summarize, remind, digest, status",
                    "usage_hint": "draft an email to Dana about the delayed shipment",
                    "should_escape": True,
                    **url,
                }
            ],
            "shortcuts": [
                {
                    "name": "Summarize thread",
                    "type": "message",
                    "callback_id": SHORTCUT_SUMMARIZE,
                    "description": "Summarize the thread of this message",
                },
                {
                    "name": "Draft reply",
                    "type": "message",
                    "callback_id": SHORTCUT_DRAFT_REPLY,
                    "description": "Draft a reply to this message",
                },
            ],
        },
        "oauth_config": {
            "scopes": {"bot": list(bot_scopes(settings))},
            **({"redirect_urls": [settings.slack_redirect_uri]} if redirect else {}),
        },
        "settings": {
            "event_subscriptions": {"bot_events": events, **request},
            "interactivity": {"is_enabled": True, **request},
            "org_deploy_enabled": False,
            "socket_mode_enabled": socket_mode,
            "token_rotation_enabled": False,
        },
    }
