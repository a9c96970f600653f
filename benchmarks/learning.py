"""The learning loop on BANKING77: a simulated team corrects every wrong task, and the
classifier is retrained as the product does it; plus the Thompson sampler's regret.

Usage::

    python benchmarks/learning.py [--data ../shared/bench-data/banking77] [--quick]
        [--shots 10] [--every 250] [--checkpoints 250,500,1000,2000] [--skip-full]

The team starts from an intents file of ``--shots`` examples per intent (seeded, drawn from
the training split). Messages arrive in a seeded random order from the rest of the training
split; each is classified by the classifier in use, and every wrong one is corrected (the
message with its true label, in the team's scope). Every message nobody corrected is an
accepted reading (the product's ``ATOMBOT_LEARN_ACCEPTED``, on by default: a task left
uncorrected is an example of the kind it was read as); ``--corrections-only`` learns from
the corrections alone. After every ``--every`` corrections the
product's retrain runs (:func:`models.intents.learning.retrain`: candidate vs the current
recipe on the held-out split, promoted only when not worse). Test-split accuracy (fast
mode: the frozen packaged encoder + head) is printed after 0 corrections and at every
checkpoint, with the full-training-split figure for reference.

The texts are encoded once (the retrain's embedding cache, as in the product, where only
new corrections go through the encoder); every retrain still trains its heads, wholeness
head included, from scratch. ``--quick`` runs to 500 corrections without the full-data fit.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from machine import describe


def _bandit(rounds: int, seed: int) -> None:
    from models.bandit import run_simulation

    rates = (0.7, 0.55)
    sim = run_simulation(rates, rounds, seed)
    uniform = rounds * (max(rates) - sum(rates) / len(rates))
    print(
        f"Thompson sampler, two variants (👍 rates {rates[0]:.2f} / {rates[1]:.2f}), {rounds} "
        f"rated results, seed {seed}: regret {sim.regret:.1f} 👍 (uniform choice: "
        f"{uniform:.1f}); better variant chosen {100 * sim.best_share:.1f}% of the time"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the simulation and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = Path(__file__).resolve().parent.parent
    parser.add_argument("--data", type=Path, default=here.parent / "shared/bench-data/banking77")
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--every", type=int, default=250, help="retrain after N corrections")
    parser.add_argument("--checkpoints", default="250,500,1000,2000")
    parser.add_argument("--quick", action="store_true", help="up to 500 corrections, no full fit")
    parser.add_argument("--skip-full", action="store_true", help="no full-data reference fit")
    parser.add_argument(
        "--corrections-only",
        action="store_true",
        help="learn from corrections alone (ATOMBOT_LEARN_ACCEPTED=false), not accepted readings",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path(".atombot-cache/onnx"))
    parser.add_argument("--bandit-rounds", type=int, default=2000)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import torch

    from models.intents import IntentClassifier, load_jsonl
    from models.intents.atomize import decide
    from models.intents.data import IntentDef, IntentsFile
    from models.intents.evaluate import few_shot
    from models.intents.learning import CorrectionExample, retrain
    from models.intents.shared import EmbeddingMemo, shared_encoder

    torch.set_num_threads(args.threads)
    checkpoints = sorted(int(c) for c in args.checkpoints.split(","))
    if args.quick:
        checkpoints = [c for c in checkpoints if c <= 500] or [args.every]
    print(f"machine: {describe()}; threads: {args.threads}")
    train_texts, train_labels = load_jsonl(args.data / "train.jsonl")
    test_texts, test_labels = load_jsonl(args.data / "test.jsonl")

    started = time.perf_counter()
    enc = shared_encoder(cache_dir=args.cache, threads=args.threads)
    memo = EmbeddingMemo(max_items=len(train_texts) + len(test_texts) + 50_000)
    embedded = memo.encode(enc, train_texts + test_texts)
    test_emb = embedded[len(train_texts) :]
    print(
        f"encoded {len(train_texts) + len(test_texts)} texts once in "
        f"{time.perf_counter() - started:.0f}s ({enc.backend})"
    )

    def accuracy(model: IntentClassifier) -> float:
        probs = model.head.probabilities(test_emb, test_texts)
        preds = [decide(row, model.head.labels, model.threshold)[0] for row in probs]
        return sum(p == g for p, g in zip(preds, test_labels, strict=True)) / len(test_labels)

    seed_texts, seed_labels = few_shot(train_texts, train_labels, args.shots, seed=args.seed)
    by_label: dict[str, list[str]] = {}
    for text, label in zip(seed_texts, seed_labels, strict=True):
        by_label.setdefault(label, []).append(text)
    intents = IntentsFile(
        intents=tuple(IntentDef(name=k, examples=tuple(v)) for k, v in sorted(by_label.items())),
        digest=f"banking77-{args.shots}-shot-seed{args.seed}",
    )
    began = time.perf_counter()
    current = IntentClassifier.train(
        seed_texts,
        seed_labels,
        encoder_instance=enc,
        embeddings=memo.encode(enc, seed_texts),
        intents_digest=intents.digest,
    )
    print(
        f"{args.shots} examples per intent ({len(seed_texts)}): test accuracy "
        f"{100 * accuracy(current):.2f}% after 0 corrections "
        f"(trained in {time.perf_counter() - began:.0f}s)"
    )
    sys.stdout.flush()

    used = set(seed_texts)
    stream = [i for i in range(len(train_texts)) if train_texts[i] not in used]
    random.Random(args.seed).shuffle(stream)
    scope = "bench:team"
    clock = datetime(2026, 1, 1, tzinfo=UTC)
    corrections: list[CorrectionExample] = []
    accepted: list[CorrectionExample] = []
    position = 0
    retrains = promoted = 0
    retrain_seconds: list[float] = []
    while len(corrections) < checkpoints[-1]:
        if position >= len(stream):
            print(f"the stream ran out after {len(corrections)} corrections")
            break
        # The model in use classifies the messages until the next retrain is due.
        rest = stream[position:]
        probs = current.head.probabilities(embedded[rest], [train_texts[i] for i in rest])
        due = args.every - len(corrections) % args.every
        for row, i in zip(probs, rest, strict=True):
            position += 1
            clock += timedelta(minutes=1)
            read = decide(row, current.head.labels, current.threshold)[0]
            if read != train_labels[i]:
                corrections.append(CorrectionExample(train_texts[i], train_labels[i], scope, clock))
                due -= 1
                if due == 0:
                    break
            elif not args.corrections_only:
                # Nobody corrected it: an accepted reading (the product's ATOMBOT_LEARN_ACCEPTED).
                accepted.append(
                    CorrectionExample(train_texts[i], read, scope, clock, accepted=True)
                )
        began = time.perf_counter()
        outcome = retrain(intents, corrections + accepted, current, encoder_instance=enc, memo=memo)
        retrain_seconds.append(time.perf_counter() - began)
        retrains += 1
        if outcome.promote:
            current = outcome.candidate
            promoted += 1
        f = outcome.figures
        print(
            f"  retrain at {len(corrections)} corrections, {len(accepted)} accepted "
            f"({position} messages seen): "
            f"{'promoted' if outcome.promote else 'refused'} (held-out "
            f"{100 * f['candidate_accuracy']:.1f}% vs {100 * f['current_accuracy']:.1f}% "
            f"on {f['heldout_size']:.0f}), {retrain_seconds[-1]:.0f}s"
        )
        if len(corrections) in checkpoints:
            print(
                f"after {len(corrections)} corrections: test accuracy "
                f"{100 * accuracy(current):.2f}%"
            )
        sys.stdout.flush()
    if len(corrections) not in checkpoints:
        print(
            f"after {len(corrections)} corrections ({position} messages seen): test accuracy "
            f"{100 * accuracy(current):.2f}%"
        )
    if retrain_seconds:
        print(
            f"{retrains} retrains, {promoted} promoted; retrain time mean "
            f"{sum(retrain_seconds) / len(retrain_seconds):.0f}s, max {max(retrain_seconds):.0f}s"
        )
    if not (args.quick or args.skip_full):
        began = time.perf_counter()
        full = IntentClassifier.train(
            train_texts,
            train_labels,
            encoder_instance=enc,
            embeddings=embedded[: len(train_texts)],
        )
        print(
            f"full training split ({len(train_texts)} examples): test accuracy "
            f"{100 * accuracy(full):.2f}% (trained in {time.perf_counter() - began:.0f}s)"
        )
    _bandit(args.bandit_rounds, args.seed)
    print(f"total {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
