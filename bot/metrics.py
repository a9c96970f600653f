"""atombot's Prometheus metrics: one registry per app, bounded labels.

Every metric lives in the app's own :class:`~prometheus_client.CollectorRegistry` (so two
apps in one process, as in tests, never share counters) and is served at ``/metrics`` by
:mod:`bot.ops`. Labels are only the task kind, the status, the platform and the platform
method, each from a bounded set — never a user, chat, request or task id. A kind the
registry does not know, or a method past the first :data:`MAX_METHODS`, is ``other``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from storage.repo.tasks import QueueStats
from storage.tables import Task, utcnow

OTHER = "other"
PLATFORMS = frozenset({"console", "slack", "telegram"})
#: How many distinct platform methods (``chat.update``, ``editMessageText``…) get their own label.
MAX_METHODS = 40
_METHOD = re.compile(r"^[A-Za-z][A-Za-z0-9._]{0,47}$")

#: Seconds: from sub-second queue waits and deliveries up to slow CPU generations.
TIME_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
TOKENS_PER_SECOND_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)
CLASSIFIER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

#: What ``/metrics`` answers with (the Prometheus text format).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _since(moment: datetime | None, now: datetime) -> float | None:
    if moment is None:
        return None
    return max((now - _aware(moment)).total_seconds(), 0.0)


class Metrics:
    """The metric objects of one app, and one method per thing that is counted or timed."""

    def __init__(
        self, kinds: Iterable[str] = (), *, registry: CollectorRegistry | None = None
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.kinds = frozenset(kinds)
        self._methods: set[str] = set()
        r = self.registry
        self.requests = Counter(
            "atombot_requests",
            "Inbound messages routed, by platform and outcome "
            "(tasks, answer, duplicate, unavailable).",
            ["platform", "outcome"],
            registry=r,
        )
        self.tasks = Counter(
            "atombot_tasks",
            "Tasks that reached a final status in this process, by kind and status.",
            ["kind", "status"],
            registry=r,
        )
        self.tokens = Counter(
            "atombot_tokens_generated", "Tokens generated, by task kind.", ["kind"], registry=r
        )
        self.deliveries = Counter(
            "atombot_deliveries",
            "Requests whose final results were delivered to the chat, by platform.",
            ["platform"],
            registry=r,
        )
        self.delivery_errors = Counter(
            "atombot_delivery_errors",
            "Failed writes of a request's message to the chat, by platform.",
            ["platform"],
            registry=r,
        )
        self.rate_limited = Counter(
            "atombot_rate_limited",
            "HTTP 429 answers from a chat platform, by platform and API method.",
            ["platform", "method"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "atombot_queue_depth", "Tasks waiting in the queue (status queued).", registry=r
        )
        self.queue_oldest = Gauge(
            "atombot_queue_oldest_age_seconds",
            "How long the oldest queued task has waited (0 when the queue is empty).",
            registry=r,
        )
        self.leader = Gauge(
            "atombot_scheduler_leader",
            "1 when this process is the active scheduler, 0 when a standby or not scheduling.",
            registry=r,
        )
        self.queue_wait = Histogram(
            "atombot_queue_wait_seconds",
            "From a task's creation to its first claim by a worker, by kind.",
            ["kind"],
            buckets=TIME_BUCKETS,
            registry=r,
        )
        self.generation = Histogram(
            "atombot_generation_seconds",
            "Time to generate one task's text, by kind.",
            ["kind"],
            buckets=TIME_BUCKETS,
            registry=r,
        )
        self.tokens_per_second = Histogram(
            "atombot_generation_tokens_per_second",
            "Generation speed of one task, by kind.",
            ["kind"],
            buckets=TOKENS_PER_SECOND_BUCKETS,
            registry=r,
        )
        self.delivery = Histogram(
            "atombot_delivery_seconds",
            "From a task's end to its result shown in the chat, by kind.",
            ["kind"],
            buckets=TIME_BUCKETS,
            registry=r,
        )
        self.classifier = Histogram(
            "atombot_classifier_seconds",
            "Time the intent classifier takes to parse one message.",
            buckets=CLASSIFIER_BUCKETS,
            registry=r,
        )

    # ------------------------------------------------------------------ bounded labels

    def kind(self, kind: str) -> str:
        """``kind`` if the task-kind registry knows it, else ``other``."""
        return kind if kind in self.kinds else OTHER

    @staticmethod
    def platform(platform: str) -> str:
        """``platform`` if it is one atombot has, else ``other``."""
        return platform if platform in PLATFORMS else OTHER

    def method(self, method: str) -> str:
        """A platform API method name, or ``other`` once :data:`MAX_METHODS` are labelled."""
        if method in self._methods:
            return method
        if not _METHOD.match(method) or len(self._methods) >= MAX_METHODS:
            return OTHER
        self._methods.add(method)
        return method

    # ------------------------------------------------------------------ router

    def request(self, platform: str, outcome: str) -> None:
        """One inbound message was routed with ``outcome``."""
        self.requests.labels(self.platform(platform), outcome).inc()

    def classified(self, seconds: float) -> None:
        """The classifier parsed one message in ``seconds``."""
        self.classifier.observe(seconds)

    # ------------------------------------------------------------------ worker

    def claimed(self, task: Task) -> None:
        """A worker claimed ``task``: its first claim ends its queue wait."""
        if task.attempts <= 1:
            waited = _since(task.created_at, _aware(task.started_at or utcnow()))
            if waited is not None:
                self.queue_wait.labels(self.kind(task.kind)).observe(waited)

    def generated(self, task: Task, *, seconds: float, tokens: int) -> None:
        """A worker generated ``tokens`` tokens for ``task`` in ``seconds``."""
        kind = self.kind(task.kind)
        self.generation.labels(kind).observe(seconds)
        self.tokens.labels(kind).inc(max(tokens, 0))
        if seconds > 0 and tokens > 0:
            self.tokens_per_second.labels(kind).observe(tokens / seconds)

    def finished(self, task: Task, status: str) -> None:
        """``task`` reached a final ``status`` in this process."""
        self.tasks.labels(self.kind(task.kind), str(status)).inc()

    # ------------------------------------------------------------------ delivery

    def delivered(self, platform: str, tasks: Iterable[Task], *, now: datetime) -> None:
        """A request's final results were shown: one delivery, one timing per finished task."""
        self.deliveries.labels(self.platform(platform)).inc()
        for task in tasks:
            waited = _since(task.finished_at, now)
            if waited is not None:
                self.delivery.labels(self.kind(task.kind)).observe(waited)

    def delivery_failed(self, platform: str) -> None:
        """Writing a request's message to ``platform`` failed."""
        self.delivery_errors.labels(self.platform(platform)).inc()

    def platform_rate_limited(self, platform: str, method: str) -> None:
        """``platform`` answered HTTP 429 to ``method``."""
        self.rate_limited.labels(self.platform(platform), self.method(method)).inc()

    # ------------------------------------------------------------------ gauges

    def queue(self, stats: QueueStats) -> None:
        """The queue as just read from the database."""
        self.queue_depth.set(stats.depth)
        self.queue_oldest.set(stats.oldest_age_seconds)

    def leadership(self, leading: bool) -> None:
        """Whether this process runs the scheduler's jobs now."""
        self.leader.set(1 if leading else 0)

    def render(self) -> bytes:
        """Everything in the Prometheus text format."""
        return generate_latest(self.registry)
