"""Candidate split points: where a new request may start, and the text no split may cut."""

from __future__ import annotations

import pytest

from models.intents.splitpoints import (
    Strength,
    atoms,
    classification_text,
    early_colon,
    find_cuts,
    is_ellipsis,
)


def pieces(text: str, *, paste_colon: int | None = None) -> list[str]:
    return [a.text for a in atoms(text, find_cuts(text, paste_colon=paste_colon))[0]]


@pytest.mark.parametrize(
    "text",
    [
        "draft an email to jane.doe@example.com about the contract renewal",
        "read https://x.io/a.b?x=1 first",
        "send report_v1.2.pdf to the board",
        "upgrade to version 3.10.2 tonight",
        "block 3.5 hours for the review",
        "bring snacks, e.g. fruit",
        "email Mr. Lee about the offsite",
        "ask Dr. Chen, i.e. the new lead",
        "invite J. Smith to the kickoff",
        "budget is 1,000 dollars",
        "给jane.doe@example.com发一封邮件",
        "把report_v1.2.pdf发给王经理",
        "查看https://x.io/a.b上的说明",
        "预留3.5小时开会",
    ],
)
def test_protected_tokens_are_never_cut(text: str) -> None:
    protected = ["jane.doe@example.com", "https://x.io/a.b", "report_v1.2.pdf", "3.10.2"]
    protected += ["3.5", "e.g.", "Mr. Lee", "Dr. Chen", "i.e.", "J. Smith", "1,000"]
    for cut in find_cuts(text):
        for token in protected:
            at = text.find(token)
            if at >= 0:
                assert not (at < cut.end and cut.start < at + len(token)), (token, cut)


def test_sentence_ends_after_tokens_still_split() -> None:
    text = "send report_v1.2.pdf to Lee. Then email jane.doe@example.com the notes"
    assert pieces(text) == [
        "send report_v1.2.pdf to Lee.",
        "email jane.doe@example.com the notes",
    ]


def test_connectors_become_cuts_of_their_strength() -> None:
    text = "book a room; order lunch and then file an expense, and order coffee"
    cuts = find_cuts(text)
    assert [c.strength for c in cuts] == [Strength.HARD, Strength.SOFT, Strength.WEAK]
    assert pieces(text) == ["book a room", "order lunch", "file an expense", "order coffee"]


def test_chinese_connectors_and_punctuation_cut() -> None:
    assert pieces("订一间会议室，然后帮我点午餐。另外报销打车费") == [
        "订一间会议室",
        "帮我点午餐。",
        "报销打车费",
    ]
    assert pieces("订会议室、点午餐") == ["订会议室", "点午餐"]


def test_quotes_and_pasted_text_are_not_cut() -> None:
    text = 'reply "sure, and then we ship. Thanks" and order lunch'
    assert pieces(text) == ['reply "sure, and then we ship. Thanks"', "order lunch"]
    paste = "summarize this: costs rose and sales fell. Then we cut prices."
    colon = early_colon(paste)
    assert colon == paste.index(":")
    assert pieces(paste, paste_colon=colon) == [paste]
    assert classification_text(paste, pasted=True) == 'summarize this: "..."'


def test_a_time_is_no_paste_colon() -> None:
    assert early_colon("remind me at 9:30 to call Lee") is None


def test_ellipsis_openings() -> None:
    assert is_ellipsis("another one to Kim about the budget")
    assert is_ellipsis("one more for Friday")
    assert is_ellipsis("the same for the Shanghai office")
    assert is_ellipsis("再来一个给李雷")
    assert not is_ellipsis("order lunch for Kim")
