"""Calibration of out-of-scope rejection: cross-validated threshold and ``oos``-logit shift.

The head's top probability is compared with a threshold chosen on held-out folds of the
training data, so rejection needs no separate validation set from the operator.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from models.intents.encoder import FloatArray
from models.intents.features import SparseRow, featurize
from models.intents.head import train_head
from models.intents.spec import OOS


@dataclass
class Calibration:
    """The rejection threshold and the held-out figures it was chosen on.

    ``oos_shift`` is subtracted from the ``oos`` logit (already folded into the head's bias):
    a catch-all ``oos`` class otherwise wins many uncertain in-scope messages outright,
    which no threshold can take back.
    """

    threshold: float = 0.0
    in_scope_accuracy: float | None = None
    oos_recall: float | None = None
    folds: int = 0
    oos_shift: float = 0.0


def stratified_folds(labels: list[str], folds: int, seed: int) -> list[int]:
    """A fold number per example, each label spread evenly over the folds."""
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_label[label].append(i)
    rng = random.Random(seed)
    assignment = [0] * len(labels)
    for label in sorted(by_label):
        members = by_label[label]
        rng.shuffle(members)
        for k, i in enumerate(members):
            assignment[i] = k % folds
    return assignment


#: OOS recall the calibration must reach on held-out folds before in-scope accuracy counts.
MIN_OOS_RECALL = 0.9
#: Candidate ``oos``-logit shifts tried by :func:`calibrate`.
OOS_SHIFTS = (0.0, 0.5, 1.0, 1.5, 2.0)


def _operating_score(in_ok: float, oos_ok: float, has_oos: bool, min_oos_recall: float) -> float:
    """Rank of an operating point: enough OOS recall first, then in-scope accuracy (when no
    point reaches the recall: in-scope accuracy + OOS recall)."""
    if not has_oos or oos_ok >= min_oos_recall:
        return 2.0 + in_ok
    return in_ok + oos_ok


def choose_threshold(
    probs: FloatArray,
    gold: list[str],
    labels: list[str],
    *,
    min_oos_recall: float = MIN_OOS_RECALL,
) -> tuple[float, float, float]:
    """Pick the max-probability threshold with the best in-scope accuracy among those that
    reach ``min_oos_recall`` (when none does: the best in-scope accuracy + OOS recall).

    A prediction counts as out of scope when the head says ``oos`` or its top probability is
    below the threshold. Returns ``(threshold, in_scope_accuracy, oos_recall)`` on ``probs``.
    """
    top = probs.argmax(axis=1)
    top_p = probs.max(axis=1)
    predicted = [labels[i] for i in top]
    in_idx = [i for i, g in enumerate(gold) if g != OOS]
    oos_idx = [i for i, g in enumerate(gold) if g == OOS]
    best = (-1.0, 0.0, 0.0, 0.0)  # (score, threshold, in-scope accuracy, OOS recall)
    for threshold in sorted({0.0, *np.round(top_p, 4).tolist()}):
        in_ok = sum(1 for i in in_idx if predicted[i] == gold[i] and top_p[i] >= threshold) / max(
            1, len(in_idx)
        )
        oos_ok = sum(1 for i in oos_idx if predicted[i] == OOS or top_p[i] < threshold) / max(
            1, len(oos_idx)
        )
        score = _operating_score(in_ok, oos_ok, bool(oos_idx), min_oos_recall)
        if score > best[0] + 1e-9:
            best = (score, float(threshold), in_ok, oos_ok)
    return best[1], best[2], best[3]


def held_out_probabilities(
    embeddings: FloatArray,
    labels: list[str],
    texts: list[str] | None,
    rows: list[SparseRow] | None,
    assignment: list[int],
    fold: int,
    *,
    l2: float,
    lexical_l2: float,
    balance_prior: bool = False,
) -> tuple[list[int], list[str], FloatArray]:
    """Train a head on every fold but ``fold`` and score that fold's examples.

    ``rows`` are the lexical features of ``texts`` (``None`` without lexical features).
    Returns the fold's example indexes, the head's labels and its probabilities for them.
    """
    train_idx = [i for i, f in enumerate(assignment) if f != fold]
    test_idx = [i for i, f in enumerate(assignment) if f == fold]
    head = train_head(
        embeddings[train_idx],
        [labels[i] for i in train_idx],
        rows=[rows[i] for i in train_idx] if rows is not None else None,
        l2=l2,
        lexical_l2=lexical_l2,
    )
    if balance_prior:
        head.bias += prior_adjustment([labels[i] for i in train_idx], head.labels)
    probs = head.probabilities(
        embeddings[test_idx], [texts[i] for i in test_idx] if texts is not None else None
    )
    return test_idx, head.labels, probs


def calibrate(
    embeddings: FloatArray,
    labels: list[str],
    *,
    texts: list[str] | None = None,
    folds: int = 5,
    seed: int = 0,
    l2: float = 1e-4,
    lexical_l2: float = 1e-4,
    balance_prior: bool = False,
) -> Calibration:
    """Cross-validated threshold choice; no rejection threshold without ``oos`` examples.

    ``texts`` are given when the head uses lexical features too; ``balance_prior`` applies
    :func:`prior_adjustment` to every fold's head, as training does to the final one.
    """
    if OOS not in labels:
        return Calibration()
    counts: dict[str, int] = defaultdict(int)
    for label in labels:
        counts[label] += 1
    folds = max(2, min(folds, min(counts.values())))
    assignment = stratified_folds(labels, folds, seed)
    classes = sorted(counts)
    rows = [featurize(t) for t in texts] if texts is not None else None
    probs = np.zeros((len(labels), len(classes)), dtype=np.float32)
    for fold in range(folds):
        test_idx, head_labels, fold_probs = held_out_probabilities(
            embeddings,
            labels,
            texts,
            rows,
            assignment,
            fold,
            l2=l2,
            lexical_l2=lexical_l2,
            balance_prior=balance_prior,
        )
        for column, label in enumerate(head_labels):
            probs[test_idx, classes.index(label)] = fold_probs[:, column]
    best = (-1.0, Calibration())
    for shift in OOS_SHIFTS:
        threshold, in_acc, oos_recall = choose_threshold(
            shift_oos(probs, classes, shift), labels, classes
        )
        # Ties keep the smaller shift.
        score = _operating_score(in_acc, oos_recall, True, MIN_OOS_RECALL)
        if score > best[0] + 1e-9:
            best = (score, Calibration(threshold, in_acc, oos_recall, folds, shift))
    return best[1]


def shift_oos(probs: FloatArray, classes: list[str], shift: float) -> FloatArray:
    """``probs`` with the ``oos`` logit lowered by ``shift`` (rows renormalised)."""
    if shift == 0.0 or OOS not in classes:
        return probs
    out = probs.copy()
    out[:, classes.index(OOS)] *= float(np.exp(-shift))
    normalised: FloatArray = out / out.sum(axis=1, keepdims=True)
    return normalised


def prior_adjustment(labels: list[str], classes: list[str]) -> FloatArray:
    """Bias offsets that take the training label frequencies out of the head's prior.

    How many examples an intents file has of each intent says how much its author wrote,
    not how often people ask: a head trained on it prefers the intents with many examples
    (ATIS: 3,309 "flight" examples, 6 "meal"). Subtracting each in-scope class's log
    frequency (relative to their mean) makes the prior uniform over in-scope intents
    (logit adjustment, Menon et al. 2021); ``oos`` keeps its bias (its rejection is
    calibrated separately).
    """
    counts: dict[str, int] = defaultdict(int)
    for label in labels:
        counts[label] += 1
    in_scope = [c for c in classes if c != OOS]
    logs = {c: float(np.log(max(1, counts[c]))) for c in in_scope}
    mean = float(np.mean(list(logs.values()))) if logs else 0.0
    return np.array([0.0 if c == OOS else -(logs[c] - mean) for c in classes], dtype=np.float32)
