"""Reading and checking a tuning data file (the JSONL ``atombot feedback export`` writes).

Every row is checked before anything trains, and the first problem is reported with its line
number. Accepted rows, in TRL's dataset formats:

* SFT ("conversational language modeling"): ``{"messages": [{"role": ..., "content": ...}]}``
  with roles ``system``, ``user``, ``assistant`` and at least one assistant message.
* DPO, "conversational": ``{"prompt": [messages], "chosen": [assistant message],
  "rejected": [assistant message]}``; or "standard": ``prompt``, ``chosen`` and ``rejected``
  as strings. One file uses one of the two.

Other keys of a row (ids, kinds, tenants an export may add) are ignored.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

METHODS = ("sft", "dpo")
ROLES = ("system", "user", "assistant")


class TuneInputError(Exception):
    """The tuning input cannot be used; ``reason`` is one line a person can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TuneData:
    """A checked data file: its rows in TRL's format, and what the manifest records of it."""

    path: Path
    sha256: str
    rows: list[dict[str, Any]]
    #: "conversational" or "standard".
    format: str


def _short(value: Any, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters: an error names a bad value, it does not
    print a whole message (or a 100 MB line) from the file."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def _messages(value: Any, where: str, *, roles: tuple[str, ...] = ROLES) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise TuneInputError(f"{where} must be a non-empty list of messages")
    out: list[dict[str, str]] = []
    for i, message in enumerate(value, 1):
        if not isinstance(message, dict):
            raise TuneInputError(f"{where}, message {i}: must be an object with role and content")
        role, content = message.get("role"), message.get("content")
        if role not in roles:
            raise TuneInputError(
                f"{where}, message {i}: role must be one of {', '.join(roles)}, not {_short(role)}"
            )
        if not isinstance(content, str):
            raise TuneInputError(f"{where}, message {i}: content must be a string")
        out.append({"role": role, "content": content})
    return out


def _sft_row(row: dict[str, Any], where: str) -> tuple[dict[str, Any], str]:
    messages = _messages(row.get("messages"), f"{where}: messages")
    if not any(m["role"] == "assistant" and m["content"].strip() for m in messages):
        raise TuneInputError(f"{where}: messages have no assistant answer to learn from")
    return {"messages": messages}, "conversational"


def _dpo_row(row: dict[str, Any], where: str) -> tuple[dict[str, Any], str]:
    missing = [key for key in ("prompt", "chosen", "rejected") if key not in row]
    if missing:
        raise TuneInputError(f"{where}: a DPO row needs prompt, chosen and rejected; no {missing}")
    prompt, chosen, rejected = row["prompt"], row["chosen"], row["rejected"]
    if isinstance(prompt, str) and isinstance(chosen, str) and isinstance(rejected, str):
        if not chosen.strip() or not rejected.strip():
            raise TuneInputError(f"{where}: chosen and rejected must not be empty")
        return {"prompt": prompt, "chosen": chosen, "rejected": rejected}, "standard"
    if isinstance(prompt, list) and isinstance(chosen, list) and isinstance(rejected, list):
        return {
            "prompt": _messages(prompt, f"{where}: prompt"),
            "chosen": _messages(chosen, f"{where}: chosen", roles=("assistant",)),
            "rejected": _messages(rejected, f"{where}: rejected", roles=("assistant",)),
        }, "conversational"
    raise TuneInputError(
        f"{where}: prompt, chosen and rejected must all be strings (standard format) "
        "or all lists of messages (conversational format)"
    )


def load_data(path: Path, method: str) -> TuneData:
    """Read and check ``path`` for ``method`` ("sft" or "dpo"); raise TuneInputError."""
    if method not in METHODS:
        raise TuneInputError(f"unknown method {method!r}; use {' or '.join(METHODS)}")
    if not path.is_file():
        raise TuneInputError(f"data file {str(path)!r} does not exist or is not a file")
    try:
        raw = path.read_bytes()
        # utf-8-sig: a byte-order mark (as some Windows editors write) is not part of line 1.
        text = raw.decode("utf-8-sig")
    except OSError as error:
        raise TuneInputError(f"cannot read data file {str(path)!r}: {error}") from error
    except UnicodeDecodeError as error:
        raise TuneInputError(f"data file {str(path)!r} is not UTF-8 text: {error}") from error
    check = _sft_row if method == "sft" else _dpo_row
    rows: list[dict[str, Any]] = []
    formats: dict[str, int] = {}
    # Lines end at "\n" only (a "\r" before it is blank space to JSON): str.splitlines() would
    # also split at U+2028, U+0085 and others, which JSON writes unescaped inside strings.
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        where = f"{path.name} line {number}"
        try:
            row = json.loads(line)
        except ValueError as error:
            raise TuneInputError(f"{where}: not valid JSON ({error})") from error
        if not isinstance(row, dict):
            raise TuneInputError(f"{where}: a row must be a JSON object")
        clean, form = check(row, where)
        if formats and form not in formats:
            ((other, line_of_other),) = formats.items()
            raise TuneInputError(
                f"{where}: uses the {form} format but line {line_of_other} the {other} one; "
                "use one format per file"
            )
        formats.setdefault(form, number)
        rows.append(clean)
    if not rows:
        raise TuneInputError(f"data file {str(path)!r} is empty: there are no rows to train on")
    return TuneData(
        path=path.resolve(),
        sha256=hashlib.sha256(raw).hexdigest(),
        rows=rows,
        format=next(iter(formats)),
    )
