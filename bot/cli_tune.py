"""``atombot tune``: train a LoRA adapter on exported feedback (SFT or DPO), for ATOMBOT_ADAPTER.

``atombot tune --method sft|dpo --data FILE [--model M] [--out DIR] [--epochs N] [--lr LR]
[--max-steps N] ...`` checks the whole data file first (a problem: one line, exit status 2,
nothing written), then trains through accelerate (see :mod:`models.tuning.launch`).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.cli_audit import record_sync
from bot.config import Settings
from bot.texts import t

TUNE_HELP = (
    "fine-tune the generation model on exported feedback: train a LoRA adapter "
    "(SFT on rated answers, or DPO on chosen/rejected pairs) to serve with ATOMBOT_ADAPTER"
)


def register(subparsers: Any) -> None:
    """Add ``tune`` to the ``atombot`` parser."""
    tune = subparsers.add_parser("tune", help=TUNE_HELP, description=TUNE_HELP)
    tune.add_argument(
        "--method",
        required=True,
        choices=["sft", "dpo"],
        help="sft: imitate 👍 answers; dpo: prefer chosen over rejected answers (required)",
    )
    tune.add_argument(
        "--data",
        required=True,
        type=Path,
        help="JSONL from `atombot feedback export --format sft|dpo` (required)",
    )
    tune.add_argument(
        "--model",
        default=None,
        help="base model: a local directory, or a hub id already in the cache "
        "(default: ATOMBOT_MODEL)",
    )
    tune.add_argument(
        "--out",
        type=Path,
        default=None,
        help="new adapter directory (default: ATOMBOT_DATA_DIR/adapters/METHOD-TIMESTAMP)",
    )
    tune.add_argument("--epochs", type=float, default=3.0, help="passes over the data (3)")
    tune.add_argument("--lr", type=float, default=2e-4, help="learning rate (2e-4)")
    tune.add_argument(
        "--max-steps",
        type=int,
        default=-1,
        help="stop after N optimizer steps, overriding --epochs (default -1: no cap)",
    )
    tune.add_argument("--batch-size", type=int, default=4, help="rows per step (4)")
    tune.add_argument("--lora-r", type=int, default=16, help="LoRA rank (16)")
    tune.add_argument("--lora-alpha", type=int, default=32, help="LoRA alpha (32)")
    tune.add_argument("--beta", type=float, default=0.1, help="DPO beta (0.1)")
    tune.add_argument("--max-length", type=int, default=1024, help="tokens per row (1024)")
    tune.add_argument(
        "--logging-steps", type=int, default=5, help="record the loss every N steps (5)"
    )
    tune.add_argument("--seed", type=int, default=0, help="random seed (0)")
    tune.set_defaults(func=run_tune, is_async=False)


def _loss(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "?"


def run_tune(args: argparse.Namespace, settings: Settings) -> int:
    """Check the input, train, and say where the adapter is; 2 on bad input, 1 on failure."""
    from models.tuning import TuneConfig, TuneFailed, TuneInputError, tune

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    config = TuneConfig(
        method=args.method,
        data=args.data,
        model=args.model or settings.model,
        out=args.out or settings.data_dir / "adapters" / f"{args.method}-{stamp}",
        epochs=args.epochs,
        learning_rate=args.lr,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        beta=args.beta,
        max_length=args.max_length,
        logging_steps=args.logging_steps,
        seed=args.seed,
    )
    try:
        outcome = tune(config)
    except TuneInputError as error:
        print(t("tune.error", "en", reason=error.reason), file=sys.stderr)
        return 2
    except TuneFailed as error:
        print(t("tune.failed", "en", reason=error.reason), file=sys.stderr)
        return 1
    manifest = outcome.manifest
    record_sync(
        settings,
        action="tune",
        subject=f"adapter:{outcome.out}"[:255],
        detail={
            k: manifest.get(k) for k in ("method", "base_model", "rows", "steps", "train_seconds")
        },
    )
    print(
        t(
            "tune.done",
            "en",
            method=manifest["method"],
            rows=manifest["rows"],
            seconds=f"{manifest['train_seconds']:.1f}",
            start=_loss(manifest["loss_start"]),
            end=_loss(manifest["loss_end"]),
            steps=manifest["steps"],
            out=outcome.out,
        )
    )
    print(t("tune.use", "en", out=outcome.out, model=manifest["base_model"]))
    return 0
