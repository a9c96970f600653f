"""Turn a request's tasks into the view its progress/result message shows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from bot.texts import t
from bot.types import Action, Button, Section, View
from handlers.kinds import KindRegistry
from storage.repository import Tally
from storage.tables import Task, TaskStatus

BAR_CELLS = 10


def progress_bar(fraction: float) -> str:
    """A text progress bar such as ``███░░░░░░░``."""
    filled = max(0, min(BAR_CELLS, round(fraction * BAR_CELLS)))
    return "█" * filled + "░" * (BAR_CELLS - filled)


def failure_reason(error: str | None, locale: str) -> str:
    """A person-readable reason from a stored ``code: detail`` error."""
    code, _, detail = (error or "").partition(": ")
    if code == "worker_lost":
        return t("reason.worker_lost", locale)
    if code == "model_unavailable":
        return t("reason.model_unavailable", locale, detail=detail)
    if code == "generation_failed":
        return t("reason.generation_failed", locale, detail=detail)
    if error == "a task it depends on did not succeed":
        return t("reason.dependency", locale)
    if code == "approval_expired":
        return t("reason.approval_expired", locale)
    if code == "action_failed":
        return t("reason.action_failed", locale, detail=detail)
    return t("reason.unknown", locale, detail=error or "?")


def _elapsed(task: Task, now: datetime) -> int:
    started = task.started_at or task.created_at
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    return max(0, int((now - started).total_seconds()))


def status_line(
    task: Task,
    locale: str,
    *,
    now: datetime,
    position: int | None = None,
    tally: Tally | None = None,
    kinds: KindRegistry,
) -> str:
    """One line saying where a task is."""
    kind = kinds.label(task.kind, locale)
    if task.status == TaskStatus.queued:
        if task.error == "worker_lost" or (task.error and task.attempts):
            return t(
                "status.retrying",
                locale,
                id=task.id,
                kind=kind,
                reason=failure_reason(task.error, locale),
            )
        if task.depends_on:
            deps = ", #".join(str(d) for d in task.depends_on)
            return t("status.waiting", locale, id=task.id, kind=kind, deps=deps)
        where = t("status.queue_position", locale, n=position + 1) if position is not None else ""
        return t("status.queued", locale, id=task.id, kind=kind, position=where)
    if task.status == TaskStatus.running:
        return t(
            "status.running",
            locale,
            id=task.id,
            kind=kind,
            bar=progress_bar(task.progress),
            percent=round(task.progress * 100),
            elapsed=_elapsed(task, now),
        )
    if task.status == TaskStatus.failed:
        return t(
            "status.failed",
            locale,
            id=task.id,
            kind=kind,
            reason=failure_reason(task.error, locale),
        )
    if task.status == TaskStatus.awaiting_approval:
        approval = task.inputs.get("approval") or {}
        if approval.get("state") == "asking":
            return t("status.asking", locale, id=task.id, kind=kind)
        until = str(approval.get("until") or "?")
        return t("status.awaiting_approval", locale, id=task.id, kind=kind, until=until)
    if task.status == TaskStatus.cancelled:
        if task.error == "rejected":
            return t("status.rejected", locale, id=task.id, kind=kind)
        return t("status.cancelled", locale, id=task.id, kind=kind)
    line = t("status.succeeded", locale, id=task.id, kind=kind)
    if tally and (tally.up or tally.down):
        line += " · " + t("status.tally", locale, up=tally.up, down=tally.down)
    return line


def render_request(
    tasks: Sequence[Task],
    locale: str,
    *,
    now: datetime,
    kinds: KindRegistry,
    positions: dict[int, int] | None = None,
    tallies: dict[int, Tally] | None = None,
) -> View:
    """The message of a request: one section per visible task, buttons per task.

    Finished tasks of rateable kinds get 👍/👎, of regenerable kinds Regenerate.
    """
    positions = positions or {}
    tallies = tallies or {}
    sections: list[Section] = []
    rows: list[tuple[Button, ...]] = []
    for task in tasks:
        if not kinds.visible(task.kind):
            continue
        task_id = task.id or 0
        title = status_line(
            task,
            locale,
            now=now,
            position=positions.get(task_id),
            tally=tallies.get(task_id),
            kinds=kinds,
        )
        body = ""
        if task.status == TaskStatus.succeeded:
            body = kinds.render(task)
            row: list[Button] = []
            if kinds.rateable(task.kind):
                row.append(Button(t("button.up", locale), Action.rate_up, task_id))
                row.append(Button(t("button.down", locale), Action.rate_down, task_id))
            if kinds.regenerable(task.kind):
                row.append(Button(t("button.regenerate", locale), Action.regenerate, task_id))
            if row:
                rows.append(tuple(row))
        elif task.status == TaskStatus.awaiting_approval:
            body = (task.result or "").strip()  # the text to be sent, or what is asked
            rows.append(approval_buttons(task, locale))
        elif task.status in (TaskStatus.queued, TaskStatus.running):
            if task.status == TaskStatus.running and task.partial:
                body = task.partial.strip()  # the first words show before the result
            rows.append((Button(t("button.cancel", locale), Action.cancel, task_id),))
        sections.append(Section(text=body, title=title))
    return View(sections=tuple(sections), buttons=tuple(rows))


def approval_buttons(task: Task, locale: str) -> tuple[Button, ...]:
    """Approve / Edit / Reject under an action awaiting approval (Approve carries the text
    version it was shown for); "Reply with it" / Cancel while it asks for a detail."""
    task_id = task.id or 0
    approval = task.inputs.get("approval") or {}
    if approval.get("state") == "asking":
        return (
            Button(t("button.answer", locale), Action.edit, task_id),
            Button(t("button.cancel", locale), Action.cancel, task_id),
        )
    version = approval.get("version")
    return (
        Button(
            t("button.approve", locale),
            Action.approve,
            task_id,
            f"v{version}" if version is not None else None,
        ),
        Button(t("button.edit", locale), Action.edit, task_id),
        Button(t("button.reject", locale), Action.reject, task_id),
    )


def split_text(text: str, limit: int) -> list[str]:
    """Split text into parts of at most ``limit`` characters, at paragraph/line/word edges."""
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n\n"), window.rfind("\n"))
        if cut < limit // 2:
            cut = window.rfind(" ")
        if cut < limit // 2:
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip("\n ")
    if rest:
        parts.append(rest)
    return parts


def fit_view(view: View, limit: int, locale: str) -> tuple[View, list[str]]:
    """Fit a view into one message of ``limit`` characters plus follow-up parts.

    Status lines and buttons stay in the main message; result bodies that do not fit move
    to follow-up parts, each at most ``limit`` characters, so nothing is cut silently.
    """
    if len(view.text) <= limit:
        return view, []
    kept: list[Section] = []
    overflow: list[str] = []
    budget = limit - sum(len(s.title or "") + 2 for s in view.sections) - 50
    for section in view.sections:
        if section.text and len(section.text) + 2 <= budget and not overflow:
            kept.append(section)
            budget -= len(section.text) + 2
            continue
        head = ""
        if section.text and budget > 200 and not overflow:
            first = split_text(section.text, budget)[0]
            head = first
            overflow.append(section.text[len(first) :].lstrip())
            budget = 0
        elif section.text:
            overflow.append(f"{section.title}\n{section.text}" if section.title else section.text)
        kept.append(Section(text=head, title=section.title))
    parts: list[str] = []
    for chunk in overflow:
        parts.extend(split_text(chunk, limit - 40))
    total = len(parts)
    labelled = [
        f"{t('status.continued', locale, part=i + 1, parts=total)}\n{p}"
        for i, p in enumerate(parts)
    ]
    return View(sections=tuple(kept), buttons=view.buttons), labelled
