"""DPO tuning on chosen/rejected pairs trains an adapter and records it in the manifest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import transformers

from models.generation.lora import base_fingerprint, check_adapter
from models.tuning import TuneConfig, tune
from models.tuning.launch import accelerate_command

PAIRS = [
    {
        "prompt": "draft an email about the budget",
        "chosen": "hello team , the budget is ready .",
        "rejected": "no",
        "task_ids": [7, 8],
    },
    {
        "prompt": "summary of the meeting",
        "chosen": "the team agreed on the plan .",
        "rejected": "ok ok ok",
        "task_ids": [9, 10],
    },
]


def test_training_is_launched_through_accelerate_on_the_cpu_without_cuda(tmp_path: Path) -> None:
    command = accelerate_command(tmp_path / "config.json", cpu=True)

    assert command[1:3] == ["-m", "accelerate.commands.launch"]
    assert "--cpu" in command and command[command.index("--num_processes") + 1] == "1"
    assert command[-4:] == ["-m", "models.tuning.run", "--config", str(tmp_path / "config.json")]
    assert "--cpu" not in accelerate_command(tmp_path / "config.json", cpu=False)


@pytest.mark.slow
def test_a_dpo_tune_writes_an_adapter_and_its_manifest(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    data = tmp_path / "dpo.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in PAIRS * 2), encoding="utf-8")
    out = tmp_path / "dpo-adapter"

    outcome = tune(
        TuneConfig(
            method="dpo",
            data=data,
            model=str(tiny_model),
            out=out,
            max_steps=4,
            batch_size=2,
            learning_rate=5e-3,
            logging_steps=1,
        )
    )

    manifest = json.loads((out / "manifest.json").read_text())
    assert outcome.out == out and outcome.manifest == manifest
    assert manifest["method"] == "dpo" and manifest["data_format"] == "standard"
    assert manifest["rows"] == 4 and manifest["steps"] == 4
    assert manifest["data_sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert [point["step"] for point in manifest["loss_curve"]] == [1, 2, 3, 4]
    assert manifest["hyperparameters"]["beta"] == 0.1
    config = transformers.AutoConfig.from_pretrained(str(tiny_model))
    assert manifest["base_model_shape"] == base_fingerprint(config)
    # The serving side accepts it for this base model.
    check_adapter(out, str(tiny_model), config)
