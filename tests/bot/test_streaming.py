"""The delivery job streams a result while it is generated, then replaces it once.

A small in-test platform records every stream call (it implements the streaming protocol
of ``bot/adapters/base.py`` the way a platform would: a stream has an id, stopping it again
returns the same message); the database, the delivery job and its state machine are real.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pytest

from bot.adapters.base import DeliveryError, PostLookup, Services, StreamUnavailable
from bot.delivery import Deliverer
from bot.streaming import CLOSED, FALLBACK, OPEN
from bot.types import PlanStatus, StreamUpdate, Target, View
from storage.repository import Repository
from storage.schemas import RequestCreate, TaskCreate
from storage.tables import Delivery, utcnow
from tests.fakes.recording import Crash


@dataclass
class StreamingPlatform:
    """A chat that streams: records posts, edits and stream calls in one ordered log.

    ``unavailable_on`` makes the named stream call refuse streaming (the stream left its
    message behind); ``crash_after`` makes the named call take effect, then raise.
    """

    platform: str = "fake"
    max_text: int = 4000
    min_edit_interval: float = 0.0
    min_stream_interval: float = 0.0
    streams: bool = True
    calls: list[tuple[str, object]] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)
    stopped: dict[str, str] = field(default_factory=dict)
    unavailable_on: set[str] = field(default_factory=set)
    crash_after: set[str] = field(default_factory=set)
    rests: list[str | None] = field(default_factory=list)

    async def start(self, services: Services) -> None: ...
    async def stop(self) -> None: ...

    def ready(self) -> tuple[bool, str]:
        return True, "listening"

    async def notify(self, target: Target, text: str, *, client_id: str | None = None) -> None: ...

    async def find_sent(self, target: Target, client_id: str, *, since: datetime) -> PostLookup:
        return PostLookup(searchable=False)

    async def send(self, target: Target, view: View, *, client_id: str | None = None) -> str:
        self.calls.append(("send", view))
        return f"m{len(self.calls)}"

    async def edit(self, target: Target, message_id: str, view: View) -> None:
        self.calls.append(("edit", (message_id, view)))

    def can_stream(self, target: Target) -> bool:
        return self.streams

    async def stream_start(self, target: Target, update: StreamUpdate, *, client_id: str) -> str:
        self._maybe_refuse("start", None)
        stream_id = f"s{len(self.calls) + 1}"
        self.calls.append(("start", update))
        self.texts[stream_id] = update.text
        return stream_id

    async def stream_append(self, target: Target, stream_id: str, update: StreamUpdate) -> None:
        assert stream_id not in self.stopped, "appending to a stopped stream"
        self._maybe_refuse("append", f"msg-{stream_id}")
        assert update.text == self.texts[stream_id] + update.delta, "text only grows"
        self.calls.append(("append", update))
        self.texts[stream_id] = update.text
        self._maybe_crash("append")

    async def stream_stop(
        self,
        target: Target,
        stream_id: str,
        view: View,
        *,
        client_id: str,
        rest: str | None = None,
    ) -> str:
        if stream_id in self.stopped:  # idempotent, as the protocol asks
            return self.stopped[stream_id]
        self._maybe_refuse("stop", f"msg-{stream_id}")
        self.calls.append(("stop", view))
        self.rests.append(rest)
        self.stopped[stream_id] = f"msg-{stream_id}"
        self._maybe_crash("stop")
        return self.stopped[stream_id]

    def _maybe_refuse(self, call: str, message_id: str | None) -> None:
        if call in self.unavailable_on:
            self.unavailable_on.discard(call)
            raise StreamUnavailable("message_not_in_streaming_state", message_id=message_id)

    def _maybe_crash(self, call: str) -> None:
        if call in self.crash_after:
            self.crash_after.discard(call)
            raise Crash(call)

    def kinds(self) -> list[str]:
        return [name for name, _ in self.calls]

    def edits(self) -> list[tuple[str, View]]:
        return [v for k, v in self.calls if k == "edit"]  # type: ignore[misc]  # edits hold pairs

    def views(self, name: str) -> list[View]:
        return [v for k, v in self.calls if k == name]  # type: ignore[misc]


async def a_request(repo: Repository, tasks: int = 1) -> list[int]:
    created = await repo.create_request(
        request=RequestCreate(
            platform="fake", tenant="t", channel="c", user="u", text="x", event_id="e"
        ),
        tasks=[TaskCreate(kind="email.draft", inputs={"recipients": ["Dana"]})] * tasks,
    )
    return [t.id or 0 for t in created.tasks]


async def delivery(repo: Repository) -> Delivery:
    found = await repo.delivery_for(1)
    assert found is not None
    return found


def updates(platform: StreamingPlatform) -> list[StreamUpdate]:
    return [u for kind, u in platform.calls if kind in ("start", "append")]  # type: ignore[misc]


async def test_a_result_streams_start_appends_stop_and_the_final_view_replaces_it_once(
    repo: Repository,
) -> None:
    platform = StreamingPlatform()
    deliverer = Deliverer(repo, {"fake": platform})
    [task] = await a_request(repo)
    await deliverer.tick()
    await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    await repo.set_partial(task_id=task, worker_id="w", text="Hi Dana,", progress=0.1)
    await deliverer.tick()
    await repo.set_partial(task_id=task, worker_id="w", text="Hi Dana,\nthe shipment", progress=0.5)
    await deliverer.tick()
    await deliverer.tick()  # nothing new: no call
    await repo.complete(task_id=task, worker_id="w", result="Hi Dana,\nthe shipment is late.")
    await deliverer.tick()
    await deliverer.tick()
    assert platform.kinds() == ["start", "append", "append", "stop"]
    first, *appends = updates(platform)
    assert first.text == "" and [i.status for i in first.plan] == [PlanStatus.queued]
    assert [u.delta for u in appends] == ["Hi Dana,", "\nthe shipment"]
    (final,) = platform.views("stop")
    assert "Hi Dana,\nthe shipment is late." in final.text
    assert [b.action.value for b in final.buttons[0]] == ["up", "down", "regen"]
    shown = await delivery(repo)
    assert shown.stream_state == CLOSED and shown.message_id == "msg-s1" and shown.done
    # The stream showed the start of the one result: the stop may finish it in place.
    assert platform.rests == [" is late."]


async def test_a_two_task_request_shows_a_plan_whose_statuses_change_in_order(
    repo: Repository,
) -> None:
    platform = StreamingPlatform()
    deliverer = Deliverer(repo, {"fake": platform})
    first, second = await a_request(repo, tasks=2)
    await deliverer.tick()
    await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    await repo.set_partial(task_id=first, worker_id="w", text="One", progress=0.5)
    await deliverer.tick()
    await repo.complete(task_id=first, worker_id="w", result="One done.")
    await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    await deliverer.tick()
    await repo.set_partial(task_id=second, worker_id="w", text="Two", progress=0.5)
    await deliverer.tick()
    await repo.complete(task_id=second, worker_id="w", result="Two done.")
    await deliverer.tick()
    history: dict[int, list[PlanStatus]] = {first: [], second: []}
    for update in updates(platform):
        for item in update.plan:
            if not history[item.task_id] or history[item.task_id][-1] != item.status:
                history[item.task_id].append(item.status)
    done = [PlanStatus.queued, PlanStatus.running, PlanStatus.done]
    assert history == {first: done, second: done[:2]}, "the last 'done' comes with the stop"
    changed = [[(i.task_id, i.status) for i in u.changed] for u in updates(platform)[1:]]
    assert changed == [
        [(first, PlanStatus.running)],
        [(first, PlanStatus.done), (second, PlanStatus.running)],
        [],
    ]
    assert [u.text for u in updates(platform)] == ["", "One", "One done.", "One done.\n\nTwo"]
    (final,) = platform.views("stop")
    assert "One done." in final.text and "Two done." in final.text
    assert platform.rests == [None], "a plan of several is replaced by the whole view"


async def test_an_expired_stream_falls_back_to_edits_of_its_message_and_loses_nothing(
    repo: Repository,
) -> None:
    platform = StreamingPlatform(unavailable_on={"append"})
    deliverer = Deliverer(repo, {"fake": platform})
    [task] = await a_request(repo)
    await deliverer.tick()
    await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    await repo.set_partial(task_id=task, worker_id="w", text="First words", progress=0.3)
    await deliverer.tick()  # the append is refused: the stream's message is edited instead
    assert (await delivery(repo)).stream_state == FALLBACK
    await repo.complete(task_id=task, worker_id="w", result="First words and the rest.")
    await deliverer.tick()
    assert platform.kinds() == ["start", "edit", "edit"]
    (message, progress), (again, final) = platform.edits()
    assert message == again == "msg-s1"
    assert "First words" in progress.text, "the running task's text shows in the edit too"
    assert "First words and the rest." in final.text and final.buttons
    assert (await delivery(repo)).done


async def test_a_refused_start_posts_and_edits_as_without_streaming(repo: Repository) -> None:
    platform = StreamingPlatform(unavailable_on={"start"})
    deliverer = Deliverer(repo, {"fake": platform})
    [task] = await a_request(repo)
    await deliverer.tick()
    await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    await repo.complete(task_id=task, worker_id="w", result="All of it.")
    await deliverer.tick()
    assert platform.kinds() == ["send", "edit"]
    assert "All of it." in platform.edits()[-1][1].text


async def test_a_restarted_bot_appends_only_what_is_missing_and_stops_exactly_once(
    repo: Repository,
) -> None:
    platform = StreamingPlatform()  # the platform outlives the bot process
    [task] = await a_request(repo)
    await Deliverer(repo, {"fake": platform}).tick()
    await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    await repo.set_partial(task_id=task, worker_id="w", text="Hello", progress=0.2)
    await Deliverer(repo, {"fake": platform}).tick()
    assert (await delivery(repo)).stream_state == OPEN
    # The bot is killed; a new one starts over the same database.
    await repo.set_partial(task_id=task, worker_id="w", text="Hello world", progress=0.6)
    restarted = Deliverer(repo, {"fake": platform})
    await restarted.tick()
    await repo.complete(task_id=task, worker_id="w", result="Hello world!")
    await restarted.tick()
    await Deliverer(repo, {"fake": platform}).tick()
    assert platform.kinds() == ["start", "append", "append", "stop"]
    assert [u.delta for u in updates(platform)] == ["", "Hello", " world"]


async def test_a_crash_after_the_stop_took_effect_repeats_it_and_posts_nothing_twice(
    repo: Repository,
) -> None:
    platform = StreamingPlatform(crash_after={"stop"})
    [task] = await a_request(repo)
    await Deliverer(repo, {"fake": platform}).tick()
    await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    await repo.complete(task_id=task, worker_id="w", result="The result.")
    with pytest.raises(Crash):
        await Deliverer(repo, {"fake": platform}).tick()
    crashed = await delivery(repo)
    assert crashed.stream_state == OPEN and crashed.posting is not None  # the stop is in doubt
    crashed.next_attempt_at = utcnow()  # the hold against other schedulers has passed
    await repo.save_delivery(crashed)
    await Deliverer(repo, {"fake": platform}).tick()
    await Deliverer(repo, {"fake": platform}).tick()
    assert platform.kinds() == ["start", "stop"], "the repeated stop showed nothing twice"
    final = await delivery(repo)
    assert final.stream_state == CLOSED and final.message_id == "msg-s1" and final.done


async def test_text_that_does_not_just_grow_ends_the_stream_and_edits_continue(
    repo: Repository,
) -> None:
    platform = StreamingPlatform()
    deliverer = Deliverer(repo, {"fake": platform})
    [task] = await a_request(repo)
    await deliverer.tick()
    await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    await repo.set_partial(task_id=task, worker_id="w", text="An attempt", progress=0.2)
    await deliverer.tick()
    # The worker died; the retry writes different words.
    await repo.fail(task_id=task, worker_id="w", error="worker_lost", backoff_seconds=0)
    await repo.claim(worker_id="w2", limit=1, lease_seconds=30)
    await repo.set_partial(task_id=task, worker_id="w2", text="Another try", progress=0.2)
    await deliverer.tick()
    await repo.complete(task_id=task, worker_id="w2", result="Another try, finished.")
    await deliverer.tick()
    assert platform.kinds() == ["start", "append", "stop", "edit"]
    assert "Another try" in platform.views("stop")[0].text
    ((message, final),) = platform.edits()
    assert message == "msg-s1" and "Another try, finished." in final.text


async def test_stream_calls_are_paced_but_first_words_and_the_final_view_are_never_held_back(
    repo: Repository,
) -> None:
    platform = StreamingPlatform(min_stream_interval=3600.0)
    deliverer = Deliverer(repo, {"fake": platform})
    [task] = await a_request(repo)
    await deliverer.tick()  # the stream opens empty while the task waits
    await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    await repo.set_partial(task_id=task, worker_id="w", text="—", progress=0.1)
    await deliverer.tick()
    assert platform.kinds() == ["start", "append"]
    await repo.set_partial(task_id=task, worker_id="w", text="— Early", progress=0.2)
    await deliverer.tick()
    assert platform.kinds() == ["start", "append", "append"], "the first word goes out at once"
    await repo.set_partial(task_id=task, worker_id="w", text="— Early words", progress=0.4)
    await deliverer.tick()
    assert platform.kinds() == ["start", "append", "append"], "later words wait their turn"
    assert (await delivery(repo)).next_attempt_at is not None
    await repo.complete(task_id=task, worker_id="w", result="— Early words and done.")
    await deliverer.tick()
    assert platform.kinds() == ["start", "append", "append", "stop"]


async def test_with_streaming_off_the_edit_path_shows_the_first_words(repo: Repository) -> None:
    platform = StreamingPlatform()
    deliverer = Deliverer(repo, {"fake": platform}, stream=False)
    [task] = await a_request(repo)
    await deliverer.tick()
    await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    await repo.set_partial(task_id=task, worker_id="w", text="The first words", progress=0.2)
    await deliverer.tick()
    assert platform.kinds() == ["send", "edit"]
    assert "The first words" in platform.edits()[-1][1].text


async def test_a_request_finished_before_its_first_message_is_posted_not_streamed(
    repo: Repository,
) -> None:
    platform = StreamingPlatform()
    [task] = await a_request(repo)
    await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    await repo.complete(task_id=task, worker_id="w", result="Quick.")
    await Deliverer(repo, {"fake": platform}).tick()
    assert platform.kinds() == ["send"]


async def test_a_refused_stop_is_retried_and_the_result_still_arrives_once(
    repo: Repository,
) -> None:
    platform = StreamingPlatform()
    [task] = await a_request(repo)
    deliverer = Deliverer(repo, {"fake": platform})
    await deliverer.tick()
    await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    await repo.complete(task_id=task, worker_id="w", result="Done.")

    async def refuse(*args: object, **kwargs: object) -> str:
        raise DeliveryError("ratelimited", retry_after=0.0)

    stop = platform.stream_stop
    platform.stream_stop = refuse  # type: ignore[method-assign]
    await deliverer.tick()
    assert (await delivery(repo)).posting is None, "a refused stop did not happen"
    platform.stream_stop = stop  # type: ignore[method-assign]
    await deliverer.tick()
    assert platform.kinds() == ["start", "stop"]
    assert (await delivery(repo)).done


async def test_a_retry_writing_the_same_words_again_resumes_the_stream_where_it_was(
    repo: Repository,
) -> None:
    platform = StreamingPlatform()
    deliverer = Deliverer(repo, {"fake": platform})
    [task] = await a_request(repo)
    await deliverer.tick()
    await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    await repo.set_partial(task_id=task, worker_id="w", text="Hello world", progress=0.4)
    await deliverer.tick()
    # The worker died; the retry (a deterministic model) writes the same words again.
    await repo.fail(task_id=task, worker_id="w", error="worker_lost", backoff_seconds=0)
    await deliverer.tick()
    await repo.claim(worker_id="w2", limit=1, lease_seconds=30)
    await repo.set_partial(task_id=task, worker_id="w2", text="Hello", progress=0.2)
    await deliverer.tick()
    assert platform.kinds() == ["start", "append"], "the stream waits for the retry"
    await repo.set_partial(task_id=task, worker_id="w2", text="Hello world, Dana", progress=0.6)
    await deliverer.tick()
    await repo.complete(task_id=task, worker_id="w2", result="Hello world, Dana.")
    await deliverer.tick()
    assert platform.kinds() == ["start", "append", "append", "stop"]
    assert [u.delta for u in updates(platform)] == ["", "Hello world", ", Dana"]
    assert (await delivery(repo)).stream_state == CLOSED
