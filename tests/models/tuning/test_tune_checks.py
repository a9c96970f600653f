"""Settings ``atombot tune`` cannot train with are refused before anything starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from models.tuning import TuneConfig, TuneInputError
from models.tuning.launch import check_hyperparameters, check_out


def config(**changes: Any) -> TuneConfig:
    values: dict[str, Any] = {"method": "dpo", "data": Path("d"), "model": "m", "out": Path("o")}
    return TuneConfig(**{**values, **changes})


@pytest.mark.parametrize(
    ("changes", "flag"),
    [
        ({"epochs": float("inf")}, "--epochs"),
        ({"epochs": float("nan")}, "--epochs"),
        ({"learning_rate": float("inf")}, "--lr"),
        ({"learning_rate": 0.0}, "--lr"),
        ({"beta": 0.0}, "--beta"),
        ({"beta": -1.0}, "--beta"),
        ({"batch_size": 0}, "--batch-size"),
    ],
)
def test_a_setting_training_cannot_run_with_is_refused(changes: dict[str, Any], flag: str) -> None:
    with pytest.raises(TuneInputError, match=f"^{flag} must be a finite number greater than 0"):
        check_hyperparameters(config(**changes))


def test_beta_only_matters_to_dpo_and_max_steps_replaces_epochs() -> None:
    check_hyperparameters(config(method="sft", beta=0.0))
    check_hyperparameters(config(epochs=float("inf"), max_steps=10))


def test_a_symlink_or_a_full_directory_is_no_place_for_an_adapter(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    check_out(tmp_path / "empty")
    (tmp_path / "link").symlink_to(tmp_path / "empty")
    with pytest.raises(TuneInputError, match="is a symbolic link"):
        check_out(tmp_path / "link")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(TuneInputError, match="is a symbolic link"):
        check_out(tmp_path / "dangling")
