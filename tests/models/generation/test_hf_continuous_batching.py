"""transformers' continuous batching engine (the CUDA default), exercised on CPU."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from models.generation.base import GenerationRequest
from models.generation.hf import HFGenerator


def ask(text: str, max_new_tokens: int, **kwargs: object) -> GenerationRequest:
    """A one-message chat request."""
    return GenerationRequest(
        messages=({"role": "user", "content": text},),
        max_new_tokens=max_new_tokens,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.slow
async def test_continuous_batching_matches_one_at_a_time_and_streams_progress(
    tiny_model: Path,
) -> None:
    generator = HFGenerator(
        str(tiny_model),
        device="cpu",
        engine="cb",
        max_batch=8,
        cb_options={"num_blocks": 32, "max_batch_tokens": 256},
    )
    await generator.start()
    try:
        requests = [
            ask("hi", 10),
            ask("the budget review meeting with the client tomorrow", 20),
            ask("今天的会议", 5),
        ]
        alone = [(await generator.generate(r)).text for r in requests]
        seen: list[int] = []
        batched = await asyncio.gather(
            generator.generate(requests[0]),
            generator.generate(requests[1], lambda n, text: seen.append(n)),
            generator.generate(requests[2]),
        )
        stop = alone[1].split()[4]
        stopped = await generator.generate(
            ask("the budget review meeting with the client tomorrow", 20, stop=(stop,))
        )
    finally:
        await generator.close()

    assert generator.engine_name == "continuous-batching"
    assert [r.text for r in batched] == alone
    assert [r.completion_tokens for r in batched] == [10, 20, 5]
    assert len(set(seen)) >= 2
    assert stopped.text == alone[1][: alone[1].index(stop)]
