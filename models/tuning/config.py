"""What one ``atombot tune`` run trains: method, data, base model, output and hyperparameters."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The hyperparameters recorded in the manifest (every field but the paths).
_PATHS = ("data", "model", "out")


@dataclass(frozen=True)
class TuneConfig:
    """One tuning run. ``max_steps`` > 0 caps the optimizer steps (overriding ``epochs``);
    ``lora_r``/``lora_alpha``/``lora_dropout`` shape the LoRA adapter (on every linear layer
    but the output head); ``beta`` is DPO's KL strength; ``max_length`` truncates rows in
    tokens; ``logging_steps`` is how often the loss is recorded in the manifest's curve."""

    method: str
    data: Path
    model: str
    out: Path
    epochs: float = 3.0
    learning_rate: float = 2e-4
    max_steps: int = -1
    batch_size: int = 4
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    beta: float = 0.1
    max_length: int = 1024
    logging_steps: int = 5
    seed: int = 0

    def hyperparameters(self) -> dict[str, Any]:
        """The settings that shape training (for the manifest)."""
        values = dataclasses.asdict(self)
        for name in ("method", *_PATHS):
            values.pop(name)
        return values

    def to_json(self) -> str:
        """This config as JSON (how the launcher hands it to the training process)."""
        values = dataclasses.asdict(self)
        for name in ("data", "out"):
            values[name] = str(values[name])
        return json.dumps(values)

    @classmethod
    def from_json(cls, text: str) -> TuneConfig:
        """The config :meth:`to_json` wrote."""
        values = json.loads(text)
        values["data"], values["out"] = Path(values["data"]), Path(values["out"])
        return cls(**values)
