"""A model that cannot be loaded falls back to the offline model when one is configured."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import UnavailableGenerator, build_generator
from bot.config import Settings
from models.generation.base import GenerationRequest, GeneratorUnavailable
from models.generation.hf import HFGenerator


async def test_an_unloadable_model_is_replaced_by_the_fallback(tiny_model: Path) -> None:
    gen = HFGenerator("/no/such/model", device="cpu", fallback=lambda: tiny_model)
    await gen.start()
    try:
        result = await gen.generate(
            GenerationRequest(messages=({"role": "user", "content": "hi"},), max_new_tokens=3)
        )
        assert gen.model_name == str(tiny_model) and result.completion_tokens > 0
    finally:
        await gen.close()


async def test_without_the_offline_extra_the_original_reason_is_kept() -> None:
    gen = HFGenerator("/no/such/model", device="cpu", fallback=lambda: None)
    with pytest.raises(GeneratorUnavailable, match="/no/such/model"):
        await gen.start()


def test_the_fallback_is_only_used_when_no_model_was_chosen(tmp_path: Path, no_env: None) -> None:
    chosen = build_generator(Settings(model="/my/model", data_dir=tmp_path))
    default = build_generator(Settings(data_dir=tmp_path))
    assert isinstance(chosen, HFGenerator) and chosen._fallback is None
    assert isinstance(default, HFGenerator) and default._fallback is not None


async def test_a_configuration_that_cannot_work_fails_tasks_with_the_reason(
    tmp_path: Path, no_env: None
) -> None:
    gen = build_generator(Settings(generator="openai", data_dir=tmp_path))
    assert isinstance(gen, UnavailableGenerator)
    with pytest.raises(GeneratorUnavailable, match="ATOMBOT_OPENAI_BASE_URL"):
        await gen.start()
