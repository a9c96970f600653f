"""Candidate split points of a message, and the text ranges no split may cut.

Nothing here knows any intent: a message is cut into *atoms* at every place where a new
request could start (sentence ends, ``;``, new lines, connectors such as "and then",
"also", "then", "plus", 然后 / 另外 / 并且 / 还有 / 再, and the weak ones: "and", commas,
，/、). Which of those cuts really separate requests is decided later, by scoring
segmentations with the classifier (:mod:`models.intents.atomize`).

Protected text is never cut: e-mail addresses, URLs, dotted tokens (file names, versions,
decimals, "e.g."), abbreviations ("Mr. Lee"), quotes, and text pasted after an early colon
when the words before the colon are a request of their own ("summarize this: …").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum


class Strength(IntEnum):
    """How strongly a cut suggests a new request (a prior of the segmenter)."""

    WEAK = 0  # "and", ",", "，", "、"
    SOFT = 1  # "and then", "also", "then", "plus", 然后, 另外 …
    HARD = 2  # sentence end, ";", a new line


@dataclass(frozen=True)
class Clause:
    """A piece of the message: its text and the ``(start, end)`` range in the message."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Cut:
    """A candidate split point: the connector text ``[start, end)`` between two atoms."""

    start: int
    end: int
    strength: Strength


# Sentence ends: ASCII punctuation only before white space (so "jane.doe", "v1.2" and
# "3.5" never end a sentence); CJK punctuation always.
_HARD = re.compile(r"(?<=[.!?])\s+|(?<=[。！？；;])\s*|\s*\n\s*")
_SOFT = re.compile(
    r"\s*(?:[,，]\s*)?\b(?:and\s+then|and\s+also|and\s+finally|after\s+that|afterwards|then|"
    r"also|plus)\b\s*"
    r"|\s*[,，]?\s*(?:然后|之后|另外|还有|并且|同时|接着|以及|再帮我|再)\s*",
    re.IGNORECASE,
)
# A comma between digits ("1,000") is part of a number.
_WEAK = re.compile(r"\s*(?<!\d),(?!\d)\s*(?:and\s+)?|\s+and\s+|\s*[，、]\s*", re.IGNORECASE)
_PATTERNS = ((_HARD, Strength.HARD), (_SOFT, Strength.SOFT), (_WEAK, Strength.WEAK))
#: Connectors left at the start of an atom ("and then …" at the very beginning).
LEADING = re.compile(
    r"^(?:(?:and\s+then|and\s+also|and|then|also|plus|after\s+that|afterwards|finally)\b|"
    r"然后|之后|另外|还有|并且|同时|接着)[\s,，]*",
    re.IGNORECASE,
)

_EMAIL = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
_URL = r"(?:https?://|www\.)[^\s\"“”<>，。]+"
# File names, versions, decimals, dotted abbreviations: word characters joined by dots.
_DOTTED = r"\w+(?:[._/-]\w+)*\.\w+(?:\.)?"
_ABBREVIATION = (
    r"\b(?:mr|mrs|ms|mx|dr|prof|sr|jr|st|vs|etc|inc|ltd|corp|approx|dept|fig|vol|jan|feb|"
    r"mar|apr|jun|jul|aug|sep|sept|oct|nov|dec|tue|tues|wed|thu|thur|thurs|fri|"
    r"a\.m|p\.m|e\.g|i\.e|u\.s|u\.k)\.(?:\s+|$)|\bno\.\s*(?=\d)"
)
# Abbreviations first: "e.g. the" must protect the space after "e.g." too.
_TOKENS = re.compile(f"{_ABBREVIATION}|{_URL}|{_EMAIL}|{_DOTTED}", re.IGNORECASE)
#: An initial before a capitalised name ("J. Smith").
_INITIAL = re.compile(r"\b[A-Z]\.\s+(?=[A-Z])")
_QUOTES = re.compile(r"\"[^\"]*\"|“[^”]*”|「[^」]*」")
_COLON = re.compile(r"[:：]")
#: Most words before a colon that still introduce pasted text.
COLON_PREFIX_WORDS = 12

#: Words that start an elliptical request: it repeats the previous request's kind
#: ("… and another one to Kim about the budget").
_ELLIPSIS = re.compile(
    r"^(?:(?:please\s+)?(?:do\s+|write\s+|send\s+|make\s+)?(?:another\s+one|one\s+more|"
    r"a\s+second\s+one|the\s+same(?:\s+(?:thing|one))?|same\s+(?:thing\s+)?(?:for|to|with)|"
    r"ditto)\b"
    r"|(?:再|也)?(?:给\S{1,12}?)?(?:另一个|另一封|另外一封|另一份|另外一份|(?:再)?来一[个份封张](?=给|$|[，。,.])|"
    r"再写一封|再发一封|一样的|也一样|同样))",
    re.IGNORECASE,
)


def early_colon(text: str) -> int | None:
    """Index of a colon that may introduce pasted text (at most 12 words before it)."""
    for match in _COLON.finditer(text):
        before = text[: match.start()]
        after = text[match.end() : match.end() + 1]
        # A time ("9:30") or a URL scheme is no colon of a paste.
        if (before[-1:].isdigit() and after.isdigit()) or re.search(r"https?$", before, re.I):
            continue
        if before.strip() and len(before.split()) <= COLON_PREFIX_WORDS:
            return match.start()
        return None
    return None


def protected_ranges(text: str, *, paste_colon: int | None = None) -> list[tuple[int, int]]:
    """Ranges of ``text`` no cut may touch (tokens, quotes, text pasted after a colon)."""
    ranges = [(m.start(), m.end()) for m in _TOKENS.finditer(text)]
    ranges += [(m.start(), m.end()) for m in _INITIAL.finditer(text)]
    ranges += [(m.start(), m.end()) for m in _QUOTES.finditer(text)]
    if paste_colon is not None:
        ranges.append((paste_colon, len(text)))
    return ranges


def _overlaps(lo: int, hi: int, ranges: list[tuple[int, int]]) -> bool:
    # A zero-width cut at ``lo`` touches a range that contains ``lo - 1`` or ``lo``.
    lo_check = lo - 1 if hi == lo else lo
    return any(a < max(hi, lo_check + 1) and lo_check < b for a, b in ranges)


def find_cuts(text: str, *, paste_colon: int | None = None) -> list[Cut]:
    """Candidate split points of ``text`` in order, none inside a protected range."""
    protected = protected_ranges(text, paste_colon=paste_colon)
    found: dict[tuple[int, int], Strength] = {}
    for pattern, strength in _PATTERNS:
        for match in pattern.finditer(text):
            lo, hi = match.start(), match.end()
            if not text[lo:hi] and lo in (0, len(text)):
                continue
            if _overlaps(lo, hi, protected):
                continue
            found[(lo, hi)] = max(strength, found.get((lo, hi), Strength.WEAK))
    # Overlapping matches ("? also", ", and then") become one cut of the strongest kind.
    cuts: list[Cut] = []
    for (lo, hi), strength in sorted(found.items()):
        if cuts and lo <= cuts[-1].end:
            last = cuts[-1]
            cuts[-1] = Cut(last.start, max(last.end, hi), max(last.strength, strength))
        else:
            cuts.append(Cut(lo, hi, strength))
    return cuts


def _trim(text: str, start: int, end: int) -> Clause | None:
    piece = text[start:end]
    stripped = piece.lstrip()
    start += len(piece) - len(stripped)
    lead = LEADING.match(stripped)
    if lead is not None and lead.end() < len(stripped):
        start += lead.end()
        stripped = stripped[lead.end() :]
    core = stripped.rstrip(" \t\n,，;；、")
    if not core.strip(" .!?。！？"):
        return None
    return Clause(core, start, start + len(core))


def atoms(text: str, cuts: list[Cut]) -> tuple[list[Clause], list[Strength]]:
    """The non-empty pieces between ``cuts``, and the strength of the cut before each piece
    after the first (a cut that leaves an empty piece merges into its neighbour)."""
    pieces: list[Clause] = []
    strengths: list[Strength] = []
    cursor = 0
    pending: Strength | None = None
    for cut in [*cuts, Cut(len(text), len(text), Strength.WEAK)]:
        clause = _trim(text, cursor, cut.start)
        if clause is not None:
            if pieces:
                strengths.append(pending if pending is not None else Strength.WEAK)
            pieces.append(clause)
            pending = cut.strength
        elif pieces:
            pending = max(pending or Strength.WEAK, cut.strength)
        cursor = cut.end
    return pieces, strengths


def is_ellipsis(clause: str) -> bool:
    """Whether ``clause`` repeats the previous request's kind ("another one to Kim …")."""
    return _ELLIPSIS.match(clause.strip()) is not None


def classification_text(clause: str, *, pasted: bool = False) -> str:
    """What the classifier should see of a clause: text pasted after an early colon
    (``pasted``) and long quotes become a placeholder, so a paste cannot drown the request."""
    if pasted:
        colon = early_colon(clause)
        if colon is not None:
            return clause[:colon].strip() + ': "..."'
    return re.sub(r"\"[^\"]{12,}\"|“[^”]{12,}”|「[^」]{6,}」", '"..."', clause)
