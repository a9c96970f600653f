"""The router: dedupe → classify → plan tasks → store → acknowledge.

Adapters call :meth:`Router.handle` with an :class:`~bot.types.Inbound` and
:meth:`Router.handle_action` with a button press. Nothing here talks to a platform.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
import unicodedata
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot import logcontext
from bot.actions.approval import ApprovalPolicy, Approvals
from bot.learning import ScopedParser, scope_of
from bot.metrics import Metrics
from bot.texts import detect_locale, t
from bot.types import OTHER_REASON, Action, ActionEvent, Button, Inbound, Reply, choice_token
from handlers.actions import follow_up
from handlers.base import HandlerContext, MessageFetcher, Plan
from handlers.feedback import (
    WRONG_KIND,
    cancel,
    correct,
    explain,
    may_explain,
    note,
    rate,
    rate_task,
    reason_label,
    regenerate_task,
    request_text_of,
)
from handlers.kinds import KindRegistry, TaskKind, build_registry
from models.intents import slots as slot_extraction
from models.intents.spec import OOS, IntentParser, TaskSpec
from storage.health import OutageLog, is_outage
from storage.repo.audit import audit_of_tasks
from storage.repository import Repository
from storage.schemas import RequestCreate, TaskCreate
from storage.tables import FEEDBACK_REASONS, Request, Task, TaskStatus

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
        metrics: Metrics | None = None,
        corrections_mode: str = "immediate",
        approvals: Approvals | None = None,
    ) -> None:
        self.repo = repo
        #: ``review``: corrections from "wrong kind of task" are stored pending approval.
        self.corrections_mode = corrections_mode
        self.parser = parser
        #: The task-kind registry (the built-in kinds when none is given).
        self.kinds = kinds if kinds is not None else build_registry()
        self.max_input_chars = max_input_chars
        self.max_attempts = max_attempts
        self.metrics = metrics if metrics is not None else Metrics(k.name for k in self.kinds)
        self._outage = OutageLog(log, "router")
        #: Approve / Edit / Reject of action tasks (requester only when none is given).
        self.approvals = (
            approvals if approvals is not None else Approvals(repo, self.kinds, ApprovalPolicy())
        )

    async def handle(
        self,
        inbound: Inbound,
        *,
        fetch: MessageFetcher | None = None,
        intent: TaskSpec | None = None,
    ) -> Reply:
        """Process one inbound message and return the acknowledgement to show.

        ``intent``: the task the sender asked for in so many words (a command such as
        Telegram's ``/cancel 12``), planned as is instead of classifying the text.

        While the database is unreachable the sender is told to try again (and the outage
        is logged once), instead of the message failing with an error.
        """
        logcontext.begin(platform=inbound.platform, tenant=inbound.tenant)
        try:
            reply = await self._handle(inbound, fetch=fetch, intent=intent)
        except Exception as exc:
            if not is_outage(exc):
                raise
            self._outage.failed(exc)
            self.metrics.request(inbound.platform, "unavailable")
            return Reply(t("service.unavailable", detect_locale(inbound.text)))
        self._outage.ok()
        outcome = "duplicate" if reply.duplicate else "tasks" if reply.task_ids else "answer"
        self.metrics.request(inbound.platform, outcome)
        return reply

    async def _handle(
        self, inbound: Inbound, *, fetch: MessageFetcher | None, intent: TaskSpec | None = None
    ) -> Reply:
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

        if intent is not None:
            specs = [intent]
        else:
            began = time.perf_counter()
            specs = await asyncio.to_thread(
                self._parse_for(inbound),
                text,
                now_iso=datetime.now(UTC).isoformat(),
                timezone=inbound.timezone,
                traits=self.kinds,
            )
            self.metrics.classified(time.perf_counter() - began)
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
            # What the adapter knows of the message (e.g. it came as a slash command).
            extra=dict(inbound.context),
            kind_label=self.kinds.label,
        )
        tasks, answers = await self._plan(specs, ctx, text)
        stored = await self.repo.create_request(
            request=request,
            tasks=tasks,
            hold_delivery_until=ctx.now + RECEIPT_GRACE if inbound.adopts_receipt else None,
        )
        logcontext.bind(request_id=stored.request.id)
        if not stored.created:
            return await self._duplicate(stored.request.id or 0, locale)
        # Ids and kinds only: the message text never goes into the log at INFO.
        log.info(
            "request %s accepted: %d task(s) %s",
            stored.request.id,
            len(stored.tasks),
            ",".join(task.kind for task in stored.tasks) or "-",
        )
        await self.repo.audit(
            actor=inbound.user,
            action="request.accepted",
            platform=inbound.platform,
            tenant=inbound.tenant,
            subject=f"request:{stored.request.id}",
            detail=audit_of_tasks(inbound.channel, stored.tasks),
        )
        for task in stored.tasks:
            kind = self.kinds.get(task.kind)
            if kind is not None:
                await kind.handler.after_create(task, ctx)
        return self._acknowledge(stored.tasks, answers, locale, stored.request.id)

    def _parse_for(self, inbound: Inbound) -> Callable[..., list[TaskSpec]]:
        """The parse call for the sender: with their tenant's classifier and corrections
        when the parser reads per tenant, else the parser's plain ``parse``."""
        if isinstance(self.parser, ScopedParser):
            return functools.partial(
                self.parser.parse_in, scope_of(inbound.platform, inbound.tenant)
            )
        return self.parser.parse

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
            # The intent it was read as: what an accepted task teaches the classifier.
            slots = {**filled, **inputs, "request_text": clause, "locale": locale}
            slots.setdefault("intent", spec.intent)
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
            # "email Dana the outcome": the action that carries the draft out, after it.
            action = follow_up(
                kind, clause, filled, self.kinds, now=ctx.now, timezone=ctx.request.timezone
            )
            if action is not None:
                tasks.append(
                    replace(action, depends_on=(len(tasks) - 1,), max_attempts=self.max_attempts)
                )
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

    async def handle_action(
        self,
        event: ActionEvent,
        *,
        locale: str | None = None,
        fetch_for: FetcherFor | None = None,
    ) -> Reply:
        """Process a button press (rating, why 👎, re-plan, regenerate, cancel) or a note.

        ``fetch_for(channel, thread)`` gives the conversation reader a re-planned task may
        need (a summary of the thread the request came from).
        """
        logcontext.begin(platform=event.platform, tenant=event.tenant, task_id=event.task_id)
        try:
            reply = await self._handle_action(event, locale=locale, fetch_for=fetch_for)
        except Exception as exc:
            if not is_outage(exc):
                raise
            self._outage.failed(exc)
            return Reply(t("service.unavailable", locale or "en"), ephemeral=True)
        self._outage.ok()
        return reply

    async def _handle_action(
        self, event: ActionEvent, *, locale: str | None, fetch_for: FetcherFor | None
    ) -> Reply:
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
        if event.action == Action.rate_up:
            return Reply(await rate(event.task_id, 1, ctx), ephemeral=True)
        if event.action == Action.rate_down:
            rated = await rate_task(event.task_id, -1, ctx)
            if not rated.stored:
                return Reply(rated.text, ephemeral=True)
            return Reply(
                f"{rated.text}\n{t('why.ask', locale)}",
                ephemeral=True,
                buttons=_reasons_menu(event.task_id, locale),
            )
        if event.action == Action.why:
            return await self._why(event, ctx)
        if event.action == Action.replan:
            return await self._replan(event, ctx, fetch_for)
        if event.action == Action.note:
            return Reply(await note(event.task_id, event.comment or "", ctx), ephemeral=True)
        if event.action == Action.cancel:
            return Reply(await cancel(event.task_id, ctx), ephemeral=True)
        if self.approvals.handles(event):
            return await self.approvals.handle(event, locale)
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
        if stored.created:
            await self.repo.audit(
                actor=event.user,
                action="task.regenerated",
                platform=event.platform,
                tenant=event.tenant,
                subject=f"task:{event.task_id}",
                detail=audit_of_tasks(original.channel, stored.tasks),
            )
        return Reply(
            t("regenerate.queued", locale, id=event.task_id, new_id=new_id),
            task_ids=tuple(x.id or 0 for x in stored.tasks),
            duplicate=not stored.created,
            ephemeral=True,
            request_id=stored.request.id,
        )

    # -- why a 👎, and "wrong kind of task" ----------------------------------------------

    async def _why(self, event: ActionEvent, ctx: HandlerContext) -> Reply:
        """A reason picked from the 👎 menu: stored on the voter's vote; "wrong kind" goes on
        to the kinds, "other" asks for their words."""
        locale = ctx.request.locale
        if event.choice == OTHER_REASON:
            allowed = await may_explain(event.task_id, ctx)
            return Reply(
                allowed.text,
                ephemeral=True,
                ask_comment=allowed.stored,
                comment_task=event.task_id if allowed.stored else None,
            )
        explained = await explain(event.task_id, event.choice or "", ctx)
        if not explained.stored or event.choice != WRONG_KIND:
            return Reply(explained.text, ephemeral=True, update_menu=explained.stored)
        task = await self.repo.get_task(event.task_id)
        assert task is not None  # explain() found it
        return Reply(
            t("why.pick_kind", locale, id=event.task_id),
            ephemeral=True,
            update_menu=True,
            buttons=self._kinds_menu(task, locale),
        )

    def _offered_kinds(self, task: Task) -> list[str]:
        """The kinds "wrong kind of task" offers: every visible planned kind but its own."""
        return [k.name for k in self.kinds if k.planned and k.visible and k.name != task.kind]

    def _kinds_menu(self, task: Task, locale: str) -> tuple[tuple[Button, ...], ...]:
        task_id = task.id or 0
        buttons = [
            Button(self.kinds.label(name, locale), Action.replan, task_id, name)
            for name in self._offered_kinds(task)
        ]
        buttons.append(Button(t("why.not_request", locale), Action.replan, task_id, OOS))
        return _rows(buttons, 2)

    def _picked_kind(self, choice: str | None, task: Task) -> str | None:
        """The kind a menu choice names (a name, or its token when the name was too long)."""
        if choice == OOS:
            return OOS
        for name in self._offered_kinds(task):
            if choice in (name, choice_token(name)):
                return name
        return None

    async def _replan(
        self, event: ActionEvent, ctx: HandlerContext, fetch_for: FetcherFor | None
    ) -> Reply:
        """The voter says which kind they meant: record the correction and, unless it was
        not a request, plan the same words as that kind at once (a new attempt)."""
        locale = ctx.request.locale
        task = await self.repo.get_task(event.task_id)
        if task is None or task.platform != event.platform or task.tenant != event.tenant:
            return Reply(t("rate.not_found", locale, id=event.task_id), ephemeral=True)
        vote = await self.repo.vote_of(event.task_id, event.user)
        if vote is None or vote.score != -1:
            return Reply(t("why.not_voter", locale, id=event.task_id), ephemeral=True)
        kind = self._picked_kind(event.choice, task)
        if kind is None:
            return Reply(t("replan.unknown_kind", locale, id=event.task_id), ephemeral=True)
        original = await self.repo.get_request(task.request_id)
        text = request_text_of(task, original.text if original is not None else "")
        # Picking a kind says why the vote was 👎, whatever the menu showed before.
        await self.repo.set_vote_reason(task_id=event.task_id, user=event.user, reason=WRONG_KIND)
        await correct(task, kind, text, ctx, review=self.corrections_mode == "review")
        if isinstance(self.parser, ScopedParser):
            self.parser.corrections_changed()  # this process applies it from the next message
        if kind == OOS:
            return Reply(t("replan.not_request", locale), ephemeral=True, update_menu=True)
        if original is None:
            return Reply(t("regenerate.not_possible", locale, id=event.task_id), ephemeral=True)
        return await self._plan_as(kind, task, original, text, event, fetch_for)

    async def _plan_as(
        self,
        kind: str,
        task: Task,
        original: Request,
        text: str,
        event: ActionEvent,
        fetch_for: FetcherFor | None,
    ) -> Reply:
        """Plan ``text`` as ``kind``: slots extracted for that kind, the tasks linked to the
        first attempt (``retry_of``) in a request of their own, delivered like a regenerate.
        The same pick again finds that request instead of planning twice."""
        locale = original.locale
        label = self.kinds.label(kind, locale)
        request = RequestCreate(
            platform=original.platform,
            tenant=original.tenant,
            channel=original.channel,
            thread=original.thread,
            user=event.user,
            text=text,
            event_id=f"replan:{task.id}:{kind}",
            locale=locale,
            timezone=original.timezone,
            private=original.private,
            context=dict(original.context),
        )
        seen = await self.repo.find_request(
            platform=request.platform, tenant=request.tenant, event_id=request.event_id
        )
        if seen is not None:
            return await self._replanned_already(seen.id or 0, task, label, locale)
        now = datetime.now(UTC)
        ctx = HandlerContext(
            repo=self.repo,
            request=request,
            now=now,
            fetch_messages=fetch_for(original.channel, original.thread) if fetch_for else None,
            kind_label=self.kinds.label,
        )
        context = slot_extraction.SlotContext(now=now, timezone=original.timezone)
        slots, missing = slot_extraction.extract(kind, text, context)
        spec = TaskSpec(kind, slots, 1.0, (0, len(text)), (), missing)
        planned, answers = await self._plan([spec], ctx, text)
        head = t("replan.planned", locale, id=task.id, kind=label)
        if not planned:  # it needs a detail the words do not give: ask, as the router does
            return Reply("\n".join([head, *answers]), ephemeral=True, update_menu=True)
        linked = [
            replace(x, retry_of=task.id, inputs={**x.inputs, "replanned_from": task.kind})
            for x in planned
        ]
        stored = await self.repo.create_request(request=request, tasks=linked)
        if not stored.created:
            return await self._replanned_already(stored.request.id or 0, task, label, locale)
        for created in stored.tasks:
            registered = self.kinds.get(created.kind)
            if registered is not None:
                await registered.handler.after_create(created, ctx)
        ack = self._acknowledge(stored.tasks, answers, locale, stored.request.id)
        return Reply(
            "\n".join(x for x in (head, ack.text) if x),
            task_ids=ack.task_ids,
            ephemeral=True,
            update_menu=True,
            request_id=stored.request.id,
        )

    async def _replanned_already(
        self, request_id: int, task: Task, label: str, locale: str
    ) -> Reply:
        tasks = [
            x for x in await self.repo.tasks_of_request(request_id) if self.kinds.visible(x.kind)
        ]
        listed = ", ".join(f"#{x.id}" for x in tasks) or "—"
        return Reply(
            t("replan.already", locale, id=task.id, kind=label, tasks=listed),
            task_ids=tuple(x.id or 0 for x in tasks),
            duplicate=True,
            ephemeral=True,
            update_menu=True,
            request_id=request_id,
        )


#: Builds the conversation reader of a chat: (channel, thread) -> fetcher.
FetcherFor = Callable[[str, str | None], MessageFetcher]


def _rows(buttons: list[Button], per_row: int) -> tuple[tuple[Button, ...], ...]:
    return tuple(tuple(buttons[i : i + per_row]) for i in range(0, len(buttons), per_row))


def _reasons_menu(task_id: int, locale: str) -> tuple[tuple[Button, ...], ...]:
    """The "why 👎?" choices: the reasons, then "Other…" for the person's own words."""
    buttons = [
        Button(reason_label(code, locale), Action.why, task_id, code) for code in FEEDBACK_REASONS
    ]
    buttons.append(Button(t("why.other", locale), Action.why, task_id, OTHER_REASON))
    return _rows(buttons, 2)


def _question(kind: TaskKind, missing: list[str], locale: str) -> str:
    """What to ask for the first missing slot: the kind's own question, else a generic one."""
    asked = kind.question(missing[0], locale)
    if asked is not None:
        return asked
    try:
        return t(f"input.ask.{missing[0]}", locale)
    except KeyError:
        return t("input.ask.generic", locale, missing=", ".join(dict.fromkeys(missing)))
