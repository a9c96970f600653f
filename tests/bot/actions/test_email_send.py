"""email.send against a real local SMTP server (aiosmtpd): the drafted subject and body
arrive once with a Message-ID derived from the idempotency key; commit() comes after RCPT
and before DATA; 4xx answers are worth retrying and 5xx / a refused login are final, with
the server's reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.actions.addressbook import AddressBook
from bot.actions.base import ActionContext, ActionFailed, NeedsInput
from bot.actions.email import (
    EmailSendPerformer,
    SmtpConfig,
    build_performer,
    message_id,
    split_draft,
    subject_and_body,
)
from bot.config import Settings
from bot.texts import t
from bot.types import Target
from tests.bot.actions.smtp_support import SmtpServer, free_port, smtp_server

DRAFT = (
    "Subject: Shipment delayed to Friday\n\n"
    "Hi Dana,\n\nthe shipment will arrive on Friday instead of Wednesday.\n"
    ".leading dot line stays\n\nBest,\nAna"
)
BOOK = """\
contacts:
  - name: Dana Scully
    email: dana@example.com
  - name: Ana Lima
    email: ana@example.com
    chat_ids: [slack:U0ANA]
"""


def context(**overrides: Any) -> ActionContext:
    values: dict[str, Any] = {
        "task_id": 42,
        "kind": "email.send",
        "key": "atombot-42-1",
        "draft": DRAFT,
        "slots": {"recipients": ["dana@example.com"]},
        "requester": "U0ANA",
        "target": Target(platform="slack", tenant="T1", channel="C1", thread="1.0"),
        "requester_name": "ana",
    }
    values.update(overrides)
    return ActionContext(**values)


class Commits:
    """A commit callback that records when it was called (and can refuse)."""

    def __init__(self, server: SmtpServer, *, refuse: bool = False) -> None:
        self.server = server
        self.refuse = refuse
        self.seen: list[list[str]] = []

    async def __call__(self) -> None:
        self.seen.append(list(self.server.handler.commands))
        if self.refuse:
            raise RuntimeError("cancelled before the point of no return")


async def not_reached() -> None:
    raise AssertionError("commit() must not be reached")


@pytest.fixture
def book(tmp_path: Path) -> AddressBook:
    path = tmp_path / "book.yaml"
    path.write_text(BOOK, encoding="utf-8")
    return AddressBook(path)


async def test_one_message_arrives_with_the_drafted_subject_body_and_message_id(
    server: SmtpServer, book: AddressBook
) -> None:
    performer = EmailSendPerformer(server.config(), book)
    commits = Commits(server)

    outcome = await performer.perform(context(), commits)

    (received,) = server.received
    message = received.message
    assert received.recipients == ["dana@example.com"]
    assert received.sender == "atombot@example.com"
    assert message["Subject"] == "Shipment delayed to Friday"
    assert message["Message-ID"] == "<atombot-42-1@example.com>"
    assert message["From"] == "Atombot <atombot@example.com>"
    assert message["Reply-To"] == "Ana Lima <ana@example.com>"
    body = message.get_content()
    assert body.startswith("Hi Dana,\n\nthe shipment will arrive on Friday")
    assert "\n.leading dot line stays\n" in body
    assert "Subject:" not in body
    assert outcome.summary == "Sent to dana@example.com."
    assert outcome.detail == {"message_id": "<atombot-42-1@example.com>", "recipients": 1}
    assert len(commits.seen) == 1


async def test_commit_comes_after_every_recipient_is_accepted_and_before_data(
    server: SmtpServer,
) -> None:
    commits = Commits(server)
    ctx = context(slots={"recipients": ["dana@example.com", "ben@example.com"]})

    await EmailSendPerformer(server.config()).perform(ctx, commits)

    assert commits.seen == [["RCPT dana@example.com", "RCPT ben@example.com"]]
    assert server.handler.commands[-1] == "DATA"


async def test_nothing_is_sent_when_perform_stops_at_commit(server: SmtpServer) -> None:
    commits = Commits(server, refuse=True)

    with pytest.raises(RuntimeError, match="cancelled"):
        await EmailSendPerformer(server.config()).perform(context(), commits)

    assert server.received == []
    assert "DATA" not in server.handler.commands


async def test_the_same_key_gives_the_same_message_id_and_a_new_version_another() -> None:
    assert message_id("atombot-42-1", "example.com") == "<atombot-42-1@example.com>"
    assert message_id("atombot-42-1", "example.com") == message_id("atombot-42-1", "example.com")
    assert message_id("atombot-42-2", "example.com") != message_id("atombot-42-1", "example.com")
    assert message_id("a b<c>@d", "example.com") == "<a-b-c--d@example.com>"


async def test_a_4xx_on_data_is_transient_and_the_retry_sends_one_message(
    server: SmtpServer,
) -> None:
    server.handler.data_answers.append("451 4.3.0 Mail server temporarily rejected message")
    performer = EmailSendPerformer(server.config())

    with pytest.raises(ActionFailed) as failed:
        await performer.perform(context(), Commits(server))
    assert failed.value.permanent is False
    assert "451" in failed.value.reason
    assert server.received == []

    await performer.perform(context(), Commits(server))
    assert len(server.received) == 1


async def test_a_4xx_on_rcpt_is_transient(server: SmtpServer) -> None:
    server.handler.rcpt_answers.append("450 4.2.1 Mailbox busy, try again later")
    commits = Commits(server)

    with pytest.raises(ActionFailed) as failed:
        await EmailSendPerformer(server.config()).perform(context(), commits)

    assert failed.value.permanent is False
    assert commits.seen == []


async def test_a_550_recipient_is_permanent_with_the_servers_reason(server: SmtpServer) -> None:
    server.handler.rcpt_answers.append("550 5.1.1 No such user here")
    commits = Commits(server)

    with pytest.raises(ActionFailed) as failed:
        await EmailSendPerformer(server.config()).perform(context(), commits)

    assert failed.value.permanent is True
    assert failed.value.reason == t(
        "perform.smtp.recipient_refused",
        "en",
        address="dana@example.com",
        code=550,
        reason="5.1.1 No such user here",
    )
    assert commits.seen == [] and server.received == []


async def test_a_5xx_on_data_is_permanent_and_shown_in_chinese_for_a_chinese_request(
    server: SmtpServer,
) -> None:
    server.handler.data_answers.append("554 5.7.1 Message rejected as spam")

    with pytest.raises(ActionFailed) as failed:
        await EmailSendPerformer(server.config()).perform(context(locale="zh"), Commits(server))

    assert failed.value.permanent is True
    assert failed.value.reason == "邮件服务器拒绝了这封邮件：554 5.7.1 Message rejected as spam"


async def test_login_with_the_right_password_sends_and_a_wrong_one_fails_for_good() -> None:
    with smtp_server(auth=True) as server:
        await EmailSendPerformer(server.config()).perform(context(), Commits(server))
        assert len(server.received) == 1

        with pytest.raises(ActionFailed) as failed:
            await EmailSendPerformer(server.config(password="wrong")).perform(
                context(), Commits(server)
            )
        assert failed.value.permanent is True
        assert "535" in failed.value.reason and "ATOMBOT_SMTP_PASSWORD" in failed.value.reason
        assert len(server.received) == 1


async def test_starttls_on_a_server_without_it_is_a_configuration_error(
    server: SmtpServer,
) -> None:
    with pytest.raises(ActionFailed) as failed:
        await EmailSendPerformer(server.config(starttls=True)).perform(context(), Commits(server))

    assert failed.value.permanent is True
    assert "STARTTLS" in failed.value.reason
    assert server.received == []


async def test_an_unreachable_server_is_transient() -> None:
    config = SmtpConfig(host="127.0.0.1", port=free_port(), sender="a@example.com", timeout=2)

    with pytest.raises(ActionFailed) as failed:
        await EmailSendPerformer(config).perform(context(), not_reached)

    assert failed.value.permanent is False


async def test_prepare_resolves_names_through_the_address_book(book: AddressBook) -> None:
    performer = EmailSendPerformer(SmtpConfig(host="mx", sender="a@example.com"), book)

    slots = await performer.prepare(
        context(slots={"recipients": ["dana", "ben@example.com"], "topic": "shipment"})
    )

    assert slots == {
        "recipients": ["Dana Scully <dana@example.com>", "ben@example.com"],
        "topic": "shipment",
    }


async def test_an_unknown_name_needs_input_and_the_persons_answer_resolves_it(
    book: AddressBook,
) -> None:
    performer = EmailSendPerformer(SmtpConfig(host="mx", sender="a@example.com"), book)

    with pytest.raises(NeedsInput) as needs:
        await performer.prepare(context(slots={"recipients": ["Zed"]}))
    assert (needs.value.what, needs.value.name) == ("recipient", "Zed")

    answered = {"recipients": ["Zed"], "answers": {"recipient:Zed": "zed@example.org"}}
    slots = await performer.prepare(context(slots=answered))
    assert slots["recipients"] == ["Zed <zed@example.org>"]


async def test_an_email_without_recipients_fails_for_good(book: AddressBook) -> None:
    performer = EmailSendPerformer(SmtpConfig(host="mx", sender="a@example.com"), book)

    with pytest.raises(ActionFailed) as failed:
        await performer.prepare(context(slots={}))

    assert failed.value.permanent is True


async def test_resolved_recipients_keep_their_names_in_the_to_header(
    server: SmtpServer, book: AddressBook
) -> None:
    performer = EmailSendPerformer(server.config(), book)
    slots = await performer.prepare(context(slots={"recipients": ["Dana"]}))

    await performer.perform(context(slots=slots), Commits(server))

    assert server.received[0].message["To"] == "Dana Scully <dana@example.com>"


@pytest.mark.usefixtures("no_env")
def test_email_send_is_offered_only_with_an_smtp_host_and_sender() -> None:
    assert build_performer(Settings(), {}) is None
    assert not EmailSendPerformer(SmtpConfig(host="mx.example.com")).available()
    built = build_performer(
        Settings(smtp_host="mx.example.com", smtp_from="atombot@example.com"), {}
    )
    assert built is not None and built.available() and built.kind == "email.send"


@pytest.mark.parametrize(
    ("draft", "subject", "body"),
    [
        ("Subject: Hello\n\nBody text", "Hello", "Body text"),
        ("**Subject:** Hello\n\nBody text", "Hello", "Body text"),
        ("主题：你好\n\n正文", "你好", "正文"),
        ("Hi Dana,\n\nBody text", None, "Hi Dana,\n\nBody text"),
    ],
)
def test_the_subject_line_of_a_draft_is_split_off(
    draft: str, subject: str | None, body: str
) -> None:
    assert split_draft(draft) == (subject, body)


def test_without_a_subject_line_the_topic_slot_or_the_first_line_is_the_subject() -> None:
    assert subject_and_body("Hi Dana,\n\nText", {"topic": "the shipment"}) == (
        "the shipment",
        "Hi Dana,\n\nText",
    )
    assert subject_and_body("Quick update on the shipment\n\nText", {})[0] == (
        "Quick update on the shipment"
    )


async def test_starttls_comes_before_the_login_and_the_message() -> None:
    with smtp_server(auth=True, starttls=True) as server:
        commits = Commits(server)
        await EmailSendPerformer(server.config()).perform(context(), commits)

        (received,) = server.received
        assert received.message["Subject"] == "Shipment delayed to Friday"
        assert commits.seen == [["RCPT dana@example.com"]]


async def test_a_certificate_the_system_does_not_trust_fails_for_good() -> None:
    with smtp_server(auth=True, starttls=True) as server:
        with pytest.raises(ActionFailed) as failed:
            await EmailSendPerformer(server.config(tls_context=None)).perform(
                context(), not_reached
            )

        assert failed.value.permanent is True
        assert "ATOMBOT_SMTP_STARTTLS" in failed.value.reason
        assert server.received == []


async def test_a_server_that_requires_starttls_refuses_a_plain_session() -> None:
    with smtp_server(starttls=True) as server:
        with pytest.raises(ActionFailed) as failed:
            await EmailSendPerformer(server.config(starttls=False)).perform(context(), not_reached)

        assert failed.value.permanent is True
        assert "530" in failed.value.reason and "ATOMBOT_SMTP_" in failed.value.reason
        assert "ATOMBOT_SMTP_FROM" not in failed.value.reason
