"""First words in the chat: live streams next to today's edit-the-progress-message path.

For Slack (a thread) and Telegram (a private chat) the real adapters talk to the local fake
platforms (tests/fakes), the real worker generates with the tiny random-weight model
(models/generation/tiny.py) on the CPU and the real delivery job runs every ``--poll``
seconds. Each request is one ``email.draft`` task, run one at a time. In the same run, once
with streaming (ATOMBOT_STREAM on) and once without (off: the progress message is edited),
it measures:

- **first words**: from the task's ``started_at`` to the first platform call that carried
  its first generated word (the fake records each call's arrival time), p50/p95;
- **calls per result**: platform API calls made for the request until it was delivered
  (receiving updates and start-up calls excluded);
- **stored**: from ``started_at`` to the worker storing the first partial text (the model's
  own time to its first words on this machine, which neither path can beat), p50.

An adapter that does not stream yet (the protocol is ``StreamingAdapter`` in
bot/adapters/base.py) gets its streaming row marked "adapter does not stream".

    python benchmarks/streaming.py                  # 8 requests per platform and mode
    python benchmarks/streaming.py -n 20 --poll 0.1 --platforms slack
    python benchmarks/streaming.py --gap 0       # requests back to back in one chat
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import describe  # noqa: E402
from bot.adapters.base import ChatAdapter, Services, StreamingAdapter  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.delivery import Deliverer  # noqa: E402
from handlers.kinds import build_registry  # noqa: E402
from models.generation.hf import HFGenerator  # noqa: E402
from models.generation.tiny import build_tiny_model  # noqa: E402
from models.generation.worker import Worker  # noqa: E402
from storage.db import create_engine  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.repository import Repository  # noqa: E402
from storage.schemas import RequestCreate, TaskCreate  # noqa: E402
from storage.tables import Task  # noqa: E402

#: Calls that are not about delivering a result (receiving, start-up, identity).
NOT_DELIVERY = {
    "getUpdates",
    "getMe",
    "deleteWebhook",
    "setWebhook",
    "getWebhookInfo",
    "setMyCommands",
    "auth.test",
    "apps.connections.open",
    "bots.info",
    "team.info",
}
TG_USER = 1001
SLACK_CHANNEL = "C0GENERAL"
ASKS = (
    "the delayed shipment",
    "the launch plan for next week",
    "the budget review",
    "moving the demo to friday",
)
#: A word: a Chinese character, or a run of Latin letters and digits with a letter in it
#: (the tiny model's vocabulary has made-up words such as ``w11``).
_WORD = re.compile(r"[\u4e00-\u9fff]|[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*")


@dataclass
class Row:
    """The figures of one platform and mode."""

    platform: str
    mode: str
    first_words: list[float] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)
    stored: list[float] = field(default_factory=list)
    note: str = ""

    def line(self) -> str:
        """One printed line."""
        if self.note:
            return f"{self.platform:<9} {self.mode:<7} {self.note}"
        if not self.first_words:
            return f"{self.platform:<9} {self.mode:<7} no result delivered"
        return (
            f"{self.platform:<9} {self.mode:<7} first words p50 {pct(self.first_words, 50):5.2f}s"
            f"  p95 {pct(self.first_words, 95):5.2f}s   calls/result"
            f" {statistics.mean(self.calls):5.1f} (max {max(self.calls)})"
            f"   stored p50 {pct(self.stored, 50) if self.stored else float('nan'):5.2f}s"
            f"   n={len(self.first_words)}"
        )


def pct(values: Sequence[float], q: int) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def epoch(moment: datetime) -> float:
    """A stored (UTC) time as epoch seconds."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


class TimingRepository(Repository):
    """The real repository, noting when each task's first partial text was stored."""

    first_partial: dict[int, float]

    async def set_partial(
        self, *, task_id: int, worker_id: str, text: str, progress: float
    ) -> bool:
        self.first_partial.setdefault(task_id, time.time())
        return await super().set_partial(
            task_id=task_id, worker_id=worker_id, text=text, progress=progress
        )


@dataclass
class Platform:
    """A started fake platform with the real adapter in front of it."""

    name: str
    adapter: ChatAdapter
    calls: Callable[[], list[tuple[str, float, str]]]
    request: Callable[[int], RequestCreate]


@contextlib.asynccontextmanager
async def slack(settings: Settings, repo: Repository) -> AsyncIterator[Platform]:
    """The Slack adapter against the fake Web API; requests come in one thread."""
    from bot.adapters.slack import SlackAdapter
    from tests.fakes.slack_api import FakeSlack

    async with FakeSlack() as fake:
        config = settings.model_copy(
            update={
                "slack_bot_token": fake.bot_token,
                "slack_signing_secret": fake.signing_secret,
                "slack_api_url": fake.api_url,
            }
        )
        adapter = SlackAdapter(config, host="127.0.0.1", port=0)
        router: Any = None  # requests are stored directly; nothing is routed
        await adapter.start(Services(router=router, repo=repo, notify=lambda: None))

        def calls() -> list[tuple[str, float, str]]:
            return [(c.method, c.at, json.dumps(c.args, ensure_ascii=False)) for c in fake.calls]

        def request(n: int) -> RequestCreate:
            root = fake.seed_message(SLACK_CHANNEL, f"draft an email to Dana about {ASKS[n % 4]}")
            return RequestCreate(
                platform="slack",
                tenant=fake.team_id,
                channel=SLACK_CHANNEL,
                thread=root.ts,
                user="U0ANA",
                text=root.text,
                event_id=f"e{n}-{time.time()}",
            )

        try:
            yield Platform("slack", adapter, calls, request)
        finally:
            await adapter.stop()


@contextlib.asynccontextmanager
async def telegram(settings: Settings, repo: Repository) -> AsyncIterator[Platform]:
    """The Telegram adapter against the fake Bot API; requests come in a private chat."""
    from bot.adapters.telegram import TelegramAdapter
    from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeTelegram

    async with FakeTelegram(clock=time.time) as fake:
        config = settings.model_copy(
            update={"telegram_bot_token": DEFAULT_TOKEN, "telegram_api_url": fake.base_url}
        )
        fake.private_chat(TG_USER)
        adapter = TelegramAdapter(config, poll_timeout=1.0)
        router: Any = None
        await adapter.start(Services(router=router, repo=repo, notify=lambda: None))

        def calls() -> list[tuple[str, float, str]]:
            return [(c.method, c.at, json.dumps(c.params, ensure_ascii=False)) for c in fake.calls]

        def request(n: int) -> RequestCreate:
            return RequestCreate(
                platform="telegram",
                tenant=DEFAULT_TOKEN.split(":")[0],
                channel=str(TG_USER),
                user=str(TG_USER),
                text=f"draft an email to Dana about {ASKS[n % 4]}",
                event_id=f"e{n}-{time.time()}",
                private=True,
            )

        try:
            yield Platform("telegram", adapter, calls, request)
        finally:
            await adapter.stop()


def first_word(result: str, chrome: set[str]) -> str | None:
    """The first generated word that the message's own labels do not contain."""
    words: list[str] = _WORD.findall(result)[:8]
    return next((w for w in words if w.lower() not in chrome), None)


async def one_request(
    n: int,
    platform: Platform,
    repo: TimingRepository,
    worker: Worker,
    deliverer: Deliverer,
    poll: float,
) -> tuple[float, int, float] | None:
    """Run one request to its delivery; (seconds to first words, calls, seconds to the first
    stored partial) or None."""
    before = len(platform.calls())
    created = await repo.create_request(
        request=platform.request(n),
        tasks=[
            TaskCreate(
                kind="email.draft",
                inputs={
                    "recipients": ["Dana"],
                    "length": "long",
                    "request_text": f"email Dana about {ASKS[n % 4]}",
                },
            )
        ],
    )
    request_id = created.request.id or 0
    work = asyncio.create_task(worker.run_until_idle(timeout=300))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        await deliverer.tick()
        delivery = await repo.delivery_for(request_id)
        if work.done() and delivery is not None and delivery.done:
            break
        await asyncio.sleep(poll)
    await work
    task: Task | None = await repo.get_task(created.tasks[0].id or 0)
    if task is None or not task.result or task.started_at is None:
        return None
    made = platform.calls()[before:]
    started = epoch(task.started_at)
    chrome = {w.lower() for _, at, text in made if at < started for w in _WORD.findall(text)}
    chrome |= {"draft", "email", "queued", "position", "running", "continued"}
    word = first_word(task.result, chrome)
    if word is None:
        return None
    pattern = re.compile(rf"(?<![A-Za-z0-9]){re.escape(word)}(?![A-Za-z0-9])")
    shown = [at for _, at, text in made if at >= started and pattern.search(text)]
    counted = sum(1 for method, _, _ in made if method not in NOT_DELIVERY)
    stored = repo.first_partial.get(task.id or 0, float("nan")) - started
    return (min(shown) - started if shown else float("nan")), counted, stored


async def measure(
    name: str,
    stream: bool,
    n: int,
    poll: float,
    model: Path,
    generator: HFGenerator,
    tmp: Path,
    gap: float = 1.0,
) -> Row:
    """One platform in one mode: a fresh database, ``n`` requests."""
    mode = "stream" if stream else "edit"
    url = f"sqlite:///{(tmp / f'{name}-{mode}.db').as_posix()}"
    upgrade(url)
    repo = TimingRepository(create_engine(url))
    repo.first_partial = {}
    settings = Settings(database_url=url, data_dir=tmp / "data")
    kinds = build_registry()
    row = Row(name, mode)
    try:
        opened = slack(settings, repo) if name == "slack" else telegram(settings, repo)
        async with opened as platform:
            streams = isinstance(platform.adapter, StreamingAdapter)
            if stream and not streams:
                row.note = "adapter does not stream (yet)"
                return row
            worker = Worker(
                repo=repo,
                generator=generator,
                prompts=kinds,
                kinds=kinds.generative_kinds,
                poll_seconds=poll,
            )
            deliverer = Deliverer(repo, {name: platform.adapter}, kinds, stream=stream)
            for i in range(n):
                if i:
                    await asyncio.sleep(gap)  # the person reads the result, then asks again
                measured = await one_request(i, platform, repo, worker, deliverer, poll)
                if measured is not None and measured[0] == measured[0]:  # not NaN
                    row.first_words.append(measured[0])
                    row.calls.append(measured[1])
                    if measured[2] == measured[2]:
                        row.stored.append(measured[2])
    finally:
        await repo.dispose()
    return row


async def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments, run every platform and mode, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("-n", "--requests", type=int, default=8, help="requests per row")
    parser.add_argument(
        "--poll", type=float, default=0.2, help="delivery job interval (ATOMBOT_POLL_SECONDS)"
    )
    parser.add_argument("--platforms", nargs="+", default=["slack", "telegram"])
    parser.add_argument(
        "--gap",
        type=float,
        default=1.0,
        help="seconds between a result and the next request in the same chat (0: back to"
        " back, where Telegram's 1 message/s per chat holds the next first words back)",
    )
    args = parser.parse_args(argv)
    print(f"machine: {describe()}")
    print(
        f"tiny model on CPU, 1 torch thread; delivery every {args.poll}s;"
        f" partials every 0.5s and 64 tokens (the first word at once);"
        f" {args.gap}s between a result and the next request"
    )
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        model = build_tiny_model(tmp / "tiny")
        generator = HFGenerator(str(model), device="cpu", max_batch=4)
        await generator.start()
        try:
            for name in args.platforms:
                for stream in (True, False):
                    row = await measure(
                        name, stream, args.requests, args.poll, model, generator, tmp, args.gap
                    )
                    print(row.line(), flush=True)
        finally:
            await generator.close()


if __name__ == "__main__":
    asyncio.run(main())
