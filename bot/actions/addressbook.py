"""The operator's address book: the names people use for email recipients.

A YAML or CSV file (``ATOMBOT_ADDRESS_BOOK``) lists contacts with a name, an email
address, optional aliases and optional chat user ids::

    contacts:
      - name: Dana Scully
        email: dana@example.com
        aliases: [Dana S, 丹娜]
        chat_ids: [slack:U0DANA, telegram:123456]

or, as CSV (several aliases or ids separated by ``;``)::

    name,email,aliases,chat_ids
    Dana Scully,dana@example.com,Dana S;丹娜,slack:U0DANA

Lookups ignore case, accents and extra spaces ("dana scully" = "Dána  Scully"); a first
name alone ("Dana") finds the one contact whose name starts with it. Email addresses
pass through (after a syntax check); a chat mention (``<@U0DANA>``, ``@dana``) is looked
up among the chat ids. The file is read on first use and again whenever it changes.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.utils import formataddr, parseaddr
from pathlib import Path
from typing import Any

import yaml

from bot.actions.base import NeedsInput

#: An address atombot sends to: ASCII ``local@domain.tld`` (what every SMTP server takes).
_ADDRESS = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
# Slack "<@U0DANA>" / "<@U0DANA|dana>", Telegram "@dana".
_SLACK_MENTION = re.compile(r"^<@([A-Z0-9]+)(?:\|[^>]*)?>$")
_LIST_SPLIT = re.compile(r"[;|]")


class AddressBookError(Exception):
    """The address book file cannot be used (missing, unreadable or malformed)."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"address book {path}: {detail}")
        self.path = path
        self.detail = detail


def normalize(name: str) -> str:
    """A name as compared: no accents, case-folded, single spaces, no leading ``@``."""
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.casefold().split()).lstrip("@")


def valid_address(value: str) -> bool:
    """Whether ``value`` is a plain ``local@domain.tld`` email address."""
    return bool(_ADDRESS.match(value)) and len(value) <= 254


def plain_address(value: str) -> str | None:
    """The email address in ``value`` ("dana@example.com" or "Dana <dana@example.com>"),
    or None when it holds none."""
    text = value.strip()
    if "@" not in text or text.startswith("@"):
        return None
    _, address = parseaddr(text)
    address = address or text
    return address if valid_address(address) else None


@dataclass(frozen=True)
class Contact:
    """One person in the address book."""

    name: str
    email: str
    aliases: tuple[str, ...] = ()
    #: Chat user ids, optionally with their platform: ``slack:U0DANA``, ``U0DANA``.
    chat_ids: tuple[str, ...] = ()

    @property
    def address(self) -> str:
        """``Name <email>`` for a header."""
        return formataddr((self.name, self.email))


@dataclass(frozen=True)
class Recipient:
    """A resolved recipient: the address, and the name to show (None: the address only)."""

    email: str
    name: str | None = None

    @property
    def address(self) -> str:
        """``Name <email>`` (or the bare address) for a header."""
        return formataddr((self.name, self.email)) if self.name else self.email


def _strings(value: Any, where: str, path: Path) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in _LIST_SPLIT.split(value) if v.strip())
    if isinstance(value, list | tuple) and all(isinstance(v, str | int) for v in value):
        return tuple(str(v).strip() for v in value if str(v).strip())
    raise AddressBookError(path, f"{where}: expected a list of names")


def _contact(entry: Any, where: str, path: Path) -> Contact:
    if not isinstance(entry, Mapping):
        raise AddressBookError(path, f"{where}: expected name and email fields")
    name = str(entry.get("name") or "").strip()
    email = str(entry.get("email") or "").strip()
    if not name:
        raise AddressBookError(path, f"{where}: 'name' is missing")
    if not email:
        raise AddressBookError(path, f"{where} ({name}): 'email' is missing")
    if not valid_address(email):
        raise AddressBookError(path, f"{where} ({name}): {email!r} is not an email address")
    return Contact(
        name=name,
        email=email,
        aliases=_strings(entry.get("aliases"), f"{where} ({name}) aliases", path),
        chat_ids=_strings(
            entry.get("chat_ids", entry.get("chat_id")), f"{where} ({name}) chat_ids", path
        ),
    )


def parse_yaml(text: str, path: Path) -> list[Contact]:
    """Contacts from YAML: a list, or a mapping with a ``contacts`` list."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", exc)
        raise AddressBookError(path, f"{at}not valid YAML ({problem})") from exc
    if data is None:
        return []
    if isinstance(data, Mapping):
        data = data.get("contacts")
    if not isinstance(data, list):
        raise AddressBookError(path, "expected a list of contacts (or 'contacts:' with one)")
    return [_contact(entry, f"contact {n}", path) for n, entry in enumerate(data, 1)]


def parse_csv(text: str, path: Path) -> list[Contact]:
    """Contacts from CSV with a header row naming at least ``name`` and ``email``."""
    reader = csv.DictReader(io.StringIO(text))
    fields = {normalize(f) for f in reader.fieldnames or ()}
    if not {"name", "email"} <= fields:
        raise AddressBookError(path, "line 1: the header must name the columns name and email")
    contacts = []
    for row in reader:
        entry = {normalize(k): (v or "") for k, v in row.items() if isinstance(k, str)}
        if None in row:
            raise AddressBookError(path, f"line {reader.line_num}: more fields than the header")
        if not any(v.strip() for v in entry.values()):
            continue
        contacts.append(_contact(entry, f"line {reader.line_num}", path))
    return contacts


class AddressBook:
    """Contacts from ``path`` (YAML or CSV by suffix; ``.csv`` is CSV), reloaded when the
    file changes. ``AddressBook(None)`` is empty: only email addresses resolve."""

    def __init__(self, path: Path | None, contacts: Iterable[Contact] = ()) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._index(list(contacts))

    def _index(self, contacts: list[Contact]) -> None:
        self._contacts = tuple(contacts)
        self._names: dict[str, list[Contact]] = {}
        self._first: dict[str, list[Contact]] = {}
        self._chat: dict[str, list[Contact]] = {}
        for contact in self._contacts:
            for name in (contact.name, *contact.aliases):
                self._names.setdefault(normalize(name), []).append(contact)
            first = normalize(contact.name).split(" ", 1)[0]
            self._first.setdefault(first, []).append(contact)
            for chat_id in contact.chat_ids:
                self._chat.setdefault(chat_id.strip().casefold(), []).append(contact)

    def _refresh(self) -> None:
        if self.path is None:
            return
        try:
            stat = self.path.stat()
        except OSError as exc:
            raise AddressBookError(self.path, f"cannot be read ({exc.strerror or exc})") from exc
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        try:
            text = self.path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise AddressBookError(self.path, f"cannot be read ({exc})") from exc
        parse = parse_csv if self.path.suffix.lower() == ".csv" else parse_yaml
        self._index(parse(text, self.path))
        self._stamp = stamp

    def contacts(self) -> tuple[Contact, ...]:
        """Every contact (reading the file again if it changed). Raises AddressBookError."""
        self._refresh()
        return self._contacts

    def find(self, name: str) -> list[Contact]:
        """The contacts ``name`` may mean: an exact name or alias, else the contacts whose
        first name it is, else the owners of a chat id or mention. Raises AddressBookError."""
        self._refresh()
        text = name.strip()
        mention = _SLACK_MENTION.match(text)
        if mention is not None:
            return self.by_chat_id(mention.group(1))
        key = normalize(text)
        found = self._names.get(key) or self._first.get(key)
        if found:
            return _unique(found)
        return self.by_chat_id(text)

    def by_chat_id(self, user: str, platform: str | None = None) -> list[Contact]:
        """The contacts with chat id ``user`` (``platform:user`` or bare)."""
        self._refresh()
        user = user.strip().casefold()
        keys = [user] if platform is None else [f"{platform.casefold()}:{user}", user]
        found: list[Contact] = []
        for key in keys:
            found.extend(self._chat.get(key, ()))
        if platform is None:
            for chat_id, contacts in self._chat.items():
                if chat_id.split(":", 1)[-1] == user and chat_id != user:
                    found.extend(contacts)
        return _unique(found)

    def resolve(self, value: str, answers: Mapping[str, str] | None = None) -> Recipient:
        """One recipient: an email address as is (checked), else the contact it names.

        ``answers`` are addresses a person already gave for names (``{"Dana": "d@x.org"}``).
        Raises :class:`NeedsInput` (``recipient``, the name) when no single valid address
        is found, and :class:`AddressBookError` when the file is broken.
        """
        text = value.strip()
        address = plain_address(text)
        if address is not None:
            shown, _ = parseaddr(text)
            return Recipient(address, shown or None)
        for name, given in (answers or {}).items():
            if normalize(name) == normalize(text) and plain_address(given):
                return Recipient(str(plain_address(given)), text)
        found = self.find(text) if text else []
        if len(found) != 1:
            raise NeedsInput("recipient", text)
        return Recipient(found[0].email, found[0].name)

    def resolve_all(
        self, values: Iterable[str], answers: Mapping[str, str] | None = None
    ) -> list[Recipient]:
        """Every recipient, once each (by address), in order; raises at the first unknown."""
        resolved: list[Recipient] = []
        seen: set[str] = set()
        for value in values:
            recipient = self.resolve(value, answers)
            if recipient.email.casefold() not in seen:
                seen.add(recipient.email.casefold())
                resolved.append(recipient)
        return resolved


def _unique(contacts: Iterable[Contact]) -> list[Contact]:
    unique: list[Contact] = []
    for contact in contacts:
        if contact not in unique:
            unique.append(contact)
    return unique
