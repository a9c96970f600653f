"""Atomization benchmark: MixATIS chained messages, trained on single-intent ATIS only.

Usage::

    python benchmarks/atomize.py [--data ../shared/bench-data/mixatis] [--split test]
        [--threads 2] [--latency-samples 300] [--predictions OUT.jsonl]

Trains the fast classifier on ``train_single.jsonl`` (single-intent messages only, as an
operator's intents file would be; nothing of the chained messages is seen in training), then
parses every message of ``test.jsonl`` (``--split dev`` for tuning) and prints the exact
intent sequence, intent set and task count accuracy, by number of requests per message,
and the single-message ``parse`` latency p50/p95 on this machine (CPU model, cores).
See the data's README for its source and licence; the data is not part of this repository.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from machine import describe


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    here = Path(__file__).resolve().parent.parent
    parser.add_argument("--data", type=Path, default=here.parent / "shared/bench-data/mixatis")
    parser.add_argument("--split", default="test", help="test (report) or dev (tuning)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path(".atombot-cache/onnx"))
    parser.add_argument("--latency-samples", type=int, default=300)
    parser.add_argument("--predictions", type=Path, help="write every message's prediction")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import torch

    from models.intents import IntentClassifier, load_jsonl
    from models.intents.evaluate import evaluate_atomization, format_atomization, load_eval_rows

    torch.set_num_threads(args.threads)
    train_texts, train_labels = load_jsonl(args.data / "train_single.jsonl")
    rows = load_eval_rows(args.data / f"{args.split}.jsonl")
    texts = rows.multi_texts + rows.texts
    gold = rows.multi_labels + [[label] for label in rows.labels]
    print(f"machine: {describe()}; inference threads: {args.threads}")
    print(
        f"MixATIS ({args.split}): {len(texts)} messages; trained on {len(train_texts)} "
        f"single-intent messages, {len(set(train_labels))} intents"
    )
    started = time.perf_counter()
    classifier = IntentClassifier.train(
        train_texts, train_labels, cache_dir=args.cache, threads=args.threads
    )
    print(f"train time: {time.perf_counter() - started:.0f}s")
    sys.stdout.flush()
    report, predicted = evaluate_atomization(
        classifier, texts, gold, latency_samples=args.latency_samples
    )
    for line in format_atomization(report):
        print(line)
    if args.predictions:
        with args.predictions.open("w", encoding="utf-8") as handle:
            for text, want, got in zip(texts, gold, predicted, strict=True):
                row = {"text": text, "labels": want, "predicted": got}
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
