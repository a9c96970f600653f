"""Fixtures shared by the action tests: one local SMTP server per test (aiosmtpd in a
thread; cheap to start), the settings that reach it, and the real approval handling."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.config import Settings
from tests.bot.actions.smtp_support import SENDER, SmtpServer, smtp_server


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    """A real SMTP server on a free local port, recording what it accepts."""
    with smtp_server() as running:
        yield running


@pytest.fixture
def smtp_settings(server: SmtpServer) -> Settings:
    """Settings with SMTP pointed at :func:`server` (plain SMTP, no login)."""
    return Settings(
        smtp_host="127.0.0.1", smtp_port=server.port, smtp_starttls=False, smtp_from=SENDER
    )
