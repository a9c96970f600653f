"""A LoRA adapter on the transformers backend: merged at load, refused on the wrong base model.

The adapters here are written with peft directly (random, non-zero LoRA weights), so these
tests specify loading alone; ``tests/bot/test_cli_tune.py`` loads one that `atombot tune` trained.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers
from peft import LoraConfig, get_peft_model

from models.generation import build_generator
from models.generation.base import GenerationRequest, GeneratorUnavailable
from models.generation.hf import HFGenerator
from models.generation.lora import MANIFEST_NAME, base_fingerprint
from models.generation.tiny import build_tiny_model

PROMPT = GenerationRequest(
    messages=({"role": "user", "content": "draft an email to the team about the budget"},),
    max_new_tokens=10,
)


def write_adapter(base: Path, out: Path, *, manifest: dict[str, object] | None = None) -> Path:
    """A peft LoRA adapter for ``base`` whose weights change the model's output."""
    model = transformers.AutoModelForCausalLM.from_pretrained(str(base))
    peft_model = get_peft_model(
        model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM")
    )
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        for name, weight in peft_model.named_parameters():
            if "lora_B" in name:
                weight.normal_(0.0, 0.5)
    peft_model.save_pretrained(str(out))
    if manifest is not None:
        (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    return out


async def greedy(model: Path, adapter: Path | None = None) -> str:
    generator = HFGenerator(str(model), device="cpu", engine="step", adapter=adapter)
    await generator.start()
    try:
        return (await generator.generate(PROMPT)).text
    finally:
        await generator.close()


async def test_an_adapter_is_merged_into_the_model_and_changes_its_output(
    tiny_model: Path, tmp_path: Path
) -> None:
    config = transformers.AutoConfig.from_pretrained(str(tiny_model))
    adapter = write_adapter(
        tiny_model,
        tmp_path / "adapter",
        manifest={"base_model": str(tiny_model), "base_model_shape": base_fingerprint(config)},
    )

    base_text = await greedy(tiny_model)
    adapted = HFGenerator(str(tiny_model), device="cpu", engine="step", adapter=adapter)
    await adapted.start()
    try:
        adapted_text = (await adapted.generate(PROMPT)).text
        # Merged: a plain transformers model serves, so both engines run it unchanged.
        assert type(adapted.model).__name__ == "LlamaForCausalLM"
    finally:
        await adapted.close()

    assert adapted_text != base_text


async def test_an_adapter_trained_on_another_base_model_is_refused_naming_both(
    tiny_model: Path, tmp_path: Path
) -> None:
    other = build_tiny_model(tmp_path / "other", hidden_size=32)
    other_config = transformers.AutoConfig.from_pretrained(str(other))
    adapter = write_adapter(
        other,
        tmp_path / "adapter",
        manifest={"base_model": str(other), "base_model_shape": base_fingerprint(other_config)},
    )

    with pytest.raises(GeneratorUnavailable) as caught:
        await HFGenerator(str(tiny_model), device="cpu", adapter=adapter).start()

    assert str(adapter) in caught.value.reason
    assert str(other) in caught.value.reason
    assert "hidden_size 32 ≠ 64" in caught.value.reason


async def test_a_mismatched_adapter_without_manifest_is_refused_readably(
    tiny_model: Path, tmp_path: Path
) -> None:
    other = build_tiny_model(tmp_path / "other", hidden_size=32)
    adapter = write_adapter(other, tmp_path / "adapter")

    with pytest.raises(GeneratorUnavailable) as caught:
        await HFGenerator(str(tiny_model), device="cpu", adapter=adapter).start()

    assert caught.value.reason.startswith(f"cannot load adapter {str(adapter)!r}")


@pytest.mark.parametrize("kind", ["missing", "not-an-adapter"])
async def test_an_adapter_path_that_holds_no_adapter_is_refused_naming_it(
    tiny_model: Path, tmp_path: Path, kind: str
) -> None:
    adapter = tmp_path / "adapter"
    if kind == "not-an-adapter":
        adapter.mkdir()
        (adapter / "notes.txt").write_text("hello")

    with pytest.raises(GeneratorUnavailable) as caught:
        await HFGenerator(str(tiny_model), device="cpu", adapter=adapter).start()

    assert str(adapter) in caught.value.reason
    assert "ATOMBOT_ADAPTER" in caught.value.reason or "adapter_config.json" in caught.value.reason


def test_the_openai_backend_refuses_an_adapter_and_points_to_the_server() -> None:
    with pytest.raises(GeneratorUnavailable) as caught:
        build_generator(
            kind="openai",
            model="m",
            openai_base_url="http://h:8000/v1",
            openai_api_key=None,
            adapter="/adapters/sft",
        )

    assert "--lora-modules" in caught.value.reason
