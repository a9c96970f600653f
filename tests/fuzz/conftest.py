"""Fixtures of the fuzz tests; the helpers live in :mod:`tests.fuzz.helpers` (re-exported here)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fuzz.helpers import LoopThread, count_rows, fuzz_examples, fuzz_settings, fuzz_timeout

__all__ = ["LoopThread", "count_rows", "fuzz_examples", "fuzz_settings", "fuzz_timeout"]


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    """One background event loop for a test module's servers."""
    thread = LoopThread()
    yield thread
    thread.close()
