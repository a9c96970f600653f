"""The intent classifier: sentence encoder + intent head with calibrated out-of-scope
rejection + wholeness head, and ``parse`` (atomization + slots) implementing
:class:`models.intents.spec.IntentParser`.

The pipeline lives in its own modules: :mod:`~models.intents.training` (fit),
:mod:`~models.intents.calibration` (rejection threshold), :mod:`~models.intents.persistence`
(save / load) and :mod:`~models.intents.atomize` (segmentation, dependencies, slots); this
class ties them together and does the prediction.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from models.intents import atomize, persistence
from models.intents.atomize import MAX_TASKS, ClauseScores
from models.intents.calibration import (
    MIN_OOS_RECALL,
    OOS_SHIFTS,
    Calibration,
    calibrate,
    choose_threshold,
    shift_oos,
)
from models.intents.chains import WHOLE
from models.intents.data import IntentsFile, load_intents
from models.intents.encoder import Backend, FloatArray, SentenceEncoder
from models.intents.finetune import FinetuneConfig
from models.intents.head import LinearHead
from models.intents.persistence import FORMAT_VERSION, ClassifierLoadError
from models.intents.spec import KindTraits, Overrides, TaskSpec
from models.intents.training import (
    DEFAULT_PENALTY,
    PENALTY_CANDIDATES,
    ClassifierParts,
    TrainInfo,
    encoder_id,
    fit,
    select_penalty,
)

__all__ = [
    "DEFAULT_PENALTY",
    "FORMAT_VERSION",
    "MAX_TASKS",
    "MIN_OOS_RECALL",
    "OOS_SHIFTS",
    "PENALTY_CANDIDATES",
    "Calibration",
    "ClassifierLoadError",
    "IntentClassifier",
    "TrainInfo",
    "calibrate",
    "choose_threshold",
    "intents_cache_key",
    "select_penalty",
    "shift_oos",
]

logger = logging.getLogger(__name__)


class IntentClassifier:
    """Intent classification + atomization + slot extraction (an ``IntentParser``, and the
    :class:`~models.intents.atomize.ClauseScorer` its segmentation runs on)."""

    def __init__(
        self,
        encoder: SentenceEncoder,
        head: LinearHead,
        calibration: Calibration,
        info: TrainInfo,
        wholeness: LinearHead | None = None,
    ) -> None:
        self.encoder = encoder
        self.head = head
        self.calibration = calibration
        self.info = info
        self.wholeness = wholeness

    @classmethod
    def _from_parts(cls, parts: ClassifierParts) -> IntentClassifier:
        return cls(parts.encoder, parts.head, parts.calibration, parts.info, parts.wholeness)

    def _parts(self) -> ClassifierParts:
        return ClassifierParts(self.encoder, self.head, self.calibration, self.info, self.wholeness)

    # -- training --------------------------------------------------------------------------

    @classmethod
    def train(
        cls,
        texts: list[str],
        labels: list[str],
        *,
        encoder: str | None = None,
        cache_dir: Path | None = None,
        finetune_encoder: bool = False,
        finetune_config: FinetuneConfig | None = None,
        backend: Backend = "auto",
        threads: int | None = None,
        intents_digest: str = "",
        calibrate_oos: bool = True,
        lexical: bool = True,
        atomizer: bool = True,
        balance_prior: bool = True,
        encoder_instance: SentenceEncoder | None = None,
        embeddings: FloatArray | None = None,
        penalty: tuple[float, float] | None = None,
    ) -> IntentClassifier:
        """Train on ``(texts, labels)``: fast head, or fine-tuned encoder + head (see
        :func:`models.intents.training.fit`)."""
        return cls._from_parts(
            fit(
                texts,
                labels,
                encoder=encoder,
                cache_dir=cache_dir,
                finetune_encoder=finetune_encoder,
                finetune_config=finetune_config,
                backend=backend,
                threads=threads,
                intents_digest=intents_digest,
                calibrate_oos=calibrate_oos,
                lexical=lexical,
                atomizer=atomizer,
                balance_prior=balance_prior,
                encoder_instance=encoder_instance,
                embeddings=embeddings,
                penalty=penalty,
            )
        )

    @classmethod
    def from_intents(
        cls,
        intents: IntentsFile,
        *,
        encoder: str | None = None,
        cache_dir: Path | None = None,
        finetune_encoder: bool = False,
        finetune_config: FinetuneConfig | None = None,
        backend: Backend = "auto",
        threads: int | None = None,
    ) -> IntentClassifier:
        """Train from a parsed intents file."""
        texts, labels = intents.examples()
        return cls.train(
            texts,
            labels,
            encoder=encoder,
            cache_dir=cache_dir,
            finetune_encoder=finetune_encoder,
            finetune_config=finetune_config,
            backend=backend,
            threads=threads,
            intents_digest=intents.digest,
        )

    @classmethod
    def load_or_train(
        cls, *, intents_path: Path | None, cache_dir: Path, encoder: str | None = None
    ) -> IntentClassifier:
        """Load the classifier saved in ``cache_dir`` if it was trained from the same intents
        file content and encoder (in the current format); otherwise train the fast head,
        save it there and return it.
        """
        intents = load_intents(intents_path)
        cache_dir = Path(cache_dir)
        if (cache_dir / persistence.META).exists():
            try:
                meta = persistence.read_meta(cache_dir)
                if persistence.is_current(meta, intents.digest, encoder_id(encoder)):
                    return cls.load(cache_dir)
                logger.info("intents file, encoder or format changed; retraining the classifier")
            except (ClassifierLoadError, json.JSONDecodeError, OSError) as exc:
                logger.warning("cannot use the saved classifier (%s); retraining", exc)
        classifier = cls.from_intents(intents, encoder=encoder, cache_dir=cache_dir / "onnx")
        classifier.save(cache_dir)
        return classifier

    # -- persistence -----------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write ``head.safetensors``, ``classifier.json`` and, if fine-tuned, ``encoder/``."""
        persistence.save(self._parts(), directory)

    @classmethod
    def load(
        cls,
        directory: Path,
        *,
        backend: Backend = "auto",
        threads: int | None = None,
        encoder_instance: SentenceEncoder | None = None,
    ) -> IntentClassifier:
        """Load a classifier written by :meth:`save` (ONNX cache under ``directory/onnx``);
        ``encoder_instance`` is reused when it is the encoder the head was trained on."""
        return cls._from_parts(
            persistence.load(
                directory, backend=backend, threads=threads, encoder_instance=encoder_instance
            )
        )

    # -- prediction ------------------------------------------------------------------------

    @property
    def labels(self) -> list[str]:
        """The labels the head knows (``oos`` included when it was trained with it)."""
        return list(self.head.labels)

    @property
    def threshold(self) -> float:
        """The calibrated rejection threshold (see :class:`Calibration`)."""
        return self.calibration.threshold

    def probabilities(self, texts: list[str]) -> FloatArray:
        """Per-label probabilities for each text (columns follow :attr:`labels`)."""
        return self.head.probabilities(self.encoder.encode(texts), texts)

    def score_clauses(self, texts: list[str]) -> ClauseScores:
        """Label probabilities and wholeness of each text, from one encoder pass."""
        embeddings = self.encoder.encode(texts)
        probs = self.head.probabilities(embeddings, texts)
        if self.wholeness is None:
            whole: FloatArray = np.ones(len(texts), dtype=np.float32)
        else:
            column = self.wholeness.labels.index(WHOLE)
            whole = self.wholeness.probabilities(embeddings, texts)[:, column]
        return ClauseScores(probabilities=probs, wholeness=whole)

    def predict(self, texts: list[str]) -> list[tuple[str, float]]:
        """``(label, confidence)`` per text; below the threshold the label is ``oos``."""
        if not texts:
            return []
        probs = self.probabilities(texts)
        return [atomize.decide(row, self.head.labels, self.threshold) for row in probs]

    def parse(
        self,
        text: str,
        *,
        now_iso: str | None = None,
        timezone: str = "UTC",
        traits: KindTraits | None = None,
        overrides: Overrides | None = None,
    ) -> list[TaskSpec]:
        """Split ``text`` into ordered task specs with slots (``[]`` for empty text);
        ``traits`` says which intents produce and consume results (None: built-in kinds);
        ``overrides`` are the corrections of the sender's scope that apply at once
        (:meth:`models.intents.memory.CorrectionMemory.for_scope`)."""
        return atomize.parse(
            self, text, now_iso=now_iso, timezone=timezone, traits=traits, overrides=overrides
        )


def intents_cache_key(intents: IntentsFile, encoder: str | None) -> str:
    """A stable key for (intents content, encoder), e.g. to name cache directories."""
    return hashlib.sha256(f"{intents.digest}|{encoder_id(encoder)}".encode()).hexdigest()[:16]
