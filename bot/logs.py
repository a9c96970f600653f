"""Logging set-up, and the filter that keeps secrets out of every log line.

Tokens travel in places libraries log freely: python-telegram-bot puts the bot token in
every Bot API URL (``…/bot123456:ABC…/getMe``), and httpx logs each request's URL at INFO;
exception messages quote tokens too (PTB's ``InvalidToken``). :class:`SecretFilter` rewrites
a record before any handler formats it: the message with its arguments, the traceback,
the stack and string ``extra`` attributes. It redacts the configured secrets (and their
URL-encoded form) and anything shaped like a token: Telegram bot tokens and ``bot<token>``
URL segments, Slack ``xox…-`` and ``xapp-`` tokens, OpenAI-style ``sk-`` keys and the
password of a ``scheme://user:password@host`` URL.

:func:`configure_logging` installs it twice, because either alone has a gap: as a record
factory (:func:`logging.setLogRecordFactory`), which covers records of every logger,
including loggers and handlers created later, and as a filter on the handlers, which covers
``extra`` attributes (set after the factory ran) and records built without the factory.

With ``log_format="json"`` (``ATOMBOT_LOG_FORMAT=json``) every line on stderr is one JSON
object — ``ts``, ``level``, ``logger``, ``message``, and ``request_id``, ``task_id``, ``tenant``
and ``platform`` where :mod:`bot.logcontext` knows them: :class:`JsonFormatter` writes the
records, :mod:`warnings` goes through logging, progress bars are switched off, and whatever
else writes to ``sys.stderr`` (a library's own handler, a stray ``print``) is wrapped into a
JSON object by :class:`JsonLines`.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

from bot import logcontext

if TYPE_CHECKING:
    from bot.config import Settings

REDACTED = "[redacted]"
#: Shorter configured values are not redacted literally: they would mangle ordinary words.
MIN_SECRET_LENGTH = 6
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: The values of ``ATOMBOT_LOG_FORMAT``.
LOG_FORMATS = ("text", "json")
#: Environment switches that turn the progress bars of tqdm, the hub and transformers off
#: (read when those libraries create a bar or are imported, so set before loading a model).
PROGRESS_BARS_OFF = {"TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
#: The loggers of atombot's own packages (console mode shows them at the chosen level).
OWN_LOGGERS = ("atombot", "bot", "handlers", "models", "storage", "__main__")

#: Token shapes redacted even when they are not configured (another bot's token in a URL,
#: a key from a stale environment).
TOKEN_PATTERNS: tuple[re.Pattern[str], ...] = (
    # a bot<token> URL segment: /bot123456:AAE…/getMe, also URL-encoded (%3A)
    re.compile(r"(?<=/bot)\d+(?::|%3[Aa])[^/\s\"'<>?#]+"),
    # a Telegram bot token anywhere
    re.compile(r"\b\d{3,}:[A-Za-z0-9_-]{30,}"),
    # Slack bot, user and app-level tokens
    re.compile(r"\bxox[a-z]-[A-Za-z0-9-]+"),
    re.compile(r"\bxapp-[A-Za-z0-9-]+"),
    # OpenAI-style API keys
    re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"),
)
#: The password in ``postgresql://user:password@host/db`` and the like.
_URL_PASSWORD = re.compile(r"(?<=://)([^/\s:@]+):[^/\s@]+@")

# The attributes every LogRecord has; any other string attribute came from ``extra``.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}

SECRET_SETTINGS = (
    "slack_bot_token",
    "slack_app_token",
    "slack_signing_secret",
    "slack_client_secret",
    "telegram_bot_token",
    "telegram_webhook_secret",
    "openai_api_key",
    "smtp_password",
)


def settings_secrets(settings: Settings) -> list[str]:
    """The secret values configured in ``settings`` (tokens, signing/webhook secrets, keys)."""
    values = (getattr(settings, name, None) for name in SECRET_SETTINGS)
    return [v for v in values if isinstance(v, str) and v]


class SecretFilter(logging.Filter):
    """Redacts secrets from log records; never drops a record.

    Use it as a handler filter and/or through :func:`install_record_factory`. It formats
    the message with its arguments and the traceback itself, so that what a handler
    prints later is the redacted text (``args`` and ``exc_info`` are cleared).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._literal: re.Pattern[str] | None = None
        self._formatter = logging.Formatter()
        self._lock = threading.Lock()
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        """Also redact these values (too short or empty ones are ignored)."""
        with self._lock:
            for secret in secrets:
                if secret and len(secret) >= MIN_SECRET_LENGTH:
                    self._secrets.add(secret)
                    self._secrets.add(quote(secret, safe=""))
            if self._secrets:
                # Longest first, so a token is not left half-redacted by a shorter secret.
                alternatives = sorted(self._secrets, key=len, reverse=True)
                self._literal = re.compile("|".join(re.escape(s) for s in alternatives))

    def redact(self, text: str) -> str:
        """``text`` with every secret and token-shaped string replaced by ``[redacted]``."""
        if self._literal is not None:
            text = self._literal.sub(REDACTED, text)
        for pattern in TOKEN_PATTERNS:
            text = pattern.sub(REDACTED, text)
        return _URL_PASSWORD.sub(rf"\1:{REDACTED}@", text)

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; always keeps it."""
        self.scrub(record)
        return True

    def scrub(self, record: logging.LogRecord) -> None:
        """Rewrite ``record``'s message, traceback, stack and ``extra`` strings, redacted."""
        try:
            message = record.getMessage()
        except Exception:  # bad arguments: keep what can be shown, without formatting it
            message = f"{record.msg!s} {record.args!r}"
            record.msg, record.args = message, None
        redacted = self.redact(message)
        if redacted != message:
            # Unchanged records keep their arguments (some formatters read them).
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[0] is not None:
            formatted = self._formatter.formatException(record.exc_info)
            clean = self.redact(formatted)
            if clean != formatted:
                record.exc_text, record.exc_info = clean, None
        elif record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRIBUTES and isinstance(value, str):
                setattr(record, key, self.redact(value))


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line.

    Keys: ``ts`` (ISO 8601, UTC), ``level``, ``logger``, ``message``; then ``request_id``,
    ``task_id``, ``tenant`` and ``platform`` where known (from :mod:`bot.logcontext`, or the
    record's ``extra``), and ``exc`` / ``stack`` for a traceback or stack.
    """

    def format(self, record: logging.LogRecord) -> str:
        """The record as a one-line JSON object."""
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = logcontext.current()
        for name in logcontext.FIELDS:
            value = getattr(record, name, None)
            if value is None:
                value = context.get(name)
            if value is not None:
                data[name] = value
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exc"] = record.exc_text
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class JsonLines(io.TextIOBase):
    """A stand-in for ``sys.stderr`` that keeps it JSON lines: a line that is not a JSON
    object already (a library's own handler, a stray ``print``) is wrapped into one, at
    WARNING from the logger ``stderr``, redacted."""

    def __init__(self, target: IO[str], secret_filter: SecretFilter) -> None:
        super().__init__()
        self.target = target
        self._filter = secret_filter
        self._pending = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        """Buffer ``text``; write each complete line, as JSON."""
        with self._lock:
            self._pending += text
            *lines, self._pending = self._pending.split("\n")
            for line in lines:
                self._emit(line)
        return len(text)

    def flush(self) -> None:
        """Flush the target (a partial line waits for its end)."""
        self.target.flush()

    def close_pending(self) -> None:
        """Write a partial last line, if any."""
        with self._lock:
            if self._pending:
                self._emit(self._pending)
                self._pending = ""
        self.target.flush()

    def fileno(self) -> int:
        """The target's descriptor (faulthandler and subprocesses write there directly)."""
        return self.target.fileno()

    def isatty(self) -> bool:
        """Never a terminal: progress bars and colours stay off."""
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        """The target's encoding."""
        return getattr(self.target, "encoding", None) or "utf-8"

    def _emit(self, line: str) -> None:
        line = line.rstrip("\r")
        if "\r" in line:  # a progress bar redrawn in place: keep only its last state
            line = line.rsplit("\r", 1)[1]
        if not line.strip():
            return
        if not _is_json_object(line):
            line = json.dumps(
                {
                    "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "level": "WARNING",
                    "logger": "stderr",
                    "message": self._filter.redact(line),
                },
                ensure_ascii=False,
            )
        self.target.write(line + "\n")
        self.target.flush()


def _is_json_object(line: str) -> bool:
    if not line.startswith("{"):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def install_record_factory(secret_filter: SecretFilter) -> Callable[[], None]:
    """Redact every record at creation (all loggers, present and future); returns an undo."""
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        secret_filter.scrub(record)
        return record

    logging.setLogRecordFactory(factory)

    def restore() -> None:
        if logging.getLogRecordFactory() is factory:
            logging.setLogRecordFactory(previous)

    return restore


class _ConsoleLevel(logging.Filter):
    """Console mode: atombot's own records from the chosen level, libraries' from WARNING."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        own = record.name.split(".", 1)[0] in OWN_LOGGERS
        return record.levelno >= (self.level if own else max(self.level, logging.WARNING))


@dataclass
class LoggingSetup:
    """What :func:`configure_logging` installed; :meth:`close` takes it out again."""

    secret_filter: SecretFilter
    handlers: list[logging.Handler]
    _undo: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Remove the handlers, the record factory and the exception hooks."""
        root = logging.getLogger()
        for handler in self.handlers:
            root.removeHandler(handler)
            handler.close()
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


def configure_logging(
    level: str | int,
    *,
    secrets: Iterable[str] = (),
    stream: IO[str] | None = None,
    console_mode: bool = False,
    log_file: Path | None = None,
    log_format: str = "text",
) -> LoggingSetup:
    """Configure the root logger once, for the process, with secrets redacted everywhere.

    ``stream`` (default ``sys.stderr``) gets records from ``level`` up; in ``console_mode``
    other libraries' records only from WARNING up (atombot's own from ``level``). ``log_file``,
    when given, gets every record from ``level`` up. Handlers already on the root logger are
    replaced. Uncaught exceptions (``sys.excepthook``, ``threading.excepthook``) are printed
    redacted as well.

    ``log_format="json"`` writes one JSON object per line (:class:`JsonFormatter`), routes
    :mod:`warnings` through logging, switches progress bars off (:data:`PROGRESS_BARS_OFF`,
    for libraries loaded later) and, when the stream is ``sys.stderr``, wraps
    ``sys.stderr`` in :class:`JsonLines` so that nothing else writes a plain line there.
    """
    numeric = level if isinstance(level, int) else logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level: {level!r}")
    if log_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format: {log_format!r} (use one of {LOG_FORMATS})")
    as_json = log_format == "json"
    secret_filter = SecretFilter(secrets)
    formatter: logging.Formatter = JsonFormatter() if as_json else logging.Formatter(FORMAT)
    target = stream if stream is not None else sys.stderr
    undo_first: list[Callable[[], None]] = []
    if as_json:
        undo_first.append(_json_only_stderr(target, secret_filter))
    console = logging.StreamHandler(target)
    console.setFormatter(formatter)
    console.addFilter(secret_filter)
    if console_mode:
        console.addFilter(_ConsoleLevel(numeric))
    handlers: list[logging.Handler] = [console]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        to_file = logging.FileHandler(log_file, encoding="utf-8")
        to_file.setFormatter(formatter)
        to_file.addFilter(secret_filter)
        handlers.append(to_file)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(numeric)
    # Handlers libraries attached to their own loggers (and the last-resort handler).
    others = [h for logger in _all_loggers() for h in logger.handlers if h not in handlers]
    if logging.lastResort is not None:
        others.append(logging.lastResort)
    for handler in others:
        handler.addFilter(secret_filter)
    setup = LoggingSetup(secret_filter, handlers, undo_first)

    def detach() -> None:
        for handler in others:
            handler.removeFilter(secret_filter)

    setup._undo.append(detach)
    setup._undo.append(install_record_factory(secret_filter))
    setup._undo.append(_install_excepthooks(secret_filter, handlers[0]))
    return setup


def _json_only_stderr(target: IO[str], secret_filter: SecretFilter) -> Callable[[], None]:
    """Keep stderr JSON lines: warnings through logging, progress bars off, ``sys.stderr``
    wrapped (when the log goes there). Returns the undo."""
    added = [name for name in PROGRESS_BARS_OFF if name not in os.environ]
    os.environ.update({name: PROGRESS_BARS_OFF[name] for name in added})
    logging.captureWarnings(True)
    previous = sys.stderr
    wrapper: JsonLines | None = None
    if target is previous or target is sys.__stderr__:
        wrapper = JsonLines(target, secret_filter)
        sys.stderr = wrapper

    def restore() -> None:
        logging.captureWarnings(False)
        for name in added:
            os.environ.pop(name, None)
        if wrapper is not None:
            wrapper.close_pending()
            if sys.stderr is wrapper:
                sys.stderr = previous

    return restore


def _all_loggers() -> list[logging.Logger]:
    manager = logging.Logger.manager
    return [
        logging.getLogger(),
        *(x for x in manager.loggerDict.values() if isinstance(x, logging.Logger)),
    ]


def _install_excepthooks(
    secret_filter: SecretFilter, handler: logging.Handler
) -> Callable[[], None]:
    """Print uncaught exceptions redacted (PTB's ``InvalidToken`` quotes the token)."""
    previous_sys, previous_thread = sys.excepthook, threading.excepthook

    def write(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        text = "".join(traceback.format_exception(kind, value, tb))
        stream = getattr(handler, "stream", None) or sys.stderr
        if isinstance(handler.formatter, JsonFormatter):
            record = logging.LogRecord("atombot", logging.CRITICAL, "", 0, "uncaught", None, None)
            record.exc_text = text.rstrip("\n")
            text = handler.formatter.format(record) + "\n"
        stream.write(secret_filter.redact(text))
        stream.flush()

    def sys_hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        write(kind, value, tb)

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit or args.exc_value is None:
            return
        write(args.exc_type, args.exc_value, args.exc_traceback)

    sys.excepthook, threading.excepthook = sys_hook, thread_hook

    def restore() -> None:
        sys.excepthook, threading.excepthook = previous_sys, previous_thread

    return restore
