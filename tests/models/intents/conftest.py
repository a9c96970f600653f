"""Fixtures for the intent classifier tests: one classifier trained once per session."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from models.intents import IntentClassifier


@pytest.fixture(scope="session")
def classifier(parser: IntentClassifier) -> IntentClassifier:
    """The fast-head classifier on the shipped intents file (shared with the whole suite)."""
    return parser
