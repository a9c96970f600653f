"""Corrections used at once: a per-scope nearest-neighbour override of the classifier.

Until a retrain has learned a correction, the same message (compared normalised) or a near
duplicate of it gets the corrected intent straight from this memory::

    memory = CorrectionMemory(classifier.encoder)
    memory.add(CorrectionExample("book the room", "reminder.create", "slack:T1", now))
    classifier.parse(text, overrides=memory.for_scope("slack:T1"))

"Near duplicate" is a cosine similarity of at least :data:`NEAR_DUPLICATE` between the
normalised embeddings. Scopes are separate: a lookup only sees its own scope's corrections.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from models.intents.encoder import FloatArray, SentenceEncoder
from models.intents.learning import CorrectionExample, normalise

#: Cosine similarity from which a message counts as a near duplicate of a corrected one.
#: On BANKING77 (all-MiniLM-L6-v2), of the training messages whose nearest other training
#: message is at least this close, 96% share its intent (86% at 0.85, 73% at 0.8); the
#: messages above it differ in a word or two ("my card hasn't arrived" / "my card has not
#: arrived yet"), which is what a person retyping a request does.
NEAR_DUPLICATE = 0.9


@dataclass
class _Entry:
    example: CorrectionExample
    vector: FloatArray | None


class ScopeOverrides:
    """The corrections of one scope as parse-time overrides
    (:class:`models.intents.spec.Overrides`)."""

    def __init__(self, memory: CorrectionMemory, scope: str) -> None:
        self.memory = memory
        self.scope = scope

    def lookup(self, text: str) -> tuple[str, float] | None:
        """``(intent, similarity)`` of the matching correction of this scope, or None."""
        return self.memory.lookup(self.scope, text)


class CorrectionMemory:
    """Active corrections by scope, matched exactly (normalised text) or, with an
    ``encoder``, by embedding similarity ≥ ``threshold``."""

    def __init__(
        self, encoder: SentenceEncoder | None = None, *, threshold: float = NEAR_DUPLICATE
    ) -> None:
        self.encoder = encoder
        self.threshold = threshold
        self._scopes: dict[str, dict[str, _Entry]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return sum(len(entries) for entries in self._scopes.values())

    def add(self, example: CorrectionExample) -> None:
        """Use ``example`` from now on (it replaces an earlier correction of the same text)."""
        self.extend([example])

    def extend(self, examples: Iterable[CorrectionExample]) -> None:
        """Add many corrections (one encoder pass), e.g. all stored ones at start-up."""
        items = [e for e in examples if normalise(e.text)]
        vectors: list[FloatArray | None] = [None] * len(items)
        if self.encoder is not None and items:
            vectors = list(self.encoder.encode([normalise(e.text) for e in items]))
        with self._lock:
            for example, vector in zip(items, vectors, strict=True):
                self._scopes.setdefault(example.scope, {})[normalise(example.text)] = _Entry(
                    example, vector
                )

    def remove(self, scope: str, text: str | None = None, *, id: int | None = None) -> bool:
        """Stop using the correction of ``text`` (or with ``id``) in ``scope``; whether
        there was one."""
        with self._lock:
            entries = self._scopes.get(scope, {})
            keys = [
                k
                for k, e in entries.items()
                if (text is not None and k == normalise(text))
                or (id is not None and e.example.id == id)
            ]
            for key in keys:
                del entries[key]
            return bool(keys)

    def clear(self, scope: str | None = None) -> None:
        """Forget the corrections of ``scope`` (None: of every scope), e.g. once a
        retrained classifier has learned them."""
        with self._lock:
            if scope is None:
                self._scopes.clear()
            else:
                self._scopes.pop(scope, None)

    def examples(self, scope: str) -> list[CorrectionExample]:
        """The active corrections of ``scope``."""
        with self._lock:
            return [e.example for e in self._scopes.get(scope, {}).values()]

    def for_scope(self, scope: str) -> ScopeOverrides:
        """The overrides to pass to ``IntentClassifier.parse`` for a message of ``scope``."""
        return ScopeOverrides(self, scope)

    def lookup(self, scope: str, text: str) -> tuple[str, float] | None:
        """``(intent, similarity)`` of the correction of ``scope`` that ``text`` repeats
        (1.0 for the same normalised text), or None."""
        key = normalise(text)
        with self._lock:
            entries = dict(self._scopes.get(scope, {}))
        if not key or not entries:
            return None
        if key in entries:
            return entries[key].example.label, 1.0
        with_vectors = [e for e in entries.values() if e.vector is not None]
        if self.encoder is None or not with_vectors:
            return None
        query = self.encoder.encode([key])[0]
        matrix = np.stack([e.vector for e in with_vectors if e.vector is not None])
        similarity = matrix @ query
        best = int(similarity.argmax())
        if float(similarity[best]) < self.threshold:
            return None
        return with_vectors[best].example.label, float(similarity[best])
