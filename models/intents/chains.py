"""The wholeness head: is a text one whole request, a chain of several, or a fragment of one?

It is learned from the operator's own single-request examples alone, so it works for any
intents file: *chains* are two or three random examples joined by connectors of their
language ("… and then …", "…, …", "…。然后…"); *fragments* are the pieces a candidate
split point cuts out of one example ("between 10 am" / "2 pm", "email Tom" / "Jerry about
the launch"). The segmenter (:mod:`models.intents.atomize`) then prefers the segmentation
whose segments all look whole: "X and Y" splits when X and Y are whole requests and the
whole is a chain, and stays one request when its parts are fragments.
"""

from __future__ import annotations

import random
import re

import numpy as np

from models.intents.encoder import SentenceEncoder
from models.intents.head import LinearHead, train_head
from models.intents.spec import OOS
from models.intents.splitpoints import atoms, find_cuts

WHOLE, CHAIN, FRAGMENT = "whole", "chain", "fragment"
#: Connectors of synthetic chains, by language; each one is a candidate split point.
EN_CONNECTORS = (
    " and ",
    " and then ",
    ", then ",
    " and also ",
    ", ",
    " also ",
    ". ",
    "; ",
    " then ",
    ", and ",
    " plus ",
)
ZH_CONNECTORS = (
    "，然后",
    "，",
    "然后",
    "。",
    "；",
    "，另外",
    "，还有",
    "，并且",
    "，再",
    "、",
    "，同时",
)
#: Most synthetic examples of each kind (chains, pieces of chains, fragments of examples).
MAX_SYNTHETIC = 600
#: The wholeness head's ``(embedding L2, lexical L2)``: stronger than the intent head's, so
#: its probabilities stay moderate on texts unlike the synthetic ones.
WHOLENESS_L2 = (1e-3, 1e-3)
_CJK = re.compile(r"[\u4e00-\u9fff]")
# A word, or one CJK character (Chinese has no spaces between words).
_WORD = re.compile(r"[\u4e00-\u9fff]|[^\s\u4e00-\u9fff]+")
_SENTENCE_END = re.compile(r"[.!?。！？;；]\s*$")


def _join(parts: list[str], rng: random.Random) -> tuple[str, list[tuple[int, int]]]:
    """``parts`` joined by random connectors, and each part's range in the result."""
    text = ""
    ranges: list[tuple[int, int]] = []
    for k, raw in enumerate(parts):
        part = raw.strip()
        if k:
            zh = bool(_CJK.search(parts[k - 1]) or _CJK.search(part))
            connector = rng.choice(ZH_CONNECTORS if zh else EN_CONNECTORS)
            if not _SENTENCE_END.search(connector.strip() or " "):
                text = _SENTENCE_END.sub("", text)
                ranges[-1] = (ranges[-1][0], len(text))
                if part[:1].isupper() and part[1:2].islower() and not part.startswith("I "):
                    part = part[0].lower() + part[1:]
            text += connector
        ranges.append((len(text), len(text) + len(part)))
        text += part
    return text, ranges


def _spans(count: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(count) for j in range(i + 1, count + 1)]


def synthesize(
    texts: list[str], labels: list[str], *, seed: int = 0, limit: int = MAX_SYNTHETIC
) -> tuple[list[str], list[str]]:
    """Synthetic chains, pieces of chains and fragments of ``texts``, labelled ``chain`` or
    ``fragment`` (a piece that is exactly one example is left out: it is whole)."""
    rng = random.Random(seed)
    out_texts: list[str] = []
    out_labels: list[str] = []
    pool = [t for t, label in zip(texts, labels, strict=True) if label != OOS and t.strip()]
    if len(pool) < 2:
        return out_texts, out_labels
    order = list(range(len(texts)))
    rng.shuffle(order)
    fragments = 0
    for i in order:
        if fragments >= limit // 2:
            break
        pieces, _ = atoms(texts[i], find_cuts(texts[i]))
        if len(pieces) < 2:
            continue
        # A leading piece ("email the vendor" of "email the vendor, ask about …") often
        # reads as a request of its own; the pieces after it are the fragments.
        spans = [s for s in _spans(len(pieces)) if s[0] > 0]
        for lo, hi in rng.sample(spans, min(2, len(spans))):
            out_texts.append(texts[i][pieces[lo].start : pieces[hi - 1].end])
            out_labels.append(FRAGMENT)
            fragments += 1
    # The tail of an example cut at a random word ("Dana about the delayed shipment"):
    # what is left of a request when a split point falls inside it.
    for i in order[: max(0, limit - fragments)]:
        words = list(_WORD.finditer(texts[i]))
        if len(words) >= 3:
            start = words[rng.randrange(1, len(words) - 1)].start()
            out_texts.append(texts[i][start:])
            out_labels.append(FRAGMENT)
    # Parts are drawn intent by intent, so rare intents are chained as often as common
    # ones; a chain keeps to one language, as people write them.
    by_kind: dict[tuple[str, bool], list[str]] = {}
    for t, label in zip(texts, labels, strict=True):
        if label != OOS and t.strip():
            by_kind.setdefault((label, bool(_CJK.search(t))), []).append(t)
    kinds_of = {zh: sorted(k for k in by_kind if k[1] == zh) for zh in (False, True)}

    def draw(zh: bool) -> str:
        options = kinds_of[zh] or kinds_of[not zh]
        return rng.choice(by_kind[rng.choice(options)])

    for _ in range(min(limit, max(50, len(pool)))):
        first = draw(rng.random() < len(kinds_of[True]) / max(1, len(by_kind)))
        zh = bool(_CJK.search(first))
        parts = [first, *(draw(zh) for _ in range(2 if rng.random() < 0.3 else 1))]
        chain, ranges = _join(parts, rng)
        out_texts.append(chain)
        out_labels.append(CHAIN)
        pieces, _ = atoms(chain, find_cuts(chain))
        candidates = []
        for lo, hi in _spans(len(pieces)):
            start, end = pieces[lo].start, pieces[hi - 1].end
            touched = [r for r in ranges if r[0] < end and start < r[1]]
            leading = len(touched) == 1 and touched[0][0] == start
            if (lo, hi) != (0, len(pieces)) and not leading:
                candidates.append((start, end, CHAIN if len(touched) > 1 else FRAGMENT))
        if candidates:
            start, end, kind = rng.choice(candidates)
            out_texts.append(chain[start:end])
            out_labels.append(kind)
    return out_texts, out_labels


def train_wholeness(
    encoder: SentenceEncoder,
    texts: list[str],
    labels: list[str],
    embeddings: np.ndarray,
    *,
    seed: int = 0,
    limit: int = MAX_SYNTHETIC,
    l2: float = WHOLENESS_L2[0],
    lexical_l2: float = WHOLENESS_L2[1],
) -> LinearHead | None:
    """A ``whole`` / ``chain`` / ``fragment`` head on the examples and their synthetic
    chains and fragments (``None`` when the examples are too few to chain).

    Whole examples are subsampled to about as many as the synthetic ones, so the head's
    prior (and so the segmenter's trade-offs) is the same for every intents file.
    """
    synthetic, kinds = synthesize(texts, labels, seed=seed, limit=limit)
    if not synthetic:
        return None
    rng = random.Random(seed + 1)
    # Every example with a split point inside is kept: it is what a whole request with an
    # "and" or a comma looks like, the counterpart of its fragments.
    with_cut = [i for i, t in enumerate(texts) if find_cuts(t)]
    rest = [i for i, t in enumerate(texts) if i not in set(with_cut)]
    rng.shuffle(rest)
    whole_idx = sorted(with_cut[: len(synthetic)] + rest[: max(0, len(synthetic) - len(with_cut))])
    all_texts = [texts[i] for i in whole_idx] + synthetic
    all_embeddings = np.concatenate([embeddings[whole_idx], encoder.encode(synthetic)])
    all_labels = [WHOLE] * len(whole_idx) + kinds
    return train_head(
        all_embeddings.astype(np.float32), all_labels, texts=all_texts, l2=l2, lexical_l2=lexical_l2
    )
