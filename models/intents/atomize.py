"""Atomization: one message → ordered atomic task specs, over any classifier of clauses.

The message is cut into atoms at every candidate split point
(:mod:`models.intents.splitpoints`); every run of consecutive atoms is scored by a
:class:`ClauseScorer` (one batch), and dynamic programming picks the segmentation with the
best total::

    score(segmentation) = Σ_segments [log wholeness(segment) + w · log request(segment)]
                          + Σ_cuts prior(cut strength)

``wholeness`` is the scorer's probability that a text is one whole request (not a chain of
several, nor a fragment of one); ``request`` its top in-scope intent probability. So
"X and Y" splits only when X and Y are confident requests of their own and the whole is
not, whatever the intents are. An elliptical segment ("and another one to Kim about the
budget") takes the kind of the segment before it. Dependencies follow what kinds produce
and consume (:class:`~models.intents.spec.KindTraits`): a consumer that refers to an
earlier result ("email Dana the outcome") depends on the nearest earlier producer.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from models.intents import slots
from models.intents.encoder import FloatArray
from models.intents.spec import OOS, KindTraits, Overrides, StaticTraits, TaskSpec
from models.intents.splitpoints import (
    Clause,
    Cut,
    Strength,
    atoms,
    classification_text,
    early_colon,
    find_cuts,
    is_ellipsis,
)

logger = logging.getLogger(__name__)

#: At most this many tasks come out of one message; the rest is merged into the last one.
MAX_TASKS = 8


@dataclass(frozen=True)
class ClauseScores:
    """Scores of a batch of texts: per-label probabilities (columns follow the scorer's
    ``labels``) and the probability that each text is one whole request."""

    probabilities: FloatArray
    wholeness: FloatArray


class ClauseScorer(Protocol):
    """What atomization needs from a classifier."""

    @property
    def labels(self) -> list[str]:
        """The labels, ``oos`` included when the classifier knows it."""
        ...

    @property
    def threshold(self) -> float:
        """Calibrated rejection threshold: a lower top probability means out of scope."""
        ...

    def score_clauses(self, texts: list[str]) -> ClauseScores:
        """Score every text (one batch)."""
        ...


@dataclass(frozen=True)
class SegmenterConfig:
    """The segmenter's trade-offs (chosen on MixATIS dev and the default intents' table).

    ``request_weight`` weighs the intent confidence against wholeness; ``cut_priors`` is
    the log-prior of cutting at a weak ("and", ","), soft ("and then", "also", 然后) and
    hard (sentence end, ";") split point; ``max_atoms`` bounds the work on long messages.
    """

    request_weight: float = 0.5
    cut_priors: tuple[float, float, float] = (0.5, 1.0, 2.0)
    ellipsis_score: float = math.log(0.9)
    max_atoms: int = 8


DEFAULT_CONFIG = SegmenterConfig()
_FLOOR = 1e-6


@dataclass(frozen=True)
class Segment:
    """One request found in a message: its label, confidence and character range."""

    label: str
    confidence: float
    start: int
    end: int


def decide(row: FloatArray, labels: list[str], threshold: float) -> tuple[str, float]:
    """``(label, confidence)`` of one probability row; below the threshold it is ``oos``."""
    best = int(row.argmax())
    label, confidence = labels[best], float(row[best])
    if label != OOS and confidence < threshold:
        return OOS, 1.0 - confidence
    return label, confidence


def _limit(text: str, cuts: list[Cut], paste_colon: int | None, most: int) -> list[Clause]:
    """Atoms of ``text``, dropping the weakest cuts while there are more than ``most``."""
    for floor in (Strength.WEAK, Strength.SOFT, Strength.HARD):
        kept = [c for c in cuts if c.strength >= floor]
        pieces, _ = atoms(text, kept)
        if len(pieces) <= most:
            return pieces
    pieces, _ = atoms(text, [c for c in cuts if c.strength >= Strength.HARD])
    return [
        *pieces[: most - 1],
        Clause(
            text[pieces[most - 1].start : pieces[-1].end], pieces[most - 1].start, pieces[-1].end
        ),
    ]


def _cut_strengths(text: str, pieces: list[Clause], cuts: list[Cut]) -> list[Strength]:
    """The strongest cut between each pair of neighbouring atoms."""
    out: list[Strength] = []
    for left, right in pairwise(pieces):
        between = [c.strength for c in cuts if left.end <= c.start and c.end <= right.start]
        out.append(max(between, default=Strength.WEAK))
    return out


def segment(
    text: str, scorer: ClauseScorer, config: SegmenterConfig = DEFAULT_CONFIG
) -> list[Segment]:
    """The requests of ``text`` in order (``[]`` for blank text; one ``oos`` segment when
    nothing in it is in scope)."""
    if not text.strip():
        return []
    labels, threshold = scorer.labels, scorer.threshold
    paste = early_colon(text)
    if paste is not None:
        # Text after a colon is pasted data when the words before it are a request.
        prefix = scorer.score_clauses([text[:paste].strip()])
        if decide(prefix.probabilities[0], labels, threshold)[0] == OOS:
            paste = None
    cuts = find_cuts(text, paste_colon=paste)
    pieces = _limit(text, cuts, paste, config.max_atoms)
    if not pieces:
        start = len(text) - len(text.lstrip())
        pieces = [Clause(text.strip(), start, start + len(text.strip()))]
    strengths = _cut_strengths(text, pieces, cuts)
    count = len(pieces)
    spans = [(i, j) for i in range(count) for j in range(i + 1, count + 1)]
    probe = [
        classification_text(
            text[pieces[i].start : pieces[j - 1].end],
            pasted=paste is not None and pieces[j - 1].end > paste,
        )
        for i, j in spans
    ]
    scores = scorer.score_clauses(probe)
    in_scope = [k for k, label in enumerate(labels) if label != OOS]
    request = (
        scores.probabilities[:, in_scope].max(axis=1)
        if in_scope
        else np.zeros(len(spans), dtype=np.float32)
    )
    index = {span: k for k, span in enumerate(spans)}
    ellipsis = [i > 0 and is_ellipsis(p.text) for i, p in enumerate(pieces)]

    def span_score(i: int, j: int) -> float:
        if ellipsis[i]:
            return config.ellipsis_score
        k = index[(i, j)]
        return math.log(max(float(scores.wholeness[k]), _FLOOR)) + config.request_weight * (
            math.log(max(float(request[k]), _FLOOR))
        )

    best = [-math.inf] * (count + 1)
    back = [0] * (count + 1)
    best[0] = 0.0
    for j in range(1, count + 1):
        for i in range(j):
            # An elliptical atom always starts a request of its own.
            if any(ellipsis[k] for k in range(i + 1, j)):
                continue
            total = best[i] + span_score(i, j)
            if i > 0:
                total += config.cut_priors[strengths[i - 1]]
            if total > best[j]:
                best[j], back[j] = total, i
    bounds: list[tuple[int, int]] = []
    j = count
    while j > 0:
        bounds.append((back[j], j))
        j = back[j]
    bounds.reverse()

    found: list[Segment] = []
    for i, j in bounds:
        start, end = pieces[i].start, pieces[j - 1].end
        if ellipsis[i] and found:
            prev = found[-1]
            found.append(Segment(prev.label, prev.confidence, start, end))
            continue
        label, confidence = decide(scores.probabilities[index[(i, j)]], labels, threshold)
        if label == OOS and found:
            # Not a request of its own: it belongs to the request before it.
            prev = found[-1]
            found[-1] = Segment(prev.label, prev.confidence, prev.start, end)
            continue
        found.append(Segment(label, confidence, start, end))
    kept = [s for s in found if s.label != OOS]
    if kept:
        return kept
    label, confidence = decide(scores.probabilities[index[(0, count)]], labels, threshold)
    if label == OOS:
        return [Segment(OOS, confidence, 0, len(text))]
    return [Segment(label, confidence, pieces[0].start, pieces[-1].end)]


# A clause that refers to the result of an earlier one.
_REFERENCE = re.compile(
    r"\b(?:the|that|this|its|their)\s+(?:outcome|results?|summary|summaries|recap|draft|output|"
    r"answer|reply|conclusions?|takeaways?|findings|notes|highlights|decisions?|tl;?dr|gist|"
    r"key\s+points)\b|\b(?:it|them|that)\b(?!\s+(?:is|was|the|'s))"
    r"|结果|总结|摘要|概要|要点|草稿|它",
    re.IGNORECASE,
)


def dependencies(
    intents: list[str], clauses: list[str], traits: KindTraits | None = None
) -> list[tuple[int, ...]]:
    """For each clause, the earlier task whose result it refers to ("email Dana the
    outcome"): the nearest earlier producer, when the clause's kind consumes results."""
    kinds = traits if traits is not None else StaticTraits()
    deps: list[tuple[int, ...]] = []
    for i, (intent, text) in enumerate(zip(intents, clauses, strict=True)):
        found: tuple[int, ...] = ()
        if intent != OOS and kinds.consumes(intent) and _REFERENCE.search(text):
            for j in range(i - 1, -1, -1):
                if intents[j] != OOS and kinds.produces(intents[j]):
                    found = (j,)
                    break
        deps.append(found)
    return deps


def parse(
    scorer: ClauseScorer,
    text: str,
    *,
    now_iso: str | None = None,
    timezone: str = "UTC",
    traits: KindTraits | None = None,
    config: SegmenterConfig = DEFAULT_CONFIG,
    overrides: Overrides | None = None,
) -> list[TaskSpec]:
    """Split ``text`` into ordered task specs with slots (``[]`` for empty text).

    ``overrides`` (people's corrections) decide the intent of the whole message when it
    matches one, else of each segment that matches one.
    """
    segments = _apply_overrides(text, segment(text, scorer, config), overrides)
    if not segments:
        return []
    if segments[0].label == OOS:
        return [TaskSpec(OOS, confidence=segments[0].confidence, span=(0, len(text)))]
    if len(segments) > MAX_TASKS:
        last = segments[MAX_TASKS - 1]
        segments = [
            *segments[: MAX_TASKS - 1],
            Segment(last.label, last.confidence, last.start, segments[-1].end),
        ]
    tz = _valid_timezone(timezone)
    ctx = slots.SlotContext(now=_reference_time(now_iso, tz), timezone=tz)
    intents = [s.label for s in segments]
    clause_texts = [text[s.start : s.end] for s in segments]
    deps = dependencies(intents, clause_texts, traits)
    specs: list[TaskSpec] = []
    for seg, clause_text, dep in zip(segments, clause_texts, deps, strict=True):
        values, missing = slots.extract(seg.label, clause_text, ctx)
        specs.append(
            TaskSpec(
                intent=seg.label,
                slots=values,
                confidence=round(seg.confidence, 4),
                span=(seg.start, seg.end),
                depends_on=dep,
                missing=missing,
            )
        )
    return specs


def _apply_overrides(
    text: str, segments: list[Segment], overrides: Overrides | None
) -> list[Segment]:
    if overrides is None or not segments:
        return segments
    whole = overrides.lookup(text)
    if whole is not None:
        label, similarity = whole
        start = len(text) - len(text.lstrip())
        return [Segment(label, similarity, start, len(text.rstrip()))]
    out: list[Segment] = []
    for seg in segments:
        hit = overrides.lookup(text[seg.start : seg.end]) if seg.label != OOS else None
        out.append(seg if hit is None else Segment(hit[0], hit[1], seg.start, seg.end))
    kept = [s for s in out if s.label != OOS]
    return kept or [Segment(OOS, out[0].confidence, 0, len(text))]


def _valid_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("unknown timezone %r; using UTC", name)
        return "UTC"
    return name


def _reference_time(now_iso: str | None, tz: str) -> datetime:
    if now_iso is None:
        return datetime.now(UTC).astimezone(ZoneInfo(tz))
    parsed = datetime.fromisoformat(now_iso)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(tz))
    return parsed.astimezone(ZoneInfo(tz))
