"""The router: dedupe → classify → plan tasks → store → acknowledge.

Adapters call :meth:`Router.handle` with an :class:`~bot.types.Inbound` and
:meth:`Router.handle_action` with a button press. Nothing here talks to a platform.
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from datetime import UTC, datetime, timedelta

from bot.texts import detect_locale, t
from bot.types import Action, ActionEvent, Inbound, Reply
from handlers.base import HandlerContext, MessageFetcher, Plan
from handlers.feedback import cancel, rate, regenerate_task
from handlers.kinds import KindRegistry, TaskKind, build_registry
from models.intents import slots as slot_extraction
from models.intents.spec import OOS, IntentParser, TaskSpec
from storage.repository import Repository
from storage.schemas import RequestCreate, TaskCreate
from storage.tables import Task, TaskStatus

log = logging.getLogger(__name__)

#: How long the delivery job leaves a request alone while its adapter posts the receipt that
#: becomes its progress message; past this (a crash, a lost post) the job posts its own.
RECEIPT_GRACE = timedelta(seconds=15)

# Keep newlines and tabs; drop other control and format characters (NUL, bidi overrides…).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def clean_text(text: str) -> str:
    """Normalise Unicode and strip control characters and surrounding space."""
    return _CONTROL.sub("", unicodedata.normalize("NFC", text)).strip()


class Router:
    """Turns inbound messages into stored tasks and immediate answers."""

    def __init__(
        self,
        *,
        repo: Repository,
        parser: IntentParser,
        max_input_chars: int = 20_000,
        max_attempts: int = 3,
        kinds: KindRegistry | None = None,
    ) -> None:
        self.repo = repo
        self.parser = parser
        #: The task-kind registry (the built-in kinds when none is given).
        self.kinds = kinds if kinds is not None else build_registry()
        self.max_input_chars = max_input_chars
        self.max_attempts = max_attempts

    async def handle(self, inbound: Inbound, *, fetch: MessageFetcher | None = None) -> Reply:
        """Process one inbound message and return the acknowledgement to show."""
        text = clean_text(inbound.text)
        locale = detect_locale(text)
        if not text:
            return Reply(t("input.unreadable" if inbound.text.strip() else "input.empty", locale))
        if len(text) > self.max_input_chars:
            return Reply(t("input.too_long", locale, length=len(text), limit=self.max_input_chars))
        seen = await self.repo.find_request(
            platform=inbound.platform, tenant=inbound.tenant, event_id=inbound.event_id
        )
        if seen is not None:
            return await self._duplicate(seen.id or 0, locale)

        specs = await asyncio.to_thread(
            self.parser.parse,
            text,
            now_iso=datetime.now(UTC).isoformat(),
            timezone=inbound.timezone,
            traits=self.kinds,
        )
        specs = [s for s in specs if s.intent != OOS and self.kinds.planner(s.intent) is not None]
        if not specs:
            return Reply(t("input.oos", locale))

        request = RequestCreate(
            platform=inbound.platform,
            tenant=inbound.tenant,
            channel=inbound.channel,
            thread=inbound.thread,
            user=inbound.user,
            text=text,
            event_id=inbound.event_id,
            locale=locale,
            timezone=inbound.timezone,
            private=inbound.private,
            context={"user_name": inbound.user_name} if inbound.user_name else {},
        )
        ctx = HandlerContext(
            repo=self.repo,
            request=request,
            now=datetime.now(UTC),
            fetch_messages=fetch,
            kind_label=self.kinds.label,
        )
        tasks, answers = await self._plan(specs, ctx, text)
        stored = await self.repo.create_request(
            request=request,
            tasks=tasks,
            hold_delivery_until=ctx.now + RECEIPT_GRACE if inbound.adopts_receipt else None,
        )
        if not stored.created:
            return await self._duplicate(stored.request.id or 0, locale)
        for task in stored.tasks:
            kind = self.kinds.get(task.kind)
            if kind is not None:
                await kind.handler.after_create(task, ctx)
        return self._acknowledge(stored.tasks, answers, locale, stored.request.id)

    async def _plan(
        self, specs: list[TaskSpec], ctx: HandlerContext, text: str
    ) -> tuple[list[TaskCreate], list[str]]:
        tasks: list[TaskCreate] = []
        answers: list[str] = []
        last_index: dict[int, int] = {}  # spec index -> index of its final task
        locale = ctx.request.locale
        for i, spec in enumerate(specs):
            kind = self.kinds.planner(spec.intent)
            if kind is None:
                continue
            clause = text[spec.span[0] : spec.span[1]] if spec.span[1] > spec.span[0] else text
            filled = self._fill_slots(kind, spec, clause, ctx)
            missing = [*spec.missing, *(s for s, _ in kind.required if not filled.get(s))]
            if missing:
                answers.append(_question(kind, missing, locale))
                continue
            depends_on = spec.depends_on
            inputs: dict[str, object] = {}
            if kind.needs_input and not depends_on:
                earlier = [
                    j for j in range(i) if j in last_index and self.kinds.produces(specs[j].intent)
                ]
                found = None if earlier else await self._last_result(ctx)
                if earlier:
                    depends_on = (earlier[-1],)  # the nearest earlier result of this message
                elif found is not None:
                    inputs["results_of"] = [found.id or 0]  # finished already: read, not wait
                else:
                    answers.append(t("followup.no_result", locale, kind=kind.label.get(locale)))
                    continue
            slots = {**filled, **inputs, "request_text": clause, "locale": locale}
            plan: Plan = await kind.handler.plan(
                TaskSpec(spec.intent, slots, spec.confidence, spec.span, depends_on), ctx
            )
            if plan.answer:
                answers.append(plan.answer)
            if not plan.tasks:
                continue
            offset = len(tasks)
            external = tuple(last_index[d] for d in depends_on if d in last_index)
            for j, task in enumerate(plan.tasks):
                internal = tuple(offset + d for d in task.depends_on)
                deps = internal if task.depends_on else internal + external
                tasks.append(
                    TaskCreate(
                        kind=task.kind,
                        inputs=task.inputs,
                        depends_on=deps,
                        priority=task.priority,
                        max_attempts=self.max_attempts,
                        status=task.status,
                        result=task.result,
                        retry_of=task.retry_of,
                    )
                )
                if j == len(plan.tasks) - 1:
                    last_index[i] = len(tasks) - 1
        return tasks, answers

    def _fill_slots(
        self, kind: TaskKind, spec: TaskSpec, clause: str, ctx: HandlerContext
    ) -> dict[str, object]:
        """The spec's slots, plus the kind's declared slots the parser left empty.

        Built-in kinds get their slots from the parser; a kind from the intents file gets
        its declared slots filled here by the generic extractors (topic, recipients, times…).
        """
        filled: dict[str, object] = dict(spec.slots)
        wanted = [s for s in kind.slots if not filled.get(s)]
        if wanted and kind.fill_slots:
            context = slot_extraction.SlotContext(now=ctx.now, timezone=ctx.request.timezone)
            filled.update(slot_extraction.generic(wanted, clause, context))
        return filled

    async def _last_result(self, ctx: HandlerContext) -> Task | None:
        """The newest result in the thread (or chat) the request came from."""
        r = ctx.request
        return await self.repo.last_result(
            platform=r.platform,
            tenant=r.tenant,
            channel=r.channel,
            thread=r.thread,
            kinds=self.kinds.producing_kinds,
            user=r.user,
        )

    def _acknowledge(
        self, tasks: list[Task], answers: list[str], locale: str, request_id: int | None
    ) -> Reply:
        visible = [x for x in tasks if self.kinds.visible(x.kind) and x.status == TaskStatus.queued]
        done_at_once = [x.result for x in tasks if x.status == TaskStatus.succeeded and x.result]
        lines = []
        if visible:
            listed = ", ".join(
                t("ack.task", locale, id=x.id, kind=self.kinds.label(x.kind, locale))
                for x in visible
            )
            lines.append(t("ack.queued", locale, tasks=listed))
        lines.extend(done_at_once)
        lines.extend(answers)
        return Reply(
            "\n".join(lines),
            task_ids=tuple(x.id or 0 for x in tasks),
            request_id=request_id,
        )

    async def _duplicate(self, request_id: int, locale: str) -> Reply:
        tasks = [
            x for x in await self.repo.tasks_of_request(request_id) if self.kinds.visible(x.kind)
        ]
        if not tasks:
            return Reply(t("ack.duplicate_empty", locale), duplicate=True, request_id=request_id)
        listed = ", ".join(
            t("ack.task", locale, id=x.id, kind=self.kinds.label(x.kind, locale)) for x in tasks
        )
        return Reply(
            t("ack.duplicate", locale, tasks=listed),
            task_ids=tuple(x.id or 0 for x in tasks),
            duplicate=True,
            request_id=request_id,
        )

    async def handle_action(self, event: ActionEvent, *, locale: str | None = None) -> Reply:
        """Process a button press (rating, regenerate, cancel) and return the answer."""
        task = await self.repo.get_task(event.task_id)
        if locale is None:
            original = await self.repo.get_request(task.request_id) if task else None
            locale = original.locale if original else "en"
        request = RequestCreate(
            platform=event.platform,
            tenant=event.tenant,
            channel=event.channel,
            user=event.user,
            text="",
            event_id=event.event_id,
            locale=locale,
        )
        ctx = HandlerContext(
            repo=self.repo, request=request, now=datetime.now(UTC), kind_label=self.kinds.label
        )
        if event.action in (Action.rate_up, Action.rate_down):
            score = 1 if event.action == Action.rate_up else -1
            return Reply(await rate(event.task_id, score, ctx), ephemeral=True)
        if event.action == Action.cancel:
            return Reply(await cancel(event.task_id, ctx), ephemeral=True)
        return await self._regenerate(event, ctx)

    async def _regenerate(self, event: ActionEvent, ctx: HandlerContext) -> Reply:
        locale = ctx.request.locale
        task = await self.repo.get_task(event.task_id)
        if task is None or task.platform != event.platform or task.tenant != event.tenant:
            return Reply(t("rate.not_found", locale, id=event.task_id), ephemeral=True)
        original = await self.repo.get_request(task.request_id)
        if original is None or not self.kinds.regenerable(task.kind):
            return Reply(t("regenerate.not_possible", locale, id=event.task_id), ephemeral=True)
        inputs = dict(task.inputs)
        # The new attempt reads the same earlier results without waiting on them again.
        inputs["results_of"] = list(task.depends_on) or inputs.get("results_of", [])
        attempt = task.id or 0
        stored = await self.repo.create_request(
            request=RequestCreate(
                platform=original.platform,
                tenant=original.tenant,
                channel=original.channel,
                thread=original.thread,
                user=event.user,
                text=original.text,
                event_id=f"regen:{event.event_id}",
                locale=original.locale,
                timezone=original.timezone,
                private=original.private,
            ),
            tasks=[regenerate_task(inputs, task.kind, attempt, task.id or 0)],
        )
        new_id = stored.tasks[0].id if stored.tasks else None
        return Reply(
            t("regenerate.queued", locale, id=event.task_id, new_id=new_id),
            task_ids=tuple(x.id or 0 for x in stored.tasks),
            duplicate=not stored.created,
            ephemeral=True,
            request_id=stored.request.id,
        )


def _question(kind: TaskKind, missing: list[str], locale: str) -> str:
    """What to ask for the first missing slot: the kind's own question, else a generic one."""
    asked = kind.question(missing[0], locale)
    if asked is not None:
        return asked
    try:
        return t(f"input.ask.{missing[0]}", locale)
    except KeyError:
        return t("input.ask.generic", locale, missing=", ".join(dict.fromkeys(missing)))
