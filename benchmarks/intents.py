"""Intent classifier benchmark: BANKING77 accuracy, latency and throughput, plus OOS rejection.

Usage::

    python benchmarks/intents.py [--data ../shared/bench-data/banking77] [--skip-finetune]
        [--finetune-full] [--epochs N] [--threads 2]

Prints, for the machine it runs on: BANKING77 test accuracy in fast mode (full data and 10
examples per class) and fine-tune mode (10-shot by default; full data with
``--finetune-full``, which takes hours on 2 CPU cores), single-message latency p50/p95 and
batch throughput beside the plain sentence-transformers baseline measured in the same run,
and OOS recall / in-scope accuracy on a held-out split of the default intents file.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}"


def _percentiles(fn: Callable[[str], Any], texts: list[str]) -> tuple[float, float]:
    for text in texts[:10]:
        fn(text)
    timings: list[float] = []
    for text in texts:
        started = time.perf_counter()
        fn(text)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return statistics.median(timings), timings[round(0.95 * (len(timings) - 1))]


def _baseline(texts: list[str], threads: int) -> tuple[float, float, float]:
    """Plain sentence-transformers inference of the same float32 model."""
    import torch
    from sentence_transformers import SentenceTransformer

    from models.intents.encoder import default_encoder_path

    torch.set_num_threads(threads)
    model = SentenceTransformer(str(default_encoder_path()), device="cpu")
    p50, p95 = _percentiles(lambda t: model.encode([t]), texts[:200])
    started = time.perf_counter()
    model.encode(texts, batch_size=64)
    return p50, p95, len(texts) / (time.perf_counter() - started)


def _oos_split(cache: Path, threads: int) -> None:
    from models.intents import IntentClassifier, load_intents
    from models.intents.spec import OOS

    texts, labels = load_intents().examples()
    rng = random.Random(0)
    order = list(range(len(texts)))
    rng.shuffle(order)
    # Stratified 80/20 split of the shipped intents file (oos included).
    test: set[int] = set()
    for label in sorted(set(labels)):
        members = [i for i in order if labels[i] == label]
        test.update(members[: max(1, len(members) // 5)])
    train_idx = [i for i in range(len(texts)) if i not in test]
    test_idx = sorted(test)
    classifier = IntentClassifier.train(
        [texts[i] for i in train_idx],
        [labels[i] for i in train_idx],
        cache_dir=cache,
        threads=threads,
    )
    preds = classifier.predict([texts[i] for i in test_idx])
    gold = [labels[i] for i in test_idx]
    in_scope = [p[0] == g for p, g in zip(preds, gold, strict=True) if g != OOS]
    oos = [p[0] == OOS for p, g in zip(preds, gold, strict=True) if g == OOS]
    cal = classifier.calibration
    print(
        f"default intents 80/20 split ({len(train_idx)} train / {len(test_idx)} test): "
        f"in-scope accuracy {100 * sum(in_scope) / len(in_scope):.1f}%, "
        f"OOS recall {100 * sum(oos) / len(oos):.1f}% "
        f"(threshold {cal.threshold:.3f}, chosen by {cal.folds}-fold CV on the train part)"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = Path(__file__).resolve().parent.parent
    parser.add_argument("--data", type=Path, default=here.parent / "shared/bench-data/banking77")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-finetune", action="store_true")
    parser.add_argument("--finetune-full", action="store_true", help="also fine-tune on all data")
    parser.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs")
    parser.add_argument("--cache", type=Path, default=Path(".atombot-cache/onnx"))
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import torch

    from models.intents import FinetuneConfig, IntentClassifier, load_jsonl
    from models.intents.evaluate import evaluate, few_shot

    torch.set_num_threads(args.threads)
    train_texts, train_labels = load_jsonl(args.data / "train.jsonl")
    test_texts, test_labels = load_jsonl(args.data / "test.jsonl")
    print(f"machine: {_machine()}; inference threads: {args.threads}")
    print(
        f"BANKING77: {len(train_texts)} train / {len(test_texts)} test, "
        f"{len(set(train_labels))} intents"
    )

    base_p50, base_p95, base_tput = _baseline(test_texts, args.threads)
    print(
        f"baseline sentence-transformers float32: p50 {base_p50:.2f} ms, p95 {base_p95:.2f} ms, "
        f"{base_tput:.0f} messages/s"
    )

    runs: list[tuple[str, bool, int | None]] = [
        ("fast, full data", False, None),
        ("fast, 10-shot", False, 10),
    ]
    if not args.skip_finetune:
        runs.append(("fine-tune, 10-shot", True, 10))
        if args.finetune_full:
            runs.append(("fine-tune, full data", True, None))
    for name, tune, shots in runs:
        texts, labels = (
            few_shot(train_texts, train_labels, shots) if shots else (train_texts, train_labels)
        )
        classifier = IntentClassifier.train(
            texts,
            labels,
            cache_dir=args.cache,
            finetune_encoder=tune,
            finetune_config=FinetuneConfig(epochs=args.epochs) if tune else None,
            threads=args.threads,
        )
        report, _ = evaluate(classifier, test_texts, test_labels)
        print(
            f"{name:22s} accuracy {100 * report.accuracy:.2f}%  train {report.train_seconds:.0f}s  "
            f"p50 {report.latency_p50_ms:.2f} ms  p95 {report.latency_p95_ms:.2f} ms  "
            f"{report.throughput_per_s:.0f} msg/s "
            f"({report.throughput_per_s / base_tput:.2f}x baseline, "
            f"{report.backend})"
        )
        sys.stdout.flush()
    _oos_split(args.cache, args.threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
