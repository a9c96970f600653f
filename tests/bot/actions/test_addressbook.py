"""The operator's address book: YAML and CSV, names and aliases found whatever their case
and accents, email addresses passed through after a check, unknown or ambiguous names
asked about, the file read again when it changes, and a clear error when it is broken."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.actions.addressbook import AddressBook, AddressBookError, Recipient
from bot.actions.base import NeedsInput

YAML_BOOK = """\
contacts:
  - name: Dana Scully
    email: dana@example.com
    aliases: [DS, 丹娜]
    chat_ids: [slack:U0DANA, telegram:1001]
  - name: José Álvarez
    email: jose@example.com
  - name: Dana Kim
    email: dkim@example.com
    aliases: ["Kim"]
  - name: 王伟
    email: wang.wei@example.cn
"""

CSV_BOOK = """\
name,email,aliases,chat_ids
Dana Scully,dana@example.com,DS;丹娜,slack:U0DANA
José Álvarez,jose@example.com,,
"""


def write(tmp_path: Path, name: str, text: str) -> AddressBook:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return AddressBook(path)


@pytest.fixture
def book(tmp_path: Path) -> AddressBook:
    return write(tmp_path, "book.yaml", YAML_BOOK)


@pytest.mark.parametrize(
    ("name", "email"),
    [
        ("Dana Scully", "dana@example.com"),
        ("dana  SCULLY", "dana@example.com"),
        ("ds", "dana@example.com"),
        ("丹娜", "dana@example.com"),
        ("jose alvarez", "jose@example.com"),
        ("JOSÉ", "jose@example.com"),
        ("Kim", "dkim@example.com"),
        ("王伟", "wang.wei@example.cn"),
        ("<@U0DANA>", "dana@example.com"),
        ("<@U0DANA|dana>", "dana@example.com"),
    ],
)
def test_names_aliases_first_names_and_mentions_resolve(
    book: AddressBook, name: str, email: str
) -> None:
    assert book.resolve(name).email == email


def test_a_resolved_contact_keeps_its_name_for_the_header(book: AddressBook) -> None:
    assert book.resolve("ds") == Recipient("dana@example.com", "Dana Scully")
    assert book.resolve("ds").address == "Dana Scully <dana@example.com>"


def test_email_addresses_pass_through_without_the_book() -> None:
    empty = AddressBook(None)
    assert empty.resolve("jane.doe@example.com") == Recipient("jane.doe@example.com")
    assert empty.resolve("Jane Doe <jane.doe@example.com>") == Recipient(
        "jane.doe@example.com", "Jane Doe"
    )


@pytest.mark.parametrize("value", ["jane.doe@", "jane@localhost", "a b@example.com", "@jane"])
def test_something_that_is_not_an_address_is_asked_about(value: str) -> None:
    with pytest.raises(NeedsInput) as needs:
        AddressBook(None).resolve(value)
    assert (needs.value.what, needs.value.name) == ("recipient", value)


def test_an_unknown_name_needs_input(book: AddressBook) -> None:
    with pytest.raises(NeedsInput) as needs:
        book.resolve("Zed")
    assert (needs.value.what, needs.value.name) == ("recipient", "Zed")


def test_a_first_name_two_contacts_share_is_asked_about(book: AddressBook) -> None:
    with pytest.raises(NeedsInput) as needs:
        book.resolve("Dana")
    assert needs.value.name == "Dana"


def test_an_answer_the_person_gave_resolves_the_name(book: AddressBook) -> None:
    answers = {"Dana": "dana.k@example.org"}
    assert book.resolve("dana", answers) == Recipient("dana.k@example.org", "dana")


def test_resolve_all_keeps_the_order_and_drops_repeats(book: AddressBook) -> None:
    found = book.resolve_all(["DS", "jose@example.com", "Dana Scully", "Kim"])
    assert [r.email for r in found] == ["dana@example.com", "jose@example.com", "dkim@example.com"]


def test_chat_ids_are_found_with_or_without_their_platform(book: AddressBook) -> None:
    assert [c.email for c in book.by_chat_id("U0DANA", "slack")] == ["dana@example.com"]
    assert [c.email for c in book.by_chat_id("1001", "telegram")] == ["dana@example.com"]
    assert [c.email for c in book.by_chat_id("1001")] == ["dana@example.com"]
    assert book.by_chat_id("1001", "slack") == []


def test_csv_holds_the_same_contacts(tmp_path: Path) -> None:
    book = write(tmp_path, "book.csv", CSV_BOOK)

    assert book.resolve("丹娜").email == "dana@example.com"
    assert book.resolve("Jose").email == "jose@example.com"
    assert book.resolve("<@U0DANA>").email == "dana@example.com"
    assert [c.name for c in book.contacts()] == ["Dana Scully", "José Álvarez"]


def test_the_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    book = write(tmp_path, "book.yaml", "- name: Dana\n  email: dana@example.com\n")
    assert book.resolve("Dana").email == "dana@example.com"

    assert book.path is not None
    book.path.write_text("- name: Dana\n  email: dana@new.example.com\n", encoding="utf-8")
    stat = book.path.stat()
    os.utime(book.path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))

    assert book.resolve("Dana").email == "dana@new.example.com"


@pytest.mark.parametrize(
    ("name", "text", "detail"),
    [
        ("bad.yaml", "contacts:\n  - name: Dana\n    email: [unclosed\n", "not valid YAML"),
        ("bad.yaml", "contacts:\n  - name: Dana\n", "contact 1 (Dana): 'email' is missing"),
        ("bad.yaml", "- email: dana@example.com\n", "contact 1: 'name' is missing"),
        ("bad.yaml", "- name: Dana\n  email: not-an-address\n", "is not an email address"),
        ("bad.yaml", "contacts: 3\n", "expected a list of contacts"),
        ("bad.yaml", "- just a string\n", "contact 1: expected name and email fields"),
        ("bad.csv", "who,where\nDana,dana@example.com\n", "must name the columns"),
        ("bad.csv", "name,email\nDana\n", "line 2 (Dana): 'email' is missing"),
        ("bad.csv", "name,email\nDana,dana@example.com,extra\n", "more fields than the header"),
    ],
)
def test_a_malformed_file_is_a_clear_error(
    tmp_path: Path, name: str, text: str, detail: str
) -> None:
    book = write(tmp_path, name, text)

    with pytest.raises(AddressBookError) as broken:
        book.resolve("Dana")

    assert detail in broken.value.detail
    assert str(book.path) in str(broken.value)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AddressBookError, match="cannot be read"):
        AddressBook(tmp_path / "nowhere.yaml").resolve("Dana")


def test_a_yaml_syntax_error_names_its_line(tmp_path: Path) -> None:
    book = write(tmp_path, "bad.yaml", "contacts:\n  - name: Dana\n    email: [unclosed\n")

    with pytest.raises(AddressBookError) as broken:
        book.contacts()

    assert broken.value.detail.startswith("line ")
