"""In-process transformers backend: :class:`HFGenerator` loads a model and schedules an engine.

The worker calls :meth:`HFGenerator.generate` once per task, concurrently. Each request becomes
a :class:`~models.generation.engine.Job` served by one batching engine:

* On CUDA, transformers' own continuous batching (:mod:`models.generation.cb_engine`, a paged
  KV cache): requests join the running batch as they arrive and leave as they finish.
* Elsewhere (CPU, or a model that continuous batching does not support) our own step-level
  loop (:mod:`models.generation.step_engine`) does the same over a padded ``DynamicCache``.

Loading (device, dtype, hub, LoRA adapter) lives in :mod:`models.generation.loading`, prompt
building in :mod:`models.generation.prompting`. The names other modules imported from here
before the split are re-exported.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from models.generation import prompting
from models.generation.base import (
    GenerationError,
    GenerationRequest,
    GenerationResult,
    GeneratorUnavailable,
    ProgressCallback,
)
from models.generation.cb_engine import ContinuousBatchingEngine
from models.generation.engine import Engine, Job
from models.generation.loading import (
    DTYPES,
    HUB_PROBE_TIMEOUT_S,
    eos_and_pad,
    explain_load_error,
    hide_progress_bars,
    hub_unreachable,
    load_model,
)
from models.generation.step_engine import StepBatch, StepEngine

__all__ = [
    "HUB_PROBE_TIMEOUT_S",
    "STATUS_LOADING",
    "STATUS_READY",
    "HFGenerator",
    "hide_progress_bars",
    "hub_unreachable",
]

logger = logging.getLogger(__name__)

#: Load status events passed to ``HFGenerator.on_status``.
STATUS_LOADING, STATUS_READY = "loading", "ready"


class HFGenerator:
    """A transformers causal LM served in-process, batching concurrent ``generate`` calls.

    ``model`` is a Hugging Face id or a local directory. Nothing loads until :meth:`start`.
    ``device`` defaults to CUDA when available (weights placed by accelerate's
    ``device_map="auto"``), else CPU; ``dtype`` defaults to bfloat16 on CUDA and float32 on
    CPU. ``engine`` is ``"auto"`` (transformers continuous batching on CUDA, our step-level
    batching elsewhere), ``"cb"`` or ``"step"``. ``max_batch`` bounds the requests served at
    once; more wait in the queue. ``progress_every`` is how many tokens pass between progress
    callbacks. ``cb_options`` are passed to transformers' ``ContinuousBatchingConfig`` (e.g.
    ``num_blocks``, ``max_memory_percent``) to size the paged cache. ``adapter`` is a peft
    LoRA adapter directory (``atombot tune``'s output) merged into the model at load; one
    trained on a different base model is refused.

    For a hub model id the hub (``hub_endpoint``, default the hub library's endpoint) is probed
    once before loading: when it cannot be reached the model is loaded from the local cache,
    or fails at once instead of after the library's retries. When loading fails, ``fallback``
    (if given) returns the directory of a model to serve instead, and one warning, naming it
    ``fallback_label``, says why.
    """

    def __init__(
        self,
        model: str,
        *,
        device: str | None = None,
        max_batch: int = 16,
        dtype: str | None = None,
        engine: str = "auto",
        progress_every: int = 4,
        context_length: int | None = None,
        trust_remote_code: bool = False,
        cb_options: dict[str, Any] | None = None,
        fallback: Callable[[], Path | None] | None = None,
        fallback_label: str = "the offline fallback model",
        hub_endpoint: str | None = None,
        adapter: str | Path | None = None,
    ) -> None:
        if engine not in ("auto", "cb", "step"):
            raise ValueError(f"engine must be 'auto', 'cb' or 'step', not {engine!r}")
        if dtype is not None and dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, not {dtype!r}")
        self.model_name = model
        self.adapter = Path(adapter) if adapter else None
        self._fallback = fallback
        self._fallback_label = fallback_label
        self._hub_endpoint = hub_endpoint
        #: Called (from the event loop) with ``"loading"`` when :meth:`start` begins loading
        #: and ``"ready"`` with the seconds it took when the model serves; for a console line.
        self.on_status: Callable[[str, float], None] | None = None
        self._device = device
        self._max_batch = max(1, max_batch)
        self._dtype = dtype
        self._engine_choice = engine
        self._progress_every = max(1, progress_every)
        self._context_override = context_length
        self._trust_remote_code = trust_remote_code
        self._cb_options = dict(cb_options or {})
        self._context_length = context_length or 2048
        self.model: Any = None
        self.tokenizer: Any = None
        self.engine_name = "none"
        self._engine: Engine | None = None
        self._plain_prompt = False
        #: Stop strings the model directory declares (generation_config.stop_strings).
        self._model_stops: tuple[str, ...] = ()

    @property
    def capacity(self) -> int:
        """How many requests are generated at once (the worker claims this many tasks)."""
        return self._max_batch

    @property
    def context_length(self) -> int:
        """The model's context window in tokens (known after :meth:`start`)."""
        return self._context_length

    async def start(self) -> None:
        """Load tokenizer and weights in a thread; raise GeneratorUnavailable on failure."""
        if self.model is not None:
            return
        began = time.monotonic()
        self._status(STATUS_LOADING, 0.0)
        try:
            await asyncio.to_thread(self._load)
        except Exception as error:
            reason = (
                error.reason
                if isinstance(error, GeneratorUnavailable)
                else explain_load_error(self.model_name, error)
            )
            if not await self._load_fallback(reason):
                raise GeneratorUnavailable(reason) from error
        await self._start_engine()
        self._status(STATUS_READY, time.monotonic() - began)

    def _status(self, event: str, seconds: float) -> None:
        if self.on_status is not None:
            try:
                self.on_status(event, seconds)
            except Exception:
                logger.exception("status callback failed")

    async def _load_fallback(self, reason: str) -> bool:
        """Load the fallback model instead, when one is configured (the caller checked that
        it is installed); ``fallback`` returning None means it is not, after all."""
        if self._fallback is None:
            return False
        # The one line that says what happened and what to do about it, logged before the
        # fallback's first-start conversion so that the wait is explained.
        logger.warning(
            "%s; using %s instead (expect rough drafts; set ATOMBOT_MODEL to a local "
            "instruction-tuned model, or ATOMBOT_GENERATOR=openai, for useful quality)",
            reason,
            self._fallback_label,
        )
        try:
            path = await asyncio.to_thread(self._fallback)
        except Exception as error:
            raise GeneratorUnavailable(f"{reason}; offline fallback failed: {error}") from error
        if path is None:
            return False
        self.model_name = str(path)
        await asyncio.to_thread(self._load)
        return True

    def _load(self) -> None:
        loaded = load_model(
            self.model_name,
            device=self._device,
            dtype=self._dtype,
            trust_remote_code=self._trust_remote_code,
            hub_endpoint=self._hub_endpoint,
            adapter=self.adapter,
            context_length=self._context_override,
        )
        self._device = loaded.device
        self.model, self.tokenizer = loaded.model, loaded.tokenizer
        self._context_length = loaded.context_length
        self._plain_prompt = loaded.plain_prompt
        self._model_stops = loaded.stops

    async def _start_engine(self) -> None:
        eos, pad = eos_and_pad(self.model, self.tokenizer)
        on_cuda = str(self._device).startswith("cuda")
        want_cb = self._engine_choice == "cb" or (self._engine_choice == "auto" and on_cuda)
        if want_cb and hasattr(self.model, "init_continuous_batching"):
            engine = ContinuousBatchingEngine(
                self.model,
                self.tokenizer,
                eos_ids=eos,
                pad_id=pad,
                max_batch=self._max_batch,
                progress_every=self._progress_every,
                options=self._cb_options,
            )
            try:
                await engine.start()
            except Exception as error:
                if self._engine_choice == "cb":
                    raise GeneratorUnavailable(
                        f"continuous batching is not available for {self.model_name!r}: {error}"
                    ) from error
                logger.warning("continuous batching unavailable (%s); using step batching", error)
            else:
                self._use(engine)
                return
        step = StepEngine(
            StepBatch(
                self.model,
                self.tokenizer,
                eos_ids=eos,
                pad_id=pad,
                max_batch=self._max_batch,
                context_length=self._context_length,
                progress_every=self._progress_every,
            )
        )
        await step.start()
        self._use(step)

    def _use(self, engine: Engine) -> None:
        self._engine = engine
        self.engine_name = engine.name

    def prompt_ids(self, messages: Iterable[dict[str, str]]) -> list[int]:
        """Token ids of the chat prompt (chat template, or a plain "role: content" join)."""
        if self.tokenizer is None:
            raise GeneratorUnavailable("the generator is not started")
        return prompting.prompt_ids(self.tokenizer, messages, plain=self._plain_prompt)

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this model (exact, from the tokenizer)."""
        return prompting.count_tokens(self.tokenizer, text)

    async def generate(
        self, request: GenerationRequest, on_progress: ProgressCallback | None = None
    ) -> GenerationResult:
        """Complete one request, batched with whatever else is being generated."""
        if self.model is None:
            raise GeneratorUnavailable("the generator is not started")
        try:
            prompt = self.prompt_ids(request.messages)
        except Exception as error:
            raise GenerationError(f"cannot build the prompt: {error}", retryable=False) from error
        if self._model_stops:
            request = dataclasses.replace(request, stop=(*request.stop, *self._model_stops))
        room = self._context_length - len(prompt)
        if room <= 0:
            raise GenerationError(
                f"prompt is {len(prompt)} tokens but the model's context is "
                f"{self._context_length}; split the input",
                retryable=False,
            )
        if self._engine is None:
            raise GeneratorUnavailable("the generator is closed")
        job = Job(
            request=request,
            prompt_ids=prompt,
            max_new_tokens=max(1, min(request.max_new_tokens, room)),
            on_progress=on_progress,
            future=asyncio.get_running_loop().create_future(),
        )
        return await self._engine.run(job)

    async def close(self) -> None:
        """Stop batching, fail what is still queued, and release the model."""
        if self._engine is not None:
            await self._engine.close()
            self._engine = None
        if self.model is not None:
            self.model = None
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
