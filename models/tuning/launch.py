"""Starting ``atombot tune``: check the input, then train in a process accelerate launches.

Everything that can be checked before training is: the data file (every row), the base model
(a local directory, or a hub id already in the local cache: tuning never downloads), and the
output directory (it must not exist or be empty, and be creatable). Any problem raises
:class:`~models.tuning.data.TuneInputError` and nothing is written.

Training runs in ``python -m accelerate.commands.launch --num_processes 1 [--cpu] -m
models.tuning.run`` (``--cpu`` when there is no CUDA device), which writes into a staging
directory next to the output; only a run that finished is renamed into place, so a failed or
interrupted run leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.generation.lora import MANIFEST_NAME
from models.tuning.config import TuneConfig
from models.tuning.data import TuneData, TuneInputError, load_data


@dataclass(frozen=True)
class TuneOutcome:
    """A finished run: where the adapter is, and its manifest."""

    out: Path
    manifest: dict[str, Any]


class TuneFailed(Exception):
    """Training started but did not finish (the training process's status and last words)."""

    def __init__(self, reason: str, returncode: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.returncode = returncode


def check_model(model: str) -> None:
    """Raise TuneInputError unless ``model`` can be loaded without the network."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise TuneInputError(f"model directory {model!r} has no config.json")
        return
    if model.startswith(("/", ".", "~")) or path.exists():
        raise TuneInputError(f"model {model!r} is not a directory")
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(model, "config.json"), str):
        raise TuneInputError(
            f"model {model!r} is neither a local directory nor in the Hugging Face cache; "
            "tuning does not download: pass --model a local model directory"
        )


def check_out(out: Path) -> None:
    """Raise TuneInputError unless ``out`` can become the adapter directory."""
    if out.is_symlink():
        # The finished run is renamed onto ``out``, which fails on a link, after training.
        raise TuneInputError(f"--out {str(out)!r} is a symbolic link; give a real directory path")
    if out.exists() and not out.is_dir():
        raise TuneInputError(f"--out {str(out)!r} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        raise TuneInputError(
            f"--out {str(out)!r} already exists and is not empty; choose a new directory"
        )


def _stage(out: Path) -> Path:
    """Create the staging directory next to ``out`` (proves the location is writable)."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    except OSError as error:
        raise TuneInputError(
            f"--out {str(out)!r} cannot be written: {error.strerror or error}"
        ) from error
    # mkdtemp makes it private; the adapter directory gets the usual permissions.
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)
    return staging


def check_hyperparameters(config: TuneConfig) -> None:
    """Raise TuneInputError for a setting training cannot run with."""
    positive = {
        "--lr": config.learning_rate,
        "--batch-size": config.batch_size,
        "--lora-r": config.lora_r,
        "--lora-alpha": config.lora_alpha,
        "--max-length": config.max_length,
        "--logging-steps": config.logging_steps,
    }
    if config.max_steps <= 0:
        positive["--epochs"] = config.epochs
    if config.method == "dpo":
        positive["--beta"] = config.beta
    for flag, value in positive.items():
        # "not > 0" also refuses nan; inf would train forever or overflow inside the trainer.
        if not value > 0 or not math.isfinite(value):
            raise TuneInputError(f"{flag} must be a finite number greater than 0, not {value}")


def check_installed() -> None:
    """Raise TuneInputError unless the training libraries are installed."""
    missing = [
        name for name in ("peft", "trl", "datasets") if importlib.util.find_spec(name) is None
    ]
    if missing:
        raise TuneInputError(
            f"atombot tune needs {', '.join(missing)}: pip install 'atombot[tune]'"
        )


def prepare(config: TuneConfig) -> TuneData:
    """Check everything about ``config`` that can be checked before training."""
    check_installed()
    check_hyperparameters(config)
    data = load_data(config.data, config.method)
    check_model(config.model)
    check_out(config.out)
    return data


def accelerate_command(config_file: Path, *, cpu: bool) -> list[str]:
    """The command that trains: accelerate's launcher running :mod:`models.tuning.run`."""
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--num_processes",
        "1",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
    ]
    if cpu:
        command.append("--cpu")
    return [*command, "-m", "models.tuning.run", "--config", str(config_file)]


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    # Tuning never downloads: the base model was found on disk or in the cache.
    env["HF_HUB_OFFLINE"] = "1"
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    # The training process imports our packages from this checkout, installed or not.
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


def tune(config: TuneConfig) -> TuneOutcome:
    """Check, train and save; raise TuneInputError (nothing written) or TuneFailed."""
    prepare(config)
    import torch  # after the checks: a refusal should not wait for torch to import

    # Folders this run creates on the way to --out, removed again if it fails (deepest first).
    created = [parent for parent in config.out.parents if not parent.exists()]
    try:
        staging = _stage(config.out)
    except TuneInputError:
        _remove_empty(created)
        raise
    try:
        staged = TuneConfig(**{**config.__dict__, "out": staging})
        config_file = staging / ".tune-config.json"
        config_file.write_text(staged.to_json(), encoding="utf-8")
        command = accelerate_command(config_file, cpu=not torch.cuda.is_available())
        process = subprocess.run(command, env=_environment(), check=False)
        config_file.unlink()
        manifest_path = staging / MANIFEST_NAME
        if process.returncode != 0 or not manifest_path.is_file():
            raise TuneFailed(
                f"the training process exited with status {process.returncode}",
                process.returncode or 1,
            )
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if config.out.is_dir():
            config.out.rmdir()  # empty: check_out made sure
        staging.rename(config.out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_empty(created)
        raise
    return TuneOutcome(out=config.out, manifest=manifest)
