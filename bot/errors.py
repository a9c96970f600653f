"""The one error funnel: every unexpected exception is logged once, with its traceback."""

from __future__ import annotations

import logging

log = logging.getLogger("atombot")


def report(exc: BaseException, *, where: str) -> None:
    """Log an unexpected exception once, with its traceback."""
    log.error("unhandled error in %s", where, exc_info=exc)
