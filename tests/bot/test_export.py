"""Training rows from ratings and corrections (``bot.export``): what goes in, what is skipped."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.export import (
    ExportError,
    atomic_target,
    dpo_rows,
    intents_rows,
    parse_since,
    parse_tenant,
    sft_rows,
    write_rows,
)
from storage.repo.exports import RatedResult
from storage.tables import Correction

PROMPT = [
    {"role": "system", "content": "You draft emails."},
    {"role": "user", "content": "draft an email to Dana about the delayed shipment"},
]
OTHER_PROMPT = [{"role": "user", "content": "summarize this channel"}]
WHEN = datetime(2026, 3, 2, 9, tzinfo=UTC)


def rated(
    task_id: int,
    result: str,
    *,
    up: int = 0,
    down: int = 0,
    prompt: Any = PROMPT,
    kind: str = "email.draft",
    first_attempt: int | None = None,
    wrong_kind: int = 0,
) -> RatedResult:
    return RatedResult(
        task_id=task_id,
        kind=kind,
        platform="slack",
        tenant="T1",
        channel="C1",
        prompt=prompt,
        result=result,
        up=up,
        down=down,
        first_attempt=first_attempt if first_attempt is not None else task_id,
        variant=None,
        created_at=WHEN,
        wrong_kind=wrong_kind,
    )


def assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


# -- SFT ----------------------------------------------------------------------------------------


def test_sft_rows_are_the_prompt_then_the_result_of_each_thumbs_up() -> None:
    export = sft_rows([rated(1, "Dear Dana, the shipment is late.", up=2)])
    assert export.rows == [{"messages": [*PROMPT, *assistant("Dear Dana, the shipment is late.")]}]
    assert not +export.skipped


def test_sft_leaves_out_disliked_and_contested_results_and_counts_what_it_could_not_use() -> None:
    export = sft_rows(
        [
            rated(1, "kept", up=1),
            rated(2, "disliked", down=1),
            rated(3, "contested", up=3, down=1),
            rated(4, "no prompt", up=1, prompt=None),
            rated(5, "odd prompt", up=1, prompt=[{"role": "tool", "content": "x"}]),
            rated(6, "   ", up=1),
            rated(7, "kept", up=1),
        ]
    )
    assert [row["messages"][-1]["content"] for row in export.rows] == ["kept"]
    assert export.skipped == {
        "mixed_votes": 1,
        "no_prompt": 1,
        "bad_prompt": 1,
        "empty_result": 1,
        "duplicate": 1,
    }


def test_sft_keeps_only_role_and_content_of_stored_messages() -> None:
    prompt = [{"role": "user", "content": "hi", "name": "ana"}]
    (row,) = sft_rows([rated(1, "hello", up=1, prompt=prompt)]).rows
    assert row["messages"] == [{"role": "user", "content": "hi"}, *assistant("hello")]


# -- DPO ----------------------------------------------------------------------------------------


def test_a_regenerate_pair_with_opposite_votes_is_one_preference_row() -> None:
    export = dpo_rows(
        [rated(1, "first try", down=1), rated(2, "second try", up=1, first_attempt=1)]
    )
    assert export.rows == [
        {"prompt": PROMPT, "chosen": assistant("second try"), "rejected": assistant("first try")}
    ]


def test_results_of_one_kind_on_the_same_input_pair_up_even_from_separate_requests() -> None:
    export = dpo_rows(
        [
            rated(1, "good", up=1),
            rated(2, "bad", down=2),
            rated(3, "summary", up=1, kind="summarize"),  # another kind: no pair with #2
            rated(4, "other", down=1, prompt=OTHER_PROMPT),  # another input: no pair
        ]
    )
    assert export.rows == [
        {"prompt": PROMPT, "chosen": assistant("good"), "rejected": assistant("bad")}
    ]
    assert export.skipped == {"unpaired": 2}


def test_the_same_pair_twice_is_exported_once() -> None:
    export = dpo_rows(
        [
            rated(1, "bad", down=1),
            rated(2, "good", up=1, first_attempt=1),
            rated(3, "good", up=1, first_attempt=1),
            rated(4, "good", down=1),  # its text is also liked elsewhere: no pair with itself
        ]
    )
    assert export.rows == [
        {"prompt": PROMPT, "chosen": assistant("good"), "rejected": assistant("bad")}
    ]
    assert export.skipped == {"duplicate": 1, "identical_pair": 2}


def test_a_regenerate_pair_whose_prompts_differ_is_no_preference() -> None:
    export = dpo_rows(
        [rated(1, "bad", down=1), rated(2, "good", up=1, first_attempt=1, prompt=OTHER_PROMPT)]
    )
    assert export.rows == []
    assert export.skipped["different_prompt"] == 1


def test_a_result_disliked_only_as_the_wrong_kind_of_task_is_not_a_rejected_answer() -> None:
    export = dpo_rows(
        [rated(1, "fine text, wrong task", down=1, wrong_kind=1), rated(2, "ok", up=1)]
    )
    assert export.rows == []
    assert export.skipped == {"wrong_kind": 1, "unpaired": 1}


def test_contested_results_take_no_side_in_a_pair() -> None:
    export = dpo_rows([rated(1, "contested", up=1, down=1), rated(2, "liked", up=1)])
    assert export.rows == []
    assert export.skipped == {"mixed_votes": 1, "unpaired": 1}


# -- intents ------------------------------------------------------------------------------------


def correction(cid: int, text: str, right: str, tenant: str = "T1") -> Correction:
    return Correction(
        id=cid,
        platform="slack",
        tenant=tenant,
        channel="C1",
        user="U1",
        text=text,
        right_kind=right,
        created_at=WHEN,
    )


def test_corrections_become_labelled_rows_and_the_latest_label_of_a_text_wins() -> None:
    export = intents_rows(
        [
            correction(1, "wrap up the thread", "email.draft"),
            correction(2, "nudge me at 5", "reminder.create"),
            correction(3, "wrap up the thread", "summarize"),
            correction(4, "wrap up the thread", "email.draft", tenant="T2"),
        ]
    )
    assert export.rows == [
        {"text": "nudge me at 5", "label": "reminder.create", "tenant": "slack:T1",
         "created_at": "2026-03-02T09:00:00+00:00"},
        {"text": "wrap up the thread", "label": "summarize", "tenant": "slack:T1",
         "created_at": "2026-03-02T09:00:00+00:00"},
        {"text": "wrap up the thread", "label": "email.draft", "tenant": "slack:T2",
         "created_at": "2026-03-02T09:00:00+00:00"},
    ]  # fmt: skip
    assert export.skipped == {"superseded": 1}


def test_intents_rows_are_read_by_the_intents_jsonl_loader(tmp_path: Path) -> None:
    from models.intents import load_jsonl

    out = tmp_path / "corrections.jsonl"
    export = intents_rows(
        [correction(1, "nudge me at 5", "reminder.create"), correction(2, "hi", "oos")]
    )
    with atomic_target(out) as handle:
        write_rows(handle, export.rows)
    assert load_jsonl(out) == (["nudge me at 5", "hi"], ["reminder.create", "oos"])


# -- arguments and writing ----------------------------------------------------------------------


def test_since_takes_a_date_or_an_iso_time_in_utc() -> None:
    assert parse_since("2026-03-01") == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_since("2026-03-01T10:30") == datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
    assert parse_since("2026-03-01T10:30+02:00") == datetime(2026, 3, 1, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize("raw", ["yesterday", "2026-13-01", "01/03/2026", ""])
def test_a_bad_since_is_one_clear_error(raw: str) -> None:
    with pytest.raises(ExportError) as caught:
        parse_since(raw)
    assert caught.value.text() == f"--since {raw!r} is not a date (YYYY-MM-DD) or an ISO 8601 time"


def test_tenant_is_platform_colon_tenant() -> None:
    assert parse_tenant("slack:T0123") == ("slack", "T0123")
    assert parse_tenant("telegram:123:456") == ("telegram", "123:456")


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("T0123", "is not PLATFORM:TENANT"),
        ("slack:", "is not PLATFORM:TENANT"),
        (":T0123", "is not PLATFORM:TENANT"),
        ("slak:T0123", "unknown platform 'slak' (one of console, slack, telegram)"),
    ],
)
def test_a_bad_tenant_is_one_clear_error(raw: str, problem: str) -> None:
    with pytest.raises(ExportError) as caught:
        parse_tenant(raw)
    assert problem in caught.value.text() and "\n" not in caught.value.text()


def test_the_file_appears_only_when_complete(tmp_path: Path) -> None:
    out = tmp_path / "sft.jsonl"
    out.write_text("the previous export\n")
    with pytest.raises(RuntimeError), atomic_target(out) as handle:
        write_rows(handle, [{"messages": []}])
        raise RuntimeError("the database went away mid-export")
    assert out.read_text() == "the previous export\n"
    assert os.listdir(tmp_path) == ["sft.jsonl"]
    with atomic_target(out) as handle:
        write_rows(handle, [{"text": "给王经理写封邮件", "label": "email.draft"}])
    assert json.loads(out.read_text(encoding="utf-8")) == {
        "text": "给王经理写封邮件",
        "label": "email.draft",
    }
    assert os.listdir(tmp_path) == ["sft.jsonl"]


def test_an_unwritable_target_fails_before_anything_is_written(tmp_path: Path) -> None:
    for out in (tmp_path / "missing" / "x.jsonl", tmp_path):
        with pytest.raises(ExportError, match="cannot write"), atomic_target(out):
            pytest.fail("the block must not run")
    assert os.listdir(tmp_path) == []
