"""Intent handlers: one module per intent family, found through two registries."""

from __future__ import annotations

from handlers.base import Handler
from handlers.digest import DigestRecapHandler, DigestSubscribeHandler, DigestUnsubscribeHandler
from handlers.email import EmailHandler
from handlers.help import HelpHandler
from handlers.reminder import ReminderHandler
from handlers.reply import ReplyHandler
from handlers.status import CancelHandler, StatusHandler
from handlers.summarize import SummarizeHandler

ALL_HANDLERS: tuple[Handler, ...] = (
    EmailHandler(),
    ReplyHandler(),
    SummarizeHandler(),
    ReminderHandler(),
    StatusHandler(),
    CancelHandler(),
    DigestSubscribeHandler(),
    DigestUnsubscribeHandler(),
    DigestRecapHandler(),
    HelpHandler(),
)

#: Classifier intent -> the handler that plans it.
INTENT_HANDLERS: dict[str, Handler] = {i: h for h in ALL_HANDLERS for i in h.intents}
#: Task kind -> the handler that builds its prompt and renders its result.
KIND_HANDLERS: dict[str, Handler] = {k: h for h in ALL_HANDLERS for k in h.kinds}
#: Task kinds the generation worker runs.
GENERATIVE_KINDS: tuple[str, ...] = tuple(k for h in ALL_HANDLERS if h.generative for k in h.kinds)
