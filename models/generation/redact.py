"""Reversible PII redaction of the text a generation backend sees.

Before a request leaves for the model, e-mail addresses, phone numbers, payment card
numbers, IBANs and operator-defined patterns are replaced by placeholders such as
``[EMAIL_1]``; the model's answer (and every partial answer reported while it streams) has
them put back, so the person still sees the real address in the draft.

- One value gets one placeholder within a request, in every message (the same phone number
  written ``138 0013 8000`` and ``13800138000`` is one ``[PHONE_1]``); numbering starts
  again with every request.
- Square-bracketed upper-case labels are what chat models copy most faithfully (they are the
  form of common anonymised corpora). Restoration still accepts what models do to them:
  other case, spaces, ``-`` or ``\\_`` instead of ``_``, ``<…>``, ``⟦…⟧``, ``【…】``, full-width
  or doubled brackets, or no brackets at all (``EMAIL_1``).
- A placeholder-like token that is already in the request text (a user who typed
  ``[EMAIL_1]``) is never issued, so it is never "restored" into something else.

:class:`Redactor` holds the detectors; :meth:`Redactor.begin` opens the per-request
:class:`Redaction`; :class:`RedactingGenerator` wraps any backend with it. Whether a backend
gets the wrapper is :func:`redaction_applies` (``ATOMBOT_REDACT``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import phonenumbers
import yaml

from models.generation.base import (
    GenerationRequest,
    GenerationResult,
    Generator,
    GeneratorUnavailable,
    ProgressCallback,
)

logger = logging.getLogger(__name__)

RedactMode = Literal["external", "always", "off"]

#: Built-in placeholder labels, in the order their detectors claim text.
BUILTIN_LABELS = ("EMAIL", "IBAN", "CARD", "PHONE")

#: Regions whose national phone formats are recognised by default (``+…`` always is).
DEFAULT_REGIONS = ("US", "CN")

#: Appended to the system message of a request that holds placeholders.
PLACEHOLDER_NOTE = (
    "Some details were replaced by placeholders in square brackets, such as {example}. "
    "Copy each placeholder exactly as written wherever that detail belongs."
)


class RedactionConfigError(GeneratorUnavailable):
    """The redaction settings cannot work (a bad pattern file, regex or region).

    A generator unavailable: with redaction misconfigured nothing is sent at all, and every
    task fails with this reason.
    """


# --- is the endpoint external? -----------------------------------------------------------


def is_local_url(url: str | None) -> bool:
    """Whether ``url`` points at this machine: ``localhost`` (or ``*.localhost``) or a
    loopback address (``127.0.0.0/8``, ``::1``, ``::ffff:127.x.y.z``).

    Nothing is resolved: every other host — a LAN address, this machine's own name, a
    compose service such as ``vllm`` — counts as external, because the text leaves the
    process's host.
    """
    if not url:
        return False
    try:
        host = urlsplit(url if "//" in url else f"//{url}").hostname
    except ValueError:
        return False
    if not host:
        return False
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def redaction_applies(mode: str, *, generator: str, base_url: str | None) -> bool:
    """Whether requests to this backend are redacted under ``ATOMBOT_REDACT=mode``.

    ``off``: never. ``always``: every backend, the in-process ``hf`` one too.
    ``external`` (the default): the ``openai`` backend whose base URL is not local
    (:func:`is_local_url`).
    """
    if mode == "off":
        return False
    if mode == "always":
        return True
    if mode == "external":
        return generator == "openai" and not is_local_url(base_url)
    raise RedactionConfigError(f"ATOMBOT_REDACT must be external, always or off, not {mode!r}")


# --- operator patterns --------------------------------------------------------------------

_LABEL = re.compile(r"^[A-Z](?:[A-Z0-9_]*[A-Z])?$")


def load_patterns(source: str | None) -> dict[str, str]:
    """``ATOMBOT_REDACT_PATTERNS``: inline JSON (``{"EMPLOYEE_ID": "EMP-\\\\d{6}"}``) or
    the path of a YAML/JSON file mapping each label to a regular expression.

    Labels are upper-cased; they are letters, digits and ``_``, start and end with a letter,
    and must not be a built-in label. Raises :class:`RedactionConfigError` naming the
    problem.
    """
    if source is None or not source.strip():
        return {}
    text = source.strip()
    where = "ATOMBOT_REDACT_PATTERNS"
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RedactionConfigError(f"{where} is not valid JSON: {exc}") from exc
    else:
        path = Path(text).expanduser()
        where = f"{where} file {path}"
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise RedactionConfigError(f"cannot read {where}: {exc.strerror or exc}") from exc
        except yaml.YAMLError as exc:
            raise RedactionConfigError(f"{where} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RedactionConfigError(f"{where} must map each label to a regular expression")
    patterns: dict[str, str] = {}
    for name, pattern in data.items():
        if not isinstance(pattern, str) or not pattern:
            raise RedactionConfigError(f"{where}: {name!r} needs a regular expression string")
        patterns[str(name)] = pattern
    return patterns


def _compile_patterns(patterns: Mapping[str, str]) -> list[tuple[str, re.Pattern[str]]]:
    compiled: list[tuple[str, re.Pattern[str]]] = []
    seen = {_squash(label): label for label in BUILTIN_LABELS}
    for name, pattern in patterns.items():
        label = name.strip().upper()
        if not _LABEL.match(label):
            raise RedactionConfigError(
                f"redaction pattern label {name!r}: use letters, digits and _, "
                "starting and ending with a letter (e.g. EMPLOYEE_ID)"
            )
        if _squash(label) in seen:
            raise RedactionConfigError(
                f"redaction pattern label {name!r} clashes with {seen[_squash(label)]!r}"
            )
        seen[_squash(label)] = label
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise RedactionConfigError(
                f"redaction pattern {label}: {pattern!r} is not a valid regular expression ({exc})"
            ) from exc
        if regex.search(""):
            raise RedactionConfigError(f"redaction pattern {label}: {pattern!r} matches nothing")
        compiled.append((label, regex))
    return compiled


def parse_regions(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """``ATOMBOT_REDACT_REGIONS`` (``US,CN``): ISO 3166 region codes phonenumbers knows."""
    if value is None:
        return DEFAULT_REGIONS
    items = value.split(",") if isinstance(value, str) else list(value)
    regions = tuple(dict.fromkeys(r.strip().upper() for r in items if r.strip()))
    supported = phonenumbers.SUPPORTED_REGIONS
    unknown = [r for r in regions if r not in supported]
    if unknown:
        raise RedactionConfigError(
            f"ATOMBOT_REDACT_REGIONS: unknown region(s) {', '.join(unknown)}; "
            "use ISO 3166 codes such as US, CN, GB, DE"
        )
    return regions


# --- detectors ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One detected value: where it is, its label and its normalised form (the identity)."""

    start: int
    end: int
    label: str
    key: str


# ASCII look-arounds and an ASCII top-level domain: \w would take the CJK characters around
# an address ("发到zhangsan@example.cn谢谢") as part of it. Other domain labels may be IDN.
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9][A-Za-z0-9._%+\-]*"
    r"@(?:[^\W_](?:[\w\-]*[^\W_])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9\-])"
)
_DIGIT_RUN = re.compile(r"[0-9]+(?:[ \-][0-9]+)*")
_DIGITS = re.compile(r"[0-9]+")
# Digits (ASCII or full-width) with what phone numbers are written with between them.
_PHONE_STRETCH = re.compile(r"[+＋(（]?[0-9０-９](?:[0-9０-９ \t\u00a0\-‐–—.()（）/]*[0-9０-９])?")
_TWO_DIGITS = re.compile(r"[0-9０-９]{2}")
_PHONE_CONTEXT = 12
_PHONE_PIECE = 160
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])([A-Z]{2})([0-9]{2})")

#: IBAN length per country (the SWIFT IBAN registry).
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a digit string (payment card numbers)."""
    if not digits.isdigit():
        return False
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char)
        if i % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """Country length and ISO 7064 mod-97 check of a compact IBAN (``DE89370400440532013000``)."""
    iban = iban.replace(" ", "").upper()
    if _IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban.isalnum() or not iban.isascii():
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def find_emails(text: str) -> Iterator[Finding]:
    """E-mail addresses; the identity is the lower-cased address."""
    for m in _EMAIL.finditer(text):
        yield Finding(m.start(), m.end(), "EMAIL", m.group().lower())


def find_cards(text: str) -> Iterator[Finding]:
    """Payment card numbers: 13–19 digits, one kind of separator (space or dash) at most, a
    major-network first digit (2–6) and a valid Luhn checksum. The first-digit rule keeps
    millisecond timestamps and most ids (which start with 1) out."""
    for run in _DIGIT_RUN.finditer(text):
        # A run of digit groups may hold a card among other numbers ("… 8000 4111 1111 …"):
        # try windows of whole groups, longest first, left to right.
        base, chunk = run.start(), run.group()
        groups = [(g.start(), g.end()) for g in _DIGITS.finditer(chunk)]
        first = 0
        while first < len(groups):
            if chunk[groups[first][0]] in "23456":
                stop, count = first, 0
                while stop < len(groups) and count + groups[stop][1] - groups[stop][0] <= 19:
                    count += groups[stop][1] - groups[stop][0]
                    stop += 1
                for last in range(stop - 1, first - 1, -1):
                    raw = chunk[groups[first][0] : groups[last][1]]
                    digits = raw.replace(" ", "").replace("-", "")
                    if len(digits) < 13:
                        break
                    if not (" " in raw and "-" in raw) and luhn_valid(digits):
                        yield Finding(
                            base + groups[first][0], base + groups[last][1], "CARD", digits
                        )
                        first = last
                        break
            first += 1


def find_ibans(text: str) -> Iterator[Finding]:
    """IBANs, compact or in groups separated by single spaces, length- and mod-97-checked."""
    for m in _IBAN_START.finditer(text):
        length = _IBAN_LENGTHS.get(m.group(1))
        if length is None:
            continue
        chars = [m.group(1), m.group(2)]
        count, i = 4, m.end()
        while count < length and i < len(text):
            char = text[i]
            if char.isascii() and (char.isdigit() or char.isupper()):
                chars.append(char)
                count += 1
            elif not (char == " " and text[i - 1] != " " and i + 1 < len(text)):
                break
            i += 1
        end = i
        if count == length and not (
            end < len(text) and text[end].isascii() and text[end].isalnum()
        ):
            compact = "".join(chars)
            if iban_valid(compact):
                yield Finding(m.start(), end, "IBAN", compact)


def _phone_windows(text: str) -> Iterator[tuple[int, int]]:
    """Stretches of ``text`` that may hold phone numbers, with some context around them.

    phonenumbers' matcher is slow on long text (seconds for a 20,000-character thread on a
    small CPU); running it only where seven or more digits stand together keeps redaction
    cheap. Very long stretches are cut into overlapping pieces.
    """
    for m in _PHONE_STRETCH.finditer(text):
        # Seven digits at least; and "1 2 3 4 …" (no two digits together) is no phone number
        # but costs the matcher dearly.
        if sum(c.isdigit() for c in m.group()) < 7 or not _TWO_DIGITS.search(m.group()):
            continue
        start, end = max(0, m.start() - _PHONE_CONTEXT), min(len(text), m.end() + _PHONE_CONTEXT)
        if end - start <= _PHONE_PIECE:
            yield start, end
            continue
        for piece in range(start, end, _PHONE_PIECE // 2):
            yield piece, min(end, piece + _PHONE_PIECE)
            if piece + _PHONE_PIECE >= end:
                break


def find_phones(text: str, regions: Sequence[str]) -> Iterator[Finding]:
    """Phone numbers phonenumbers finds valid in any of ``regions`` (``+…`` in all of them);
    the identity is the E.164 form under the first region that matched."""
    windows = list(_phone_windows(text))
    seen: set[tuple[int, int]] = set()
    for region in regions:
        for start, end in windows:
            matcher = phonenumbers.PhoneNumberMatcher(
                text[start:end], region, leniency=phonenumbers.Leniency.VALID
            )
            for match in matcher:
                span = (start + match.start, start + match.end)
                if span in seen:
                    continue
                seen.add(span)
                number = phonenumbers.format_number(
                    match.number, phonenumbers.PhoneNumberFormat.E164
                )
                yield Finding(span[0], span[1], "PHONE", number)


# --- placeholders -------------------------------------------------------------------------

_OPENERS = "[<⟦【［〔"
_CLOSERS = "]>⟧】］〕"
_BODY_CHARS = r"A-Za-z0-9_\\\- ＿"
#: A placeholder as a model may write it back; ``body`` ends with the number.
_PLACEHOLDER_LIKE = re.compile(
    rf"\\?(?P<o>[{re.escape(_OPENERS)}]{{1,2}})[ \t]*"
    rf"(?P<body>[A-Za-z][{_BODY_CHARS}]{{0,48}}?[0-9]+)"
    rf"\\?[ \t]*(?P<c>[{re.escape(_CLOSERS)}]{{1,2}})"
    r"|(?<![A-Za-z0-9_])(?P<bare>[A-Z][A-Z0-9_]*_[0-9]+)(?![A-Za-z0-9_])"
)
_BARE = re.compile(r"(?<![A-Za-z0-9_])(?P<bare>[A-Z][A-Z0-9_]*_[0-9]+)(?![A-Za-z0-9_])")
_PARTIAL_BODY = re.compile(rf"[ \t]*[{_BODY_CHARS}]*")
_TRAILING_WORD = re.compile(r"(?<![A-Za-z0-9_])[A-Z][A-Z0-9_]*\Z")
#: The longest tail held back while it may still become a placeholder.
_MAX_HELD = 64


def _squash(text: str) -> str:
    """A placeholder body reduced to what identifies it: ``email - 1`` → ``EMAIL1``."""
    return re.sub(r"[^A-Z0-9]", "", text.upper())


class Redaction:
    """The placeholders of one request: redact its text, restore the model's answer.

    Made by :meth:`Redactor.begin`; read-only once the request is redacted, so restoring
    from a backend's thread is safe.
    """

    def __init__(self, redactor: Redactor, reserved: set[str]) -> None:
        self._redactor = redactor
        self._reserved = reserved
        self._placeholders: dict[tuple[str, str], str] = {}
        self._originals: dict[str, str] = {}
        self._bare: list[str] = []
        self._counters: dict[str, int] = {}

    def __bool__(self) -> bool:
        return bool(self._originals)

    @property
    def counts(self) -> dict[str, int]:
        """How many distinct values were replaced, per label (for logs: figures only)."""
        counts: dict[str, int] = {}
        for label, _ in self._placeholders:
            counts[label] = counts.get(label, 0) + 1
        return counts

    @property
    def placeholders(self) -> dict[str, str]:
        """Each issued placeholder and the text it stands for."""
        return {p: self._originals[_squash(p)] for p in self._placeholders.values()}

    def _placeholder(self, finding: Finding, surface: str) -> str:
        known = self._placeholders.get((finding.label, finding.key))
        if known is not None:
            return known
        number = self._counters.get(finding.label, 0)
        while True:
            number += 1
            squashed = f"{_squash(finding.label)}{number}"
            if squashed not in self._reserved:
                break
        self._counters[finding.label] = number
        placeholder = f"[{finding.label}_{number}]"
        self._placeholders[(finding.label, finding.key)] = placeholder
        self._originals[squashed] = surface
        self._bare.append(placeholder[1:-1])
        return placeholder

    def redact(self, text: str) -> str:
        """``text`` with every detected value replaced by its placeholder."""
        findings = self._redactor.find(text)
        if not findings:
            return text
        parts: list[str] = []
        last = 0
        for finding in findings:
            parts.append(text[last : finding.start])
            parts.append(self._placeholder(finding, text[finding.start : finding.end]))
            last = finding.end
        parts.append(text[last:])
        return "".join(parts)

    def redact_request(self, request: GenerationRequest) -> GenerationRequest:
        """The request with every message's content redacted; when anything was replaced,
        the system message (if there is one) asks the model to copy placeholders as written."""
        messages = [{**m, "content": self.redact(m.get("content", ""))} for m in request.messages]
        if not self:
            return request
        example = next(iter(self._placeholders.values()))
        for message in messages:
            if message.get("role") == "system":
                note = PLACEHOLDER_NOTE.format(example=example)
                message["content"] = f"{message['content'].rstrip()}\n\n{note}".lstrip()
                break
        return replace(request, messages=tuple(messages))

    def _restore_match(self, match: re.Match[str]) -> str:
        bare = match.group("bare")
        value = self._originals.get(_squash(bare or match.group("body")))
        if value is None:
            # "[see EMAIL_1]": not one placeholder, but it may hold a bare one.
            return match.group() if bare else _BARE.sub(self._restore_match, match.group())
        if bare:
            return value
        opener, closer = match.group("o"), match.group("c")
        paired = min(len(opener), len(closer))
        return opener[: len(opener) - paired] + value + closer[paired:]

    def restore(self, text: str) -> str:
        """``text`` with every placeholder of this request (as a model may have mangled it)
        replaced by the original value; placeholders of no value here are left alone."""
        if not self._originals or not text:
            return text
        return _PLACEHOLDER_LIKE.sub(self._restore_match, text)

    def restore_partial(self, text: str) -> str:
        """:meth:`restore` for text still streaming: a tail that may be the start of a
        placeholder (``… [EMA``) is held back until the next chunk settles it, so a partial
        text never shows a half placeholder, and each is a prefix of the next."""
        if not self._originals:
            return text
        return self.restore(text[: self._held_from(text)])

    def _held_from(self, text: str) -> int:
        held = len(text)
        if text.endswith("\\"):
            held = len(text) - 1
        window = max(0, len(text) - _MAX_HELD)
        opener = max(text.rfind(c, window) for c in _OPENERS)
        if opener >= 0:
            start = opener
            if start > 0 and text[start - 1] in _OPENERS:
                start -= 1
            if start > 0 and text[start - 1] == "\\":
                start -= 1
            rest = text[opener + 1 :]
            if _PARTIAL_BODY.fullmatch(rest):
                squashed = _squash(rest)
                if any(key.startswith(squashed) for key in self._originals):
                    held = min(held, start)
        word = _TRAILING_WORD.search(text)
        if word and any(bare.startswith(word.group()) for bare in self._bare):
            held = min(held, word.start())
        return held


class Redactor:
    """The detectors: e-mails, IBANs, payment cards, operator patterns, then phone numbers.

    Where two detections overlap, the earlier detector in that order keeps the text (an
    address holding digits stays one e-mail, a card number is not also a phone number).
    ``patterns`` maps labels to regular expressions (see :func:`load_patterns`); ``regions``
    are the phone regions whose national formats count (international ``+…`` always do).
    Raises :class:`RedactionConfigError` for a bad pattern or region.
    """

    def __init__(
        self,
        *,
        patterns: Mapping[str, str] | None = None,
        regions: str | Sequence[str] | None = DEFAULT_REGIONS,
    ) -> None:
        self._patterns = _compile_patterns(patterns or {})
        self.regions = parse_regions(regions)

    @property
    def labels(self) -> tuple[str, ...]:
        """Every label this redactor issues."""
        return (*BUILTIN_LABELS, *(label for label, _ in self._patterns))

    def _candidates(self, text: str) -> Iterable[Finding]:
        yield from find_emails(text)
        yield from find_ibans(text)
        yield from find_cards(text)
        for label, regex in self._patterns:
            for m in regex.finditer(text):
                if m.end() > m.start():
                    yield Finding(m.start(), m.end(), label, m.group())
        yield from find_phones(text, self.regions)

    def find(self, text: str) -> list[Finding]:
        """Every value to redact in ``text``, in text order, none overlapping."""
        if not text:
            return []
        taken: list[Finding] = []
        for finding in self._candidates(text):
            if all(finding.end <= t.start or finding.start >= t.end for t in taken):
                taken.append(finding)
        return sorted(taken, key=lambda f: f.start)

    def begin(self, texts: Iterable[str] = ()) -> Redaction:
        """A new request's redaction; ``texts`` are all of its texts, so that placeholders
        already written in them are never issued."""
        reserved: set[str] = set()
        for text in texts:
            for m in _PLACEHOLDER_LIKE.finditer(text):
                reserved.add(_squash(m.group("bare") or m.group("body")))
        return Redaction(self, reserved)


#: Requests longer than this (characters) are redacted on a thread.
_INLINE_CHARS = 2000


class RedactingGenerator:
    """A backend whose requests are redacted and whose answers are restored.

    The backend (and anything it logs, even at DEBUG, and any error it reports) sees only
    placeholders; the worker gets the restored text, in the result and in every partial
    text reported through ``on_progress``.
    """

    def __init__(self, inner: Generator, redactor: Redactor) -> None:
        self.inner = inner
        self.redactor = redactor

    @property
    def capacity(self) -> int:
        """The wrapped backend's capacity."""
        return self.inner.capacity

    @property
    def context_length(self) -> int:
        """The wrapped backend's context window."""
        return self.inner.context_length

    async def start(self) -> None:
        """Start the wrapped backend."""
        await self.inner.start()

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` in the wrapped backend."""
        return self.inner.count_tokens(text)

    async def generate(
        self, request: GenerationRequest, on_progress: ProgressCallback | None = None
    ) -> GenerationResult:
        """Redact, generate on the wrapped backend, restore the partial and final text."""
        redaction = self.redactor.begin(m.get("content", "") for m in request.messages)
        size = sum(len(m.get("content", "")) for m in request.messages)
        if size > _INLINE_CHARS:
            # Phone detection on a long thread takes a while: keep the event loop free.
            redacted = await asyncio.to_thread(redaction.redact_request, request)
        else:
            redacted = redaction.redact_request(request)
        if not redaction:
            return await self.inner.generate(request, on_progress)
        logger.debug("redacted before generation: %s", redaction.counts)
        report: ProgressCallback | None = None
        if on_progress is not None:
            callback = on_progress

            def report(tokens: int, text: str) -> None:
                callback(tokens, redaction.restore_partial(text))

        result = await self.inner.generate(redacted, report)
        return replace(result, text=redaction.restore(result.text))

    async def close(self) -> None:
        """Close the wrapped backend."""
        await self.inner.close()


def with_redaction(
    generator: Generator,
    *,
    mode: str,
    kind: str,
    base_url: str | None,
    patterns: str | None = None,
    regions: str | Sequence[str] | None = DEFAULT_REGIONS,
) -> Generator:
    """``generator`` wrapped in a :class:`RedactingGenerator` when :func:`redaction_applies`
    (``mode`` is ``ATOMBOT_REDACT``, ``kind`` the backend, ``base_url`` its server), else
    unchanged. ``patterns`` is ``ATOMBOT_REDACT_PATTERNS`` (:func:`load_patterns`), read only
    when redaction applies. Raises :class:`RedactionConfigError`."""
    if not redaction_applies(mode, generator=kind, base_url=base_url):
        return generator
    redactor = Redactor(patterns=load_patterns(patterns), regions=regions)
    logger.info(
        "PII redaction on for the %s backend (ATOMBOT_REDACT=%s): %s",
        kind,
        mode,
        ", ".join(redactor.labels),
    )
    return RedactingGenerator(generator, redactor)
