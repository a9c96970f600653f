"""The sentence encoder: float32 single messages, bfloat16 batches where the CPU has AMX."""

from __future__ import annotations

import numpy as np
import pytest

from models.intents.encoder import SentenceEncoder, cpu_has_amx_bf16, default_encoder_path

TEXTS = [
    "summarize this thread",
    "draft an email to Dana about the delayed shipment",
    "remind me on Friday at 9 to review the budget",
    "把这个讨论总结一下",
    "cancel #42",
]

SAPPHIRE_RAPIDS = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
EPYC = "processor\t: 0\nflags\t\t: fpu sse4_2 avx avx2 fma\n"


def test_bfloat16_batches_are_chosen_only_where_the_cpu_has_amx() -> None:
    assert cpu_has_amx_bf16(SAPPHIRE_RAPIDS)
    assert not cpu_has_amx_bf16(EPYC)
    assert not cpu_has_amx_bf16("")


@pytest.fixture(scope="module")
def float32() -> SentenceEncoder:
    return SentenceEncoder(default_encoder_path(), backend="torch", batch_bf16=False)


def test_bfloat16_batches_stay_within_a_hair_of_float32(float32: SentenceEncoder) -> None:
    bf16 = SentenceEncoder(default_encoder_path(), backend="torch", batch_bf16=True)
    exact = float32.encode(TEXTS)
    fast = bf16.encode(TEXTS)
    assert fast.dtype == np.float32 and fast.shape == exact.shape
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-3)
    assert float((exact * fast).sum(axis=1).min()) > 0.999
    assert not np.array_equal(exact, fast), "the batch really ran in bfloat16"


def test_a_single_message_always_takes_the_float32_path(float32: SentenceEncoder) -> None:
    bf16 = SentenceEncoder(default_encoder_path(), backend="torch", batch_bf16=True)
    for text in TEXTS:
        assert np.array_equal(bf16.encode([text]), float32.encode([text]))
