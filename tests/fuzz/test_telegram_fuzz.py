"""Fuzzing the Telegram webhook over HTTP: spec-generated updates and their mutations.

The real webhook server (atombot's edge in front of python-telegram-bot, the router, the
repository on SQLite) runs in a background event loop for the whole module; hypothesis
posts to it. Properties, for every request:

* never a 5xx, and the server keeps answering (no crash);
* a wrong or missing secret gets 403, a body over the limit 413, a malformed one 400,
  a valid update 200;
* nothing is stored for a request that is not answered 200 (rows counted per table);
* no handler fails (no ERROR record), and a valid update afterwards is still answered.

``ATOMBOT_FUZZ_EXAMPLES`` sets the examples per test (default 50, derandomized: about a minute
in CI);
``ATOMBOT_FUZZ_REPORT=path.json`` writes the status-code counts of the run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections import Counter
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.adapters.telegram.webhook import MAX_BODY_BYTES
from bot.config import Settings
from models.intents.spec import IntentParser
from storage.migrate import upgrade
from tests.fakes.telegram_api import FakeTelegram, RateLimits
from tests.fakes.telegram_webhook import WEBHOOK_SECRET, WebhookBot, webhook_bot
from tests.fuzz.conftest import LoopThread, count_rows, fuzz_settings, fuzz_timeout
from tests.fuzz.telegram_spec import (
    ACCEPTED,
    Expect,
    authentic_bodies,
    mutation_families,
    updates,
)

pytestmark = [
    pytest.mark.fuzz,
    pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning"),
]

#: Examples per test in CI (``ATOMBOT_FUZZ_EXAMPLES`` overrides, see ``conftest.py``).
EXAMPLES = 50
FUZZ = fuzz_settings(EXAMPLES)
TIMEOUT = fuzz_timeout(EXAMPLES, seconds_per_example=1.0)
LIMIT = MAX_BODY_BYTES
STATUSES: Counter[str] = Counter()
T = TypeVar("T")


class ErrorRecords(logging.Handler):
    """Collects ERROR and CRITICAL records (a handler that crashed logs one)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class LiveBot:
    """The webhook bot on a background event loop (:class:`LoopThread`), driven synchronously."""

    def __init__(self, loop: LoopThread, settings_: Settings, parser: IntentParser) -> None:
        self.loop = loop
        self._stop = asyncio.Event()
        self._ready: asyncio.Future[WebhookBot] = loop.loop.create_future()
        self._done = asyncio.run_coroutine_threadsafe(self._serve(settings_, parser), loop.loop)
        self.bot = loop.run(self._wait_ready(), timeout=300)
        self.database = Path(settings_.resolved_database_url().removeprefix("sqlite:///"))

    async def _wait_ready(self) -> WebhookBot:
        return await self._ready

    async def _serve(self, settings_: Settings, parser: IntentParser) -> None:
        try:
            async with (
                FakeTelegram(rate_limits=RateLimits.unlimited()) as fake,
                webhook_bot(settings_, parser, fake) as bot,
            ):
                self._ready.set_result(bot)
                await self._stop.wait()
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            raise

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine in the bot's loop and wait for its result."""
        return self.loop.run(coroutine, timeout=300)

    def close(self) -> None:
        """Stop the bot."""
        self.loop.loop.call_soon_threadsafe(self._stop.set)
        self._done.result(timeout=60)


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, parser: IntentParser, loop_thread: LoopThread
) -> Iterator[tuple[LiveBot, ErrorRecords]]:
    """One webhook bot for the module, on its own SQLite database."""
    tmp = tmp_path_factory.mktemp("telegram-fuzz")
    url = f"sqlite:///{(tmp / 'atombot.db').as_posix()}"
    upgrade(url)
    configured = Settings(
        database_url=url, data_dir=tmp / "data", poll_seconds=0.05, lease_seconds=5.0
    )
    errors = ErrorRecords()
    logging.getLogger().addHandler(errors)
    bot = LiveBot(loop_thread, configured, parser)
    try:
        yield bot, errors
    finally:
        bot.close()
        logging.getLogger().removeHandler(errors)
        report = os.environ.get("ATOMBOT_FUZZ_REPORT")
        if report:
            Path(report).write_text(json.dumps(dict(sorted(STATUSES.items())), indent=2))


def post(live: LiveBot, data: bytes, *, secret: str | None, label: str) -> int:
    """POST and count the answer; the rows before and after must match unless it was 200."""
    before = count_rows(live.database)
    status = live.run(live.bot.post(data, secret=secret)).status
    STATUSES[f"{label} {status}"] += 1
    assert status < 500, f"{status} for {label}"
    live.run(live.bot.settle())
    if status != 200:
        assert count_rows(live.database) == before, f"rows stored for a {status}"
    return status


def no_errors(errors: ErrorRecords, live: LiveBot | None = None) -> None:
    """No handler crashed on what got through, and no task died unseen on the loop."""
    failures = [f"{r.name}: {r.getMessage()}" for r in errors.records]
    errors.records.clear()
    if live is not None:
        failures += [str(context.get("message")) for context in live.loop.errors]
        live.loop.errors.clear()
    assert not failures, failures


def still_answers(live: LiveBot) -> None:
    """A valid private "status" after the fuzzing is answered."""
    bot = live.bot
    update = bot.fake.message_update("status", user_id=4242)
    assert live.run(bot.post(json.dumps(update).encode())).status == 200

    async def answered() -> bool:
        for _ in range(500):
            if bot.fake.bot_messages(4242):
                return True
            await asyncio.sleep(0.02)
        return False

    assert live.run(answered())


@TIMEOUT
@FUZZ
@given(update=updates())
def test_spec_generated_updates_are_accepted(
    live: tuple[LiveBot, ErrorRecords], update: dict[str, Any]
) -> None:
    bot, errors = live
    status = post(bot, json.dumps(update).encode(), secret=WEBHOOK_SECRET, label="spec update")
    assert status == 200
    no_errors(errors, bot)


FAMILIES = mutation_families(LIMIT)
ANSWERS = {
    Expect.OK: {200},
    Expect.REFUSED: {400},
    Expect.TOO_LARGE: {413},
    Expect.ANY_4XX_OR_OK: {200, 400},
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
@TIMEOUT
@FUZZ
@given(data=st.data())
def test_authentic_bodies_get_the_answer_the_rule_demands_and_rejects_store_nothing(
    live: tuple[LiveBot, ErrorRecords], family: str, data: st.DataObject
) -> None:
    bot, errors = live
    body = data.draw(FAMILIES[family], label=family)
    status = post(bot, body.data, secret=WEBHOOK_SECRET, label=family)
    assert status in ANSWERS[body.expect], f"{status} for {body.how}"
    no_errors(errors, bot)


SECRETS = st.one_of(
    st.none(),
    st.just(""),
    st.just(WEBHOOK_SECRET[:-1]),
    st.just(WEBHOOK_SECRET + "x"),
    st.just(WEBHOOK_SECRET.upper()),
    st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=300
    ),
).filter(lambda s: s != WEBHOOK_SECRET)


ANY_BODY = st.one_of(
    updates(ACCEPTED).map(lambda u: json.dumps(u).encode()),
    authentic_bodies(LIMIT).map(lambda b: b.data),
)


@TIMEOUT
@FUZZ
@given(body=ANY_BODY, secret=SECRETS)
def test_a_wrong_or_missing_secret_is_403_and_stores_nothing(
    live: tuple[LiveBot, ErrorRecords], body: bytes, secret: str | None
) -> None:
    bot, errors = live
    assert post(bot, body, secret=secret, label="unauthentic") == 403
    no_errors(errors, bot)


def test_a_valid_update_after_the_fuzzing_is_answered(live: tuple[LiveBot, ErrorRecords]) -> None:
    bot, errors = live
    still_answers(bot)
    no_errors(errors, bot)
