"""The classification head: multinomial logistic regression on normalised embeddings.

Training is full-batch L-BFGS in PyTorch (seconds for thousands of examples); inference is
one NumPy matrix product, so the head adds microseconds to a prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from models.intents.features import DIM, SparseRow, featurize, sparse_matrix

FloatArray = npt.NDArray[np.float32]

#: Embeddings are unit length; scaling them makes a small L2 penalty meaningful.
SCALE = 20.0


@dataclass
class LinearHead:
    """``softmax(SCALE * x @ weight.T + lexical_features @ lexical.T + bias)``.

    ``lexical`` (``(len(labels), features.DIM)``) is None for an embedding-only head.
    """

    weight: FloatArray
    bias: FloatArray
    labels: list[str]
    lexical: FloatArray | None = None

    def logits(self, embeddings: FloatArray, texts: list[str] | None = None) -> FloatArray:
        """Unnormalised scores, shape ``(n, len(labels))``; ``texts`` feed the lexical part."""
        out: FloatArray = (SCALE * embeddings) @ self.weight.T + self.bias
        if self.lexical is not None:
            if texts is None:
                raise ValueError("this head also needs the texts (lexical features)")
            for row, text in enumerate(texts):
                indices, values = featurize(text)
                if len(indices):
                    out[row] += self.lexical[:, indices] @ values
        return out

    def probabilities(self, embeddings: FloatArray, texts: list[str] | None = None) -> FloatArray:
        """Class probabilities, shape ``(n, len(labels))``."""
        logits = self.logits(embeddings, texts)
        logits = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        probs: FloatArray = (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)
        return probs

    def to_torch(self) -> torch.nn.Linear:
        """A ``torch.nn.Linear`` with the same parameters (input must be pre-scaled)."""
        layer = torch.nn.Linear(self.weight.shape[1], self.weight.shape[0])
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(self.weight))
            layer.bias.copy_(torch.from_numpy(self.bias))
        return layer

    @classmethod
    def from_torch(cls, layer: torch.nn.Linear, labels: list[str]) -> LinearHead:
        """The inverse of :meth:`to_torch`."""
        return cls(
            weight=layer.weight.detach().cpu().numpy().astype(np.float32),
            bias=layer.bias.detach().cpu().numpy().astype(np.float32),
            labels=list(labels),
        )


def train_head(
    embeddings: FloatArray,
    labels: list[str],
    *,
    texts: list[str] | None = None,
    l2: float = 1e-4,
    lexical_l2: float = 1e-4,
    max_iter: int = 150,
    seed: int = 0,
    rows: list[SparseRow] | None = None,
) -> LinearHead:
    """Fit a logistic-regression head; deterministic for the same inputs.

    With ``texts`` (or their precomputed feature ``rows``) the head also learns weights for
    hashed lexical n-grams.
    """
    classes = sorted(set(labels))
    index = {label: i for i, label in enumerate(classes)}
    torch.manual_seed(seed)
    x = torch.from_numpy(np.ascontiguousarray(embeddings, dtype=np.float32)) * SCALE
    y = torch.tensor([index[label] for label in labels], dtype=torch.long)
    layer = torch.nn.Linear(x.shape[1], len(classes))
    if rows is None and texts is not None:
        rows = [featurize(t) for t in texts]
    # Only hashed columns that occur in the data can get non-zero weights; optimising just
    # those keeps L-BFGS vectors small (a few thousand columns instead of DIM).
    used = np.unique(np.concatenate([idx for idx, _ in rows])) if rows else np.zeros(0, np.int64)
    sparse = (
        sparse_matrix([(np.searchsorted(used, idx), val) for idx, val in rows], len(used))
        if rows is not None
        else None
    )
    lexical = torch.zeros(len(classes), len(used), requires_grad=True)
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()
    params = [*layer.parameters(), lexical] if sparse is not None else list(layer.parameters())
    optimizer = torch.optim.LBFGS(
        params,
        max_iter=max_iter,
        history_size=10,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-5,
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        logits = layer(x)
        penalty = l2 * layer.weight.pow(2).sum()
        if sparse is not None:
            logits = logits + torch.sparse.mm(sparse, lexical.t())
            penalty = penalty + lexical_l2 * lexical.pow(2).sum()
        loss = torch.nn.functional.cross_entropy(logits, y) + penalty
        loss.backward()
        return loss

    # The head's tensors are small: one thread avoids thread-pool synchronisation that
    # dominates (10x slower) on busy machines.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.enable_grad():
            optimizer.step(closure)
    finally:
        torch.set_num_threads(threads)
    head = LinearHead.from_torch(layer, classes)
    if sparse is not None:
        full = np.zeros((len(classes), DIM), dtype=np.float32)
        full[:, used] = lexical.detach().numpy()
        head.lexical = full
    return head
