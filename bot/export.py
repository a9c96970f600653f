"""Training data from ratings and corrections: the rows of ``atombot feedback export``.

Each format is JSONL that TRL (or ``atombot intents``) reads as it is:

- ``sft``: ``{"messages": [...prompt, {"role": "assistant", "content": result}]}`` for every
  result rated 👍 by everyone who voted on it (at least one 👍 and no 👎: a result someone
  disliked is no example to imitate). A result without a stored prompt cannot be replayed
  and is skipped (counted).
- ``dpo``: TRL's conversational preference rows ``{"prompt": [...], "chosen": [assistant],
  "rejected": [assistant]}``. A pair is a 👍 result and a 👎 result of the same kind given the
  same prompt messages: attempts of one regenerate chain, or separate requests with the same
  input. Each (prompt, chosen, rejected) appears once. A result whose 👎 votes all said
  "wrong kind of task" is no rejected answer (the text was not what was faulted).
- ``intents``: ``{"text", "label", "tenant", "created_at"}`` from active corrections, the
  labelled-row shape of ``atombot intents train/eval`` (which ignore the extra keys). A later
  correction of the same text in the same tenant replaces an earlier one.

A result with both 👍 and 👎 votes is "mixed" and used for neither SFT nor DPO. Chats that
opted out of training (or out of chat memory) are left out by the repository's queries.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any, Literal

from bot.texts import t
from storage.repo.exports import RatedResult
from storage.tables import Correction

FORMATS = ("sft", "dpo", "intents")
#: The platforms whose tenants ``--tenant`` may name.
PLATFORMS = ("console", "slack", "telegram")
ROLES = ("system", "user", "assistant")

Verdict = Literal["up", "down", "mixed"]

#: Why rows were left out (``export.skip.<reason>`` in :mod:`bot.texts`; ``opted_out`` and
#: ``pending_review`` are counted by the repository).
SKIP_REASONS = (
    "no_prompt",
    "bad_prompt",
    "empty_result",
    "mixed_votes",
    "wrong_kind",
    "duplicate",
    "identical_pair",
    "different_prompt",
    "unpaired",
    "superseded",
    "opted_out",
    "pending_review",
)


class ExportError(ValueError):
    """A bad export argument or target; ``key`` and ``values`` name the text to show."""

    def __init__(self, key: str, **values: object) -> None:
        self.key = key
        self.values = values
        super().__init__(t(key, "en", **values))

    def text(self, locale: str = "en") -> str:
        """The one-line message for the operator."""
        return t(self.key, locale, **self.values)


@dataclass
class Export:
    """The rows of one export and what was left out, by reason (one of ``SKIP_REASONS``)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    def skip(self, reason: str, n: int = 1) -> None:
        """Count ``n`` rows left out for ``reason`` (none: nothing is recorded)."""
        if n:
            self.skipped[reason] += n

    def summary(self, fmt: str, out: Path, locale: str = "en") -> str:
        """One line: how many rows went where, and what was skipped and why."""
        written = t("export.written", locale, rows=len(self.rows), format=fmt, out=out)
        separator = "、" if locale == "zh" else ", "
        reasons = separator.join(
            t(f"export.skip.{reason}", locale, n=self.skipped[reason])
            for reason in SKIP_REASONS
            if self.skipped[reason]
        )
        return t("export.skipped", locale, written=written, reasons=reasons) if reasons else written


def parse_since(text: str) -> datetime:
    """``--since``: a date (``2026-03-01``, midnight UTC) or an ISO 8601 time (UTC if naive)."""
    raw = text.strip()
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        when = datetime.fromisoformat(raw)
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except OverflowError:  # a time past year 9999 once in UTC
        raise ExportError("export.since_out_of_range", value=text) from None
    except ValueError:
        raise ExportError("export.bad_since", value=text) from None


def parse_tenant(text: str) -> tuple[str, str]:
    """``--tenant PLATFORM:TENANT`` (``slack:T0123``, ``telegram:123456``) → (platform, tenant)."""
    platform, sep, tenant = text.strip().partition(":")
    if not sep or not platform or not tenant.strip():
        raise ExportError("export.bad_tenant", value=text)
    if platform not in PLATFORMS:
        raise ExportError(
            "export.unknown_platform", value=text, platform=platform, platforms=", ".join(PLATFORMS)
        )
    return platform, tenant.strip()


def verdict(result: RatedResult) -> Verdict:
    """👍 when every vote was 👍, 👎 when every vote was 👎, else mixed."""
    if result.up and not result.down:
        return "up"
    if result.down and not result.up:
        return "down"
    return "mixed"


def chat_messages(prompt: object) -> list[dict[str, str]] | None:
    """The stored prompt as ``[{"role", "content"}]`` (other keys dropped), None if it is not
    a non-empty list of messages with known roles and string contents."""
    if not isinstance(prompt, list) or not prompt:
        return None
    messages: list[dict[str, str]] = []
    for item in prompt:
        if not isinstance(item, dict):
            return None
        role, content = item.get("role"), item.get("content")
        if role not in ROLES or not isinstance(content, str):
            return None
        messages.append({"role": str(role), "content": content})
    return messages


def _key(messages: Sequence[dict[str, str]]) -> str:
    return json.dumps(messages, ensure_ascii=False, sort_keys=True)


def _usable(result: RatedResult, skipped: Counter[str]) -> list[dict[str, str]] | None:
    """The prompt of a cleanly rated result with a text, else None (counting why)."""
    if verdict(result) == "mixed":
        skipped["mixed_votes"] += 1
        return None
    if not result.result.strip():
        skipped["empty_result"] += 1
        return None
    if result.prompt is None:
        skipped["no_prompt"] += 1
        return None
    messages = chat_messages(result.prompt)
    if messages is None:
        skipped["bad_prompt"] += 1
    return messages


def sft_rows(results: Iterable[RatedResult]) -> Export:
    """SFT rows from the results everyone rated 👍 (👎-only results are not SFT material and
    are not counted as skipped)."""
    export = Export()
    seen: set[str] = set()
    for result in results:
        if verdict(result) == "down":
            continue
        messages = _usable(result, export.skipped)
        if messages is None:
            continue
        row = {"messages": [*messages, {"role": "assistant", "content": result.result}]}
        key = _key(row["messages"])
        if key in seen:
            export.skipped["duplicate"] += 1
            continue
        seen.add(key)
        export.rows.append(row)
    return export


def dpo_rows(results: Iterable[RatedResult]) -> Export:
    """DPO rows: every 👍/👎 pair of one kind on the same prompt messages, once each."""
    export = Export()
    groups: dict[tuple[str, str], list[tuple[RatedResult, list[dict[str, str]]]]] = {}
    for result in results:
        if verdict(result) == "down" and result.wrong_kind == result.down:
            export.skipped["wrong_kind"] += 1
            continue
        messages = _usable(result, export.skipped)
        if messages is not None:
            groups.setdefault((result.kind, _key(messages)), []).append((result, messages))
    paired: set[int] = set()
    seen: set[tuple[str, str, str]] = set()
    for (_, prompt_key), members in groups.items():
        ups = [(r, m) for r, m in members if verdict(r) == "up"]
        downs = [(r, m) for r, m in members if verdict(r) == "down"]
        for good, messages in ups:
            for bad, _ in downs:
                paired.update((good.task_id, bad.task_id))
                if good.result == bad.result:
                    export.skipped["identical_pair"] += 1
                    continue
                key = (prompt_key, good.result, bad.result)
                if key in seen:
                    export.skipped["duplicate"] += 1
                    continue
                seen.add(key)
                export.rows.append(
                    {
                        "prompt": messages,
                        "chosen": [{"role": "assistant", "content": good.result}],
                        "rejected": [{"role": "assistant", "content": bad.result}],
                    }
                )
    export.skip("different_prompt", _regenerate_pairs_across_prompts(groups))
    export.skip(
        "unpaired", sum(1 for group in groups.values() for r, _ in group if r.task_id not in paired)
    )
    return export


def _regenerate_pairs_across_prompts(
    groups: dict[tuple[str, str], list[tuple[RatedResult, list[dict[str, str]]]]],
) -> int:
    """👍/👎 pairs within one regenerate chain whose attempts were given different prompts
    (a prompt variant changed between them), which DPO cannot use."""
    chains: dict[int, list[tuple[str, Verdict]]] = {}
    for (_, prompt_key), members in groups.items():
        for result, _ in members:
            chains.setdefault(result.first_attempt, []).append((prompt_key, verdict(result)))
    return sum(
        1
        for attempts in chains.values()
        for key_up, v_up in attempts
        if v_up == "up"
        for key_down, v_down in attempts
        if v_down == "down" and key_down != key_up
    )


def intents_rows(corrections: Iterable[Correction]) -> Export:
    """Labelled rows from corrections, oldest first; the latest label of a text wins."""
    export = Export()
    latest: dict[tuple[str, str, str], Correction] = {}
    for correction in corrections:
        key = (correction.platform, correction.tenant, correction.text)
        if key in latest:
            export.skipped["superseded"] += 1
        latest[key] = correction
    for correction in sorted(latest.values(), key=lambda c: c.id or 0):
        created = correction.created_at
        created = created.replace(tzinfo=UTC) if created.tzinfo is None else created
        export.rows.append(
            {
                "text": correction.text,
                "label": correction.right_kind,
                "tenant": f"{correction.platform}:{correction.tenant}",
                "created_at": created.isoformat(),
            }
        )
    return export


@contextlib.contextmanager
def atomic_target(out: Path) -> Iterator[IO[str]]:
    """A temporary file next to ``out`` that becomes ``out`` when the block ends without an
    error (and disappears otherwise), so a reader never sees a half-written export.

    Raises :class:`ExportError` at once when ``out`` cannot be written (no such directory, no
    permission, a directory in the way), before anything else is done. A symbolic link or a
    special file (``/dev/null``, a FIFO) is refused too: the rename would replace it by a
    regular file instead of writing where it points.
    """
    target = Path(out)
    if target.is_dir():
        raise ExportError("export.is_directory", out=out)
    if target.is_symlink() or (target.exists() and not target.is_file()):
        raise ExportError("export.not_a_file", out=out)
    try:
        fd, temp = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".tmp", text=True
        )
    except OSError as exc:
        raise ExportError("export.cannot_write", out=out, reason=exc.strerror or exc) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def write_rows(handle: IO[str], rows: Iterable[dict[str, Any]]) -> None:
    """Write rows as JSON lines (UTF-8 as is, not escaped)."""
    for row in rows:
        handle.write(json.dumps(row, ensure_ascii=False) + "\n")
