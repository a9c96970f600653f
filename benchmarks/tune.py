"""``atombot tune`` speed and effect: wall time, rows/s and the loss from start to end.

Builds the tiny random-weight model (or takes ``--model DIR``), writes a repetitive SFT or DPO
file of ``--rows`` rows, and runs the same ``tune`` the CLI runs (a process launched through
accelerate; CUDA when there is one). Prints the machine, the total wall time (process start,
loading and saving included), the training time, rows/s over training, and the first and
last logged loss. Nothing is downloaded.

    python benchmarks/tune.py                       # SFT on the tiny model
    python benchmarks/tune.py --method dpo --rows 64
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.generation.tiny import build_tiny_model
from models.tuning import TuneConfig, tune

PAIRS = [
    ("draft an email to the team about the budget", "hello team , the budget is ready ."),
    ("summary of the meeting", "the team agreed on the plan . next step : send the report"),
    ("remind me about the contract", "ok , i will remind you about the contract tomorrow"),
    ("reply to the customer", "thanks for the feedback , we will fix the issue this week"),
]


def rows(method: str, count: int) -> list[dict[str, object]]:
    """``count`` rows cycling through a few question/answer pairs."""
    out: list[dict[str, object]] = []
    for i in range(count):
        question, answer = PAIRS[i % len(PAIRS)]
        if method == "sft":
            out.append(
                {
                    "messages": [
                        {"role": "user", "content": question},
                        {"role": "assistant", "content": answer},
                    ]
                }
            )
        else:
            out.append(
                {
                    "prompt": [{"role": "user", "content": question}],
                    "chosen": [{"role": "assistant", "content": answer}],
                    "rejected": [{"role": "assistant", "content": "no"}],
                }
            )
    return out


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    import torch

    device = (
        f"GPU {torch.cuda.get_device_name(0)}"
        if torch.cuda.is_available()
        else f"CPU {cpu_name()} ({torch.get_num_threads()} threads)"
    )
    return f"{device}, torch {torch.__version__}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=["sft", "dpo"], default="sft")
    parser.add_argument("--model", type=Path, default=None, help="base model dir (default: tiny)")
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="atombot-tune-bench-") as work:
        root = Path(work)
        model = args.model or build_tiny_model(root / "tiny")
        data = root / f"{args.method}.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows(args.method, args.rows)))
        began = time.monotonic()
        outcome = tune(
            TuneConfig(
                method=args.method,
                data=data,
                model=str(model),
                out=root / "adapter",
                epochs=args.epochs,
                learning_rate=args.lr,
                batch_size=args.batch_size,
                logging_steps=1,
            )
        )
        wall = time.monotonic() - began
    manifest = outcome.manifest
    trained_rows = manifest["steps"] * args.batch_size
    print(f"machine: {machine()}")
    print(f"model: {'tiny (random weights)' if args.model is None else args.model}")
    print(
        f"{args.method}: {manifest['rows']} rows x {args.epochs:g} epochs = "
        f"{manifest['steps']} steps of {args.batch_size} on {manifest['device']}"
    )
    print(f"tune wall time: {wall:.1f} s (training {manifest['train_seconds']:.2f} s)")
    print(f"rows/s (training): {trained_rows / max(manifest['train_seconds'], 1e-9):.1f}")
    print(f"rows/s (wall): {trained_rows / wall:.1f}")
    print(f"loss: {manifest['loss_start']:.4g} -> {manifest['loss_end']:.4g}")


if __name__ == "__main__":
    main()
