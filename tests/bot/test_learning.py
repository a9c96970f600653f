# ruff: noqa: F811 (the fixtures imported from learning_support are parameters here)
"""The classifier learns from corrections: a correction applies at once to its own tenant,
retraining teaches the classifier itself, a worse candidate is kept back, and running bots
pick up what changed without a restart.

The classifier is the small intents file's of ``learning_support`` (trained once per
session), so a retrain takes seconds.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bot.app import build_app
from bot.config import Settings
from bot.learning import Learning, build_learning
from bot.retrain import RetrainBusy, Retrainer, cron_fields
from bot.types import Inbound
from models.intents.versions import VersionStore
from storage.repository import Repository
from storage.tables import CorrectionStatus
from tests.bot.learning_support import (  # noqa: F401 (fixtures)
    MISREAD,
    RIGHT,
    WRONG,
    base_classifier,
    correct,
    learning_intents,
    learning_settings,
    run_cli,
)

if TYPE_CHECKING:
    from models.intents import IntentClassifier


def learning_of(settings: Settings, repo: Repository, base: IntentClassifier) -> Learning:
    return build_learning(
        repo=repo,
        base=base,
        data_dir=settings.data_dir,
        intents=settings.intents,
        encoder=None,
        retrain_after=settings.retrain_after,
        retrain_cron=settings.retrain_cron,
        timezone="UTC",
        reload_seconds=settings.reload_seconds,
    )


def read(learning: Learning, scope: str, text: str = MISREAD) -> list[str]:
    return [spec.intent for spec in learning.parser.parse_in(scope, text)]


async def eventually(check: Callable[[], bool | Awaitable[bool]], within: float = 30.0) -> None:
    """Wait until ``check`` holds (the bound only keeps a broken build from hanging)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def test_a_correction_applies_at_once_and_only_to_its_own_tenant(
    learning_settings: Settings, repo: Repository, base_classifier: IntentClassifier
) -> None:
    learning = learning_of(learning_settings, repo, base_classifier)
    await learning.reloader.refresh()
    assert read(learning, "slack:T1") == [WRONG]

    row = await correct(repo, platform="slack", tenant="T1")
    await learning.reloader.refresh()

    assert read(learning, "slack:T1") == [RIGHT]
    assert read(learning, "slack:T1", MISREAD.upper() + "  ") == [RIGHT]  # the same message
    assert read(learning, "slack:T2") == [WRONG]  # another workspace
    assert read(learning, "telegram:T1") == [WRONG]  # the same id on another platform
    assert learning.parser.parse(MISREAD)[0].intent == WRONG  # no tenant: the base alone

    assert await repo.drop_correction(row.id or 0)
    await learning.reloader.refresh()
    assert read(learning, "slack:T1") == [WRONG]


async def test_a_pending_correction_applies_only_once_approved(
    learning_settings: Settings, repo: Repository, base_classifier: IntentClassifier
) -> None:
    learning = learning_of(learning_settings, repo, base_classifier)
    await learning.reloader.refresh()
    row = await correct(repo, status=CorrectionStatus.pending)
    await learning.reloader.refresh()
    assert read(learning, "slack:T1") == [WRONG]

    assert await repo.approve_correction(row.id or 0)
    await learning.reloader.refresh()
    assert read(learning, "slack:T1") == [RIGHT]


async def test_a_correction_stored_in_this_process_is_picked_up_without_waiting_for_the_poll(
    learning_settings: Settings, repo: Repository, base_classifier: IntentClassifier
) -> None:
    hourly = learning_settings.model_copy(update={"reload_seconds": 3600.0})
    learning = learning_of(hourly, repo, base_classifier)
    stop = asyncio.Event()
    running = asyncio.ensure_future(learning.reloader.run(stop))
    try:
        await eventually(lambda: learning.reloader.feed._polls == 1)
        await correct(repo)
        learning.parser.corrections_changed()  # what the router does after the 👎 → pick
        await eventually(lambda: read(learning, "slack:T1") == [RIGHT])
    finally:
        stop.set()
        await running


async def test_the_router_reads_a_message_with_its_senders_tenant(
    learning_settings: Settings, base_classifier: IntentClassifier
) -> None:
    app = await build_app(
        learning_settings, parser=base_classifier, learning=True, adapters=[], with_worker=False
    )
    try:
        assert app.learning is not None
        await correct(app.repo, platform="slack", tenant="T1")
        await app.learning.reloader.refresh()

        def inbound(tenant: str) -> Inbound:
            return Inbound(
                platform="slack",
                tenant=tenant,
                channel="C1",
                user="U1",
                text=MISREAD,
                event_id=f"ev-{tenant}",
            )

        corrected = await app.router.handle(inbound("T1"))
        other = await app.router.handle(inbound("T2"))
        kinds = [(await app.repo.get_task(i)).kind for i in corrected.task_ids]  # type: ignore[union-attr]
        assert kinds == [RIGHT]
        assert other.task_ids == ()  # read as a status question, answered at once
    finally:
        await app.repo.dispose()


async def test_after_retraining_the_classifier_itself_reads_the_message_as_corrected(
    learning_settings: Settings, base_classifier: IntentClassifier
) -> None:
    """End to end: corrections → the job → a promoted version that a running bot loads
    without a restart; a dropped correction is left out of the next retraining."""
    app = await build_app(
        learning_settings, parser=base_classifier, learning=True, adapters=[], with_worker=False
    )
    await app.start()
    try:
        assert app.learning is not None
        parser = app.learning.parser
        row = await correct(app.repo, platform="slack", tenant="T1")
        # Another process (the CLI, another replica) retrains: this app only sees the files.
        job = Retrainer(
            repo=app.repo, data_dir=learning_settings.data_dir, intents=learning_settings.intents
        )
        result = await job.run()

        (done,) = result.scopes
        assert (done.scope, done.version, done.promoted, done.previous) == (
            "slack:T1",
            "v0001",
            True,
            None,
        )
        assert done.figures["corrections_new"] == 1
        store = VersionStore.for_scope(learning_settings.data_dir, "slack:T1")
        assert store.current() == "v0001"
        retrained = store.load()
        assert retrained.predict([MISREAD])[0][0] == RIGHT  # the model, not the memory

        await eventually(lambda: parser.version_of("slack:T1") == "v0001")
        assert parser.classifier_of("slack:T1").predict([MISREAD])[0][0] == RIGHT
        assert parser.classifier_of("slack:T2") is base_classifier
        assert parser.parse_in("slack:T2", MISREAD)[0].intent == WRONG

        assert (await job.run()).scopes == []  # nothing changed since

        await app.repo.drop_correction(row.id or 0)
        await eventually(lambda: parser.parse_in("slack:T1", MISREAD)[0].intent == RIGHT)
        (again,) = (await job.run()).scopes
        assert (again.version, again.promoted, again.previous) == ("v0002", True, "v0001")
        assert again.figures["corrections_used"] == 0
        await eventually(lambda: parser.version_of("slack:T1") == "v0002")
        assert parser.parse_in("slack:T1", MISREAD)[0].intent == WRONG
    finally:
        await app.stop()


def poisoned(learning_intents: Path) -> list[tuple[str, str]]:
    """Near copies of every file example, each labelled as the next intent: corrections
    that would teach the classifier to misread the file's own examples."""
    from models.intents import load_intents

    texts, labels = load_intents(learning_intents).examples()
    order = sorted(set(labels))
    return [
        (f"{text} right now", order[(order.index(label) + 1) % len(order)])
        for text, label in zip(texts, labels, strict=True)
    ]


async def test_a_worse_candidate_is_saved_with_its_figures_but_not_promoted(
    learning_settings: Settings,
    repo: Repository,
    learning_intents: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = poisoned(learning_intents)
    job = Retrainer(
        repo=repo, data_dir=learning_settings.data_dir, intents=learning_intents, after=len(bad)
    )
    for text, label in bad[:-1]:
        await correct(repo, text, label, wrong=None)
    assert not await job.due()
    await correct(repo, *bad[-1], wrong=None)
    assert await job.due()

    result = await job.run_if_due()

    assert result is not None
    (kept,) = result.scopes
    assert (kept.version, kept.promoted) == ("v0001", False)
    assert kept.figures["candidate_accuracy"] < kept.figures["current_accuracy"]
    store = VersionStore.for_scope(learning_settings.data_dir, "slack:T1")
    assert store.current() is None  # the tenant stays on the base classifier
    (info,) = store.versions()
    assert not info.promoted and info.figures == kept.figures
    assert not await job.due()  # the run counted those corrections

    assert await run_cli(learning_settings, "intents", "versions", "--json") == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert (listed["tenant"], listed["current"]) == ("slack:T1", None)
    assert [(v["version"], v["promoted"]) for v in listed["versions"]] == [("v0001", False)]


async def test_only_one_retraining_runs_at_a_time(
    learning_settings: Settings, repo: Repository, learning_intents: Path
) -> None:
    job = Retrainer(repo=repo, data_dir=learning_settings.data_dir, intents=learning_intents)
    other = Retrainer(repo=repo, data_dir=learning_settings.data_dir, intents=learning_intents)
    await correct(repo)
    first = asyncio.ensure_future(job.run())
    await asyncio.sleep(0)  # the first run holds the locks from its first step
    with pytest.raises(RetrainBusy):
        await job.run()
    with pytest.raises(RetrainBusy):
        await other.run()  # another process: the lock file
    assert [s.scope for s in (await first).scopes] == ["slack:T1"]


async def test_the_jobs_are_registered_on_the_scheduler(
    learning_settings: Settings, base_classifier: IntentClassifier
) -> None:
    settings = learning_settings.model_copy(
        update={"retrain_after": 50, "retrain_cron": "0 3 * * *"}
    )
    app = await build_app(
        settings, parser=base_classifier, learning=True, adapters=[], with_worker=False
    )
    try:
        app.jobs.install(poll_seconds=1.0, lease_seconds=5.0)
        assert {"retrain-nightly", "retrain-after"} <= set(app.scheduler.job_ids())
    finally:
        await app.repo.dispose()


async def test_an_app_given_its_own_parser_does_not_learn(
    settings: Settings, base_classifier: IntentClassifier
) -> None:
    app = await build_app(settings, parser=base_classifier, adapters=[], with_worker=False)
    try:
        assert app.learning is None and app.router.parser is base_classifier
    finally:
        await app.repo.dispose()


def test_the_retrain_cron_takes_five_fields() -> None:
    assert cron_fields("0 3 * * *") == {
        "minute": "0",
        "hour": "3",
        "day": "*",
        "month": "*",
        "day_of_week": "*",
    }
    for bad in ("0 3 * *", "61 3 * * *", "nightly"):
        with pytest.raises(ValueError):
            cron_fields(bad)
    with pytest.raises(ValueError, match="five fields"):
        Settings(retrain_cron="nightly")  # refused at start, naming ATOMBOT_RETRAIN_CRON
    assert Settings(retrain_cron="").retrain_cron == ""  # no nightly run
