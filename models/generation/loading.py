"""Loading a transformers causal LM for serving: device, dtype, hub access, LoRA adapter.

Blocking throughout (it reads gigabytes): :class:`models.generation.hf.HFGenerator` calls
:func:`load_model` through ``asyncio.to_thread``.
"""

from __future__ import annotations

import importlib
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.generation.base import GeneratorUnavailable
from models.generation.prompting import has_chat_template

logger = logging.getLogger(__name__)

DTYPES = ("float32", "bfloat16", "float16")
#: How long the one probe of the Hugging Face Hub may take before the hub is given up on.
HUB_PROBE_TIMEOUT_S = 3.0


@dataclass
class LoadedModel:
    """A model ready to serve, and what was learned loading it."""

    model: Any
    tokenizer: Any
    device: str
    dtype: str
    #: The model's context window (max position embeddings, capped by the tokenizer's).
    context_length: int
    #: No chat template: prompts are plain "role: content" lines.
    plain_prompt: bool
    #: Stop strings the model directory declares (generation_config.stop_strings).
    stops: tuple[str, ...]


def hide_progress_bars() -> None:
    """Switch off the progress bars transformers and the hub draw on stderr (loading weights,
    converting a GGUF, downloads): in a terminal conversation they are noise."""
    transformers: Any = importlib.import_module("transformers")
    hub_utils: Any = importlib.import_module("huggingface_hub.utils")
    transformers.utils.logging.disable_progress_bar()
    hub_utils.disable_progress_bars()


def hub_offline_env() -> bool:
    """Whether ``HF_HUB_OFFLINE`` forbids the hub."""
    return os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false", "False")


def is_local(name: str) -> bool:
    """Whether ``name`` is a filesystem path rather than a hub model id."""
    return name.startswith(("/", ".", "~")) or Path(name).expanduser().is_dir()


def hub_unreachable(endpoint: str, timeout: float = HUB_PROBE_TIMEOUT_S) -> str | None:
    """Why ``endpoint`` cannot be reached (one HEAD request), or None when it answers.

    Any HTTP answer, even an error status, counts as reachable: only a failed connection
    (no DNS, no route, refused, timed out) means there is no hub to retry.
    """
    request = urllib.request.Request(endpoint.rstrip("/") + "/api/models", method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        return (
            f"{type(reason).__name__}: {reason}"
            if isinstance(reason, BaseException)
            else str(reason)
        )


def explain_load_error(model: str, error: BaseException) -> str:
    """A reason a person can act on, for a model that failed to load."""
    if model.startswith(("/", ".", "~")) and not Path(model).expanduser().exists():
        return (
            f"model path {model!r} does not exist; set ATOMBOT_MODEL to a directory holding "
            "config.json, the tokenizer files and the weights, or to a Hugging Face model id"
        )
    hint = (
        "HF_HUB_OFFLINE is set, so only models already in the local cache or on disk can load"
        if hub_offline_env()
        else "check the model id, access to the Hugging Face Hub, and HF_TOKEN for gated models"
    )
    return f"cannot load model {model!r}: {type(error).__name__}: {error} ({hint})"


def hub_is_down(name: str, endpoint: str | None) -> bool:
    """For a hub model id: probe the hub once, so that no network fails in seconds.

    Returns True when the hub cannot be reached but the model is in the local cache (load
    it from there, without the library's retries); raises GeneratorUnavailable when it
    is not cached either. False: load as usual (local path, HF_HUB_OFFLINE, hub up).
    """
    if is_local(name) or hub_offline_env():
        return False
    from huggingface_hub import constants, try_to_load_from_cache

    endpoint = endpoint or constants.ENDPOINT
    down = hub_unreachable(endpoint)
    if down is None:
        return False
    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        logger.info(
            "the hub at %s cannot be reached (%s); loading %s from the cache", endpoint, down, name
        )
        return True
    raise GeneratorUnavailable(
        f"cannot load model {name!r}: it is not in the local Hugging Face cache and the hub "
        f"at {endpoint} cannot be reached ({down})"
    )


def load_model(
    name: str,
    *,
    device: str | None,
    dtype: str | None,
    trust_remote_code: bool = False,
    hub_endpoint: str | None = None,
    adapter: Path | None = None,
    context_length: int | None = None,
) -> LoadedModel:
    """Load tokenizer and weights of ``name`` (hub id or directory), ready to serve.

    ``device`` defaults to CUDA when available (weights placed by accelerate's
    ``device_map="auto"``), else CPU; ``dtype`` to bfloat16 on CUDA and float32 on CPU. With
    ``adapter``, that LoRA adapter directory is checked against the base model and merged in
    (see :mod:`models.generation.lora`). ``context_length`` overrides the model's own window.
    Raises GeneratorUnavailable for a problem a person must fix; other errors are the
    library's (the caller explains them with :func:`explain_load_error`).
    """
    import torch

    transformers: Any = importlib.import_module("transformers")
    # transformers prints to stderr through a handler of its own; its records go through
    # the application's logging instead (the console keeps them to a file, secrets
    # are redacted).
    transformers.utils.logging.disable_default_handler()
    transformers.utils.logging.enable_propagation()
    if name.startswith(("/", ".", "~")) and not Path(name).expanduser().exists():
        raise GeneratorUnavailable(explain_load_error(name, FileNotFoundError(name)))
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise GeneratorUnavailable(f"device {device!r} was requested but CUDA is not available")
    on_cuda = device.startswith("cuda")
    dtype_name = dtype or ("bfloat16" if on_cuda else "float32")
    hub: dict[str, Any] = {"local_files_only": True} if hub_is_down(name, hub_endpoint) else {}
    tokenizer = transformers.AutoTokenizer.from_pretrained(
        name, trust_remote_code=trust_remote_code, **hub
    )
    # Left padding keeps every row's last token in the last column.
    tokenizer.padding_side = "left"
    kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype_name)}
    if on_cuda:
        kwargs["device_map"] = "auto" if device == "cuda" else device
    model = transformers.AutoModelForCausalLM.from_pretrained(
        name, trust_remote_code=trust_remote_code, **hub, **kwargs
    )
    if adapter is not None:
        from models.generation.lora import apply_adapter

        model = apply_adapter(model, adapter.expanduser(), name)
    if not on_cuda:
        model = model.to(device)
    stops = getattr(model.generation_config, "stop_strings", None)
    if context_length is None:
        config = model.config.get_text_config()
        limit = getattr(config, "max_position_embeddings", None) or 2048
        tok_limit = getattr(tokenizer, "model_max_length", None)
        if isinstance(tok_limit, int) and 0 < tok_limit < limit:
            limit = tok_limit
        context_length = int(limit)
    logger.info(
        "loaded %s%s on %s (%s), context %d tokens",
        name,
        f" with adapter {adapter}" if adapter is not None else "",
        device,
        dtype_name,
        context_length,
    )
    return LoadedModel(
        model=model.eval(),
        tokenizer=tokenizer,
        device=device,
        dtype=dtype_name,
        context_length=context_length,
        plain_prompt=not has_chat_template(tokenizer),
        stops=(stops,) if isinstance(stops, str) else tuple(stops or ()),
    )


def eos_and_pad(model: Any, tokenizer: Any) -> tuple[set[int], int]:
    """The token ids that end a completion, and the one that pads a batch."""
    eos: set[int] = set()
    for source in (model.generation_config.eos_token_id, tokenizer.eos_token_id):
        if isinstance(source, int):
            eos.add(source)
        elif isinstance(source, list):
            eos.update(int(t) for t in source)
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = min(eos) if eos else 0
    return eos, int(pad)
