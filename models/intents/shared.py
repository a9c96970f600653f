"""One sentence encoder per process, shared by every classifier version and scope, and a
bounded cache of its embeddings for retraining.

Loading all-MiniLM-L6-v2 costs about 90 MB and a second or two; a bot that serves several
tenants, each with its own classifier versions, loads it once (:func:`shared_encoder`) and
hands it to every :meth:`~models.intents.classifier.IntentClassifier.load`. Fast-mode heads
never change the encoder, so sharing it cannot change a prediction.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from models.intents.encoder import Backend, FloatArray, SentenceEncoder
from models.intents.training import encoder_id, encoder_path

_lock = threading.Lock()
_pool: dict[str, SentenceEncoder] = {}


def shared_encoder(
    encoder: str | None = None,
    *,
    cache_dir: Path | None = None,
    backend: Backend = "auto",
    threads: int | None = None,
) -> SentenceEncoder:
    """The process's encoder of ``encoder`` (None: the packaged one), loaded on first use.

    ``cache_dir`` (the ONNX export), ``backend`` and ``threads`` apply to that first load.
    """
    key = encoder_id(encoder)
    with _lock:
        found = _pool.get(key)
        if found is None:
            found = SentenceEncoder(
                encoder_path(encoder), cache_dir=cache_dir, backend=backend, threads=threads
            )
            _pool[key] = found
        return found


def adopt_encoder(instance: SentenceEncoder, encoder: str | None = None) -> SentenceEncoder:
    """Make an encoder loaded elsewhere (e.g. by ``load_or_train``) the shared one of
    ``encoder`` unless one is shared already; returns the shared one."""
    key = encoder_id(encoder)
    with _lock:
        return _pool.setdefault(key, instance)


def shared_count() -> int:
    """How many encoders this process has shared (one per distinct encoder)."""
    with _lock:
        return len(_pool)


#: Embeddings kept by the default cache: 20,000 x 384 float32 is about 30 MB.
MEMO_ITEMS = 20_000


class EmbeddingMemo:
    """A least-recently-used cache of embeddings by ``(encoder digest, text)``.

    Retraining re-encodes the intents file and every earlier correction each time; with the
    cache only new texts go through the encoder. A cached vector may differ from a fresh one
    in the last float bits (texts are batched with different padding), never more.
    """

    def __init__(self, max_items: int = MEMO_ITEMS) -> None:
        self.max_items = max_items
        self._items: OrderedDict[tuple[str, str], FloatArray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def encode(self, encoder: SentenceEncoder, texts: list[str]) -> FloatArray:
        """``encoder.encode(texts)``, with cached texts taken from the cache."""
        out = np.empty((len(texts), encoder.dim), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        with self._lock:
            for i, text in enumerate(texts):
                vector = self._items.get((encoder.digest, text))
                if vector is None:
                    missing.setdefault(text, []).append(i)
                else:
                    self._items.move_to_end((encoder.digest, text))
                    out[i] = vector
        if missing:
            fresh = encoder.encode(list(missing))
            with self._lock:
                for vector, (text, rows) in zip(fresh, missing.items(), strict=True):
                    out[rows] = vector
                    self._items[(encoder.digest, text)] = vector
                    self._items.move_to_end((encoder.digest, text))
                while len(self._items) > self.max_items:
                    self._items.popitem(last=False)
        return out


_memo: EmbeddingMemo | None = None


def default_memo() -> EmbeddingMemo:
    """The process's embedding cache (created on first use)."""
    global _memo
    with _lock:
        if _memo is None:
            _memo = EmbeddingMemo()
        return _memo
