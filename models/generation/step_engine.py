"""Our step-level continuous batching over a padded, left-aligned ``DynamicCache``.

Works for every causal LM transformers can run (CPU included). :class:`StepBatch` is the
batch itself and runs in one worker thread; :class:`StepEngine` feeds it from the event loop:
newcomers are prefilled together and merged into the running batch between decoding steps,
finished rows are dropped, and the loop stays free while a model step runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from models.generation.base import GenerationError, GenerationResult, GeneratorUnavailable
from models.generation.engine import Job, cut_at_stop, report

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

#: After this many steps without running out of memory, the batch limit grows back by one.
_OOM_RECOVERY_STEPS = 500


class StepBatch:
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
        self.rows: list[Job] = []
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

    def step(self, newcomers: list[Job]) -> tuple[list[Job], list[Job]]:
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

    def _recover_from_oom(self, newcomers: list[Job]) -> tuple[list[Job], list[Job]]:
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

    def _prefill(self, jobs: list[Job]) -> list[Job]:
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

    def _decode(self) -> list[Job]:
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
        self, cache: Any, mask: torch.Tensor, positions: torch.Tensor, jobs: list[Job]
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

    def _drop_rows(self, leaving: list[Job]) -> None:
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

    def _choose(self, logits: torch.Tensor, jobs: list[Job]) -> torch.Tensor:
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

    def _penalize_repeats(self, logits: torch.Tensor, jobs: list[Job]) -> torch.Tensor:
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

    def _advance(self, jobs: list[Job], tokens: list[int]) -> None:
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
                cut = cut_at_stop(job.text, job.request.stop)
                if cut is not None:
                    job.text, job.finish_reason = cut, "stop"


class StepEngine:
    """The :class:`~models.generation.engine.Engine` over a :class:`StepBatch`.

    Jobs wait in a queue; one scheduler task admits them between steps (as many as the batch
    has room for), runs every step in a single worker thread, and delivers progress and
    results back on the event loop.
    """

    name = "step"

    def __init__(self, batch: StepBatch) -> None:
        self.batch = batch
        self._pending: deque[Job] = deque()
        self._wakeup: asyncio.Event | None = None
        self._scheduler: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        """Start the scheduler task (on the running loop) and the engine thread."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="atombot-generate")
        self._wakeup = asyncio.Event()
        self._scheduler = asyncio.create_task(self._schedule(), name="atombot-generate")

    async def run(self, job: Job) -> GenerationResult:
        """Queue ``job`` and wait for it, batched with whatever else is being generated."""
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
        """Feed the batch: admit queued jobs between steps, deliver progress and results."""
        assert self._wakeup is not None
        batch, loop = self.batch, asyncio.get_running_loop()
        while True:
            if not self._pending and not batch.rows:
                self._wakeup.clear()
                await self._wakeup.wait()
                # Let callers that are about to submit in the same tick join this batch.
                await asyncio.sleep(0)
            newcomers: list[Job] = []
            while self._pending and len(newcomers) < batch.room:
                job = self._pending.popleft()
                if not job.abandoned:
                    newcomers.append(job)
            try:
                touched, requeue = await loop.run_in_executor(self._executor, batch.step, newcomers)
            except Exception as error:
                # A bug here must not leave callers waiting forever.
                logger.exception("batching loop failed")
                touched, requeue = [*newcomers, *batch.rows], []
                for job in touched:
                    job.error = GenerationError(f"generation failed: {error}")
                batch.reset()
            self._pending.extendleft(reversed(requeue))
            for job in touched:
                self._deliver(job)

    @staticmethod
    def _deliver(job: Job) -> None:
        if job.abandoned:
            return
        if job.error is not None:
            job.future.set_exception(job.error)
        elif job.finish_reason is not None:
            job.future.set_result(job.result())
        elif job.progress_due and job.generated:
            job.reported_tokens = len(job.generated)
            report(job)

    async def close(self) -> None:
        """Stop the scheduler and the thread; fail what is still queued or running."""
        if self._scheduler is not None:
            self._scheduler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._scheduler
            self._scheduler = None
        if self._executor is not None:
            await asyncio.to_thread(self._executor.shutdown, wait=True)
            self._executor = None
        for job in [*self._pending, *self.batch.rows]:
            if not job.future.done():
                job.future.set_exception(GenerationError("the generator was closed"))
        self._pending.clear()
        self._wakeup = None
