"""The console adapter: one request per stdin line, results printed to stdout.

``printf 'draft an email to Dana about the delay\\n' | atombot run`` works as a script: when
stdin closes the adapter waits (bounded) for the tasks it created, then the app exits.

Results stream (:class:`~bot.adapters.base.StreamingAdapter`): the plan's lines, then the
generated text as it arrives, then the final view once (its status lines and the result
as the task kind renders it, the text a second time: the streamed words are a preview, the
final view is what is rated).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TextIO

from bot.adapters.base import PostLookup, Services
from bot.texts import detect_locale, t
from bot.types import (
    OTHER_REASON,
    Action,
    ActionEvent,
    Inbound,
    PlanStatus,
    Reply,
    StreamUpdate,
    Target,
    View,
)
from storage.health import is_outage
from storage.tables import FEEDBACK_REASONS, TERMINAL_STATUSES

PLATFORM = "console"


class ConsoleAdapter:
    """Reads requests from a text stream and prints acknowledgements, progress and results."""

    platform = PLATFORM
    max_text = 100_000
    min_edit_interval = 1.0
    #: A terminal takes every token at once.
    min_stream_interval = 0.0

    def __init__(
        self,
        *,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        user: str = "console",
        tenant: str = "local",
        channel: str = "console",
        timezone: str = "UTC",
        wait_timeout: float = 600.0,
    ) -> None:
        self._stdin = stdin
        self._stdout = stdout
        self._stderr = stderr
        self.user = user
        self.tenant = tenant
        self.channel = channel
        self.timezone = timezone
        self.wait_timeout = wait_timeout
        self._printed: dict[str, set[str]] = {}
        self._next_id = 0
        self._created: set[int] = set()
        self._services: Services | None = None
        self._reader: asyncio.Task[None] | None = None
        self.finished = asyncio.Event()
        self.on_finished: Callable[[], None] | None = None
        #: Notes go to the log instead of stderr (JSON logs: every stderr line is JSON).
        self.notes_to_log = False
        #: Live streams: the message id each stopped one became (stopping again returns it).
        self._stopped: dict[str, str] = {}
        #: The last line printed is a streamed one still being written.
        self._mid_line = False

    def _out(self, text: str) -> None:
        self._write(("\n" if self._mid_line else "") + text + "\n")
        self._mid_line = False

    def _write(self, text: str) -> None:
        stream = self._stdout or sys.stdout
        stream.write(text)
        stream.flush()

    def _note(self, text: str) -> None:
        """A line about the bot itself (greeting, model loading): stderr, so that stdout
        carries only the conversation."""
        if self.notes_to_log:
            logging.getLogger(__name__).info("%s", text)
            return
        stream = self._stderr or sys.stderr
        stream.write(text + "\n")
        stream.flush()

    def model_status(self, event: str, seconds: float) -> None:
        """Show the text model's load status (``"loading"``, ``"ready"``) on stderr."""
        if event == "loading":
            self._note(t("console.model_loading", "en"))
        elif event == "ready":
            self._note(t("console.model_ready", "en", seconds=round(seconds)))

    async def start(self, services: Services) -> None:
        """Greet (on stderr) with what to type, and start reading lines in the background."""
        self._services = services
        self._note(t("console.greeting", "en"))
        self._reader = asyncio.create_task(self._read_loop())

    async def stop(self) -> None:
        """Stop reading."""
        if self._reader is not None:
            self._reader.cancel()

    def ready(self) -> tuple[bool, str]:
        """Ready while it reads the terminal (and after its input ended, until the app exits)."""
        if self._services is None:
            return False, "not started"
        return True, "reading input" if not self.finished.is_set() else "input ended"

    async def _read_loop(self) -> None:
        assert self._services is not None
        stream = self._stdin or sys.stdin
        run_id = f"{asyncio.get_running_loop().time():.6f}"
        line_no = 0
        while True:
            line = await asyncio.to_thread(stream.readline)
            if not line:
                break
            line_no += 1
            await self.handle_line(line.rstrip("\n"), event_id=f"{run_id}:{line_no}")
        await self._wait_for_tasks()
        self.finished.set()
        if self.on_finished is not None:
            self.on_finished()

    async def handle_line(self, line: str, *, event_id: str) -> None:
        """Route one input line (a request, ``/rate ID up|down`` or ``/why ID REASON …``)."""
        assert self._services is not None
        if line.strip().startswith("/rate"):
            await self._rate(line.strip(), event_id)
            return
        if line.strip().startswith("/why"):
            await self._why(line.strip(), event_id)
            return
        reply = await self._services.router.handle(
            Inbound(
                platform=PLATFORM,
                tenant=self.tenant,
                channel=self.channel,
                user=self.user,
                text=line,
                event_id=event_id,
                timezone=self.timezone,
            )
        )
        self._created.update(reply.task_ids)
        self._out(reply.text)
        self._services.notify()

    async def _rate(self, line: str, event_id: str) -> None:
        assert self._services is not None
        parts = line.split()
        locale = detect_locale(line)
        actions = {
            "up": Action.rate_up,
            "down": Action.rate_down,
            "+1": Action.rate_up,
            "-1": Action.rate_down,
        }
        if len(parts) != 3 or not parts[1].lstrip("#").isdigit() or parts[2].lower() not in actions:
            self._out(t("rate.usage", locale))
            return
        reply = await self._services.router.handle_action(
            ActionEvent(
                platform=PLATFORM,
                tenant=self.tenant,
                channel=self.channel,
                user=self.user,
                action=actions[parts[2].lower()],
                task_id=int(parts[1].lstrip("#")),
                event_id=event_id,
            )
        )
        self._show(reply)

    def _show(self, reply: Reply) -> None:
        """An answer, then its menu's choices as ``[choice] label`` (for ``/why``)."""
        self._out(reply.text)
        for row in reply.buttons:
            self._out("  " + "  ".join(f"[{b.choice}] {b.label}" for b in row))

    async def _why(self, line: str, event_id: str) -> None:
        """``/why ID REASON [note]``; ``/why ID wrong_kind KIND`` redoes the task as KIND."""
        assert self._services is not None
        parts = line.split(maxsplit=3)
        locale = detect_locale(line)
        reasons = (*FEEDBACK_REASONS, OTHER_REASON)
        if len(parts) < 3 or not parts[1].lstrip("#").isdigit() or parts[2] not in reasons:
            self._out(t("why.usage", locale))
            return
        task_id, reason = int(parts[1].lstrip("#")), parts[2]
        rest = parts[3].strip() if len(parts) == 4 else ""
        steps: list[tuple[Action, str | None, str | None]] = []
        if reason == OTHER_REASON:
            steps.append((Action.note, None, rest))
        elif reason == "wrong_kind" and rest:
            steps.append((Action.replan, rest, None))
        else:
            steps.append((Action.why, reason, None))
            if rest:
                steps.append((Action.note, None, rest))
        for number, (action, choice, comment) in enumerate(steps):
            reply = await self._services.router.handle_action(
                ActionEvent(
                    platform=PLATFORM,
                    tenant=self.tenant,
                    channel=self.channel,
                    user=self.user,
                    action=action,
                    task_id=task_id,
                    event_id=f"{event_id}:{number}",
                    choice=choice,
                    comment=comment,
                )
            )
            self._created.update(reply.task_ids)
            self._show(reply)
        self._services.notify()

    async def _wait_for_tasks(self) -> None:
        assert self._services is not None
        repo = self._services.repo
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_timeout
        announced = False
        while True:
            try:
                tasks = await repo.tasks_by_ids(sorted(self._created))
                open_tasks = [x for x in tasks if x.status not in TERMINAL_STATUSES]
                delivered = not open_tasks
                if not open_tasks:
                    # Let the delivery job print the final results before exiting.
                    for request_id in {x.request_id for x in tasks}:
                        delivery = await repo.delivery_for(request_id)
                        delivered = delivered and delivery is not None and delivery.done
            except Exception as exc:
                if not is_outage(exc):
                    raise
                open_tasks, delivered = [], False  # the router already said it is unreachable
            if delivered:
                return
            if open_tasks and not announced:
                self._out(t("console.waiting", "en", n=len(open_tasks)))
                announced = True
            if loop.time() > deadline:
                self._out(
                    t("console.timeout", "en", seconds=int(self.wait_timeout), n=len(open_tasks))
                )
                return
            await asyncio.sleep(0.1)

    async def send(self, target: Target, view: View, *, client_id: str | None = None) -> str:
        """Print the view; the message id is a counter."""
        self._next_id += 1
        message_id = str(self._next_id)
        self._printed[message_id] = set()
        self._print_new(message_id, view)
        return message_id

    async def edit(self, target: Target, message_id: str, view: View) -> None:
        """Print only the parts of the view not printed before for this message."""
        self._print_new(message_id, view)

    async def notify(self, target: Target, text: str, *, client_id: str | None = None) -> None:
        """Print a reminder or digest."""
        self._out(text)

    async def find_sent(self, target: Target, client_id: str, *, since: datetime) -> PostLookup:
        """A console keeps no record of what an earlier process printed: cannot tell."""
        return PostLookup(searchable=False)

    def can_stream(self, target: Target) -> bool:
        """Every console result streams."""
        return True

    async def stream_start(self, target: Target, update: StreamUpdate, *, client_id: str) -> str:
        """Print the plan (a line per task) and whatever text there is already."""
        self._next_id += 1
        for item in update.plan:
            self._out(t(f"console.plan.{item.status.value}", "en", title=item.title))
        self._stream_text(update.text)
        return f"s{self._next_id}"

    async def stream_append(self, target: Target, stream_id: str, update: StreamUpdate) -> None:
        """Print tasks that started (or wait) on a line each, and the new text as it comes."""
        for item in update.changed:
            if item.status in (PlanStatus.running, PlanStatus.waiting):
                self._out(t(f"console.plan.{item.status.value}", "en", title=item.title))
        self._stream_text(update.delta)

    async def stream_stop(
        self,
        target: Target,
        stream_id: str,
        view: View,
        *,
        client_id: str,
        rest: str | None = None,
    ) -> str:
        """End the streamed text's line and print the final view (once per stream)."""
        if stream_id in self._stopped:
            return self._stopped[stream_id]
        message_id = await self.send(target, view, client_id=client_id)
        self._stopped[stream_id] = message_id
        return message_id

    def _stream_text(self, text: str) -> None:
        if text:
            self._write(text)
            self._mid_line = not text.endswith("\n")

    def _print_new(self, message_id: str, view: View) -> None:
        seen = self._printed.setdefault(message_id, set())
        for section in view.sections:
            for chunk in (section.title, section.text):
                if chunk and chunk not in seen:
                    seen.add(chunk)
                    self._out(chunk)
