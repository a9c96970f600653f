"""The task-kind registry: everything the system knows about a kind of task, in one place.

Built in the composition root (:func:`build_registry`) from the built-in kinds below and the
``task:`` blocks of the intents file, then handed to the router, the worker (as its prompt
builder and list of generative kinds), the renderer and delivery, the scheduler, the
atomizer (as :class:`~models.intents.spec.KindTraits`) and the adapters. Nothing else keeps
a list of kinds or checks a kind's name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from bot.texts import t
from handlers.actions import CALENDAR_INVITE, EMAIL_SEND, REPLY_POST, action_kinds
from handlers.base import Handler
from handlers.digest import (
    RECAP,
    DigestRecapHandler,
    DigestSubscribeHandler,
    DigestUnsubscribeHandler,
)
from handlers.email import EMAIL_TEMPLATE, EmailHandler
from handlers.help import HelpHandler
from handlers.reminder import ReminderHandler
from handlers.reply import ReplyHandler
from handlers.status import CancelHandler, StatusHandler
from handlers.summarize import PARTIAL, SummarizeHandler
from handlers.template import PromptTemplate, TemplateHandler
from models.generation.base import GenerationRequest
from models.intents.data import IntentsFile, IntentsFileError
from models.intents.taskblock import Localized
from storage.tables import Task

BUILT_IN = "built-in"


@dataclass(frozen=True)
class TaskKind:
    """One kind of task and what the rest of the system needs to know about it.

    ``planned``: the classifier emits it (it is an intent); internal kinds (partial
    summaries, digest recaps) are created by other code. ``generative``: the worker runs
    it; otherwise it is answered or finished at once. ``consumes``: ``none``, ``previous``
    (the earlier task of the same message) or ``thread`` (the last result in the same
    thread/chat). ``needs_input``: the router links a consumed result itself when the
    parser did not (template kinds that declare ``consumes``); built-in kinds only link
    where the atomizer says so. ``fill_slots``: the router extracts the declared ``slots``
    with the generic extractors (kinds whose parser-side extractor does not exist).
    ``max_tokens`` 0 means no generation.
    """

    name: str
    label: Localized
    handler: Handler
    planned: bool = True
    generative: bool = True
    rateable: bool = False
    regenerable: bool = False
    visible: bool = True
    in_digest: bool = True
    produces: bool = False
    consumes: str = "none"
    needs_input: bool = False
    fill_slots: bool = False
    slots: tuple[str, ...] = ()
    required: tuple[tuple[str, Localized], ...] = ()
    format: str = "plain"
    max_tokens: int = 0
    prompt: str = ""
    origin: str = BUILT_IN
    #: Action kinds that may follow a task of this kind when the request asks for them
    #: ("email Dana the outcome" after ``email.draft``), tried in order (handlers/actions.py).
    then: tuple[str, ...] = ()
    #: An action kind: prepared, approved and performed by the action runner, not the worker.
    action: bool = False

    def question(self, slot: str, locale: str) -> str | None:
        """What to ask when required ``slot`` is missing (None if it is not required)."""
        for name, question in self.required:
            if name == slot:
                return question.get(locale)
        return None

    def describe(self) -> dict[str, Any]:
        """The kind's settings as plain data (``atombot intents kinds --json``)."""
        return {
            "kind": self.name,
            "origin": self.origin,
            "label": {"en": self.label.en, "zh": self.label.zh},
            "intent": self.planned,
            "mode": "generative" if self.generative else "immediate",
            "rateable": self.rateable,
            "regenerable": self.regenerable,
            "visible": self.visible,
            "in_digest": self.in_digest,
            "produces": self.produces,
            "consumes": self.consumes,
            "slots": list(self.slots),
            "required": {s: {"en": q.en, "zh": q.zh} for s, q in self.required},
            "format": self.format,
            "max_tokens": self.max_tokens,
            "prompt": self.prompt,
            "variants": list(self.variants),
            "then": list(self.then),
            "action": self.action,
        }

    @property
    def variants(self) -> tuple[str, ...]:
        """The names of the kind's prompt variants (empty: it has one prompt)."""
        handler = self.handler
        return handler.variant_names if isinstance(handler, TemplateHandler) else ()


class KindRegistry:
    """The task kinds of one running atombot, by name.

    It is the worker's prompt builder (:meth:`build`), the atomizer's
    :class:`~models.intents.spec.KindTraits` (:meth:`produces`, :meth:`consumes`) and the
    one place the router, renderer, delivery, scheduler and adapters ask about a kind.
    Unknown kinds (rows of a kind since removed from the intents file) are shown with
    their name, hidden from nothing and offer no buttons.
    """

    def __init__(self, kinds: Iterable[TaskKind]) -> None:
        self._kinds: dict[str, TaskKind] = {}
        for kind in kinds:
            if kind.name in self._kinds:
                raise ValueError(f"task kind {kind.name!r} is registered twice")
            self._kinds[kind.name] = kind

    def __iter__(self) -> Iterator[TaskKind]:
        return iter(self._kinds.values())

    def __len__(self) -> int:
        return len(self._kinds)

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def get(self, name: str) -> TaskKind | None:
        """The kind called ``name``, if registered."""
        return self._kinds.get(name)

    def planner(self, intent: str) -> TaskKind | None:
        """The kind that plans classifier intent ``intent`` (None: no task for it)."""
        kind = self._kinds.get(intent)
        return kind if kind is not None and kind.planned else None

    @property
    def generative_kinds(self) -> tuple[str, ...]:
        """Kinds the generation worker claims."""
        return tuple(k.name for k in self if k.generative)

    @property
    def action_kinds(self) -> tuple[str, ...]:
        """Action kinds (carried out by the action runner after approval)."""
        return tuple(k.name for k in self if k.action)

    @property
    def producing_kinds(self) -> tuple[str, ...]:
        """Visible kinds whose result a later task (or a follow-up) may consume."""
        return tuple(k.name for k in self if k.produces and k.visible)

    # -- KindTraits (the atomizer) -------------------------------------------------------
    def produces(self, intent: str) -> bool:
        """Whether a task of ``intent`` yields text a later task can use."""
        kind = self._kinds.get(intent)
        return kind is not None and kind.produces

    def consumes(self, intent: str) -> bool:
        """Whether a task of ``intent`` can build on an earlier task's result."""
        kind = self._kinds.get(intent)
        return kind is not None and kind.consumes != "none"

    # -- questions the rest of the system asks -------------------------------------------
    def label(self, name: str, locale: str) -> str:
        """The human name of a kind in ``locale`` (its name when unknown)."""
        kind = self._kinds.get(name)
        return kind.label.get(locale) if kind is not None else name

    def visible(self, name: str) -> bool:
        """Whether tasks of this kind are shown (partial summaries are not)."""
        kind = self._kinds.get(name)
        return kind is None or kind.visible

    def rateable(self, name: str) -> bool:
        """Whether a finished task of this kind gets 👍/👎."""
        kind = self._kinds.get(name)
        return kind is not None and kind.rateable

    def regenerable(self, name: str) -> bool:
        """Whether a finished task of this kind offers Regenerate."""
        kind = self._kinds.get(name)
        return kind is not None and kind.regenerable

    def in_digest(self, name: str) -> bool:
        """Whether a digest lists and counts tasks of this kind."""
        kind = self._kinds.get(name)
        return kind is None or (kind.visible and kind.in_digest)

    # -- PromptBuilder (the worker) ------------------------------------------------------
    def variants(self, name: str) -> tuple[str, ...]:
        """The prompt variants the worker chooses between for kind ``name`` (may be empty)."""
        kind = self._kinds.get(name)
        return kind.variants if kind is not None and kind.generative else ()

    def build(self, task: Task, dependencies: Sequence[Task]) -> GenerationRequest:
        """The generation request of ``task``, built by its kind's handler."""
        kind = self._kinds.get(task.kind)
        if kind is None or not kind.generative:
            raise KeyError(f"no generative task kind {task.kind!r}")
        return kind.handler.prompt(task, dependencies)

    def render(self, task: Task) -> str:
        """A finished task's result as shown in the chat."""
        kind = self._kinds.get(task.kind)
        return kind.handler.render(task) if kind is not None else (task.result or "").strip()


def _label(name: str) -> Localized:
    return Localized(en=t(f"kind.{name}", "en"), zh=t(f"kind.{name}", "zh"))


def _ask(slot: str) -> tuple[str, Localized]:
    return slot, Localized(en=t(f"input.ask.{slot}", "en"), zh=t(f"input.ask.{slot}", "zh"))


def _drafted(name: str, handler: Handler, **settings: Any) -> TaskKind:
    """A built-in generative kind with a result people rate, regenerate and build on."""
    return TaskKind(
        name,
        _label(name),
        handler,
        rateable=True,
        regenerable=True,
        produces=True,
        consumes="previous",
        **settings,
    )


def _immediate(name: str, handler: Handler, **settings: Any) -> TaskKind:
    """A built-in kind answered (or finished) at once, without the GPU."""
    return TaskKind(name, _label(name), handler, generative=False, **settings)


def builtin_kinds() -> tuple[TaskKind, ...]:
    """The kinds atombot ships with, in Python (those that need code of their own)."""
    summarize = SummarizeHandler()
    return (
        _drafted(
            "email.draft",
            EmailHandler(),
            slots=("recipients", "topic", "tone", "length"),
            required=(_ask("recipients"),),
            format=EMAIL_TEMPLATE.format,
            max_tokens=EMAIL_TEMPLATE.max_tokens,
            prompt=EMAIL_TEMPLATE.text,
            then=(CALENDAR_INVITE, EMAIL_SEND),
        ),
        _drafted(
            "reply.draft",
            ReplyHandler(),
            slots=("target", "text", "instructions"),
            max_tokens=300,
            then=(REPLY_POST,),
        ),
        _drafted(
            "summarize",
            summarize,
            slots=("scope", "channel", "since", "until", "last_n", "text"),
            format="list",
            max_tokens=400,
        ),
        TaskKind(
            PARTIAL,
            _label(PARTIAL),
            summarize,
            planned=False,
            visible=False,
            format="list",
            max_tokens=250,
        ),
        TaskKind(
            RECAP,
            _label(RECAP),
            DigestRecapHandler(),
            planned=False,
            rateable=True,
            regenerable=True,
            in_digest=False,
            produces=True,
            max_tokens=400,
        ),
        _immediate(
            "reminder.create",
            ReminderHandler(),
            slots=("when", "recurrence", "what", "target"),
            required=(_ask("when"),),
        ),
        _immediate("task.status", StatusHandler(), slots=("task_ids",)),
        _immediate("task.cancel", CancelHandler(), slots=("task_ids",)),
        _immediate(
            "digest.subscribe",
            DigestSubscribeHandler(),
            slots=("cron", "timezone", "channel", "weekly"),
        ),
        _immediate("digest.unsubscribe", DigestUnsubscribeHandler(), slots=("channel",)),
        _immediate("help", HelpHandler()),
    )


def file_kinds(intents: IntentsFile) -> list[TaskKind]:
    """The kinds the intents file declares with ``task:`` blocks."""
    kinds: list[TaskKind] = []
    for intent in intents.intents:
        block = intent.task
        if block is None:
            continue
        template = PromptTemplate(
            text=block.prompt, format=block.format, max_tokens=block.max_tokens
        )
        variants = [(name, replace(template, text=text)) for name, text in block.variants]
        kinds.append(
            TaskKind(
                intent.name,
                block.label,
                TemplateHandler(intent.name, template, variants=variants, reads_conversation=True),
                rateable=True,
                regenerable=True,
                produces=block.produces,
                consumes=block.consumes,
                needs_input=block.consumes != "none",
                fill_slots=True,
                slots=intent.slots,
                required=block.required,
                format=block.format,
                max_tokens=block.max_tokens,
                prompt=block.prompt,
                origin=f"{intents.path}:{intent.line}",
                then=block.then,
            )
        )
    return kinds


def build_registry(
    intents: IntentsFile | None = None, *, actions: Sequence[str] = ()
) -> KindRegistry:
    """The built-in kinds plus those of ``intents``; a file kind may not replace a built-in.

    ``actions`` names the action kinds whose performer is available (settings exist); only
    those are registered, so no other action is ever planned or offered.
    """
    offered = action_kinds(actions)
    builtins = tuple(
        replace(k, handler=HelpHandler(tuple(a.name for a in offered))) if k.name == "help" else k
        for k in (*builtin_kinds(), *offered)
    )
    if intents is None:
        return KindRegistry(builtins)
    taken = {k.name for k in builtins}
    for intent in intents.intents:
        if intent.task is not None and intent.name in taken:
            raise IntentsFileError(
                intents.path,
                intent.line,
                f"intent {intent.name!r} is a built-in task kind; its 'task' block cannot "
                "replace it",
            )
    return KindRegistry([*builtins, *file_kinds(intents)])
