"""``atombot doctor``: check the configuration and the connections, and say in plain words
what is wrong and how to fix it.

Each check gives :class:`Finding` lines: ``ok``, ``warn`` (works, but worth knowing),
``fail`` (atombot would not work this way; the line says the fix) or ``skip`` (not
configured). :func:`diagnose` runs them all; nothing is changed (no migration, no webhook
set): it only reads and connects.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import aiohttp

from bot.config import Settings
from bot.logs import SecretFilter, settings_secrets
from bot.texts import t

Status = Literal["ok", "warn", "fail", "skip"]
MARKS: dict[Status, str] = {"ok": "✔", "warn": "!", "fail": "✘", "skip": "–"}
#: Seconds one connection check may take.
TIMEOUT = 5.0
#: The Slack HTTP endpoint's port when ``--slack-port`` is not given (as in the adapter).
SLACK_DEFAULT_PORT = 3000
_WEBHOOK_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_REVISION = re.compile(r"^(down_)?revision\s*(?::[^=]*)?=\s*(.+)$", re.MULTILINE)

T = TypeVar("T")


@dataclass(frozen=True)
class Finding:
    """One line of the doctor's report."""

    check: str
    status: Status
    message: str
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """As JSON-ready data."""
        return asdict(self)


class Doctor:
    """The checks for one configuration, with texts in ``locale``."""

    def __init__(
        self, settings: Settings, *, locale: str = "en", slack_port: int | None = None
    ) -> None:
        self.settings = settings
        self.locale = locale
        self.slack_port = slack_port
        self._redact = SecretFilter(settings_secrets(settings)).redact

    def _found(
        self, check: str, status: Status, key: str, *, fix: str | None = None, **values: Any
    ) -> Finding:
        message = self._redact(t(key, self.locale, **values))
        fix_text = None
        if status in ("fail", "warn"):
            fix_key = fix or f"{key}.fix"
            fix_text = self._redact(t(fix_key, self.locale, **values))
        return Finding(check, status, message, fix_text)

    async def diagnose(self) -> list[Finding]:
        """Every check, in the order they are shown."""
        findings = [await self.database()]
        findings += await self.slack()
        findings += await self.telegram()
        findings.append(await self.model())
        findings += self.ports()
        return findings

    # --- database -----------------------------------------------------------------------

    async def database(self) -> Finding:
        """The database answers and its schema is at the newest migration."""
        from storage.migrate import MIGRATIONS_DIR, current_revision

        url = self.settings.resolved_database_url()
        shown = self._redact(url)
        path = _sqlite_path(url)
        if path is not None and path != ":memory:" and not await asyncio.to_thread(_exists, path):
            return self._found("database", "ok", "doctor.database.new", path=path)
        try:
            current = await _in_thread(lambda: current_revision(url), TIMEOUT)
        except Exception as exc:
            return self._found(
                "database", "fail", "doctor.database.unreachable", url=shown, reason=_reason(exc)
            )
        head = head_revision(MIGRATIONS_DIR / "versions")
        if head is not None and current != head:
            return self._found(
                "database", "fail", "doctor.database.behind", current=current or "-", head=head
            )
        return self._found("database", "ok", "doctor.database.ok", url=shown, revision=current)

    # --- Slack ----------------------------------------------------------------------------

    async def slack(self) -> list[Finding]:
        """The bot token, its scopes against the manifest, and the mode's secret or token."""
        s = self.settings
        if s.slack_oauth:
            return self._slack_oauth()
        if not s.slack_bot_token:
            return [self._found("slack", "skip", "doctor.slack.off")]
        from bot.adapters.slack.checks import check_app_token, check_token
        from bot.adapters.slack.manifest import BOT_SCOPES

        findings: list[Finding] = []
        if s.slack_app_token:
            app = await check_app_token(s.slack_app_token, api_url=s.slack_api_url)
            if app.unreachable is None:
                findings.append(
                    self._found("slack.app_token", "ok", "doctor.slack.app_token_ok")
                    if app.ok
                    else self._found(
                        "slack.app_token", "fail", "doctor.slack.app_token_bad", error=app.error
                    )
                )
        elif s.slack_signing_secret:
            findings.append(self._found("slack.signing_secret", "ok", "doctor.slack.signing_ok"))
        else:
            findings.append(
                self._found("slack.signing_secret", "fail", "doctor.slack.signing_missing")
            )
        auth = await check_token(s.slack_bot_token, api_url=s.slack_api_url, timeout=TIMEOUT)
        if auth.unreachable is not None:
            findings.insert(
                0,
                self._found(
                    "slack.token",
                    "fail",
                    "doctor.slack.unreachable",
                    url=s.slack_api_url,
                    reason=auth.unreachable,
                ),
            )
            return findings
        if not auth.ok:
            findings.insert(
                0, self._found("slack.token", "fail", "doctor.slack.token_bad", error=auth.error)
            )
            return findings
        findings.insert(
            0, self._found("slack.token", "ok", "doctor.slack.token_ok", team=auth.team)
        )
        if auth.scopes is None:
            findings.insert(1, self._found("slack.scopes", "warn", "doctor.slack.scopes_unknown"))
        else:
            missing = [x for x in BOT_SCOPES if x not in auth.scopes]
            findings.insert(
                1,
                self._found(
                    "slack.scopes", "fail", "doctor.slack.scopes_missing", scopes=", ".join(missing)
                )
                if missing
                else self._found("slack.scopes", "ok", "doctor.slack.scopes_ok"),
            )
        return findings

    def _slack_oauth(self) -> list[Finding]:
        """Many workspaces (OAuth installs): HTTP mode with the signing secret; each
        workspace's token is checked by Slack at install, not here."""
        s = self.settings
        if s.slack_app_token:
            return [self._found("slack.oauth", "fail", "doctor.slack.oauth_socket")]
        findings = [
            self._found("slack.oauth", "ok", "doctor.slack.oauth_ok", path=s.slack_install_path)
        ]
        if s.slack_signing_secret:
            findings.append(self._found("slack.signing_secret", "ok", "doctor.slack.signing_ok"))
        else:
            findings.append(
                self._found("slack.signing_secret", "fail", "doctor.slack.signing_missing")
            )
        return findings

    # --- Telegram -------------------------------------------------------------------------

    async def telegram(self) -> list[Finding]:
        """The bot token (getMe) and the webhook settings (getWebhookInfo)."""
        s = self.settings
        if not s.telegram_bot_token:
            return [self._found("telegram", "skip", "doctor.telegram.off")]
        from bot.adapters.telegram.checks import check_bot

        findings: list[Finding] = []
        status = await check_bot(s.telegram_bot_token, api_url=s.telegram_api_url, timeout=TIMEOUT)
        api = s.telegram_api_url
        if status.unreachable is not None:
            findings.append(
                self._found(
                    "telegram.token",
                    "fail",
                    "doctor.telegram.unreachable",
                    url=api,
                    reason=status.unreachable,
                )
            )
        elif not status.ok:
            findings.append(
                self._found(
                    "telegram.token", "fail", "doctor.telegram.token_bad", error=status.error
                )
            )
        else:
            findings.append(
                self._found(
                    "telegram.token", "ok", "doctor.telegram.token_ok", username=status.username
                )
            )
        url = s.telegram_webhook_url
        if not url:
            findings.append(self._found("telegram.webhook", "ok", "doctor.telegram.polling"))
            return findings
        if not url.startswith("https://"):
            findings.append(
                self._found(
                    "telegram.webhook", "fail", "doctor.telegram.webhook_not_https", url=url
                )
            )
        if not s.telegram_webhook_secret:
            findings.append(
                self._found("telegram.webhook", "fail", "doctor.telegram.webhook_no_secret")
            )
        elif not _WEBHOOK_SECRET.match(s.telegram_webhook_secret):
            findings.append(
                self._found(
                    "telegram.webhook",
                    "fail",
                    "doctor.telegram.webhook_bad_secret",
                    fix="doctor.telegram.webhook_no_secret.fix",
                )
            )
        if status.ok and status.webhook_url == url and status.webhook_error:
            findings.append(
                self._found(
                    "telegram.webhook",
                    "warn",
                    "doctor.telegram.webhook_failing",
                    url=url,
                    error=status.webhook_error,
                )
            )
        if not any(f.check == "telegram.webhook" for f in findings):
            findings.append(
                self._found("telegram.webhook", "ok", "doctor.telegram.webhook_ok", url=url)
            )
        return findings

    # --- model ----------------------------------------------------------------------------

    async def model(self) -> Finding:
        """The model directory exists, or the OpenAI-compatible endpoint answers."""
        s = self.settings
        if s.generator == "openai":
            if not s.openai_base_url:
                return self._found("model", "fail", "doctor.model.endpoint_missing")
            base = s.openai_base_url.rstrip("/")
            reason = await _endpoint_problem(base, s.openai_api_key)
            if reason is not None:
                return self._found(
                    "model", "fail", "doctor.model.endpoint_down", url=base, reason=reason
                )
            return self._found("model", "ok", "doctor.model.endpoint_ok", url=base)
        if s.generator != "hf":
            return self._found("model", "fail", "doctor.model.bad_generator", kind=s.generator)
        from models.generation.loading import hub_offline_env, is_local

        if is_local(s.model):
            problem = await asyncio.to_thread(_model_dir_problem, s.model)
            if problem == "missing":
                return self._found("model", "fail", "doctor.model.path_missing", path=s.model)
            if problem == "incomplete":
                return self._found(
                    "model",
                    "fail",
                    "doctor.model.path_incomplete",
                    path=s.model,
                    fix="doctor.model.path_missing.fix",
                )
            return self._found("model", "ok", "doctor.model.path_ok", path=s.model)
        if hub_offline_env():
            return self._found("model", "warn", "doctor.model.hub_offline", model=s.model)
        return self._found("model", "ok", "doctor.model.hub", model=s.model)

    # --- ports ----------------------------------------------------------------------------

    def ports(self) -> list[Finding]:
        """The ports the configured modes would listen on are free."""
        s = self.settings
        wanted: list[tuple[str, str, int, str]] = []
        if s.slack_enabled and not s.slack_app_token:
            port = self.slack_port if self.slack_port is not None else SLACK_DEFAULT_PORT
            wanted.append(("doctor.port.slack", "0.0.0.0", port, "atombot run --slack-port"))
        if s.telegram_bot_token and s.telegram_webhook_url:
            wanted.append(
                (
                    "doctor.port.telegram",
                    s.telegram_webhook_listen,
                    s.telegram_webhook_port,
                    "TELEGRAM_WEBHOOK_PORT",
                )
            )
        if s.ops_port:
            wanted.append(("doctor.port.ops", s.ops_host, s.ops_port, "ATOMBOT_OPS_PORT"))
        findings = []
        for what_key, host, port, setting in wanted:
            what = t(what_key, self.locale)
            reason = port_problem(host, port)
            if reason is None:
                findings.append(self._found("port", "ok", "doctor.port.ok", what=what, port=port))
            else:
                findings.append(
                    self._found(
                        "port",
                        "fail",
                        "doctor.port.busy",
                        what=what,
                        host=host,
                        port=port,
                        reason=reason,
                        setting=setting,
                    )
                )
        return findings


def report(findings: list[Finding], locale: str = "en") -> str:
    """The findings as the lines a person reads (fixes indented under their problem)."""
    lines = [t("doctor.header", locale)]
    for finding in findings:
        lines.append(f"{MARKS[finding.status]} {finding.message}")
        if finding.fix:
            lines.append("    " + t("doctor.fix", locale, fix=finding.fix))
    failed = sum(1 for f in findings if f.status == "fail")
    counted = sum(1 for f in findings if f.status != "skip")
    lines.append(
        t("doctor.summary.failed", locale, failed=failed, n=counted)
        if failed
        else t("doctor.summary.ok", locale, n=counted)
    )
    return "\n".join(lines)


def port_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on now, or None when it is free."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def head_revision(versions: Path) -> str | None:
    """The newest migration's revision: the one no other script names as its parent."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in versions.glob("*.py"):
        for down, value in _REVISION.findall(script.read_text(encoding="utf-8")):
            names = set(re.findall(r"['\"]([^'\"]+)['\"]", value))
            (parents if down else revisions).update(names)
    heads = sorted(revisions - parents)
    return heads[0] if len(heads) == 1 else None


def _exists(path: str) -> bool:
    return Path(path).exists()


def _model_dir_problem(model: str) -> str | None:
    path = Path(model).expanduser()
    if not path.is_dir():
        return "missing"
    return None if (path / "config.json").is_file() else "incomplete"


def _sqlite_path(url: str) -> str | None:
    if not url.startswith("sqlite"):
        return None
    _, _, rest = url.partition(":///")
    return rest.split("?", 1)[0] or ":memory:"


def _reason(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    first = (str(original).strip().splitlines() or [type(original).__name__])[0]
    return first[:200] or type(original).__name__


async def _in_thread(call: Callable[[], T], timeout: float) -> T:
    """``call()`` in a daemon thread, given up after ``timeout`` (a hung connect must not
    keep the process from exiting, as a thread of the default executor would)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def run() -> None:
        try:
            result = call()
        except BaseException as exc:  # handed to the waiting coroutine
            loop.call_soon_threadsafe(_settle, future, None, exc)
        else:
            loop.call_soon_threadsafe(_settle, future, result, None)

    threading.Thread(target=run, name="doctor-check", daemon=True).start()
    return await asyncio.wait_for(future, timeout)


def _settle(future: asyncio.Future[T], result: T | None, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)  # type: ignore[arg-type]


async def _endpoint_problem(base: str, api_key: str | None) -> str | None:
    """Why ``GET {base}/models`` failed, or None when the server answered it."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as session,
            session.get(f"{base}/models", headers=headers) as response,
        ):
            if response.status >= 400:
                return f"HTTP {response.status}"
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"[:200] if str(exc) else type(exc).__name__
    return None
