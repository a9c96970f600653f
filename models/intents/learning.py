"""Learning from corrections: train a candidate classifier on the intents file plus the
corrections of one scope, and decide whether it may replace the current one.

How a retrain decides (:func:`retrain`):

- **Corrections**: one per message. Texts are compared normalised (:func:`normalise`); of
  several corrections of one message the latest wins. A correction whose label the intents
  file does not define (other than ``oos``, "this was not a request") is ignored. A
  correction overrides a file example of the same text: the scope's people know what they
  meant. Each correction is one training example, like a file example: on BANKING77 a
  larger weight (the example repeated) gave no better curve, and a wrong correction would
  weigh more too.
- **Earlier and new corrections**: the current classifier records the time of the latest
  correction it was trained on (``corrections_until`` in its training info). Corrections up
  to then are *earlier* (accepted once); the rest are *new*, the ones being judged.
- **Held-out split**: a fixed share (:data:`HELDOUT_SHARE`) of the intents file's examples
  and of the earlier corrections, chosen by a hash of the normalised text, so a text is on
  the same side in every run and process. Every label keeps at least
  :data:`MIN_TRAIN_PER_LABEL` training examples. A text that a new correction relabels is
  left out of the held-out split (its right label is what is being judged).
- **Fair comparison**: the current classifier may have been trained on the held-out texts
  (a promoted classifier is refit on everything), so it is not scored as it is. Its recipe
  (the file plus the earlier corrections) and the candidate's (the file plus all
  corrections) are both trained on the same training split and scored on the held-out one.
- **Not worse** (:func:`not_worse`): the held-out texts are paired. The candidate is
  refused when its net loss (texts only the current recipe gets right, less texts only the
  candidate gets right) is larger than chance explains: more than ``1.645 * sqrt(texts the
  two disagree on)`` (a one-sided McNemar test at 5%) and more than :data:`TOLERANCE` of the
  held-out size. A plain "no loss at all" refuses good candidates: on BANKING77 with 10
  examples per intent (152 held-out texts), 250 right corrections cost 3 to 5 held-out
  texts. Deliberately wrong corrections lose far more.
- **What is returned**: a promoted candidate is refit on everything (held-out texts
  included, with the wholeness head of atomization), as the product serves it; a refused
  one is the model trained on the training split, kept for inspection only.
"""

from __future__ import annotations

import hashlib
import math
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from models.intents.classifier import IntentClassifier
from models.intents.data import IntentsFile
from models.intents.encoder import SentenceEncoder
from models.intents.shared import EmbeddingMemo, default_memo, shared_encoder
from models.intents.spec import OOS

#: Share of the intents file and of earlier corrections held out to compare classifiers.
HELDOUT_SHARE = 0.2
#: Fewest training examples a label keeps however its texts hash.
MIN_TRAIN_PER_LABEL = 2
#: "Not worse": at most this share of the held-out texts (rounded down) may be lost.
TOLERANCE = 0.01
#: One-sided 5% quantile of the normal distribution, for the McNemar test of "not worse".
Z = 1.645
#: Training-info key of the latest correction time (POSIX seconds) a classifier learned from.
UNTIL_KEY = "corrections_until"


@dataclass(frozen=True)
class CorrectionExample:
    """A person's correction: ``text`` (a message or one of its clauses) is of intent
    ``label`` (``oos``: not a request) for the people of ``scope`` (``"<platform>:<tenant>"``).
    ``id`` is the stored correction's id, when it has one."""

    text: str
    label: str
    scope: str
    created_at: datetime
    id: int | None = None
    #: Not a correction but an *accepted* task: the classifier's reading that nobody
    #: corrected (see :func:`retrain`). A correction of the same text always wins.
    accepted: bool = False


@dataclass(frozen=True)
class RetrainOutcome:
    """A candidate classifier, its figures and whether it may replace the current one.

    ``figures``: ``candidate_accuracy`` and ``current_accuracy`` (held-out, 0..1),
    ``heldout_size``, ``heldout_corrections``, ``corrections_used``, ``corrections_new``,
    ``corrections_ignored``, ``examples`` (training examples of the candidate),
    ``tolerance`` and ``train_seconds`` (the whole retrain).
    """

    candidate: IntentClassifier
    figures: dict[str, float]
    promote: bool


def normalise(text: str) -> str:
    """The form two texts are compared in: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _bucket(key: str) -> float:
    """A stable number in [0, 1) for a normalised text."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _timestamp(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def corrections_until(classifier: IntentClassifier | None) -> float | None:
    """When the latest correction ``classifier`` learned from was made (None: none)."""
    if classifier is None:
        return None
    value = classifier.info.extra.get(UNTIL_KEY)
    return float(value) if isinstance(value, int | float) else None


def heldout_keys(items: Sequence[tuple[str, str]], share: float = HELDOUT_SHARE) -> set[str]:
    """The normalised texts of ``(text, label)`` items that are held out: those whose hash
    falls below ``share``, fewest-hash first, while their label keeps
    :data:`MIN_TRAIN_PER_LABEL` examples in training."""
    by_label: dict[str, list[str]] = {}
    for text, label in items:
        by_label.setdefault(label, []).append(normalise(text))
    held: set[str] = set()
    for keys in by_label.values():
        unique = sorted(set(keys), key=_bucket)
        room = max(0, len(unique) - MIN_TRAIN_PER_LABEL)
        held.update([k for k in unique if _bucket(k) < share][:room])
    return held


def _latest(
    corrections: Sequence[CorrectionExample], labels: set[str]
) -> tuple[dict[str, CorrectionExample], int]:
    """The latest usable correction per normalised text, and how many were ignored."""
    latest: dict[str, CorrectionExample] = {}
    ignored = 0
    # Accepted readings first, so a person's correction of the same text overrides them.
    for item in sorted(corrections, key=lambda c: (not c.accepted, _timestamp(c.created_at))):
        key = normalise(item.text)
        if not key or (item.label not in labels and item.label != OOS):
            ignored += 1
            continue
        latest[key] = item
    return latest, ignored


def _recipe(
    file_examples: Sequence[tuple[str, str]],
    corrections: dict[str, CorrectionExample],
    exclude: set[str],
) -> tuple[list[str], list[str]]:
    """Training examples: the file's (minus relabelled and excluded texts) + corrections."""
    texts: list[str] = []
    labels: list[str] = []
    for text, label in file_examples:
        key = normalise(text)
        if key not in corrections and key not in exclude:
            texts.append(text)
            labels.append(label)
    for key, item in corrections.items():
        if key not in exclude:
            texts.append(item.text)
            labels.append(item.label)
    return texts, labels


#: Split-trained models by recipe: the current recipe of a retrain is usually the candidate
#: recipe of the one before, so it is trained once, not at every retrain.
_split_models: OrderedDict[str, IntentClassifier] = OrderedDict()
_SPLIT_MODELS = 2


def _train(
    texts: list[str],
    labels: list[str],
    *,
    intents: IntentsFile,
    enc: SentenceEncoder,
    memo: EmbeddingMemo,
    atomizer: bool,
    penalty: tuple[float, float] | None = None,
) -> IntentClassifier:
    return IntentClassifier.train(
        texts,
        labels,
        encoder_instance=enc,
        embeddings=memo.encode(enc, texts),
        intents_digest=intents.digest,
        atomizer=atomizer,
        penalty=penalty,
    )


def _split_model(
    texts: list[str],
    labels: list[str],
    *,
    intents: IntentsFile,
    enc: SentenceEncoder,
    memo: EmbeddingMemo,
) -> IntentClassifier:
    digest = hashlib.sha256(enc.digest.encode())
    for text, label in zip(texts, labels, strict=True):
        digest.update(f"{len(text)}:{text}|{label}\n".encode())
    key = digest.hexdigest()
    found = _split_models.get(key)
    if found is None:
        found = _train(texts, labels, intents=intents, enc=enc, memo=memo, atomizer=False)
        _split_models[key] = found
        while len(_split_models) > _SPLIT_MODELS:
            _split_models.popitem(last=False)
    _split_models.move_to_end(key)
    return found


def _right(model: IntentClassifier, texts: list[str], gold: list[str]) -> list[bool]:
    if not texts:
        return []
    return [p == g for (p, _), g in zip(model.predict(texts), gold, strict=True)]


def not_worse(
    candidate: Sequence[bool], current: Sequence[bool], tolerance: float = TOLERANCE
) -> bool:
    """Whether the candidate's held-out answers (right or wrong, per text) are not worse
    than the current's: its net loss (texts only the current gets right, less those only
    the candidate gets right) is within chance, ``Z * sqrt(discordant)`` (one-sided
    McNemar test at 5%), or within ``tolerance`` of the held-out size."""
    lost = sum(1 for c, b in zip(candidate, current, strict=True) if b and not c)
    won = sum(1 for c, b in zip(candidate, current, strict=True) if c and not b)
    allowed = max(math.floor(tolerance * len(candidate)), Z * math.sqrt(lost + won))
    return lost - won <= allowed


def retrain(
    intents: IntentsFile,
    corrections: Sequence[CorrectionExample],
    current: IntentClassifier | None,
    *,
    encoder: str | None = None,
    seed: int = 0,
    heldout_share: float = HELDOUT_SHARE,
    tolerance: float = TOLERANCE,
    encoder_instance: SentenceEncoder | None = None,
    cache_dir: Path | None = None,
    memo: EmbeddingMemo | None = None,
) -> RetrainOutcome:
    """Train a candidate on ``intents`` + ``corrections`` (one scope's) and compare it with
    ``current`` (None: the intents file alone) on the held-out split; see the module text.

    The encoder is ``encoder_instance``, else the process's shared one of ``encoder``
    (:func:`models.intents.shared.shared_encoder`, ONNX cache in ``cache_dir``). ``seed``
    is recorded; training itself is deterministic.
    """
    started = time.perf_counter()
    enc = encoder_instance or shared_encoder(encoder, cache_dir=cache_dir)
    cache = memo if memo is not None else default_memo()
    file_texts, file_labels = intents.examples()
    file_examples = list(zip(file_texts, file_labels, strict=True))
    latest, ignored = _latest(corrections, set(file_labels))
    until = corrections_until(current)
    earlier = {
        k: c for k, c in latest.items() if until is not None and _timestamp(c.created_at) <= until
    }
    new_keys = {k for k in latest if k not in earlier}

    # The held-out pool: file examples (as the earlier corrections label them) and earlier
    # corrections, each text once.
    # Accepted readings stay out of it: the model that read them got them right by
    # definition, so they would favour the current recipe.
    judged = {k: c for k, c in earlier.items() if not c.accepted}
    pool: dict[str, tuple[str, str]] = {}
    for text, label in file_examples:
        key = normalise(text)
        pool.setdefault(key, (text, judged[key].label if key in judged else label))
    for key, item in judged.items():
        pool[key] = (item.text, item.label)
    held = heldout_keys(list(pool.values()), heldout_share) - new_keys
    eval_texts = [pool[k][0] for k in sorted(held)]
    eval_gold = [pool[k][1] for k in sorted(held)]

    base_texts, base_labels = _recipe(file_examples, earlier, held)
    cand_texts, cand_labels = _recipe(file_examples, latest, held)
    baseline = _split_model(base_texts, base_labels, intents=intents, enc=enc, memo=cache)
    split_candidate = _split_model(cand_texts, cand_labels, intents=intents, enc=enc, memo=cache)
    base_right = _right(baseline, eval_texts, eval_gold)
    cand_right = _right(split_candidate, eval_texts, eval_gold)
    base_acc = sum(base_right) / len(eval_texts) if eval_texts else 1.0
    cand_acc = sum(cand_right) / len(eval_texts) if eval_texts else 1.0
    promote = not_worse(cand_right, base_right, tolerance)

    if promote:
        texts, labels = _recipe(file_examples, latest, set())
        extra = split_candidate.info.extra
        candidate = _train(
            texts,
            labels,
            intents=intents,
            enc=enc,
            memo=cache,
            atomizer=True,
            penalty=(float(extra["l2"]), float(extra["lexical_l2"])),
        )
    else:
        texts, labels, candidate = cand_texts, cand_labels, split_candidate
    stamps = [_timestamp(c.created_at) for c in latest.values()]
    candidate.info.extra[UNTIL_KEY] = max(stamps) if stamps else None
    candidate.info.extra["corrections"] = sum(1 for c in latest.values() if not c.accepted)
    candidate.info.extra["seed"] = seed
    figures = {
        "candidate_accuracy": cand_acc,
        "current_accuracy": base_acc,
        "heldout_size": float(len(eval_texts)),
        "heldout_corrections": float(len(held & set(earlier))),
        "corrections_used": float(sum(1 for c in latest.values() if not c.accepted)),
        "accepted_used": float(sum(1 for c in latest.values() if c.accepted)),
        "corrections_new": float(len(new_keys)),
        "corrections_ignored": float(ignored),
        "examples": float(len(texts)),
        "tolerance": tolerance,
        "train_seconds": time.perf_counter() - started,
    }
    return RetrainOutcome(candidate=candidate, figures=figures, promote=promote)
