"""Saving and loading: identical predictions, reuse while nothing changed, retrain on change."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from models.intents import IntentClassifier

MESSAGES = [
    "summarize this thread and then email Dana the outcome",
    "remind me Friday to follow up",
    "cancel #42",
    "tell me a joke",
    "订阅这个频道的每日摘要",
]


def test_save_load_round_trip_gives_identical_predictions(
    classifier: IntentClassifier, tmp_path: Path
) -> None:
    classifier.save(tmp_path / "saved")
    loaded = IntentClassifier.load(tmp_path / "saved")
    assert np.array_equal(classifier.probabilities(MESSAGES), loaded.probabilities(MESSAGES))
    assert loaded.calibration.threshold == classifier.calibration.threshold
    now = "2026-11-23T10:00:00+08:00"
    for message in MESSAGES:
        assert loaded.parse(message, now_iso=now) == classifier.parse(message, now_iso=now)


def test_saved_files_are_safetensors_and_json(classifier: IntentClassifier, tmp_path: Path) -> None:
    classifier.save(tmp_path / "saved")
    assert (tmp_path / "saved" / "head.safetensors").stat().st_size > 0
    meta = json.loads((tmp_path / "saved" / "classifier.json").read_text())
    assert meta["labels"] == classifier.labels
    assert meta["train"]["mode"] == "fast"


def _small_intents(path: Path, extra: str = "") -> Path:
    path.write_text(
        "nlu:\n"
        "  - intent: help\n    examples: |\n"
        "      - help\n      - what can you do\n      - how do I use you\n"
        "  - intent: task.cancel\n    examples: |\n"
        "      - cancel #4\n      - stop task 7\n      - abort it\n"
        f"{extra}",
        encoding="utf-8",
    )
    return path


def test_load_or_train_reuses_the_saved_classifier_while_the_file_is_unchanged(
    tmp_path: Path,
) -> None:
    intents = _small_intents(tmp_path / "intents.yaml")
    IntentClassifier.load_or_train(intents_path=intents, cache_dir=tmp_path / "cache")
    meta = tmp_path / "cache" / "classifier.json"
    first = meta.stat().st_mtime_ns
    IntentClassifier.load_or_train(intents_path=intents, cache_dir=tmp_path / "cache")
    assert meta.stat().st_mtime_ns == first


def test_load_or_train_retrains_when_the_intents_file_changes(tmp_path: Path) -> None:
    intents = _small_intents(tmp_path / "intents.yaml")
    IntentClassifier.load_or_train(intents_path=intents, cache_dir=tmp_path / "cache")
    _small_intents(
        intents,
        "  - intent: summarize\n    examples: |\n      - summarize this thread\n      - tl;dr\n",
    )
    retrained = IntentClassifier.load_or_train(intents_path=intents, cache_dir=tmp_path / "cache")
    assert "summarize" in retrained.labels
