"""transformers' own continuous batching (``model.init_continuous_batching()``, a paged KV
cache) behind the :class:`models.generation.engine.Engine` contract: requests join the
running batch as they arrive and leave as they finish. Used on CUDA.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import logging
from typing import Any

from models.generation.base import GenerationError, GenerationResult
from models.generation.engine import Job, cut_at_stop, report

logger = logging.getLogger(__name__)

#: Resubmissions of one request after out-of-memory errors in continuous batching.
_CB_OOM_RETRIES = 3
#: How often a request waiting on continuous batching checks that the manager still runs.
_CB_LIVENESS_S = 5.0


class ContinuousBatchingEngine:
    """transformers' continuous batching manager (paged KV cache), fed from the event loop."""

    name = "continuous-batching"

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

    async def start(self) -> None:
        """Create, warm up and start the manager (in a thread: it compiles and allocates)."""
        await asyncio.to_thread(self.start_blocking)

    def start_blocking(self) -> None:
        """Create, warm up and start the manager (blocking)."""
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

    async def close(self) -> None:
        """Stop the manager's thread and free its cache."""
        await asyncio.to_thread(self.stop)

    def stop(self) -> None:
        """Stop the manager's thread and free its cache (blocking)."""
        if self.manager is not None:
            self.manager.stop(block=True, timeout=10)
            with contextlib.suppress(Exception):
                self.manager.destroy()
            self.manager = None

    async def run(self, job: Job) -> GenerationResult:
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
        return job.result()

    async def _submit(self, job: Job) -> str | None:
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
                cut = cut_at_stop(job.text, request.stop)
                if cut is not None:
                    job.text, job.finish_reason, complete = cut, "stop", True
                    self.manager.cancel_request(request_id)
                    self._forget(request_id)
                elif complete:
                    ended_by_eos = len(job.generated) < job.max_new_tokens
                    job.finish_reason = "stop" if ended_by_eos else "length"
                if job.on_progress is not None and job.generated and not complete:
                    job.reported_tokens = len(job.generated)
                    report(job)
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
