"""The figures of ``atombot stats``: per task kind and prompt variant, from task outcomes.

Pure functions (no I/O): :func:`percentile` and :func:`wilson` are the maths;
:func:`figures` turns a set of :class:`~storage.repo.stats.TaskOutcome` into one row and
:func:`kind_stats` groups them by kind and variant. What each figure counts:

- ``tasks``: tasks created in the window; ``succeeded``/``failed``: those that ended so.
- ``rated_share``: succeeded tasks with at least one vote, of the succeeded tasks.
- ``up_rate``: 👍 votes of all votes, with a 95% Wilson interval (votes, not tasks: a task
  two people rated counts twice, as it does for the prompt sampler).
- ``regenerate_rate``: succeeded tasks that someone regenerated, of the succeeded tasks.
- ``failure_rate``: failed tasks of those that finished (succeeded or failed; cancelled and
  unfinished tasks are left out).
- ``queue_wait``: first claim by a worker minus creation (``started_at - created_at``), so
  it includes waiting for a task it depends on; ``generation``: ``finished_at -
  started_at`` of succeeded tasks, retries included. Both in seconds, p50 and p95.
- ``tokens_total``/``tokens_mean``: generated tokens of the tasks that recorded them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from storage.repo.stats import TaskOutcome
from storage.tables import TaskStatus

#: The normal quantile of a two-sided 95% interval.
Z95 = 1.959963984540054
_RELATIVE = re.compile(r"(\d+)\s*([hdw])")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-quantile (0..1) of ``values``, interpolating linearly between ranks.

    The same rule as numpy's default and a spreadsheet's PERCENTILE.INC: position
    ``(n - 1) * q`` in the sorted values. None for no values.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError("q must lie between 0 and 1")
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def wilson(successes: int, total: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a rate of ``successes`` in ``total`` (None for 0 trials).

    Unlike ``p ± z·√(p(1−p)/n)`` it stays within 0..1 and is not zero-width at 0 or n.
    """
    if total <= 0:
        return None
    if not 0 <= successes <= total:
        raise ValueError("successes must lie between 0 and total")
    p = successes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    # At 0 and n the ends are exactly 0 and 1; rounding would leave 1e-17 off.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == total else min(1.0, centre + half)
    return low, high


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class Figures:
    """The figures of one group of tasks (see the module docstring for what each counts)."""

    tasks: int
    succeeded: int
    failed: int
    rated: int
    up: int
    down: int
    regenerated: int
    queue_wait: tuple[float, ...]
    generation: tuple[float, ...]
    tokens: tuple[int, ...]

    @property
    def rated_share(self) -> float | None:
        """Rated tasks of the succeeded ones."""
        return _share(self.rated, self.succeeded)

    @property
    def up_rate(self) -> float | None:
        """👍 votes of all votes."""
        return _share(self.up, self.up + self.down)

    @property
    def up_interval(self) -> tuple[float, float] | None:
        """The 95% Wilson interval of :attr:`up_rate`."""
        return wilson(self.up, self.up + self.down)

    @property
    def regenerate_rate(self) -> float | None:
        """Regenerated tasks of the succeeded ones."""
        return _share(self.regenerated, self.succeeded)

    @property
    def failure_rate(self) -> float | None:
        """Failed tasks of the finished (succeeded or failed) ones."""
        return _share(self.failed, self.succeeded + self.failed)

    @property
    def tokens_total(self) -> int:
        """Tokens generated in all."""
        return sum(self.tokens)

    @property
    def tokens_mean(self) -> float | None:
        """Tokens per task that recorded them."""
        return self.tokens_total / len(self.tokens) if self.tokens else None

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain data (``atombot stats --json``); times in seconds."""
        interval = self.up_interval
        return {
            "tasks": self.tasks,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "rated": self.rated,
            "rated_share": self.rated_share,
            "votes_up": self.up,
            "votes_down": self.down,
            "up_rate": self.up_rate,
            "up_rate_95": list(interval) if interval is not None else None,
            "regenerated": self.regenerated,
            "regenerate_rate": self.regenerate_rate,
            "failure_rate": self.failure_rate,
            "queue_wait_s": {
                "p50": percentile(self.queue_wait, 0.5),
                "p95": percentile(self.queue_wait, 0.95),
            },
            "generation_s": {
                "p50": percentile(self.generation, 0.5),
                "p95": percentile(self.generation, 0.95),
            },
            "tokens_total": self.tokens_total,
            "tokens_mean": self.tokens_mean,
        }


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max((end - start).total_seconds(), 0.0)


def figures(outcomes: Sequence[TaskOutcome]) -> Figures:
    """The figures of a group of tasks."""
    succeeded = [o for o in outcomes if o.status == TaskStatus.succeeded]
    waits = (_seconds(o.created_at, o.started_at) for o in outcomes)
    runs = (_seconds(o.started_at, o.finished_at) for o in succeeded)
    return Figures(
        tasks=len(outcomes),
        succeeded=len(succeeded),
        failed=sum(1 for o in outcomes if o.status == TaskStatus.failed),
        rated=sum(1 for o in succeeded if o.up + o.down > 0),
        up=sum(o.up for o in outcomes),
        down=sum(o.down for o in outcomes),
        regenerated=sum(1 for o in succeeded if o.regenerated),
        queue_wait=tuple(w for w in waits if w is not None),
        generation=tuple(r for r in runs if r is not None),
        tokens=tuple(o.tokens for o in outcomes if o.tokens is not None),
    )


@dataclass(frozen=True)
class KindStats:
    """One kind's figures, over all its tasks and per prompt variant.

    ``variants`` is empty when no task of the kind has a variant; otherwise it has a row per
    variant, and one for ``None`` when some tasks have none (created before the kind had
    variants, or cancelled before a worker took them).
    """

    kind: str
    overall: Figures
    variants: tuple[tuple[str | None, Figures], ...]

    def as_dict(self) -> dict[str, Any]:
        """As plain data: the kind's figures and a ``variants`` list."""
        return {
            "kind": self.kind,
            **self.overall.as_dict(),
            "variants": [{"variant": v, **f.as_dict()} for v, f in self.variants],
        }


def kind_stats(outcomes: Sequence[TaskOutcome]) -> list[KindStats]:
    """Figures per kind (by name) and per variant (by name; tasks without one last)."""
    by_kind: dict[str, list[TaskOutcome]] = {}
    for outcome in outcomes:
        by_kind.setdefault(outcome.kind, []).append(outcome)
    rows = []
    for kind in sorted(by_kind):
        group = by_kind[kind]
        by_variant: dict[str | None, list[TaskOutcome]] = {}
        for outcome in group:
            by_variant.setdefault(outcome.variant, []).append(outcome)
        variants: tuple[tuple[str | None, Figures], ...] = ()
        if set(by_variant) != {None}:
            names = sorted(by_variant, key=lambda v: (v is None, v or ""))
            variants = tuple((v, figures(by_variant[v])) for v in names)
        rows.append(KindStats(kind=kind, overall=figures(group), variants=variants))
    return rows


def parse_since(text: str, now: datetime) -> datetime:
    """``7d``, ``24h``, ``2w`` (before ``now``), a date (midnight UTC) or an ISO date-time.

    Raises ValueError naming the accepted forms.
    """
    value = text.strip()
    relative = _RELATIVE.fullmatch(value)
    try:
        if relative is not None:
            amount, unit = int(relative.group(1)), relative.group(2)
            return now - timedelta(**{_UNITS[unit]: amount})
        when = datetime.fromisoformat(value)
        # In UTC, as stored and as the table's heading prints it.
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except OverflowError:
        # An age reaching before year 1, or a time that is past year 9999 in UTC.
        raise ValueError(f"--since {text!r}: that is out of the range of dates") from None
    except ValueError:
        raise ValueError(
            f"--since {text!r}: give a date (2026-11-30), a date-time (2026-11-30T09:00) "
            "or an age such as 24h, 7d or 2w"
        ) from None


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _pair(values: Sequence[float]) -> str:
    p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
    if p50 is None or p95 is None:
        return "-"
    return f"{p50:.1f}s/{p95:.1f}s"


def _cells(label: str, f: Figures) -> list[str]:
    interval = f.up_interval
    up = _percent(f.up_rate)
    if interval is not None:
        up += f" ({interval[0] * 100:.0f}-{interval[1] * 100:.0f}%)"
    tokens = "-" if f.tokens_mean is None else f"{f.tokens_total:,} ({f.tokens_mean:.0f})"
    return [
        label,
        str(f.tasks),
        _percent(f.rated_share),
        up,
        _percent(f.regenerate_rate),
        _percent(f.failure_rate),
        _pair(f.queue_wait),
        _pair(f.generation),
        tokens,
    ]


HEADER = [
    "kind / variant",
    "tasks",
    "rated",
    "up rate (95% CI)",
    "regen",
    "failed",
    "wait p50/p95",
    "gen p50/p95",
    "tokens (mean)",
]


def render_table(rows: Sequence[KindStats]) -> str:
    """The human table: one line per kind, then its variants indented below it."""
    lines = [HEADER]
    for row in rows:
        lines.append(_cells(row.kind, row.overall))
        for variant, f in row.variants:
            lines.append(_cells(f"  {variant or '(none)'}", f))
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    out = []
    for line in lines:
        pairs = enumerate(zip(line, widths, strict=True))
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)
