"""Fixtures for the generation backends: a started transformers backend on the tiny model.

The tiny model itself comes from the session-scoped ``tiny_model`` fixture of the root
conftest (built once, locally, by :func:`models.generation.tiny.build_tiny_model`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import torch

from models.generation.hf import HFGenerator


@pytest.fixture
async def hf_generator(tiny_model: Path) -> AsyncIterator[HFGenerator]:
    """A started float32 CPU backend with our step-level batching (up to 8 at once)."""
    generator = HFGenerator(str(tiny_model), device="cpu", max_batch=8, engine="step")
    await generator.start()
    yield generator
    await generator.close()


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """Run the tiny model on one thread: on a small, shared CPU, intra-op threads of a tiny
    model mostly wait for each other (a forward pass takes ~1 ms alone, ~0.4 s contended)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
