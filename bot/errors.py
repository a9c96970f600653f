"""Typed errors and the one error funnel."""

from __future__ import annotations

import logging

log = logging.getLogger("atombot")


class BotError(Exception):
    """Base of atombot's own errors."""


class UserFacingError(BotError):
    """An error whose message key (in ``bot.texts``) can be shown to the person."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


def report(exc: BaseException, *, where: str) -> None:
    """Log an unexpected exception once, with its traceback (the error funnel)."""
    log.error("unhandled error in %s", where, exc_info=exc)
