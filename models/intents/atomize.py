"""Atomization: split one message into candidate clauses, and find dependencies between them.

Splitting is conservative: sentence ends and ``;`` always split; "then", "also", "after
that" (and 然后 / 另外 / 还有 / 并且 / 再) split; a plain "and" / "," splits only when the
next word starts a new request ("... and email Dana", "... and remind me"), so
"email Tom and Jerry about the launch" and "remind me to review and approve the budget"
stay whole. Text pasted after a colon or inside quotes is never split. The classifier
then merges back any piece it does not recognise as a request of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Words that start a new request when they follow "and" / "," (imperative triggers).
_TRIGGERS = (
    r"(?:please\s+)?(?:e-?mail|mail|draft|write|compose|send|reply|respond|answer|summari[sz]e|"
    r"sum\s+up|recap|tl;?dr|remind|ping\s+me|set\s+(?:up\s+)?(?:a|an)\s+(?:reminder|digest)|"
    r"cancel|stop|abort|kill|subscribe|unsubscribe|turn\s+(?:on|off)|show\s+(?:me\s+)?my|"
    r"check\s+(?:on\s+)?(?:the\s+)?(?:status|task|#)|what(?:'s|\s+is)\s+the\s+status|"
    r"give\s+me\s+(?:a|the)\s+(?:summary|recap|tl;?dr)|let\s+\w+\s+know|tell\s+me\s+the\s+status|"
    r"catch\s+me\s+up)\b"
)
_ZH_TRIGGERS = r"(?:给|帮我|发邮件|写|回复|总结|概括|提醒|取消|订阅|退订|查看|发给|把)"

_HARD = re.compile(r"(?<=[.!?。！？；;])\s*|\n+")
_SOFT = re.compile(
    r"\s*(?:,\s*)?\b(?:and\s+then|and\s+also|after\s+that|afterwards|then|also|plus)\b\s*"
    r"|\s*(?:然后|之后|另外|还有|并且|同时|接着|再帮我|再)\s*",
    re.IGNORECASE,
)
_AND = re.compile(
    rf"\s*(?:,\s*(?:and\s+)?|\s+and\s+|，|、|和)(?={_TRIGGERS}|{_ZH_TRIGGERS})", re.IGNORECASE
)
_LEADING = re.compile(
    r"^(?:and\s+then|and\s+also|and|then|also|plus|after\s+that|afterwards|finally|"
    r"然后|之后|另外|还有|并且|同时|接着|再)\b[\s,，]*",
    re.IGNORECASE,
)

# A clause that refers to the result of an earlier one.
_REFERENCE = re.compile(
    r"\b(?:the|that|this|its|their)\s+(?:outcome|results?|summary|summaries|recap|draft|output|"
    r"answer|reply|conclusions?|takeaways?|findings|notes|highlights|decisions?|tl;?dr|gist|"
    r"key\s+points)\b|\b(?:it|them|that)\b(?!\s+(?:is|was|the|'s))"
    r"|结果|总结|摘要|概要|要点|草稿|它",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Clause:
    """A piece of the message: its text and the ``(start, end)`` range in the message."""

    text: str
    start: int
    end: int


def _protected(text: str) -> list[tuple[int, int]]:
    """Ranges that must not be split: quotes, and text pasted after an early colon."""
    ranges = [(m.start(), m.end()) for m in re.finditer(r"\"[^\"]*\"|“[^”]*”|「[^」]*」", text)]
    colon = re.search(r"[:：]", text)
    if (
        colon is not None
        and len(text[: colon.start()].split()) <= 12
        and re.search(
            r"summari|summary|sum up|recap|tl;?dr|reply|respond|answer|总结|概括|回复|摘要|condense|digest",
            text[: colon.start()],
            re.IGNORECASE,
        )
    ):
        ranges.append((colon.end(), len(text)))
    return ranges


def _split_at(
    clauses: list[Clause], pattern: re.Pattern[str], protected: list[tuple[int, int]]
) -> list[Clause]:
    out: list[Clause] = []
    for clause in clauses:
        cursor = clause.start
        for match in pattern.finditer(clause.text):
            cut_start, cut_end = clause.start + match.start(), clause.start + match.end()
            if cut_end <= cut_start and not match.group(0):
                # Zero-width split points only matter between sentences.
                cut_end = cut_start
            if any(lo <= cut_start < hi for lo, hi in protected):
                continue
            if cut_start <= cursor:
                continue
            out.append(
                Clause(
                    clause.text[cursor - clause.start : cut_start - clause.start], cursor, cut_start
                )
            )
            cursor = cut_end
        out.append(Clause(clause.text[cursor - clause.start :], cursor, clause.end))
    return out


def _trim(clause: Clause) -> Clause | None:
    text = clause.text
    start = clause.start
    stripped = text.lstrip()
    start += len(text) - len(stripped)
    lead = _LEADING.match(stripped)
    if lead is not None and lead.end() < len(stripped):
        start += lead.end()
        stripped = stripped[lead.end() :]
    core = stripped.rstrip(" \t\n,，;；")
    if not core.strip(" .!?。！？"):
        return None
    return Clause(core, start, start + len(core))


def split_clauses(text: str) -> list[Clause]:
    """Candidate clauses of ``text`` in order (one clause when nothing splits)."""
    protected = _protected(text)
    clauses = [Clause(text, 0, len(text))]
    clauses = _split_at(clauses, _HARD, protected)
    clauses = _split_at(clauses, _SOFT, protected)
    clauses = _split_at(clauses, _AND, protected)
    trimmed = [c for c in (_trim(c) for c in clauses) if c is not None]
    return trimmed or [
        Clause(text.strip(), text.find(text.strip()), text.find(text.strip()) + len(text.strip()))
    ]


#: Intents whose result is text another task can use.
PRODUCERS = frozenset({"summarize", "email.draft", "reply.draft"})
#: Intents that can consume an earlier task's result.
CONSUMERS = frozenset({"email.draft", "reply.draft", "summarize"})


def dependencies(intents: list[str], clauses: list[str]) -> list[tuple[int, ...]]:
    """For each clause, the earlier task whose result it refers to ("email Dana the outcome")."""
    deps: list[tuple[int, ...]] = []
    for i, (intent, text) in enumerate(zip(intents, clauses, strict=True)):
        found: tuple[int, ...] = ()
        if intent in CONSUMERS and _REFERENCE.search(text):
            for j in range(i - 1, -1, -1):
                if intents[j] in PRODUCERS and intents[j] != "oos":
                    found = (j,)
                    break
        deps.append(found)
    return deps


def classification_text(clause: str) -> str:
    """What the classifier should see of a clause: pasted text after an early colon and
    quoted text are replaced by a placeholder, so a long paste cannot drown the request."""
    colon = re.search(r"[:：]", clause)
    if colon is not None:
        for lo, _hi in _protected(clause):
            if lo == colon.end():
                return clause[: colon.start()].strip() + ': "..."'
    return re.sub(r"\"[^\"]{12,}\"|“[^”]{12,}”|「[^」]{6,}」", '"..."', clause)
