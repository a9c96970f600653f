# ruff: noqa: F811 (the fixtures imported from learning_support are parameters here)
"""``atombot corrections [--json] [--tenant] [--pending]``, ``corrections drop|approve ID``,
``atombot intents versions|rollback|retrain``: what they print, and that bad input gets a
clear error, exit status 2 and changes nothing."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pytest

from bot.config import Settings
from bot.learning import Learning, build_learning, remember_scope
from models.intents.versions import VersionStore
from storage.repository import Repository
from storage.tables import CorrectionStatus
from tests.bot.learning_support import (  # noqa: F401 (fixtures)
    MISREAD,
    RIGHT,
    WRONG,
    base_classifier,
    correct,
    corrected_classifier,
    learning_intents,
    learning_settings,
    run_cli,
)

if TYPE_CHECKING:
    from models.intents import IntentClassifier

PROBES = [MISREAD, "status of #3", "summarize this thread", "cancel #4", "what can you do"]


def store(settings: Settings, scope: str = "slack:T1") -> VersionStore:
    found = VersionStore.for_scope(settings.data_dir, scope)
    remember_scope(found.root, scope)
    return found


def learning_of(settings: Settings, repo: Repository, base: IntentClassifier) -> Learning:
    return build_learning(
        repo=repo,
        base=base,
        data_dir=settings.data_dir,
        intents=settings.intents,
        encoder=None,
        retrain_after=0,
        retrain_cron="",
        timezone="UTC",
        reload_seconds=settings.reload_seconds,
    )


# -- corrections ----------------------------------------------------------------------------


async def test_corrections_lists_each_with_tenant_user_kinds_and_shortened_text(
    learning_settings: Settings, repo: Repository, capsys: pytest.CaptureFixture[str]
) -> None:
    long_text = "please " * 30 + "summarize"
    first = await correct(repo, long_text)
    await correct(repo, platform="telegram", tenant="-1001", status=CorrectionStatus.pending)

    assert await run_cli(learning_settings, "corrections") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"#{first.id}\t")
    assert "\tslack:T1\tU1\ttask.status → summarize\t" in lines[0]
    assert lines[0].endswith("…") and long_text not in lines[0]
    assert "telegram:-1001" in lines[1] and "(pending)" in lines[1]

    assert await run_cli(learning_settings, "corrections", "--json", "--tenant", "slack:T1") == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["id"], row["tenant"], row["text"]) == (first.id, "slack:T1", long_text)
    assert (row["wrong_kind"], row["right_kind"], row["status"]) == (WRONG, RIGHT, "active")

    assert await run_cli(learning_settings, "corrections", "--pending", "--json") == 0
    assert [r["tenant"] for r in json.loads(capsys.readouterr().out)] == ["telegram:-1001"]


async def test_dropping_a_correction_deletes_it_and_it_stops_applying(
    learning_settings: Settings,
    repo: Repository,
    base_classifier: IntentClassifier,
    capsys: pytest.CaptureFixture[str],
) -> None:
    learning = learning_of(learning_settings, repo, base_classifier)
    row = await correct(repo)
    await learning.reloader.refresh()
    assert learning.parser.parse_in("slack:T1", MISREAD)[0].intent == RIGHT

    assert await run_cli(learning_settings, "corrections", "drop", str(row.id)) == 0
    assert f"#{row.id}" in capsys.readouterr().out
    assert await repo.get_correction(row.id or 0) is None
    await learning.reloader.refresh()
    assert learning.parser.parse_in("slack:T1", MISREAD)[0].intent == WRONG


async def test_approving_makes_a_pending_correction_active(
    learning_settings: Settings, repo: Repository
) -> None:
    row = await correct(repo, status=CorrectionStatus.pending)
    assert await run_cli(learning_settings, "corrections", "approve", str(row.id)) == 0
    approved = await repo.get_correction(row.id or 0)
    assert approved is not None and approved.status == CorrectionStatus.active


@pytest.mark.parametrize(
    "argv",
    [
        ("corrections", "drop", "999"),
        ("corrections", "approve", "999"),
        ("corrections", "--tenant", "slack"),
        ("intents", "versions", "--tenant", ":T1"),
        ("intents", "retrain", "--tenant", "T1"),
    ],
)
async def test_an_unknown_correction_or_a_malformed_tenant_is_a_clear_error(
    learning_settings: Settings,
    repo: Repository,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
) -> None:
    row = await correct(repo)
    assert await run_cli(learning_settings, *argv) == 2
    err = capsys.readouterr().err
    assert "nothing was changed" in err
    assert ("999" in err) if "999" in argv else ("PLATFORM:TENANT" in err)
    assert [r.id for r in await repo.corrections()] == [row.id]
    assert not (learning_settings.data_dir / "classifiers").exists()


async def test_approving_an_active_correction_is_refused(
    learning_settings: Settings, repo: Repository, capsys: pytest.CaptureFixture[str]
) -> None:
    row = await correct(repo)
    assert await run_cli(learning_settings, "corrections", "approve", str(row.id)) == 2
    assert "not waiting for review" in capsys.readouterr().err


# -- versions and rollback -------------------------------------------------------------------


async def test_rollback_restores_the_earlier_predictions_exactly_in_a_running_bot(
    learning_settings: Settings,
    repo: Repository,
    base_classifier: IntentClassifier,
    corrected_classifier: IntentClassifier,
    capsys: pytest.CaptureFixture[str],
) -> None:
    versions = store(learning_settings)
    first = versions.save(base_classifier, figures={"candidate_accuracy": 0.9})
    versions.promote(first.version)
    learning = learning_of(learning_settings, repo, base_classifier)
    await learning.reloader.refresh()
    parser = learning.parser
    assert parser.version_of("slack:T1") == "v0001"
    before = parser.classifier_of("slack:T1").probabilities(PROBES)
    before_specs = [parser.parse_in("slack:T1", m) for m in PROBES]

    second = versions.save(corrected_classifier, corrections=1, parent="v0001")
    versions.promote(second.version)
    await learning.reloader.refresh()
    assert parser.version_of("slack:T1") == "v0002"
    assert parser.parse_in("slack:T1", MISREAD)[0].intent == RIGHT

    assert await run_cli(learning_settings, "intents", "rollback", "v0001") == 0
    assert "slack:T1 now uses classifier v0001" in capsys.readouterr().out
    await learning.reloader.refresh()

    assert parser.version_of("slack:T1") == "v0001"
    assert np.array_equal(parser.classifier_of("slack:T1").probabilities(PROBES), before)
    assert [parser.parse_in("slack:T1", m) for m in PROBES] == before_specs

    assert await run_cli(learning_settings, "intents", "versions", "--json") == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["tenant"] == "slack:T1" and listed["current"] == "v0001"
    assert [(v["version"], v["promoted"]) for v in listed["versions"]] == [
        ("v0001", True),
        ("v0002", True),
    ]
    assert listed["versions"][1]["parent"] == "v0001"


async def test_rolling_back_to_an_unknown_version_changes_nothing(
    learning_settings: Settings,
    base_classifier: IntentClassifier,
    capsys: pytest.CaptureFixture[str],
) -> None:
    versions = store(learning_settings)
    versions.promote(versions.save(base_classifier).version)
    pointer = (versions.root / "CURRENT").read_bytes()

    for bad in ("v0007", "latest", ""):
        assert (
            await run_cli(learning_settings, "intents", "rollback", bad, "--tenant", "slack:T1")
            == 2
        )
        err = capsys.readouterr().err
        assert "no classifier version" in err and "v0001" in err and "nothing was changed" in err
    assert (versions.root / "CURRENT").read_bytes() == pointer
    assert versions.current() == "v0001"


async def test_rollback_needs_a_tenant_when_several_have_versions(
    learning_settings: Settings,
    base_classifier: IntentClassifier,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert await run_cli(learning_settings, "intents", "rollback", "v0001") == 2
    assert "No classifier versions yet" in capsys.readouterr().err
    for scope in ("slack:T1", "telegram:-1001"):
        found = store(learning_settings, scope)
        found.save(base_classifier)
    assert await run_cli(learning_settings, "intents", "rollback", "v0001") == 2
    assert "--tenant" in capsys.readouterr().err
    assert store(learning_settings, "slack:T1").current() is None
    assert (
        await run_cli(learning_settings, "intents", "rollback", "1", "--tenant", "telegram:-1001")
        == 0
    )
    assert store(learning_settings, "telegram:-1001").current() == "v0001"
    assert store(learning_settings, "slack:T1").current() is None


async def test_versions_lists_the_figures_and_marks_the_current_one(
    learning_settings: Settings,
    base_classifier: IntentClassifier,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert await run_cli(learning_settings, "intents", "versions") == 0
    assert "No classifier versions yet" in capsys.readouterr().out
    versions = store(learning_settings)
    figures = {"candidate_accuracy": 0.95, "current_accuracy": 0.9, "heldout_size": 20.0}
    versions.promote(versions.save(base_classifier, figures=figures, corrections=3).version)
    versions.save(base_classifier, figures={**figures, "candidate_accuracy": 0.5})

    assert await run_cli(learning_settings, "intents", "versions", "--tenant", "slack:T1") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "slack:T1:"
    assert out[1].startswith("* v0001") and "\tpromoted\t" in out[1]
    assert "95.0% (current 90.0%) on 20 texts; 3 corrections" in out[1]
    assert out[2].startswith("  v0002") and "not promoted" in out[2] and "50.0%" in out[2]


# -- retrain ---------------------------------------------------------------------------------


async def test_retrain_runs_the_job_now_and_prints_figures_and_the_verdict(
    learning_settings: Settings, repo: Repository, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_cli(learning_settings, "intents", "retrain") == 0
    assert "Nothing to retrain" in capsys.readouterr().out
    await correct(repo)

    assert await run_cli(learning_settings, "intents", "retrain") == 0
    out = capsys.readouterr().out
    assert "slack:T1: v0001 promoted (compared with base" in out
    assert "held-out accuracy" in out and "1 corrections, 1 new" in out

    assert await run_cli(learning_settings, "intents", "retrain", "--json") == 0
    assert json.loads(capsys.readouterr().out) == []  # nothing changed since

    # Naming the tenant retrains it even so, and versions lists both.
    assert (
        await run_cli(learning_settings, "intents", "retrain", "--tenant", "slack:T1", "--json")
        == 0
    )
    (again,) = json.loads(capsys.readouterr().out)
    assert (again["version"], again["previous"]) == ("v0002", "v0001")
    assert again["figures"]["corrections_used"] == 1
