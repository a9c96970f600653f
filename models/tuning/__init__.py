"""Fine-tuning the generation model on a team's own rated answers (``atombot tune``).

:func:`models.tuning.launch.tune` checks the data file (:mod:`models.tuning.data`), then trains
a LoRA adapter with peft + TRL (SFT or DPO) in a process launched through accelerate
(:mod:`models.tuning.run`), and saves it with a ``manifest.json``. ``ATOMBOT_ADAPTER`` loads
the result in the transformers backend (:mod:`models.generation.lora`).
"""

from __future__ import annotations

from models.tuning.config import TuneConfig
from models.tuning.data import METHODS, TuneInputError, load_data
from models.tuning.launch import TuneFailed, TuneOutcome, tune

__all__ = [
    "METHODS",
    "TuneConfig",
    "TuneFailed",
    "TuneInputError",
    "TuneOutcome",
    "load_data",
    "tune",
]
