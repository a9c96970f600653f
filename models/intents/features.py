"""Hashed lexical features (word and character n-grams) that complement the embedding.

With a few dozen examples per intent, the sentence embedding alone misses cue words the
examples share ("remind", "digest", "#42"), and all-MiniLM-L6-v2 barely understands
Chinese; character uni/bi-grams of CJK text and word/char n-grams of Latin text fix both.
Hashing (CRC32, stable across processes) keeps the feature space fixed without a
vocabulary file; rows use sublinear term frequencies and are L2-normalised. The first and
last word and the words a how-to question asks about get features of their own.
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from itertools import pairwise

import numpy as np
import numpy.typing as npt
import torch

#: Size of the hashed feature space.
DIM = 1 << 15
#: Row norm of the lexical features; at 1.0 the embedding part fits the few training
#: examples alone and the lexical weights stay near zero (chosen by cross-validation).
LEXICAL_SCALE = 10.0
_TOKEN = re.compile(r"[a-z0-9][a-z0-9'’_.-]*|[#@][\w-]+|[\u4e00-\u9fff]|[?!]")
_CJK = re.compile(r"[\u4e00-\u9fff]")
#: Start of a how-to question ("how do I …", "怎么 …"; not "how's …" or "怎么样", which ask
#: about a state). The words after it are also marked as asked-about ("q:" features), so a
#: linear head can tell "how do I subscribe to digests" (help) from "subscribe to digests"
#: and from "how do I bake bread" (out of scope): on the default intents this lifted
#: held-out in-scope accuracy from 95.0% to 96.1%.
_HOW_TO = re.compile(
    r"\bhow (?:do|can|could|should|would|does|to)\b|\bhow'd\b|(?:怎么|如何|怎样|咋)(?!样|回事)"
)

SparseRow = tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]


def _hash(feature: str) -> int:
    return zlib.crc32(feature.encode("utf-8")) % DIM


def _tokens(text: str) -> list[str]:
    # Numbers and ids carry no intent; keep their shape only.
    return [
        "<num>" if t.isdigit() else "#<num>" if re.fullmatch(r"#\d+", t) else t
        for t in _TOKEN.findall(text)
    ]


def ngrams(text: str) -> Counter[str]:
    """The n-gram features of one text (before hashing)."""
    lowered = text.lower()
    tokens = _tokens(lowered)
    feats: Counter[str] = Counter()
    # First and last word: "帮帮我" or "… 了吗" say more at the edges of a message.
    words = [t for t in tokens if t not in ("?", "!")]
    if words:
        feats["b:<s> " + words[0]] += 1
        feats["b:" + words[-1] + " </s>"] += 1
    how_to = _HOW_TO.search(lowered)
    if how_to:
        asked = _tokens(lowered[how_to.end() :])
        feats.update("q:" + t for t in asked)
        asked_cjk = [t for t in asked if _CJK.match(t)]
        feats.update("q:" + a + b for a, b in pairwise(asked_cjk))
    for i, token in enumerate(tokens):
        feats["w:" + token] += 1
        if i + 1 < len(tokens):
            feats["b:" + token + " " + tokens[i + 1]] += 1
        if not _CJK.match(token) and len(token) > 3:
            padded = f"<{token}>"
            for n in (3, 4, 5):
                for j in range(len(padded) - n + 1):
                    feats[f"c{n}:" + padded[j : j + n]] += 1
    cjk = [t for t in tokens if _CJK.match(t)]
    for i in range(len(cjk) - 1):
        feats["z:" + cjk[i] + cjk[i + 1]] += 1
    return feats


def featurize(text: str) -> SparseRow:
    """Hashed, sublinear-tf feature row of norm ``LEXICAL_SCALE`` as ``(indices, values)``."""
    merged: dict[int, float] = {}
    for feature, count in ngrams(text).items():
        index = _hash(feature)
        merged[index] = merged.get(index, 0.0) + 1.0 + math.log(count)
    if not merged:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    indices = np.fromiter(merged.keys(), dtype=np.int64, count=len(merged))
    values = np.fromiter(merged.values(), dtype=np.float32, count=len(merged))
    values *= LEXICAL_SCALE / float(np.linalg.norm(values))
    return indices, values


def sparse_matrix(rows: list[SparseRow], columns: int = DIM) -> torch.Tensor:
    """Stack rows into a ``(len(rows), columns)`` sparse COO tensor (for training)."""
    row_index = np.concatenate(
        [np.full(len(idx), r, dtype=np.int64) for r, (idx, _) in enumerate(rows)]
        or [np.zeros(0, dtype=np.int64)]
    )
    col_index = np.concatenate([idx for idx, _ in rows] or [np.zeros(0, dtype=np.int64)])
    values = np.concatenate([val for _, val in rows] or [np.zeros(0, dtype=np.float32)])
    return torch.sparse_coo_tensor(
        torch.from_numpy(np.stack([row_index, col_index])),
        torch.from_numpy(values),
        size=(len(rows), columns),
        check_invariants=False,
    ).coalesce()
