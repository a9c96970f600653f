"""Evaluation of a classifier on labelled rows: accuracy, OOS figures and latency; and of
atomization on multi-intent rows ``{"text", "labels": [...]}``: exact intent sequence,
intent set and task count, by number of requests per message, and parse latency."""

from __future__ import annotations

import json
import random
import statistics
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from models.intents.classifier import IntentClassifier
from models.intents.data import IntentsFileError
from models.intents.spec import OOS, IntentParser


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


@dataclass(frozen=True)
class EvalRows:
    """Test rows of a JSONL file: single-label rows and multi-intent rows, apart."""

    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    multi_texts: list[str] = field(default_factory=list)
    multi_labels: list[list[str]] = field(default_factory=list)


def load_eval_rows(path: Path) -> EvalRows:
    """Rows ``{"text", "label"}`` and ``{"text", "labels": [...]}`` of a JSONL file."""
    rows = EvalRows()
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise IntentsFileError(path, number, f"not JSON: {exc.msg}") from exc
            text = row.get("text") if isinstance(row, dict) else None
            if not isinstance(text, str):
                raise IntentsFileError(path, number, 'a row needs a "text" string')
            labels = row.get("labels")
            if isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels):
                rows.multi_texts.append(text)
                rows.multi_labels.append(list(labels))
            elif isinstance(row.get("label"), str):
                rows.texts.append(text)
                rows.labels.append(row["label"])
            else:
                raise IntentsFileError(
                    path, number, 'a row needs a "label" string or a "labels" list of strings'
                )
    return rows


@dataclass
class AtomizationReport:
    """Atomization figures on multi-intent rows (fractions in 0..1, times in ms).

    ``by_count`` maps the number of requests in a message to ``{"rows", "exact",
    "intent_set", "task_count"}``.
    """

    examples: int
    exact: float
    intent_set: float
    task_count: float
    by_count: dict[int, dict[str, float]]
    latency_p50_ms: float
    latency_p95_ms: float

    def as_dict(self) -> dict[str, Any]:
        """The report as a JSON-serialisable dict."""
        return asdict(self)


def parse_latency(
    parser: IntentParser, texts: list[str], *, samples: int = 200, warmup: int = 10
) -> tuple[float, float]:
    """p50 and p95 single-message ``parse`` latency in milliseconds."""
    probe = texts[: max(1, samples)]
    for text in probe[:warmup]:
        parser.parse(text)
    timings: list[float] = []
    for text in probe:
        started = time.perf_counter()
        parser.parse(text)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    p95 = timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))]
    return statistics.median(timings), p95


def evaluate_atomization(
    parser: IntentParser,
    texts: list[str],
    gold: list[list[str]],
    *,
    latency_samples: int = 200,
) -> tuple[AtomizationReport, list[list[str]]]:
    """Parse every message and compare its tasks' intents with ``gold``; also return the
    predicted intent sequences. Out-of-scope results count as no task."""
    predicted = [[s.intent for s in parser.parse(text) if s.intent != OOS] for text in texts]
    groups: dict[int, list[tuple[bool, bool, bool]]] = defaultdict(list)
    for want, got in zip(gold, predicted, strict=True):
        groups[len(want)].append((got == want, set(got) == set(want), len(got) == len(want)))
    every = [row for rows in groups.values() for row in rows]

    def share(rows: list[tuple[bool, bool, bool]], k: int) -> float:
        return sum(r[k] for r in rows) / max(1, len(rows))

    p50, p95 = parse_latency(parser, texts, samples=latency_samples)
    report = AtomizationReport(
        examples=len(texts),
        exact=share(every, 0),
        intent_set=share(every, 1),
        task_count=share(every, 2),
        by_count={
            n: {
                "rows": float(len(rows)),
                "exact": share(rows, 0),
                "intent_set": share(rows, 1),
                "task_count": share(rows, 2),
            }
            for n, rows in sorted(groups.items())
        },
        latency_p50_ms=p50,
        latency_p95_ms=p95,
    )
    return report, predicted


def format_atomization(report: AtomizationReport) -> list[str]:
    """Human-readable lines of an atomization report."""
    lines = [
        f"atomization on {report.examples} messages: exact intent sequence "
        f"{100 * report.exact:.1f}%, intent set {100 * report.intent_set:.1f}%, "
        f"task count {100 * report.task_count:.1f}%"
    ]
    for n, row in report.by_count.items():
        lines.append(
            f"  {n} request{'s' if n != 1 else ''} ({int(row['rows'])} messages): exact "
            f"{100 * row['exact']:.1f}%, set {100 * row['intent_set']:.1f}%, "
            f"count {100 * row['task_count']:.1f}%"
        )
    lines.append(
        f"  parse latency (one message): p50 {report.latency_p50_ms:.2f} ms, "
        f"p95 {report.latency_p95_ms:.2f} ms"
    )
    return lines
