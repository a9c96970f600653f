"""Saving and loading a classifier: ``head.safetensors`` + ``classifier.json`` (+ ``encoder/``
when fine-tuned), and the check whether a saved one still fits an intents file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from models.intents.calibration import Calibration
from models.intents.encoder import Backend, SentenceEncoder
from models.intents.head import LinearHead
from models.intents.training import PACKAGED_ENCODER, ClassifierParts, TrainInfo, encoder_path

#: Version 2 added the wholeness head of atomization; version 1 directories still load.
FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
META = "classifier.json"
HEAD = "head.safetensors"
ENCODER_DIR = "encoder"


class ClassifierLoadError(RuntimeError):
    """A saved classifier directory that is missing, incomplete or of another format."""


def read_meta(directory: Path) -> dict[str, Any]:
    """The JSON metadata of a saved classifier."""
    meta: dict[str, Any] = json.loads((Path(directory) / META).read_text(encoding="utf-8"))
    return meta


def is_current(meta: dict[str, Any], intents_digest: str, encoder: str) -> bool:
    """Whether a saved classifier was trained, in this format, from the same intents file
    content and encoder (``encoder`` as :func:`models.intents.training.encoder_id`)."""
    train = meta.get("train", {})
    base = train.get("extra", {}).get("base_encoder")
    return bool(
        meta.get("format") == FORMAT_VERSION
        and train.get("intents_digest") == intents_digest
        and (base or train.get("encoder")) == encoder
    )


def save(parts: ClassifierParts, directory: Path) -> None:
    """Write the classifier's files into ``directory`` (the JSON last, atomically)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    info = parts.info
    if info.mode == "finetune":
        encoder_dir = directory / ENCODER_DIR
        if encoder_dir.exists() and encoder_dir.resolve() != parts.encoder.path.resolve():
            shutil.rmtree(encoder_dir)
        if encoder_dir.resolve() != parts.encoder.path.resolve():
            parts.encoder.save(encoder_dir)
        info.extra.setdefault("base_encoder", info.encoder)
    tensors = {"weight": parts.head.weight, "bias": parts.head.bias}
    if parts.head.lexical is not None:
        tensors["lexical"] = parts.head.lexical
    if parts.wholeness is not None:
        tensors["wholeness_weight"] = parts.wholeness.weight
        tensors["wholeness_bias"] = parts.wholeness.bias
        if parts.wholeness.lexical is not None:
            tensors["wholeness_lexical"] = parts.wholeness.lexical
    save_file(tensors, str(directory / HEAD))
    cal = parts.calibration
    meta = {
        "format": FORMAT_VERSION,
        "labels": parts.head.labels,
        "wholeness_labels": parts.wholeness.labels if parts.wholeness is not None else None,
        "threshold": cal.threshold,
        "calibration": {
            "in_scope_accuracy": cal.in_scope_accuracy,
            "oos_recall": cal.oos_recall,
            "folds": cal.folds,
            "oos_shift": cal.oos_shift,
        },
        "encoder_digest": parts.encoder.digest,
        "train": {
            "mode": info.mode,
            "encoder": info.encoder,
            "intents_digest": info.intents_digest,
            "examples": info.examples,
            "train_seconds": round(info.train_seconds, 3),
            "extra": info.extra,
        },
    }
    tmp = directory / (META + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    tmp.replace(directory / META)


def load(
    directory: Path,
    *,
    backend: Backend = "auto",
    threads: int | None = None,
    encoder_instance: SentenceEncoder | None = None,
) -> ClassifierParts:
    """Read a directory written by :func:`save` (ONNX cache under ``directory/onnx``).

    ``encoder_instance``, an encoder already loaded in this process, is used instead of
    loading the weights again when it is the one the head was trained on (same digest).
    """
    directory = Path(directory)
    try:
        meta = read_meta(directory)
        tensors = load_file(str(directory / HEAD))
    except (OSError, json.JSONDecodeError) as exc:
        raise ClassifierLoadError(f"no usable classifier in {directory}: {exc}") from exc
    if meta.get("format") not in READABLE_FORMATS:
        raise ClassifierLoadError(f"{directory}: unsupported format {meta.get('format')!r}")
    train_meta = meta["train"]
    if train_meta["mode"] == "finetune":
        path = directory / ENCODER_DIR
    else:
        encoder = train_meta["encoder"]
        path = encoder_path(None if encoder == PACKAGED_ENCODER else encoder)
    if encoder_instance is not None and encoder_instance.digest == meta.get("encoder_digest"):
        enc = encoder_instance
    else:
        enc = SentenceEncoder(path, cache_dir=directory / "onnx", backend=backend, threads=threads)
    if enc.digest != meta.get("encoder_digest"):
        raise ClassifierLoadError(
            f"{directory}: the encoder weights at {path} differ from the ones "
            "the head was trained on; retrain"
        )
    head = LinearHead(
        weight=tensors["weight"].astype(np.float32),
        bias=tensors["bias"].astype(np.float32),
        labels=list(meta["labels"]),
        lexical=tensors["lexical"].astype(np.float32) if "lexical" in tensors else None,
    )
    wholeness = None
    if meta.get("wholeness_labels") and "wholeness_weight" in tensors:
        wholeness = LinearHead(
            weight=tensors["wholeness_weight"].astype(np.float32),
            bias=tensors["wholeness_bias"].astype(np.float32),
            labels=list(meta["wholeness_labels"]),
            lexical=(
                tensors["wholeness_lexical"].astype(np.float32)
                if "wholeness_lexical" in tensors
                else None
            ),
        )
    cal = meta.get("calibration", {})
    calibration = Calibration(
        threshold=float(meta.get("threshold", 0.0)),
        in_scope_accuracy=cal.get("in_scope_accuracy"),
        oos_recall=cal.get("oos_recall"),
        folds=int(cal.get("folds", 0)),
        oos_shift=float(cal.get("oos_shift", 0.0)),
    )
    info = TrainInfo(
        mode=train_meta["mode"],
        encoder=train_meta["encoder"],
        intents_digest=train_meta.get("intents_digest", ""),
        examples=int(train_meta.get("examples", 0)),
        train_seconds=float(train_meta.get("train_seconds", 0.0)),
        extra=dict(train_meta.get("extra", {})),
    )
    return ClassifierParts(enc, head, calibration, info, wholeness)
