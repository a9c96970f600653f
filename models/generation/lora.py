"""A LoRA adapter (``atombot tune``'s output, or any peft adapter) on top of the base model.

The adapter is merged into the base weights once, at load. Why merge instead of keeping a
``PeftModel``: the merged model is a plain transformers model, so both batching engines run
it unchanged (transformers' continuous batching and our step loop inspect ``model.forward``,
which a ``PeftModel`` wraps in ``*args, **kwargs``), and decoding pays no per-step cost for
the extra low-rank matmuls. The price is that one process serves one adapter, which is what
``ATOMBOT_ADAPTER`` configures anyway.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from models.generation.base import GeneratorUnavailable

logger = logging.getLogger(__name__)

#: The file ``atombot tune`` writes next to the adapter weights.
MANIFEST_NAME = "manifest.json"
#: What peft writes (and needs) in an adapter directory.
ADAPTER_CONFIG_NAME = "adapter_config.json"
#: The base-model configuration fields an adapter's weights depend on.
_SHAPE_FIELDS = (
    "model_type",
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
)


def base_fingerprint(config: Any) -> dict[str, Any]:
    """The shape of a base model (from its transformers config) that an adapter must match."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return {name: getattr(text, name, None) for name in _SHAPE_FIELDS}


def read_manifest(adapter_dir: Path) -> dict[str, Any] | None:
    """The adapter's ``manifest.json``, or None when it has none (an adapter from elsewhere)."""
    path = adapter_dir / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise GeneratorUnavailable(
            f"adapter {str(adapter_dir)!r}: cannot read {MANIFEST_NAME}: {error}"
        ) from error
    if not isinstance(data, dict):
        raise GeneratorUnavailable(
            f"adapter {str(adapter_dir)!r}: {MANIFEST_NAME} is not a JSON object"
        )
    return data


def check_adapter(adapter_dir: Path, model_name: str, config: Any) -> None:
    """Raise GeneratorUnavailable, naming the adapter, when it cannot go on this base model."""
    where = str(adapter_dir)
    if not adapter_dir.is_dir():
        raise GeneratorUnavailable(
            f"adapter {where!r} does not exist; set ATOMBOT_ADAPTER to the directory "
            "`atombot tune` wrote (it holds adapter_config.json), or unset it"
        )
    if not (adapter_dir / ADAPTER_CONFIG_NAME).is_file():
        raise GeneratorUnavailable(
            f"adapter {where!r} has no {ADAPTER_CONFIG_NAME}: it is not a peft LoRA adapter"
        )
    manifest = read_manifest(adapter_dir)
    if manifest is None:
        return
    expected = manifest.get("base_model_shape")
    actual = base_fingerprint(config)
    if isinstance(expected, dict) and expected != actual:
        differences = ", ".join(
            f"{key} {expected.get(key)!r} ≠ {actual.get(key)!r}"
            for key in _SHAPE_FIELDS
            if expected.get(key) != actual.get(key)
        )
        raise GeneratorUnavailable(
            f"adapter {where!r} was trained on {manifest.get('base_model')!r}, which does not "
            f"match the loaded base model {model_name!r} ({differences}); set ATOMBOT_MODEL "
            "to the adapter's base model or ATOMBOT_ADAPTER to an adapter trained on this one"
        )
    trained_on = manifest.get("base_model")
    if trained_on not in (None, model_name):
        logger.warning(
            "adapter %s was trained on %s and is loaded on %s (same shape)",
            where,
            trained_on,
            model_name,
        )


def _made_for(adapter_dir: Path) -> str | None:
    """The base model peft recorded in the adapter's config."""
    try:
        config = json.loads((adapter_dir / ADAPTER_CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    name = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    return name if isinstance(name, str) else None


def _first_lines(error: BaseException) -> str:
    """An error message cut to its first two lines (a shape mismatch lists every tensor)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if len(lines) <= 2:
        return " ".join(lines)
    return f"{lines[0]} {lines[1]} (and {len(lines) - 2} more)"


def apply_adapter(model: Any, adapter_dir: Path, model_name: str) -> Any:
    """``model`` with the LoRA adapter in ``adapter_dir`` merged in (checked first)."""
    check_adapter(adapter_dir, model_name, model.config)
    try:
        from peft import PeftModel
    except ImportError as error:
        raise GeneratorUnavailable(
            f"adapter {str(adapter_dir)!r} needs the peft package: pip install peft"
        ) from error
    try:
        wrapped = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
        merged = wrapped.merge_and_unload()
    except Exception as error:
        raise GeneratorUnavailable(
            f"cannot load adapter {str(adapter_dir)!r} onto {model_name!r} (it was made for "
            f"{_made_for(adapter_dir)!r}): {type(error).__name__}: {_first_lines(error)}"
        ) from error
    logger.info("merged adapter %s into %s", adapter_dir, model_name)
    return merged
