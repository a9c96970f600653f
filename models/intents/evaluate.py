"""Evaluation of a classifier on labelled rows: accuracy, OOS figures and latency."""

from __future__ import annotations

import random
import statistics
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from models.intents.classifier import IntentClassifier
from models.intents.spec import OOS


@dataclass
class EvalReport:
    """Figures of one evaluation run (fractions in 0..1, times in seconds or ms)."""

    examples: int
    accuracy: float
    in_scope_accuracy: float | None
    oos_recall: float | None
    train_seconds: float
    latency_p50_ms: float
    latency_p95_ms: float
    throughput_per_s: float
    threshold: float
    mode: str
    backend: str

    def as_dict(self) -> dict[str, Any]:
        """The report as a JSON-serialisable dict."""
        return asdict(self)


def few_shot(
    texts: list[str], labels: list[str], per_class: int, *, seed: int = 0
) -> tuple[list[str], list[str]]:
    """``per_class`` random examples of every label (all of them when fewer exist)."""
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_label[label].append(i)
    rng = random.Random(seed)
    chosen: list[int] = []
    for label in sorted(by_label):
        members = list(by_label[label])
        rng.shuffle(members)
        chosen.extend(members[:per_class])
    chosen.sort()
    return [texts[i] for i in chosen], [labels[i] for i in chosen]


def latency(
    classifier: IntentClassifier, texts: list[str], *, samples: int = 200, warmup: int = 10
) -> tuple[float, float]:
    """p50 and p95 single-message ``predict`` latency in milliseconds."""
    probe = texts[: max(1, samples)]
    for text in probe[:warmup]:
        classifier.predict([text])
    timings: list[float] = []
    for text in probe:
        started = time.perf_counter()
        classifier.predict([text])
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    p95 = timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))]
    return statistics.median(timings), p95


def throughput(classifier: IntentClassifier, texts: list[str]) -> float:
    """Messages per second when ``predict`` gets all ``texts`` as one batch."""
    started = time.perf_counter()
    classifier.predict(texts)
    return len(texts) / max(1e-9, time.perf_counter() - started)


def evaluate(
    classifier: IntentClassifier,
    texts: list[str],
    labels: list[str],
    *,
    latency_samples: int = 200,
) -> tuple[EvalReport, list[tuple[str, float]]]:
    """Score ``classifier`` on ``(texts, labels)``; also return every prediction."""
    predictions = classifier.predict(texts)
    correct = [p[0] == gold for p, gold in zip(predictions, labels, strict=True)]
    in_idx = [i for i, gold in enumerate(labels) if gold != OOS]
    oos_idx = [i for i, gold in enumerate(labels) if gold == OOS]
    p50, p95 = latency(classifier, texts, samples=latency_samples)
    report = EvalReport(
        examples=len(texts),
        accuracy=sum(correct) / len(texts),
        in_scope_accuracy=sum(correct[i] for i in in_idx) / len(in_idx) if in_idx else None,
        oos_recall=sum(correct[i] for i in oos_idx) / len(oos_idx) if oos_idx else None,
        train_seconds=classifier.info.train_seconds,
        latency_p50_ms=p50,
        latency_p95_ms=p95,
        throughput_per_s=throughput(classifier, texts),
        threshold=classifier.calibration.threshold,
        mode=classifier.info.mode,
        backend=str(classifier.encoder.backend)
        + (", bfloat16 batches" if classifier.encoder.batch_bf16 else ""),
    )
    return report, predictions
