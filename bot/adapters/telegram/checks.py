"""Checks of a Telegram configuration for ``atombot doctor``: ``getMe`` (is the token
accepted) and ``getWebhookInfo`` (what Telegram knows of the webhook)."""

from __future__ import annotations

from dataclasses import dataclass

from telegram import Bot
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.request import HTTPXRequest


@dataclass(frozen=True)
class TelegramStatus:
    """What the Bot API said about a token."""

    ok: bool
    #: The Bot API's error, when it answered with one (an unknown token: ``Unauthorized``).
    error: str | None = None
    #: Why the Bot API could not be reached at all.
    unreachable: str | None = None
    username: str | None = None
    #: The webhook URL Telegram has on record ("" for none) and its last delivery error.
    webhook_url: str | None = None
    webhook_error: str | None = None


async def check_bot(token: str, *, api_url: str, timeout: float = 5.0) -> TelegramStatus:
    """``getMe`` and ``getWebhookInfo`` with ``token``."""
    request = HTTPXRequest(connect_timeout=timeout, read_timeout=timeout)
    bot = Bot(token, base_url=api_url, request=request, get_updates_request=request)
    try:
        me = await bot.get_me()
        info = await bot.get_webhook_info()
    except InvalidToken:  # its message quotes the token
        return TelegramStatus(ok=False, error="Unauthorized")
    except NetworkError as exc:
        return TelegramStatus(ok=False, unreachable=f"{type(exc).__name__}: {exc}"[:200])
    except TelegramError as exc:
        return TelegramStatus(ok=False, error=str(exc)[:200])
    finally:
        await request.shutdown()
    return TelegramStatus(
        ok=True,
        username=me.username,
        webhook_url=info.url,
        webhook_error=info.last_error_message,
    )
