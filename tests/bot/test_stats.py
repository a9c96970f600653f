"""``atombot stats``: the maths, and the figures of a scripted set of tasks and votes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from bot.cli import build_arg_parser
from bot.config import Settings
from bot.stats import kind_stats, parse_since, percentile, render_table, wilson
from storage.repository import Repository
from storage.schemas import RequestCreate, TaskCreate
from storage.tables import Task, TaskStatus, utcnow


# ------------------------------------------------------------------------------ the maths
def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.95) == pytest.approx(3.85)
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.0) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 1.0) == 4.0


def test_percentiles_of_one_value_and_of_none() -> None:
    assert percentile([7.5], 0.5) == percentile([7.5], 0.95) == 7.5
    assert percentile([], 0.5) is None
    with pytest.raises(ValueError):
        percentile([1.0], 95)


def close(interval: tuple[float, float] | None, expected: tuple[float, float]) -> bool:
    """Whether ``interval`` is ``expected`` to five decimals."""
    return interval is not None and all(
        abs(got - want) < 1e-5 for got, want in zip(interval, expected, strict=True)
    )


def test_the_wilson_interval_by_hand() -> None:
    # 3 of 4: p = .75, z = 1.96: centre .6275, half-width .3269.
    assert close(wilson(3, 4), (0.30064, 0.95441))


def test_the_wilson_interval_at_the_edges() -> None:
    assert wilson(0, 0) is None  # no votes: no interval
    # All up: the upper end is exactly 1 and the lower one n / (n + z²).
    assert close(wilson(10, 10), (10 / (10 + 1.959964**2), 1.0))
    assert (wilson(10, 10) or (0, 0))[1] == 1.0 and (wilson(0, 5) or (1, 1))[0] == 0.0
    # One vote: wide, as it should be.
    assert close(wilson(1, 1), (0.20654, 1.0))
    assert close(wilson(0, 5), (0.0, 0.43448))
    with pytest.raises(ValueError):
        wilson(3, 2)


def test_since_takes_ages_dates_and_date_times() -> None:
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert parse_since("7d", now) == datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert parse_since("24h", now) == datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert parse_since("2w", now) == datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
    assert parse_since("2026-11-30", now) == datetime(2026, 11, 30, tzinfo=UTC)
    assert parse_since("2026-11-30T09:30+01:00", now) == datetime(2026, 11, 30, 8, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="24h, 7d or 2w"):
        parse_since("last tuesday", now)


@pytest.mark.parametrize("text", ["99999999999d", "999999999w", "9999-12-31T23:00-05:00"])
def test_since_out_of_the_range_of_dates_is_a_value_error(text: str) -> None:
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="out of the range of dates"):
        parse_since(text, now)


def test_since_with_an_offset_is_given_in_utc() -> None:
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert parse_since("2026-11-30T09:30+01:00", now).utcoffset() == timedelta(0)
    assert parse_since("0d", now) == now


def test_no_tasks_give_no_rows() -> None:
    assert kind_stats([]) == []
    assert render_table([]).splitlines()[0].startswith("kind / variant")


# --------------------------------------------------------------- a scripted set of tasks
T0 = utcnow().replace(microsecond=0) - timedelta(days=1)


async def scripted(
    repo: Repository,
    kind: str,
    status: str,
    *,
    tenant: str = "A",
    variant: str | None = None,
    wait: float | None = None,
    run: float | None = None,
    tokens: int | None = None,
    votes: tuple[int, ...] = (),
    retry_of: int | None = None,
    created: datetime = T0,
) -> int:
    """One task created at ``created``, claimed ``wait`` s later, finished ``run`` s after."""
    stored = await repo.create_request(
        request=RequestCreate(
            platform="slack",
            tenant=tenant,
            channel="c",
            user="u",
            text="x",
            event_id=f"e{utcnow().timestamp()}{kind}{variant}{status}{tokens}{votes}",
        ),
        tasks=[TaskCreate(kind=kind, status=status, result="r", retry_of=retry_of)],
    )
    task_id = stored.tasks[0].id or 0
    started = created + timedelta(seconds=wait) if wait is not None else None
    finished = started + timedelta(seconds=run) if started and run is not None else None
    async with repo.engine.begin() as conn:
        await conn.execute(
            update(Task)
            .where(Task.id == task_id)  # type: ignore[arg-type]
            .values(
                variant=variant,
                tokens=tokens,
                created_at=created,
                started_at=started,
                finished_at=finished,
            )
        )
    for n, score in enumerate(votes):
        await repo.record_feedback(task_id=task_id, user=f"voter{n}", score=score)
    return task_id


async def script(repo: Repository) -> None:
    ok, failed = TaskStatus.succeeded, TaskStatus.failed
    await scripted(repo, "report.draft", ok, variant="sections", wait=2, run=10, tokens=100,
                   votes=(1, 1))  # fmt: skip
    second = await scripted(repo, "report.draft", ok, variant="sections", wait=4, run=6,
                            tokens=50, votes=(-1,))  # fmt: skip
    await scripted(repo, "report.draft", failed, variant="sections", wait=6, run=1)
    await scripted(repo, "report.draft", ok, variant="sections", wait=1, run=8, tokens=30,
                   votes=(1,), retry_of=second, created=T0 + timedelta(seconds=20))  # fmt: skip
    await scripted(repo, "report.draft", ok, variant="headline", wait=0, run=4, tokens=20)
    await scripted(repo, "report.draft", TaskStatus.cancelled, variant=None)
    await scripted(repo, "summarize", ok, wait=3, run=5, tokens=10, votes=(-1,))
    await scripted(repo, "help", ok, wait=0, run=0)  # answered at once: not a stats row
    # Another workspace, and an old task: left out by --tenant and --since.
    await scripted(repo, "report.draft", ok, tenant="B", variant="sections", wait=1, run=1,
                   tokens=7, votes=(1,))  # fmt: skip
    await scripted(repo, "report.draft", ok, variant="headline", wait=9, run=9, tokens=9,
                   votes=(-1,), created=T0 - timedelta(days=30))  # fmt: skip


async def run_stats(settings: Settings, *argv: str) -> int:
    args = build_arg_parser().parse_args(["stats", *argv])
    return int(await args.func(args, settings))


async def stats_json(
    settings: Settings, capsys: pytest.CaptureFixture[str], *argv: str
) -> dict[str, Any]:
    assert await run_stats(settings, "--json", *argv) == 0
    return dict(json.loads(capsys.readouterr().out))


async def test_the_figures_are_those_computed_by_hand(
    repo: Repository, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    await script(repo)
    data = await stats_json(settings, capsys, "--tenant", "slack:A", "--since", "7d")
    assert data["tenant"] == "slack:A"
    kinds = {k["kind"]: k for k in data["kinds"]}
    assert sorted(kinds) == ["report.draft", "summarize"]
    report = kinds["report.draft"]
    variants = {v["variant"]: v for v in report.pop("variants")}
    assert list(variants) == ["headline", "sections", None]

    sections = variants["sections"]
    assert {k: sections[k] for k in ("tasks", "succeeded", "failed", "rated")} == {
        "tasks": 4, "succeeded": 3, "failed": 1, "rated": 3,
    }  # fmt: skip
    assert sections["rated_share"] == 1.0
    assert (sections["votes_up"], sections["votes_down"], sections["up_rate"]) == (3, 1, 0.75)
    assert close(tuple(sections["up_rate_95"]), (0.30064, 0.95441))  # as wilson(3, 4)
    assert sections["regenerated"] == 1 and sections["regenerate_rate"] == pytest.approx(1 / 3)
    assert sections["failure_rate"] == 0.25
    # Waits 2, 4, 6, 1 s; generation 10, 6, 8 s (the failed task's run is not counted).
    assert sections["queue_wait_s"] == {"p50": 3.0, "p95": pytest.approx(5.7)}
    assert sections["generation_s"] == {"p50": 8.0, "p95": pytest.approx(9.8)}
    assert (sections["tokens_total"], sections["tokens_mean"]) == (180, 60.0)

    headline = variants["headline"]
    assert (headline["tasks"], headline["rated_share"], headline["up_rate"]) == (1, 0.0, None)
    assert headline["up_rate_95"] is None and headline["failure_rate"] == 0.0
    assert headline["queue_wait_s"] == {"p50": 0.0, "p95": 0.0}
    assert (headline["tokens_total"], headline["tokens_mean"]) == (20, 20.0)
    cancelled = variants[None]
    assert (cancelled["tasks"], cancelled["failure_rate"], cancelled["rated_share"]) == (
        1,
        None,
        None,
    )
    assert cancelled["queue_wait_s"] == {"p50": None, "p95": None}

    assert (report["tasks"], report["succeeded"], report["failed"]) == (6, 4, 1)
    assert (report["rated_share"], report["regenerate_rate"], report["failure_rate"]) == (
        0.75, 0.25, 0.2,
    )  # fmt: skip
    assert report["queue_wait_s"] == {"p50": 2.0, "p95": pytest.approx(5.6)}
    assert report["generation_s"] == {"p50": 7.0, "p95": pytest.approx(9.7)}
    assert (report["tokens_total"], report["tokens_mean"]) == (200, 50.0)

    summary = kinds["summarize"]
    assert summary["variants"] == [] and (summary["up_rate"], summary["tokens_total"]) == (0.0, 10)


async def test_since_and_tenant_filter_the_tasks(
    repo: Repository, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    await script(repo)

    def tasks(data: dict[str, Any]) -> dict[str, int]:
        return {k["kind"]: k["tasks"] for k in data["kinds"]}

    assert tasks(await stats_json(settings, capsys)) == {"report.draft": 8, "summarize": 1}
    assert tasks(await stats_json(settings, capsys, "--since", "7d")) == {
        "report.draft": 7, "summarize": 1,
    }  # fmt: skip
    assert tasks(await stats_json(settings, capsys, "--tenant", "slack:B")) == {"report.draft": 1}
    day = (T0 + timedelta(days=1)).date().isoformat()
    assert await stats_json(settings, capsys, "--since", day) == {
        "since": f"{day}T00:00:00+00:00", "tenant": None, "kinds": [],
    }  # fmt: skip


async def test_the_table_shows_each_kind_then_its_variants(
    repo: Repository, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    await script(repo)
    assert await run_stats(settings, "--tenant", "slack:A", "--since", "7d") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("tasks created since ") and lines[0].endswith("workspace slack:A")
    assert lines[1].split()[:3] == ["kind", "/", "variant"]
    rows = [line.split() for line in lines[2:]]
    assert [r[0] for r in rows] == ["report.draft", "headline", "sections", "(none)", "summarize"]
    sections = rows[2]
    assert sections[1:6] == ["4", "100%", "75%", "(30-95%)", "33%"]
    assert sections[6:] == ["25%", "3.0s/5.7s", "8.0s/9.8s", "180", "(60)"]


async def test_a_database_that_cannot_be_opened_is_one_line_and_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    settings = Settings(database_url=f"sqlite:///{tmp_path}/a-file/atombot.db", data_dir=tmp_path)

    assert await run_stats(settings) == 2

    err = capsys.readouterr().err
    assert err.startswith("atombot stats: cannot open the database: ") and err.count("\n") == 1


async def test_bad_arguments_are_refused_and_an_empty_database_says_so(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_stats(settings, "--since", "yesterday-ish") == 2
    assert "--since 'yesterday-ish'" in capsys.readouterr().err
    assert await run_stats(settings, "--tenant", "T0123") == 2
    assert "PLATFORM:TENANT" in capsys.readouterr().err
    assert await run_stats(settings, "--since", "99999999999d") == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert await run_stats(settings) == 0
    assert capsys.readouterr().out.splitlines() == [
        "tasks created all time, all workspaces",
        "no tasks",
    ]
