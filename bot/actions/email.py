"""``email.send``: send the drafted email over SMTP (``aiosmtplib``), exactly once.

The draft's first line ``Subject: ...`` (what ``email.draft`` produces) is the subject and
the rest the body; without one, the subject comes from the slots or the first line.
Recipients are the task's ``recipients`` slot (and ``cc``), resolved through the address
book when approval is asked (:meth:`EmailSendPerformer.prepare`).

Exactly once: the ``Message-ID`` is derived from the task's idempotency key, and the SMTP
transaction is driven step by step (connect, EHLO, STARTTLS, AUTH, MAIL, RCPT) so that
``commit()`` is called after everything the server could refuse up front and before DATA,
the point of no return. A crash before ``commit()`` leaves no message behind; a failure
after it that leaves the outcome unknown (the connection dropped during DATA) is not
retried, because the message may have been delivered.
"""

from __future__ import annotations

import email.policy
import logging
import re
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any

import aiosmtplib

from bot.actions.addressbook import AddressBook, AddressBookError, Recipient
from bot.actions.base import ActionContext, ActionFailed, ActionOutcome, Commit, NeedsInput
from bot.config import Settings
from bot.texts import t

log = logging.getLogger(__name__)

#: Port of SMTP over TLS from the first byte (RFC 8314); any other port is plain or STARTTLS.
IMPLICIT_TLS_PORT = 465
#: A subject taken from the draft's first line is cut to about this many characters.
MAX_SUBJECT_CHARS = 120

# "Subject: ...", also as Markdown ("**Subject:** ...") and in Chinese ("主题：...").
_SUBJECT = re.compile(
    r"^\s*[*_#>]*\s*(?:subject|subj|re|主题|主題|标题|標題)\s*[*_]*\s*[:：]\s*[*_]*\s*"
    r"(?P<subject>.*?)\s*[*_]*\s*$",
    re.IGNORECASE,
)
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_+=-]")


@dataclass(frozen=True)
class SmtpConfig:
    """How to reach the mail server (``ATOMBOT_SMTP_*``)."""

    host: str | None = None
    port: int = 587
    user: str | None = None
    password: str | None = None
    starttls: bool = True
    #: ``From`` of every message (``atombot@example.com`` or ``Atombot <atombot@...>``).
    sender: str | None = None
    timeout: float = 30.0
    #: Trust for the server's certificate (None: the system's CAs).
    tls_context: ssl.SSLContext | None = None
    #: The name given in EHLO (None: this host's FQDN).
    local_hostname: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig:
        """The SMTP settings of ``settings``."""
        return cls(
            host=settings.smtp_host or None,
            port=settings.smtp_port,
            user=settings.smtp_user or None,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            sender=settings.smtp_from or None,
        )

    @property
    def configured(self) -> bool:
        """Whether mail can be sent at all (a host and a sender are set)."""
        return bool(self.host and self.sender_address)

    @property
    def sender_address(self) -> str:
        """The bare address of :attr:`sender` (the envelope sender)."""
        return parseaddr(self.sender or "")[1]

    @property
    def domain(self) -> str:
        """The sender's domain: the right-hand side of Message-IDs and invitation UIDs."""
        address = self.sender_address
        return address.rsplit("@", 1)[1] if "@" in address else "atombot.invalid"


#: Messages are built 7-bit clean (quoted-printable or base64 for non-ASCII text): not
#: every server takes 8BITMIME, and nothing is lost by not asking.
MESSAGE_POLICY = email.policy.default.clone(cte_type="7bit")


def new_message() -> EmailMessage:
    """An empty message built with :data:`MESSAGE_POLICY`."""
    return EmailMessage(policy=MESSAGE_POLICY)


def unique_id(key: str, domain: str) -> str:
    """``{key}@{domain}`` with the key made safe for a header (same key, same id)."""
    return f"{_UNSAFE_ID.sub('-', key) or 'atombot'}@{domain}"


def message_id(key: str, domain: str) -> str:
    """The deterministic ``Message-ID`` of the message sent for idempotency key ``key``."""
    return f"<{unique_id(key, domain)}>"


def split_draft(draft: str) -> tuple[str | None, str]:
    """``(subject, body)`` of a draft: the subject from a first line ``Subject: ...``
    (None when there is none, and then the body is the whole draft)."""
    lines = draft.strip().splitlines()
    if lines:
        match = _SUBJECT.match(lines[0])
        if match is not None and match.group("subject"):
            return match.group("subject"), "\n".join(lines[1:]).strip()
    return None, draft.strip()


def _short(line: str, limit: int = MAX_SUBJECT_CHARS) -> str:
    line = " ".join(line.split())
    if len(line) <= limit:
        return line
    cut = line[:limit].rsplit(" ", 1)[0]
    return (cut or line[:limit]).rstrip(" ,.;:") + "…"


def subject_and_body(draft: str, slots: Mapping[str, Any]) -> tuple[str, str]:
    """The subject and body to send: the draft's subject line, else a ``subject`` /
    ``title`` / ``topic`` slot, else the draft's first line."""
    subject, body = split_draft(draft)
    if subject is None:
        for name in ("subject", "title", "topic"):
            value = slots.get(name)
            if isinstance(value, str) and value.strip():
                subject = value
                break
    if subject is None:
        first = next((line for line in body.splitlines() if line.strip()), "")
        subject = first
    return _short(subject), body


def slot_list(value: Any) -> list[str]:
    """A recipients slot as a list of strings (a list, or one comma-separated string)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v.strip() for v in re.split(r"[,;，、]", value) if v.strip()]
    if isinstance(value, Iterable):
        return [str(v).strip() for v in value if str(v).strip()]
    return [str(value)]


def _reason(text: Any) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(str(text).split())[:300]


def _response_failure(
    code: int, message: str, locale: str, *, key: str, **values: Any
) -> ActionFailed:
    """A server answer with a code: 4xx is worth retrying, 5xx is final."""
    if 400 <= code < 500:
        return ActionFailed(
            t("perform.smtp.busy", locale, code=code, reason=message), permanent=False
        )
    if code == 530:
        # "Authentication required" / "Must issue a STARTTLS command first": the settings,
        # not the sender or the message.
        return ActionFailed(
            t("perform.smtp.unsupported", locale, reason=f"{code} {message}"), permanent=True
        )
    if 500 <= code < 600:
        return ActionFailed(t(key, locale, code=code, reason=message, **values), permanent=True)
    return ActionFailed(t("perform.smtp.unreachable", locale, reason=message), permanent=False)


def smtp_failure(exc: BaseException, locale: str, *, in_data: bool = False) -> ActionFailed:
    """What an SMTP error means for the action (see the module docstring)."""
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        if 400 <= exc.code < 500:
            return _response_failure(exc.code, _reason(exc.message), locale, key="")
        return ActionFailed(
            t("perform.smtp.auth_failed", locale, code=exc.code, reason=_reason(exc.message)),
            permanent=True,
        )
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
        return _response_failure(
            exc.code,
            _reason(exc.message),
            locale,
            key="perform.smtp.recipient_refused",
            address=exc.recipient,
        )
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return _response_failure(
            exc.code,
            _reason(exc.message),
            locale,
            key="perform.smtp.sender_refused",
            address=exc.sender,
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _response_failure(exc.code, _reason(exc.message), locale, key="perform.smtp.refused")
    tls = exc if isinstance(exc, ssl.SSLError) else exc.__cause__
    if isinstance(tls, ssl.SSLError):
        return ActionFailed(
            t("perform.smtp.tls_failed", locale, reason=_reason(tls)), permanent=True
        )
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPTimeoutError | OSError):
        if in_data:
            return ActionFailed(t("perform.smtp.maybe_sent", locale), permanent=True)
        return ActionFailed(
            t("perform.smtp.unreachable", locale, reason=_reason(exc)), permanent=False
        )
    # Anything else aiosmtplib raises (no AUTH or STARTTLS on the server, SMTPUTF8 needed)
    # is a configuration the server does not accept: retrying cannot help.
    return ActionFailed(t("perform.smtp.unsupported", locale, reason=_reason(exc)), permanent=True)


async def transmit(
    config: SmtpConfig,
    message: EmailMessage,
    recipients: Sequence[str],
    commit: Commit,
    *,
    locale: str = "en",
) -> None:
    """Send ``message`` to the envelope ``recipients``, calling ``commit`` before DATA.

    Raises :class:`ActionFailed`; an exception from ``commit`` itself propagates as is
    (and then nothing was sent).
    """
    implicit_tls = config.port == IMPLICIT_TLS_PORT
    client = aiosmtplib.SMTP(
        hostname=config.host,
        port=config.port,
        use_tls=implicit_tls,
        start_tls=False,
        timeout=config.timeout,
        tls_context=config.tls_context,
        local_hostname=config.local_hostname,
    )
    try:
        try:
            await client.connect()
            await client.ehlo()
            if config.starttls and not implicit_tls:
                await client.starttls()
            if config.user:
                await client.login(config.user, config.password or "")
            await client.mail(config.sender_address)
            for address in recipients:
                await client.rcpt(address)
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise smtp_failure(exc, locale) from exc
        await commit()
        try:
            await client.data(message.as_bytes(policy=email.policy.SMTP))
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise smtp_failure(exc, locale, in_data=True) from exc
    finally:
        await _close(client)


async def _close(client: aiosmtplib.SMTP) -> None:
    if not client.is_connected:
        return
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        client.close()


def given_addresses(slots: Mapping[str, Any]) -> dict[str, str]:
    """Addresses a person gave for names: the runner's ``answers`` to
    ``NeedsInput("recipient", name)`` (keyed ``recipient:<name>``), and ``addresses``
    (keyed by the name)."""
    given: dict[str, str] = {}
    answers = slots.get("answers")
    if isinstance(answers, Mapping):
        for asked, answer in answers.items():
            what, _, name = str(asked).partition(":")
            if what == "recipient" and name and isinstance(answer, str):
                given[name] = answer
    addresses = slots.get("addresses")
    if isinstance(addresses, Mapping):
        given.update({str(k): str(v) for k, v in addresses.items()})
    return given


class MailPerformer:
    """What the two email kinds share: settings, recipients, the SMTP transaction."""

    kind = ""

    def __init__(self, smtp: SmtpConfig, book: AddressBook | None = None) -> None:
        self.smtp = smtp
        self.book = book if book is not None else AddressBook(None)

    def available(self) -> bool:
        """Offered only when an SMTP host and a sender are set."""
        return self.smtp.configured

    def _resolve(self, ctx: ActionContext) -> tuple[list[Recipient], list[Recipient]]:
        given = given_addresses(ctx.slots)
        try:
            to = self.book.resolve_all(slot_list(ctx.slots.get("recipients")), given)
            cc = self.book.resolve_all(slot_list(ctx.slots.get("cc")), given)
        except AddressBookError as exc:
            log.warning("%s", exc)
            raise ActionFailed(
                t("perform.addressbook.broken", ctx.locale, detail=exc.detail), permanent=True
            ) from exc
        if not to:
            raise ActionFailed(t("perform.email.no_recipients", ctx.locale), permanent=True)
        return to, [r for r in cc if r.email.casefold() not in {x.email.casefold() for x in to}]

    async def prepare(self, ctx: ActionContext) -> dict[str, Any]:
        """Resolve the recipients (address book, answers a person gave): the slots with
        ``recipients`` (and ``cc``) as ``Name <address>`` strings. Raises
        :class:`NeedsInput` for a name it cannot resolve."""
        to, cc = self._resolve(ctx)
        slots = dict(ctx.slots)
        slots["recipients"] = [r.address for r in to]
        if cc:
            slots["cc"] = [r.address for r in cc]
        return slots

    def _recipients_for_sending(
        self, ctx: ActionContext
    ) -> tuple[list[Recipient], list[Recipient]]:
        try:
            return self._resolve(ctx)
        except NeedsInput as exc:
            # prepare() resolved every name before approval; one left here cannot be asked
            # about any more (the person approved a message to someone unknown).
            raise ActionFailed(
                t("perform.recipient.unresolved", ctx.locale, name=exc.name), permanent=True
            ) from exc

    def _headers(
        self,
        ctx: ActionContext,
        message: EmailMessage,
        subject: str,
        to: list[Recipient],
        cc: list[Recipient],
    ) -> str:
        identifier = message_id(ctx.key, self.smtp.domain)
        message["From"] = self.smtp.sender or self.smtp.sender_address
        message["To"] = ", ".join(r.address for r in to)
        if cc:
            message["Cc"] = ", ".join(r.address for r in cc)
        message["Subject"] = subject
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = identifier
        reply_to = self._requester_address(ctx)
        if reply_to is not None:
            message["Reply-To"] = reply_to
        return identifier

    def _requester_address(self, ctx: ActionContext) -> str | None:
        """The requester's own address (answers go to them), if the address book knows it."""
        try:
            found = self.book.by_chat_id(ctx.requester, ctx.target.platform)
        except AddressBookError:
            return None
        return found[0].address if len(found) == 1 else None

    async def _send(
        self,
        ctx: ActionContext,
        message: EmailMessage,
        to: list[Recipient],
        cc: list[Recipient],
        commit: Commit,
        identifier: str,
        summary_key: str,
    ) -> ActionOutcome:
        envelope = [r.email for r in (*to, *cc)]
        await transmit(self.smtp, message, envelope, commit, locale=ctx.locale)
        log.info("action %s: task %s sent as %s", self.kind, ctx.task_id, identifier)
        return ActionOutcome(
            summary=t(summary_key, ctx.locale, recipients=", ".join(r.email for r in to)),
            detail={"message_id": identifier, "recipients": len(envelope)},
        )


class EmailSendPerformer(MailPerformer):
    """``email.send``: the approved draft as a plain-text email.

    ``smtp``: the server settings (:meth:`SmtpConfig.from_settings`); ``book``: the
    operator's address book (None: only email addresses resolve).
    """

    kind = "email.send"

    async def perform(self, ctx: ActionContext, commit: Commit) -> ActionOutcome:
        """Send it once (``commit`` right before DATA). Raises :class:`ActionFailed`."""
        to, cc = self._recipients_for_sending(ctx)
        subject, body = subject_and_body(ctx.draft, ctx.slots)
        if not body and not subject:
            raise ActionFailed(t("perform.email.empty", ctx.locale), permanent=True)
        message = new_message()
        identifier = self._headers(ctx, message, subject, to, cc)
        message.set_content(body + "\n")
        return await self._send(ctx, message, to, cc, commit, identifier, "perform.email.sent")


def build_performer(settings: Settings, adapters: Mapping[str, Any]) -> EmailSendPerformer | None:
    """``email.send`` when ``ATOMBOT_SMTP_HOST`` and ``ATOMBOT_SMTP_FROM`` are set."""
    smtp = SmtpConfig.from_settings(settings)
    if not smtp.configured:
        return None
    return EmailSendPerformer(smtp, AddressBook(settings.address_book))
