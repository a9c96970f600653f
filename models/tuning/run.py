"""The training process of ``atombot tune``: a LoRA adapter trained with TRL, under accelerate.

:mod:`models.tuning.launch` starts it as ``accelerate launch -m models.tuning.run --config
FILE``; accelerate's environment (process count, CPU or GPU, mixed precision) reaches the
TRL trainer through ``TrainingArguments``. It writes the adapter (peft's
``adapter_config.json`` + weights) and ``manifest.json`` into the config's ``out`` directory.

Exit status: 0 trained, 2 the input is unusable (one line on stderr), 1 training failed.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models.generation.lora import MANIFEST_NAME, base_fingerprint
from models.tuning.config import TuneConfig
from models.tuning.data import TuneData, TuneInputError, load_data

logger = logging.getLogger(__name__)


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _base_model_id(model: str) -> str:
    path = Path(model).expanduser()
    return str(path.resolve()) if path.is_dir() else model


def _trainer(
    config: TuneConfig, data: TuneData, model: Any, tokenizer: Any, *, on_cpu: bool, scratch: str
) -> Any:
    """The TRL trainer for ``config.method`` with a LoRA adapter on ``model``."""
    import torch
    import trl as trl_module
    from peft import LoraConfig

    # trl's lazy module hides its classes from the type checker; datasets ships no types.
    trl: Any = trl_module
    datasets: Any = importlib.import_module("datasets")

    peft_config = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    common: dict[str, Any] = {
        "output_dir": scratch,
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps if config.max_steps > 0 else -1,
        "learning_rate": config.learning_rate,
        "per_device_train_batch_size": config.batch_size,
        "logging_steps": config.logging_steps,
        "logging_first_step": True,
        "save_strategy": "no",
        "report_to": "none",
        "seed": config.seed,
        "use_cpu": on_cpu,
        # Mixed precision only where the hardware has it; float32 on CPU keeps results exact.
        "bf16": (not on_cpu) and torch.cuda.is_bf16_supported(),
        "fp16": False,
        # A LoRA adapter on a small model fits without recomputing activations.
        "gradient_checkpointing": False,
        "disable_tqdm": True,
        "dataloader_pin_memory": not on_cpu,
        "max_length": config.max_length,
    }
    dataset = datasets.Dataset.from_list(data.rows)
    if config.method == "sft":
        return trl.SFTTrainer(
            model=model,
            args=trl.SFTConfig(**common),
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=peft_config,
        )
    # With a peft model and no ref_model, the reference is the base model (adapter disabled).
    return trl.DPOTrainer(
        model=model,
        args=trl.DPOConfig(**common, beta=config.beta),
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
    )


def train(config: TuneConfig) -> dict[str, Any]:
    """Train the adapter ``config`` describes, save it with its manifest; return the manifest."""
    import torch

    transformers: Any = importlib.import_module("transformers")
    data = load_data(config.data, config.method)
    on_cpu = not torch.cuda.is_available()
    tokenizer = transformers.AutoTokenizer.from_pretrained(config.model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = torch.float32 if on_cpu else torch.bfloat16
    model = transformers.AutoModelForCausalLM.from_pretrained(config.model, dtype=dtype)
    curve: list[dict[str, float]] = []

    class LossCurve(transformers.TrainerCallback):  # type: ignore[misc]
        """Keeps every logged training loss for the manifest."""

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **_: Any) -> None:
            if logs and "loss" in logs:
                point = {"step": int(state.global_step), "loss": float(logs["loss"])}
                curve.append(point)

    with tempfile.TemporaryDirectory(prefix="atombot-tune-") as scratch:
        trainer = _trainer(config, data, model, tokenizer, on_cpu=on_cpu, scratch=scratch)
        trainer.add_callback(LossCurve())
        began = time.monotonic()
        result = trainer.train()
        seconds = time.monotonic() - began
    if not trainer.is_world_process_zero():
        return {}
    trainer.model.save_pretrained(str(config.out))
    device = "cpu" if on_cpu else f"cuda ({torch.cuda.get_device_name(0)})"
    manifest: dict[str, Any] = {
        "format": 1,
        "method": config.method,
        "base_model": _base_model_id(config.model),
        "base_model_shape": base_fingerprint(model.config),
        "data_file": str(data.path),
        "data_sha256": data.sha256,
        "data_format": data.format,
        "rows": len(data.rows),
        "hyperparameters": config.hyperparameters(),
        "steps": int(result.global_step),
        "loss_curve": curve,
        "loss_start": curve[0]["loss"] if curve else None,
        "loss_end": curve[-1]["loss"] if curve else None,
        "train_seconds": round(seconds, 3),
        "device": device,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "atombot_version": _version("atombot"),
        "versions": {
            name: _version(name) for name in ("torch", "transformers", "peft", "trl", "accelerate")
        },
    }
    (config.out / MANIFEST_NAME).write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the training process (``--config FILE``, a :class:`TuneConfig` as JSON)."""
    parser = argparse.ArgumentParser(prog="python -m models.tuning.run")
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args(argv)
    config = TuneConfig.from_json(args.config.read_text(encoding="utf-8"))
    try:
        train(config)
    except TuneInputError as error:
        print(f"error: {error.reason}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
