"""A real local SMTP server for the action tests: aiosmtpd on a free port, recording every
message it accepts, and answering RCPT / DATA / AUTH the way a test tells it to."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from bot.actions.email import SmtpConfig

SENDER = "Atombot <atombot@example.com>"
#: A self-signed certificate for 127.0.0.1 (valid until 2126), made for these tests only:
#: openssl req -x509 -newkey rsa:2048 -nodes -days 36500 -subj /CN=127.0.0.1
#:   -addext subjectAltName=IP:127.0.0.1,DNS:localhost
CERT = Path(__file__).with_name("smtp_test_cert.pem")
KEY = Path(__file__).with_name("smtp_test_key.pem")
USER = "atombot"
PASSWORD = "s3cret"


@dataclass
class Received:
    """One message the server accepted."""

    sender: str
    recipients: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        # On the wire lines end in CRLF; Python's parser keeps them in bodies.
        text = self.data.replace(b"\r\n", b"\n")
        parsed = email.message_from_bytes(text, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class RecordingHandler:
    """Accepts mail and records it; ``rcpt_answer`` / ``data_answer`` (e.g. ``"451 4.3.0
    try later"``) replace the acceptance, once each, or every time with ``*_always``."""

    received: list[Received] = field(default_factory=list)
    rcpt_answers: list[str] = field(default_factory=list)
    data_answers: list[str] = field(default_factory=list)
    #: Set when a DATA command has arrived (before its answer).
    data_started: threading.Event = field(default_factory=threading.Event)
    commands: list[str] = field(default_factory=list)
    #: Called on RCPT (before its answer) and once a message is stored (before its 250).
    on_rcpt: Callable[[], None] | None = None
    on_stored: Callable[[], None] | None = None

    async def handle_RCPT(
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        self.commands.append(f"RCPT {address}")
        if self.on_rcpt is not None:
            self.on_rcpt()
        if self.rcpt_answers:
            return self.rcpt_answers.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        self.commands.append("DATA")
        self.data_started.set()
        if self.data_answers:
            return self.data_answers.pop(0)
        content = envelope.original_content or envelope.content or b""
        assert isinstance(content, bytes)
        self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), content))
        if self.on_stored is not None:
            self.on_stored()
        return "250 2.0.0 Message accepted for delivery"


def _authenticator(
    server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


def client_trust() -> ssl.SSLContext:
    """A client context that trusts the test certificate (and checks it like any other)."""
    return ssl.create_default_context(cafile=str(CERT))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class SmtpServer:
    """A running server and the settings that reach it."""

    handler: RecordingHandler
    port: int
    auth: bool
    starttls: bool = False

    def config(self, **overrides: Any) -> SmtpConfig:
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "starttls": self.starttls,
            "tls_context": client_trust() if self.starttls else None,
            "sender": SENDER,
            "timeout": 5.0,
            "local_hostname": "client.test",
            "user": USER if self.auth else None,
            "password": PASSWORD if self.auth else None,
        }
        values.update(overrides)
        return SmtpConfig(**values)

    @property
    def received(self) -> list[Received]:
        return self.handler.received


@contextmanager
def smtp_server(*, auth: bool = False, starttls: bool = False) -> Iterator[SmtpServer]:
    """Start aiosmtpd on a free port; stop it afterwards. ``auth``: AUTH with
    :data:`USER` / :data:`PASSWORD`; ``starttls``: STARTTLS is required (and AUTH only
    works after it)."""
    handler = RecordingHandler()
    port = free_port()
    extra: dict[str, Any] = {}
    if auth:
        extra = {"authenticator": _authenticator, "auth_require_tls": starttls}
    if starttls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(CERT), str(KEY))
        extra.update(tls_context=context, require_starttls=True)
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, server_hostname="mx.test", **extra
    )
    controller.start()
    try:
        yield SmtpServer(handler, port, auth, starttls)
    finally:
        controller.stop()
