"""Classifier versions: saved with their figures, promoted by an atomic pointer, rolled back
to the exact earlier predictions; an unknown version changes nothing; one encoder per
process however many versions and scopes are loaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.intents import IntentClassifier
from models.intents.shared import shared_count, shared_encoder
from models.intents.versions import UnknownVersion, VersionStore, scope_slug

MESSAGES = ["remind me at 5 to call Dana", "email Tom about the launch", "tell me a joke"]

FIRST = [
    "remind me tomorrow to call the bank",
    "set a reminder for Friday",
    "ping me at noon",
    "email Dana about the shipment",
    "write an email to Tom",
    "send a mail to HR",
    "tell me a joke",
    "what's the weather",
    "lol",
]
LABELS = ["reminder.create"] * 3 + ["email.draft"] * 3 + ["oos"] * 3


@pytest.fixture(scope="module")
def first() -> IntentClassifier:
    return IntentClassifier.train(FIRST, LABELS, encoder_instance=shared_encoder())


@pytest.fixture(scope="module")
def second() -> IntentClassifier:
    extra = ["tell Tom by email that the launch moved", "nudge me tonight about the invoice"]
    return IntentClassifier.train(
        [*FIRST, *extra],
        [*LABELS, "email.draft", "reminder.create"],
        encoder_instance=shared_encoder(),
    )


@pytest.fixture
def store(tmp_path: Path, first: IntentClassifier, second: IntentClassifier) -> VersionStore:
    store = VersionStore.for_scope(tmp_path, "slack:T1")
    store.save(first, figures={"candidate_accuracy": 0.9}, corrections=0)
    store.save(second, figures={"candidate_accuracy": 0.95}, corrections=2, parent="v0001")
    return store


def test_versions_are_listed_oldest_first_with_their_figures(store: VersionStore) -> None:
    listed = store.versions()
    assert [v.version for v in listed] == ["v0001", "v0002"]
    assert listed[1].figures == {"candidate_accuracy": 0.95}
    assert listed[1].corrections == 2
    assert listed[1].examples == len(FIRST) + 2
    assert listed[1].parent == "v0001"
    assert not any(v.promoted for v in listed)
    assert store.current() is None


def test_promote_moves_the_pointer_and_marks_the_version(store: VersionStore) -> None:
    before = store.stamp()
    store.promote("v0002")
    assert store.current() == "v0002"
    assert store.stamp() != before
    assert [v.promoted for v in store.versions()] == [False, True]
    assert not list(store.root.glob(".*.tmp"))


def test_rollback_restores_the_earlier_predictions_exactly(
    store: VersionStore, first: IntentClassifier
) -> None:
    expected = first.probabilities(MESSAGES)
    store.promote("v1")
    served = store.load().probabilities(MESSAGES)
    store.promote("v0002")
    assert not np.array_equal(store.load().probabilities(MESSAGES), served)
    store.rollback("v0001")
    assert store.current() == "v0001"
    restored = store.load().probabilities(MESSAGES)
    assert np.array_equal(restored, served)
    assert np.array_equal(restored, expected)


@pytest.mark.parametrize("version", ["v0009", "nonsense", "", "../v0001"])
def test_an_unknown_version_raises_and_changes_nothing(store: VersionStore, version: str) -> None:
    store.promote("v0002")
    pointer = (store.root / "CURRENT").read_bytes()
    with pytest.raises(UnknownVersion) as raised:
        store.rollback(version)
    assert repr(version) in str(raised.value)
    assert (store.root / "CURRENT").read_bytes() == pointer
    assert [v.version for v in store.versions()] == ["v0001", "v0002"]


def test_loading_without_a_current_version_is_an_unknown_version(tmp_path: Path) -> None:
    with pytest.raises(UnknownVersion):
        VersionStore(tmp_path / "empty").load()


def test_an_interrupted_save_is_not_listed_and_the_next_save_gets_a_new_number(
    store: VersionStore, first: IntentClassifier
) -> None:
    (store.root / "v0003").mkdir()  # a save that died before writing version.json
    assert [v.version for v in store.versions()] == ["v0001", "v0002"]
    assert store.save(first).version == "v0004"


def test_versions_and_scopes_share_one_encoder(
    tmp_path: Path, store: VersionStore, first: IntentClassifier
) -> None:
    other = VersionStore.for_scope(tmp_path, "telegram:42")
    other.promote(other.save(first).version)
    store.promote("v0001")
    shared = shared_count()
    loaded = [store.load("v0001"), store.load("v0002"), other.load()]
    assert all(c.encoder is first.encoder for c in loaded)
    assert shared_count() == shared
    assert other.root != store.root
    assert scope_slug("slack:T1") != scope_slug("slack_T1")
