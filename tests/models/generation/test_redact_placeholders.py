"""Reversible placeholders: issued once per value, restored however the model wrote them,
never half-restored in streamed text; and when redaction applies at all (ATOMBOT_REDACT)."""

from __future__ import annotations

import itertools
import random

import pytest

from models.generation.base import GenerationRequest
from models.generation.openai import OpenAIGenerator
from models.generation.redact import (
    RedactingGenerator,
    RedactionConfigError,
    Redactor,
    is_local_url,
    redaction_applies,
    with_redaction,
)

TEXT = (
    "Email jane.doe@example.com or call 138 0013 8000; card 4111 1111 1111 1111. "
    "Again: JANE.DOE@example.com, 13800138000."
)


def test_one_value_gets_one_placeholder_and_each_value_its_own() -> None:
    redaction = Redactor().begin([TEXT])

    redacted = redaction.redact(TEXT)

    assert redacted == (
        "Email [EMAIL_1] or call [PHONE_1]; card [CARD_1]. Again: [EMAIL_1], [PHONE_1]."
    )
    assert redaction.restore(redacted) == TEXT.replace("JANE.DOE", "jane.doe").replace(
        "13800138000", "138 0013 8000"
    )
    assert redaction.counts == {"EMAIL": 1, "PHONE": 1, "CARD": 1}


def test_numbering_spans_every_message_of_a_request_and_restarts_with_the_next() -> None:
    redactor = Redactor()
    texts = ["to a@example.com", "cc b@example.com and a@example.com"]
    first = redactor.begin(texts)

    assert [first.redact(t) for t in texts] == ["to [EMAIL_1]", "cc [EMAIL_2] and [EMAIL_1]"]
    assert redactor.begin(["b@example.com"]).redact("b@example.com") == "[EMAIL_1]"


def test_a_placeholder_the_user_typed_is_never_issued_nor_restored() -> None:
    text = "I wrote [EMAIL_1] literally; the address is jane@example.com"
    redaction = Redactor().begin([text])

    redacted = redaction.redact(text)

    assert redacted == "I wrote [EMAIL_1] literally; the address is [EMAIL_2]"
    assert redaction.restore(redacted) == text


@pytest.mark.parametrize(
    "written",
    [
        "[EMAIL_1]",
        "[email_1]",
        "[ EMAIL_1 ]",
        "[EMAIL 1]",
        "[Email-1]",
        "\\[EMAIL\\_1\\]",
        "<EMAIL_1>",
        "⟦EMAIL_1⟧",
        "【EMAIL_1】",
        "［EMAIL_1］",
        "[[EMAIL_1]]",
        "EMAIL_1",
    ],
)
def test_a_placeholder_is_restored_however_the_model_mangled_it(written: str) -> None:
    redaction = Redactor().begin()
    redaction.redact("jane@example.com")

    assert redaction.restore(f"Write to {written}.") == "Write to jane@example.com."


def test_restoring_keeps_the_brackets_that_belong_to_the_text() -> None:
    redaction = Redactor().begin()
    redaction.redact("a@example.com b@example.com")

    assert redaction.restore("[see EMAIL_1]") == "[see a@example.com]"
    assert redaction.restore("[EMAIL_1, EMAIL_2]") == "[a@example.com, b@example.com]"
    assert redaction.restore("([EMAIL_1]])") == "(a@example.com])"
    assert redaction.restore("[EMAIL_3] and [PHONE_1]") == "[EMAIL_3] and [PHONE_1]"


def test_the_system_message_asks_to_keep_placeholders_only_when_there_are_any() -> None:
    redactor = Redactor()
    plain = GenerationRequest(
        messages=({"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"})
    )
    with_pii = GenerationRequest(
        messages=(
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "mail jane@example.com"},
        )
    )

    assert redactor.begin().redact_request(plain) is plain
    redacted = redactor.begin().redact_request(with_pii)
    assert redacted.messages[1]["content"] == "mail [EMAIL_1]"
    assert redacted.messages[0]["content"].startswith("Be brief.\n\n")
    assert "[EMAIL_1]" in redacted.messages[0]["content"]


# --- streaming -----------------------------------------------------------------------------

ANSWER = (
    "Dear [EMAIL_1], please call [ phone_1 ] or \\[EMAIL\\_2\\]. Card ⟦CARD_1⟧ [see notes] "
    "a < b, [EMAIL_9] stays. Bye EMAIL_1"
)


def partials(redaction: object, text: str, cuts: list[int]) -> list[str]:
    """What a progress callback shows when ``text`` streams in chunks ending at ``cuts``."""
    assert isinstance(redaction, type(Redactor().begin()))
    return [redaction.restore_partial(text[:cut]) for cut in cuts]


@pytest.mark.parametrize("seed", range(20))
def test_streamed_partials_never_show_a_placeholder_and_only_grow(seed: int) -> None:
    redaction = Redactor().begin()
    redaction.redact("a@example.com b@example.com; 138 0013 8000; 4111 1111 1111 1111")
    rng = random.Random(seed)
    cuts = [*sorted({rng.randrange(1, len(ANSWER)) for _ in range(12)}), len(ANSWER)]
    final = redaction.restore(ANSWER)

    shown = partials(redaction, ANSWER, cuts)

    assert final == (
        "Dear a@example.com, please call 138 0013 8000 or b@example.com. Card 4111 1111 1111 "
        "1111 [see notes] a < b, [EMAIL_9] stays. Bye a@example.com"
    )
    for before, after in itertools.pairwise(shown):
        assert after.startswith(before)
    for text in shown:
        assert final.startswith(text)
        for piece in ("EMAIL_1", "EMAIL_2", "PHONE", "phone", "CARD", "⟦", "\\["):
            assert piece not in text


def test_a_placeholder_split_across_chunks_is_held_back_then_shown_whole() -> None:
    redaction = Redactor().begin()
    redaction.redact("jane@example.com")

    assert redaction.restore_partial("Dear [EMA") == "Dear "
    assert redaction.restore_partial("Dear [EMAIL_") == "Dear "
    assert redaction.restore_partial("Dear [EMAIL_1") == "Dear "
    assert redaction.restore_partial("Dear [EMAIL_1]") == "Dear jane@example.com"
    # Not a placeholder after all: shown as soon as that is clear.
    assert redaction.restore_partial("Dear [Ed") == "Dear [Ed"
    assert redaction.restore_partial("x < y") == "x < y"


def test_partials_are_untouched_when_nothing_was_redacted() -> None:
    redaction = Redactor().begin()
    redaction.redact("nothing personal here")

    assert redaction.restore_partial("Dear [EMA") == "Dear [EMA"


# --- when redaction applies ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://localhost:8000/v1", True),
        ("http://LOCALHOST/v1", True),
        ("http://vllm.localhost:8000/v1", True),
        ("http://127.0.0.1:8000/v1", True),
        ("http://127.8.9.10/v1", True),
        ("http://[::1]:8000/v1", True),
        ("http://[::ffff:127.0.0.1]/v1", True),
        ("https://api.openai.com/v1", False),
        ("http://vllm:8000/v1", False),
        ("http://10.0.0.5:8000/v1", False),
        ("http://192.168.1.20/v1", False),
        ("http://0.0.0.0:8000/v1", False),
        ("http://localhost.example.com/v1", False),
        (None, False),
        ("not a url", False),
    ],
)
def test_what_counts_as_a_local_server(url: str | None, local: bool) -> None:
    assert is_local_url(url) is local


@pytest.mark.parametrize(
    ("mode", "generator", "url", "applies"),
    [
        ("external", "openai", "https://api.example.com/v1", True),
        ("external", "openai", "http://127.0.0.1:8000/v1", False),
        ("external", "hf", None, False),
        ("always", "hf", None, True),
        ("always", "openai", "http://localhost:8000/v1", True),
        ("off", "openai", "https://api.example.com/v1", False),
    ],
)
def test_the_mode_decides_per_backend_and_url(
    mode: str, generator: str, url: str | None, applies: bool
) -> None:
    assert redaction_applies(mode, generator=generator, base_url=url) is applies


def test_with_redaction_wraps_only_when_it_applies_and_checks_patterns_then() -> None:
    backend = OpenAIGenerator("http://127.0.0.1:1/v1", model="tiny")  # never started

    off = with_redaction(backend, mode="off", kind="openai", base_url="https://x.example/v1")
    wrapped = with_redaction(backend, mode="always", kind="hf", base_url=None)

    assert off is backend
    assert isinstance(wrapped, RedactingGenerator) and wrapped.inner is backend
    with pytest.raises(RedactionConfigError):
        with_redaction(backend, mode="always", kind="hf", base_url=None, patterns='{"A": "("}')
    # Not applied: the patterns are not even read.
    not_applied = with_redaction(
        backend,
        mode="external",
        kind="openai",
        base_url="http://localhost:1/v1",
        patterns="/nonexistent/patterns.yaml",
    )
    assert not_applied is backend
