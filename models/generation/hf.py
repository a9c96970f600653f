"""In-process transformers backend with its own batching (continuous batching where possible).

The worker calls :meth:`HFGenerator.generate` once per task, concurrently. Requests are
queued and one scheduler task groups them:

* On CUDA, transformers' own continuous batching (``model.init_continuous_batching()``, a
  paged KV cache) serves them: requests join the running batch as they arrive and leave as
  they finish.
* Elsewhere (CPU, or a model that continuous batching does not support) our own step-level
  loop does the same over a padded, left-aligned ``DynamicCache``: newcomers are prefilled
  together and merged into the running batch between decoding steps, finished rows are
  dropped, and every model step runs in a single worker thread so the event loop stays free.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import inspect
import itertools
import logging
import os
import random
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.generation.base import (
    GenerationError,
    GenerationRequest,
    GenerationResult,
    GeneratorUnavailable,
    ProgressCallback,
)

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

_DTYPES = ("float32", "bfloat16", "float16")
#: After this many steps without running out of memory, the batch limit grows back by one.
_OOM_RECOVERY_STEPS = 500
#: Resubmissions of one request after out-of-memory errors in continuous batching.
_CB_OOM_RETRIES = 3
#: How often a request waiting on continuous batching checks that the manager still runs.
_CB_LIVENESS_S = 5.0
#: How long the one probe of the Hugging Face Hub may take before the hub is given up on.
HUB_PROBE_TIMEOUT_S = 3.0
#: Load status events passed to ``HFGenerator.on_status``.
STATUS_LOADING, STATUS_READY = "loading", "ready"


@dataclass(eq=False)
class _Job:
    """One request travelling through the batching loop (mutated only by the engine thread)."""

    request: GenerationRequest
    prompt_ids: list[int]
    max_new_tokens: int
    on_progress: ProgressCallback | None
    future: asyncio.Future[GenerationResult]
    generated: list[int] = field(default_factory=list)
    text: str = ""
    finish_reason: str | None = None
    error: GenerationError | None = None
    reported_tokens: int = 0
    progress_due: bool = False
    sampler: torch.Generator | None = None

    @property
    def done(self) -> bool:
        """Whether the job has a result or an error."""
        return self.finish_reason is not None or self.error is not None

    @property
    def abandoned(self) -> bool:
        """Whether nobody waits for the result any more (the caller was cancelled)."""
        return self.future.done()


def _cut_at_stop(text: str, stops: Iterable[str]) -> str | None:
    """Return ``text`` cut before the earliest stop string, or None when none occurs."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return None if cut < 0 else text[:cut]


def hide_progress_bars() -> None:
    """Switch off the progress bars transformers and the hub draw on stderr (loading weights,
    converting a GGUF, downloads): in a terminal conversation they are noise."""
    transformers: Any = importlib.import_module("transformers")
    hub_utils: Any = importlib.import_module("huggingface_hub.utils")
    transformers.utils.logging.disable_progress_bar()
    hub_utils.disable_progress_bars()


def _hub_offline_env() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false", "False")


def _is_local(name: str) -> bool:
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


def _explain_load_error(model: str, error: BaseException) -> str:
    """A reason a person can act on, for a model that failed to load."""
    if model.startswith(("/", ".", "~")) and not Path(model).expanduser().exists():
        return (
            f"model path {model!r} does not exist; set ATOMBOT_MODEL to a directory holding "
            "config.json, the tokenizer files and the weights, or to a Hugging Face model id"
        )
    hint = (
        "HF_HUB_OFFLINE is set, so only models already in the local cache or on disk can load"
        if _hub_offline_env()
        else "check the model id, access to the Hugging Face Hub, and HF_TOKEN for gated models"
    )
    return f"cannot load model {model!r}: {type(error).__name__}: {error} ({hint})"


class _StepEngine:
    """Step-level continuous batching over a padded ``DynamicCache`` (runs in one thread).

    The batch is a set of rows left-aligned on a shared cache. ``step`` either prefills the
    newcomers it is given and merges them into the batch, or runs one decoding step for every
    row. Rows leave as soon as they finish; leading padding columns that no row needs any
    more are trimmed so the cache does not grow with departed long prompts.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        eos_ids: set[int],
        pad_id: int,
        max_batch: int,
        context_length: int,
        progress_every: int,
    ) -> None:
        import torch

        self._torch = torch
        self.model = model
        self.tokenizer = tokenizer
        self.eos_ids = eos_ids
        self.pad_id = pad_id
        self.max_batch = max_batch
        self.limit = max_batch
        self.context_length = context_length
        self.progress_every = progress_every
        self.device = next(model.parameters()).device
        self.rows: list[_Job] = []
        self.cache: Any = None
        self.mask: torch.Tensor | None = None
        self.positions: torch.Tensor | None = None
        self.last_tokens: torch.Tensor | None = None
        # Plain dynamic layers can be padded and concatenated; sliding-window or hybrid caches
        # cannot, so for those a new batch only starts when the previous one has finished.
        self.joinable = True
        self._steps_since_oom = 0
        params = inspect.signature(model.forward).parameters
        self._keep_kw = "logits_to_keep" in params
        # transformers 5.x renamed the cache argument (the old name warns, then goes away).
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        # A model directory may ask for it in its generation_config (the offline base model does).
        penalty = getattr(getattr(model, "generation_config", None), "repetition_penalty", None)
        self.repetition_penalty = float(penalty) if isinstance(penalty, int | float) else 1.0

    # -- called from the scheduler (event loop side) while no step runs ---------------

    @property
    def room(self) -> int:
        """How many newcomers the next step may admit."""
        if self.rows and not self.joinable:
            return 0
        return max(0, self.limit - len(self.rows))

    # -- engine thread -----------------------------------------------------------------

    def step(self, newcomers: list[_Job]) -> tuple[list[_Job], list[_Job]]:
        """Run one model step; return (jobs touched by it, jobs to put back in the queue)."""
        torch = self._torch
        self._drop_rows([job for job in self.rows if job.abandoned])
        if not newcomers and not self.rows:
            return [], []
        try:
            with torch.inference_mode():
                touched = self._prefill(newcomers) if newcomers else self._decode()
        except torch.OutOfMemoryError:
            return self._recover_from_oom(newcomers)
        except Exception as error:
            logger.exception("generation step failed")
            # A failed prefill leaves the running batch untouched (newcomers are merged only
            # after their forward pass succeeded); a failed decoding step does not.
            failed = list(newcomers) if newcomers else list(self.rows)
            for job in failed:
                job.error = GenerationError(f"generation failed: {type(error).__name__}: {error}")
            if not newcomers:
                self.reset()
            return failed, []
        self._steps_since_oom += 1
        if self._steps_since_oom >= _OOM_RECOVERY_STEPS and self.limit < self.max_batch:
            self.limit += 1
            self._steps_since_oom = 0
        self._drop_rows([job for job in self.rows if job.done])
        return touched, []

    def _recover_from_oom(self, newcomers: list[_Job]) -> tuple[list[_Job], list[_Job]]:
        """Free memory, halve the batch limit; return (failed jobs, jobs to retry)."""
        torch = self._torch
        # A failed forward may have extended only some cache layers: the cache is unusable.
        # Rows keep their generated tokens and are re-prefilled with them, so no work is lost.
        requeue = [*newcomers, *self.rows]
        self.reset()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if len(requeue) <= 1:
            for job in requeue:
                job.error = GenerationError(
                    "out of GPU memory for a single request; shorten the input or use a larger GPU",
                    retryable=False,
                )
            return requeue, []
        self.limit = max(1, min(self.limit, len(requeue)) // 2)
        self._steps_since_oom = 0
        logger.warning("out of memory: batch limit lowered to %d, retrying", self.limit)
        return [], requeue

    def reset(self) -> None:
        """Forget the running batch and its cache."""
        self.rows = []
        self.cache = None
        self.mask = self.positions = self.last_tokens = None

    def _prefill(self, jobs: list[_Job]) -> list[_Job]:
        torch = self._torch
        from transformers import DynamicCache

        # A re-queued job (after out-of-memory) continues from the tokens it already has.
        sequences = [job.prompt_ids + job.generated for job in jobs]
        width = max(len(seq) for seq in sequences)
        ids = torch.full((len(jobs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(jobs), width), dtype=torch.long)
        for i, seq in enumerate(sequences):
            ids[i, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
            mask[i, width - len(seq) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.model.config)
        extra = {"logits_to_keep": 1} if self._keep_kw else {}
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            **{self._cache_kw: cache},
            **extra,
        )
        cache = self._cache_of(out)
        next_positions = positions[:, -1:] + 1
        tokens = self._choose(out.logits[:, -1, :], jobs)
        if self.rows:
            self._merge(cache, mask, next_positions, jobs)
        else:
            self.cache, self.mask, self.positions = cache, mask, next_positions
            self.rows = list(jobs)
            self.joinable = self._is_joinable(cache)
            self.last_tokens = torch.empty((0, 1), dtype=torch.long, device=self.device)
        assert self.last_tokens is not None
        self.last_tokens = torch.cat([self.last_tokens, tokens.view(-1, 1)], dim=0)
        self._advance(jobs, tokens.tolist())
        return jobs

    def _decode(self) -> list[_Job]:
        torch = self._torch
        assert self.mask is not None and self.positions is not None
        self.mask = torch.cat([self.mask, self.mask.new_ones((len(self.rows), 1))], dim=-1)
        out = self.model(
            input_ids=self.last_tokens,
            attention_mask=self.mask,
            position_ids=self.positions,
            use_cache=True,
            **{self._cache_kw: self.cache},
        )
        self.cache = self._cache_of(out)
        self.positions = self.positions + 1
        tokens = self._choose(out.logits[:, -1, :], self.rows)
        self.last_tokens = tokens.view(-1, 1)
        self._advance(self.rows, tokens.tolist())
        return list(self.rows)

    def _cache_of(self, out: Any) -> Any:
        return out.cache if self._cache_kw == "cache" else out.past_key_values

    @staticmethod
    def _is_joinable(cache: Any) -> bool:
        from transformers.cache_utils import DynamicLayer

        layers: list[Any] = list(getattr(cache, "layers", None) or [])
        return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)

    def _merge(
        self, cache: Any, mask: torch.Tensor, positions: torch.Tensor, jobs: list[_Job]
    ) -> None:
        """Append prefilled newcomers to the running batch, left-padding the shorter side."""
        torch = self._torch
        assert self.mask is not None and self.positions is not None
        old_len, new_len = self.mask.shape[1], mask.shape[1]
        width = max(old_len, new_len)

        def pad(t: Any, extra: int) -> Any:
            if extra == 0:
                return t
            shape = list(t.shape)
            shape[-2 if t.dim() == 4 else -1] = extra
            return torch.cat([t.new_zeros(shape), t], dim=-2 if t.dim() == 4 else -1)

        for old_layer, new_layer in zip(self.cache.layers, cache.layers, strict=True):
            old_layer.keys = torch.cat(
                [pad(old_layer.keys, width - old_len), pad(new_layer.keys, width - new_len)]
            )
            old_layer.values = torch.cat(
                [pad(old_layer.values, width - old_len), pad(new_layer.values, width - new_len)]
            )
        self.mask = torch.cat([pad(self.mask, width - old_len), pad(mask, width - new_len)])
        self.positions = torch.cat([self.positions, positions])
        self.rows.extend(jobs)

    def _drop_rows(self, leaving: list[_Job]) -> None:
        """Remove finished or abandoned rows from the batch and trim unused padding."""
        if not leaving:
            return
        torch = self._torch
        keep = [i for i, job in enumerate(self.rows) if job not in leaving]
        if not keep:
            self.reset()
            return
        index = torch.tensor(keep, dtype=torch.long, device=self.device)
        self.cache.batch_select_indices(index)
        assert self.mask is not None and self.positions is not None and self.last_tokens is not None
        self.mask, self.positions = self.mask[index], self.positions[index]
        self.last_tokens = self.last_tokens[index]
        self.rows = [self.rows[i] for i in keep]
        if self.joinable:
            unused = int((self.mask.cumsum(-1) == 0).sum(-1).min())
            if unused > 0:
                self.mask = self.mask[:, unused:]
                for layer in self.cache.layers:
                    layer.keys = layer.keys[..., unused:, :]
                    layer.values = layer.values[..., unused:, :]

    def _choose(self, logits: torch.Tensor, jobs: list[_Job]) -> torch.Tensor:
        """Greedy tokens for temperature 0, sampled (top-p, optionally seeded) otherwise."""
        torch = self._torch
        if self.repetition_penalty != 1.0:
            logits = self._penalize_repeats(logits, jobs)
        tokens = logits.argmax(-1)
        for i, job in enumerate(jobs):
            request = job.request
            if request.temperature <= 0:
                continue
            if job.sampler is None:
                job.sampler = torch.Generator(device=logits.device)
                seed = request.seed if request.seed is not None else random.getrandbits(63)
                job.sampler.manual_seed(seed)
            probs = torch.softmax(logits[i].float() / request.temperature, dim=-1)
            if request.top_p < 1.0:
                sorted_probs, order = probs.sort(descending=True)
                # Keep the smallest prefix whose mass reaches top_p (always at least one token).
                outside = sorted_probs.cumsum(-1) - sorted_probs > request.top_p
                sorted_probs[outside] = 0.0
                probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
            tokens[i] = torch.multinomial(probs, 1, generator=job.sampler)[0]
        return tokens

    def _penalize_repeats(self, logits: torch.Tensor, jobs: list[_Job]) -> torch.Tensor:
        """The model's ``repetition_penalty`` over each job's generated tokens (CTRL-style:
        positive logits divided, negative multiplied); greedy small models loop without it."""
        torch, penalty = self._torch, self.repetition_penalty
        logits = logits.clone()
        for i, job in enumerate(jobs):
            if not job.generated:
                continue
            seen = torch.tensor(sorted(set(job.generated)), device=logits.device)
            scores = logits[i, seen]
            logits[i, seen] = torch.where(scores > 0, scores / penalty, scores * penalty)
        return logits

    def _advance(self, jobs: list[_Job], tokens: list[int]) -> None:
        """Record each job's new token and decide whether it finished."""
        for job, token in zip(jobs, tokens, strict=True):
            if job.done:
                continue
            if token in self.eos_ids:
                job.finish_reason = "stop"
            else:
                job.generated.append(token)
                if len(job.generated) >= job.max_new_tokens:
                    job.finish_reason = "length"
            new_tokens = len(job.generated) - job.reported_tokens
            job.progress_due = job.on_progress is not None and (
                job.reported_tokens == 0 or new_tokens >= self.progress_every
            )
            if job.done or job.progress_due or job.request.stop:
                job.text = self.tokenizer.decode(job.generated, skip_special_tokens=True)
                cut = _cut_at_stop(job.text, job.request.stop)
                if cut is not None:
                    job.text, job.finish_reason = cut, "stop"


class _ContinuousBatchingEngine:
    """transformers' continuous batching manager (paged KV cache), fed from the event loop."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        eos_ids: set[int],
        pad_id: int,
        max_batch: int,
        progress_every: int,
        options: dict[str, Any],
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.eos_ids = sorted(eos_ids)
        self.pad_id = pad_id
        self.max_batch = max_batch
        self.progress_every = progress_every
        self.options = options
        self.manager: Any = None
        self._ids = itertools.count()

    def start(self) -> None:
        """Create, warm up and start the manager (blocking: call in a thread)."""
        transformers: Any = importlib.import_module("transformers")
        configs: Any = importlib.import_module("transformers.generation.configuration_utils")

        # Sampling is switched on globally with per-request parameters; greedy requests get a
        # vanishing temperature, which picks the arg-max token.
        generation_config = transformers.GenerationConfig(
            do_sample=True,
            temperature=0.7,
            top_p=0.95,
            max_new_tokens=256,
            eos_token_id=self.eos_ids,
            pad_token_id=self.pad_id,
        )
        cb_config = configs.ContinuousBatchingConfig(
            **{"max_requests_per_batch": self.max_batch, **self.options},
            per_request_processors=True,
        )
        self.manager = self.model.init_continuous_batching(
            generation_config=generation_config, continuous_batching_config=cb_config
        )
        if getattr(self.model.device, "type", "cpu") == "cuda":
            self.manager.warmup()
        self.manager.start()

    def stop(self) -> None:
        """Stop the manager's thread and free its cache (blocking)."""
        if self.manager is not None:
            self.manager.stop(block=True, timeout=10)
            with contextlib.suppress(Exception):
                self.manager.destroy()
            self.manager = None

    async def run(self, job: _Job) -> GenerationResult:
        """Serve one job; resubmit the remainder after an out-of-memory failure."""
        for attempt in range(_CB_OOM_RETRIES + 1):
            error = await self._submit(job)
            if error is None:
                break
            if "out of memory" not in error.lower() or attempt == _CB_OOM_RETRIES:
                raise GenerationError(f"generation failed: {error}")
            import torch

            torch.cuda.empty_cache()
            logger.warning("out of memory in continuous batching; resubmitting a request")
        return GenerationResult(
            text=job.text,
            prompt_tokens=len(job.prompt_ids),
            completion_tokens=len(job.generated),
            finish_reason=job.finish_reason or "length",
        )

    async def _submit(self, job: _Job) -> str | None:
        """Run the job (continuing from its generated tokens); return an error text or None."""
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[str | None] = loop.create_future()
        request_id = f"atombot-{next(self._ids)}"
        base = list(job.generated)
        remaining = job.max_new_tokens - len(base)
        request = job.request

        def on_output(output: Any) -> None:
            if finished.done():
                return
            job.generated = base + [t for t in output.generated_tokens if t not in self.eos_ids]
            if output.error is not None:
                finished.set_result(str(output.error))
                return
            fresh = len(job.generated) - job.reported_tokens
            complete = output.is_finished()
            if request.stop or complete or fresh >= self.progress_every or job.reported_tokens == 0:
                job.text = self.tokenizer.decode(job.generated, skip_special_tokens=True)
                cut = _cut_at_stop(job.text, request.stop)
                if cut is not None:
                    job.text, job.finish_reason, complete = cut, "stop", True
                    self.manager.cancel_request(request_id)
                    self._forget(request_id)
                elif complete:
                    ended_by_eos = len(job.generated) < job.max_new_tokens
                    job.finish_reason = "stop" if ended_by_eos else "length"
                if job.on_progress is not None and job.generated and not complete:
                    job.reported_tokens = len(job.generated)
                    _report(job)
            if complete:
                finished.set_result(None)

        self.manager.register_result_handler(request_id, on_output)
        kwargs: dict[str, Any] = {
            "temperature": float(request.temperature) if request.temperature > 0 else 1e-5,
            "top_p": float(request.top_p) if request.temperature > 0 else 1.0,
        }
        self.manager.add_request(
            job.prompt_ids + base,
            request_id=request_id,
            max_new_tokens=remaining,
            streaming=True,
            eos_token_id=self.eos_ids,
            **kwargs,
        )
        try:
            while True:
                try:
                    return await asyncio.wait_for(asyncio.shield(finished), _CB_LIVENESS_S)
                except TimeoutError:
                    # The manager's thread may have died without failing our request.
                    if not self.manager.is_running():
                        self._forget(request_id)
                        return "the continuous batching loop stopped"
        except asyncio.CancelledError:
            self.manager.cancel_request(request_id)
            self._forget(request_id)
            raise

    def _forget(self, request_id: str) -> None:
        router = self.manager.output_router
        with router._lock:
            router.result_handlers.pop(request_id, None)


def _report(job: _Job) -> None:
    """Call the job's progress callback; a failing callback must not break generation."""
    if job.on_progress is None:
        return
    try:
        job.on_progress(len(job.generated), job.text)
    except Exception:
        logger.exception("progress callback failed")


class HFGenerator:
    """A transformers causal LM served in-process, batching concurrent ``generate`` calls.

    ``model`` is a Hugging Face id or a local directory. Nothing loads until :meth:`start`.
    ``device`` defaults to CUDA when available (weights placed by accelerate's
    ``device_map="auto"``), else CPU; ``dtype`` defaults to bfloat16 on CUDA and float32 on
    CPU. ``engine`` is ``"auto"`` (transformers continuous batching on CUDA, our step-level
    batching elsewhere), ``"cb"`` or ``"step"``. ``max_batch`` bounds the requests served at
    once; more wait in the queue. ``progress_every`` is how many tokens pass between progress
    callbacks. ``cb_options`` are passed to transformers' ``ContinuousBatchingConfig`` (e.g.
    ``num_blocks``, ``max_memory_percent``) to size the paged cache.

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
    ) -> None:
        if engine not in ("auto", "cb", "step"):
            raise ValueError(f"engine must be 'auto', 'cb' or 'step', not {engine!r}")
        if dtype is not None and dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {_DTYPES}, not {dtype!r}")
        self.model_name = model
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
        self._step_engine: _StepEngine | None = None
        self._cb_engine: _ContinuousBatchingEngine | None = None
        self._pending: deque[_Job] = deque()
        self._wakeup: asyncio.Event | None = None
        self._scheduler: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
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
                else _explain_load_error(self.model_name, error)
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
        import torch

        transformers: Any = importlib.import_module("transformers")
        # transformers prints to stderr through a handler of its own; its records go through
        # the application's logging instead (the console keeps them to a file, secrets
        # are redacted).
        transformers.utils.logging.disable_default_handler()
        transformers.utils.logging.enable_propagation()
        name = self.model_name
        if name.startswith(("/", ".", "~")) and not Path(name).expanduser().exists():
            raise GeneratorUnavailable(_explain_load_error(name, FileNotFoundError(name)))
        device = self._device or ("cuda" if torch.cuda.is_available() else "cpu")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise GeneratorUnavailable(f"device {device!r} was requested but CUDA is not available")
        on_cuda = device.startswith("cuda")
        dtype_name = self._dtype or ("bfloat16" if on_cuda else "float32")
        self._device = device
        hub: dict[str, Any] = {"local_files_only": True} if self._hub_is_down(name) else {}
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(
            name, trust_remote_code=self._trust_remote_code, **hub
        )
        # Left padding keeps every row's last token in the last column.
        self.tokenizer.padding_side = "left"
        kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype_name)}
        if on_cuda:
            kwargs["device_map"] = "auto" if device == "cuda" else device
        model = transformers.AutoModelForCausalLM.from_pretrained(
            name, trust_remote_code=self._trust_remote_code, **hub, **kwargs
        )
        if not on_cuda:
            model = model.to(device)
        self.model = model.eval()
        self._plain_prompt = not getattr(self.tokenizer, "chat_template", None)
        stops = getattr(model.generation_config, "stop_strings", None)
        self._model_stops = (stops,) if isinstance(stops, str) else tuple(stops or ())
        if self._context_override is None:
            config = model.config.get_text_config()
            limit = getattr(config, "max_position_embeddings", None) or 2048
            tok_limit = getattr(self.tokenizer, "model_max_length", None)
            if isinstance(tok_limit, int) and 0 < tok_limit < limit:
                limit = tok_limit
            self._context_length = int(limit)
        logger.info(
            "loaded %s on %s (%s), context %d tokens",
            name,
            device,
            dtype_name,
            self._context_length,
        )

    def _hub_is_down(self, name: str) -> bool:
        """For a hub model id: probe the hub once, so that no network fails in seconds.

        Returns True when the hub cannot be reached but the model is in the local cache (load
        it from there, without the library's retries); raises GeneratorUnavailable when it
        is not cached either. False: load as usual (local path, HF_HUB_OFFLINE, hub up).
        """
        if _is_local(name) or _hub_offline_env():
            return False
        from huggingface_hub import constants, try_to_load_from_cache

        endpoint = self._hub_endpoint or constants.ENDPOINT
        down = hub_unreachable(endpoint)
        if down is None:
            return False
        if isinstance(try_to_load_from_cache(name, "config.json"), str):
            logger.info(
                "the hub at %s cannot be reached (%s); loading %s from the cache",
                endpoint,
                down,
                name,
            )
            return True
        raise GeneratorUnavailable(
            f"cannot load model {name!r}: it is not in the local Hugging Face cache and the hub "
            f"at {endpoint} cannot be reached ({down})"
        )

    def _eos_and_pad(self) -> tuple[set[int], int]:
        eos: set[int] = set()
        for source in (self.model.generation_config.eos_token_id, self.tokenizer.eos_token_id):
            if isinstance(source, int):
                eos.add(source)
            elif isinstance(source, list):
                eos.update(int(t) for t in source)
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = min(eos) if eos else 0
        return eos, int(pad)

    async def _start_engine(self) -> None:
        eos, pad = self._eos_and_pad()
        on_cuda = str(self._device).startswith("cuda")
        want_cb = self._engine_choice == "cb" or (self._engine_choice == "auto" and on_cuda)
        if want_cb and hasattr(self.model, "init_continuous_batching"):
            engine = _ContinuousBatchingEngine(
                self.model,
                self.tokenizer,
                eos_ids=eos,
                pad_id=pad,
                max_batch=self._max_batch,
                progress_every=self._progress_every,
                options=self._cb_options,
            )
            try:
                await asyncio.to_thread(engine.start)
            except Exception as error:
                if self._engine_choice == "cb":
                    raise GeneratorUnavailable(
                        f"continuous batching is not available for {self.model_name!r}: {error}"
                    ) from error
                logger.warning("continuous batching unavailable (%s); using step batching", error)
            else:
                self._cb_engine = engine
                self.engine_name = "continuous-batching"
                return
        self._step_engine = _StepEngine(
            self.model,
            self.tokenizer,
            eos_ids=eos,
            pad_id=pad,
            max_batch=self._max_batch,
            context_length=self._context_length,
            progress_every=self._progress_every,
        )
        self.engine_name = "step"
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="atombot-generate")
        self._wakeup = asyncio.Event()
        self._scheduler = asyncio.create_task(self._schedule(), name="atombot-generate")

    def prompt_ids(self, messages: Iterable[dict[str, str]]) -> list[int]:
        """Token ids of the chat prompt (chat template, or a plain "role: content" join)."""
        if self.tokenizer is None:
            raise GeneratorUnavailable("the generator is not started")
        messages = list(messages)
        if self._plain_prompt:
            text = "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"
            return list(self.tokenizer(text).input_ids)
        text = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        return list(self.tokenizer(text, add_special_tokens=False).input_ids)

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this model (exact, from the tokenizer)."""
        if self.tokenizer is None:
            return max(1, len(text) // 4)
        return len(self.tokenizer(text, add_special_tokens=False).input_ids)

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
        loop = asyncio.get_running_loop()
        job = _Job(
            request=request,
            prompt_ids=prompt,
            max_new_tokens=max(1, min(request.max_new_tokens, room)),
            on_progress=on_progress,
            future=loop.create_future(),
        )
        if self._cb_engine is not None:
            return await self._cb_engine.run(job)
        if self._wakeup is None:
            raise GeneratorUnavailable("the generator is closed")
        self._pending.append(job)
        self._wakeup.set()
        try:
            return await job.future
        finally:
            if not job.future.done():
                job.future.cancel()

    async def _schedule(self) -> None:
        """Feed the step engine: admit queued jobs between steps, deliver progress and results."""
        assert self._wakeup is not None and self._step_engine is not None
        engine, loop = self._step_engine, asyncio.get_running_loop()
        while True:
            if not self._pending and not engine.rows:
                self._wakeup.clear()
                await self._wakeup.wait()
                # Let callers that are about to submit in the same tick join this batch.
                await asyncio.sleep(0)
            newcomers: list[_Job] = []
            while self._pending and len(newcomers) < engine.room:
                job = self._pending.popleft()
                if not job.abandoned:
                    newcomers.append(job)
            try:
                touched, requeue = await loop.run_in_executor(
                    self._executor, engine.step, newcomers
                )
            except Exception as error:
                # A bug here must not leave callers waiting forever.
                logger.exception("batching loop failed")
                touched, requeue = [*newcomers, *engine.rows], []
                for job in touched:
                    job.error = GenerationError(f"generation failed: {error}")
                engine.reset()
            self._pending.extendleft(reversed(requeue))
            for job in touched:
                self._deliver(job)

    @staticmethod
    def _deliver(job: _Job) -> None:
        if job.abandoned:
            return
        if job.error is not None:
            job.future.set_exception(job.error)
        elif job.finish_reason is not None:
            job.future.set_result(
                GenerationResult(
                    text=job.text,
                    prompt_tokens=len(job.prompt_ids),
                    completion_tokens=len(job.generated),
                    finish_reason=job.finish_reason,
                )
            )
        elif job.progress_due and job.generated:
            job.reported_tokens = len(job.generated)
            _report(job)

    async def close(self) -> None:
        """Stop batching, fail what is still queued, and release the model."""
        if self._scheduler is not None:
            self._scheduler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._scheduler
            self._scheduler = None
        if self._executor is not None:
            await asyncio.to_thread(self._executor.shutdown, wait=True)
            self._executor = None
        if self._step_engine is not None:
            for job in [*self._pending, *self._step_engine.rows]:
                if not job.future.done():
                    job.future.set_exception(GenerationError("the generator was closed"))
            self._step_engine = None
        self._pending.clear()
        self._wakeup = None
        if self._cb_engine is not None:
            await asyncio.to_thread(self._cb_engine.stop)
            self._cb_engine = None
        if self.model is not None:
            self.model = None
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
