"""Logging set-up: no secret reaches a log line, whoever logs it and however."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.config import Settings
from bot.logs import REDACTED, LoggingSetup, SecretFilter, configure_logging, settings_secrets
from tests.bot.running import RunningBot, bot_env, until

TOKEN = "7000001:AAFakeTelegramTokenForAtombotTests"
SIGNING = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_BOT = "xoxb-1111-2222-abcdefabcdef"

Configure = Callable[..., tuple[LoggingSetup, io.StringIO]]


@pytest.fixture
def configure() -> Iterator[Configure]:
    """configure_logging into a StringIO; the root logger is restored afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    setups: list[LoggingSetup] = []

    def _configure(level: str = "INFO", **options: object) -> tuple[LoggingSetup, io.StringIO]:
        stream = io.StringIO()
        options.setdefault("secrets", [TOKEN, SIGNING])
        setup = configure_logging(level, stream=stream, **options)  # type: ignore[arg-type]
        setups.append(setup)
        return setup, stream

    yield _configure
    for setup in setups:
        setup.close()
    for handler in saved_handlers:
        root.addHandler(handler)
    root.setLevel(saved_level)


def test_the_bot_token_in_an_httpx_request_line_is_redacted(configure: Configure) -> None:
    _, out = configure()
    url = f"http://127.0.0.1:5000/bot{TOKEN}/getMe"
    logging.getLogger("httpx").info('HTTP Request: %s %s "%s"', "POST", url, "HTTP/1.1 200 OK")
    text = out.getvalue()
    assert TOKEN not in text
    assert f"/bot{REDACTED}/getMe" in text
    assert "HTTP Request: POST" in text


def test_loggers_and_handlers_created_later_are_redacted_too(configure: Configure) -> None:
    configure()
    # A library that sets up its own logger and handler after logging was configured.
    late = logging.getLogger("some.library.created.later")
    own = io.StringIO()
    handler = logging.StreamHandler(own)
    late.addHandler(handler)
    try:
        late.warning("connecting with %s", TOKEN)
    finally:
        late.removeHandler(handler)
    assert "connecting with" in own.getvalue()
    assert TOKEN not in own.getvalue()


def test_propagated_records_are_redacted_at_the_root_handler(configure: Configure) -> None:
    _, out = configure()
    logging.getLogger("telegram.ext.Updater").error("secret is %s", SIGNING)
    assert "secret is" in out.getvalue()
    assert SIGNING not in out.getvalue()


def test_tracebacks_and_exception_messages_are_redacted(configure: Configure) -> None:
    _, out = configure()
    try:
        raise RuntimeError(f"The token `{TOKEN}` was rejected by the server.")
    except RuntimeError:
        logging.getLogger("telegram.ext.Application").exception("start failed")
    text = out.getvalue()
    assert "Traceback" in text
    assert "was rejected by the server" in text
    assert TOKEN not in text


def test_extra_attributes_are_redacted(configure: Configure) -> None:
    setup, out = configure()
    setup.handlers[0].setFormatter(logging.Formatter("%(message)s %(request_line)s"))
    logging.getLogger("aiohttp.access").info(
        "access", extra={"request_line": f"GET /bot{TOKEN}/x HTTP/1.1"}
    )
    assert "access GET /bot" in out.getvalue()
    assert TOKEN not in out.getvalue()


@pytest.mark.parametrize(
    "leak",
    [
        "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",  # another bot's token
        "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
        "xapp-1-A0123456789-1234567890123-abcdef0123456789",
        "xoxp-12345-67890-abcdef",
        "sk-proj-abcdefghijklmnop1234",
    ],
)
def test_token_shapes_are_redacted_even_when_not_configured(
    configure: Configure, leak: str
) -> None:
    _, out = configure(secrets=[])
    logging.getLogger("anything").info("value=%s;", leak)
    assert leak not in out.getvalue()
    assert f"value={REDACTED};" in out.getvalue()


def test_url_encoded_secrets_and_database_passwords_are_redacted(configure: Configure) -> None:
    _, out = configure()
    logging.getLogger("x").info("GET /webhook?t=%s", "7000001%3AAAFakeTelegramTokenForAtombotTests")
    logging.getLogger("x").info("db postgresql+psycopg://atom:hunter2pass@db:5432/atombot")
    text = out.getvalue()
    assert "AAFakeTelegramToken" not in text
    assert "hunter2pass" not in text
    assert f"postgresql+psycopg://atom:{REDACTED}@db:5432/atombot" in text


def test_records_without_secrets_keep_their_arguments() -> None:
    secret_filter = SecretFilter([TOKEN])
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s of %s", ("part", 3), None)
    secret_filter.scrub(record)
    assert record.args == ("part", 3)
    assert record.getMessage() == "part of 3"


def test_short_configured_values_are_not_redacted_literally() -> None:
    secret_filter = SecretFilter(["abc", ""])
    assert secret_filter.redact("abc def") == "abc def"


def test_settings_secrets_names_every_token_and_secret() -> None:
    settings = Settings(
        slack_bot_token=SLACK_BOT,
        slack_app_token="xapp-1-abc",
        slack_signing_secret=SIGNING,
        telegram_bot_token=TOKEN,
        telegram_webhook_secret="webhook-secret-1",
        openai_api_key="sk-local-key-123456",
        smtp_password="smtp-password-42",
    )
    assert sorted(settings_secrets(settings)) == sorted(
        [
            SLACK_BOT,
            "xapp-1-abc",
            SIGNING,
            TOKEN,
            "webhook-secret-1",
            "sk-local-key-123456",
            "smtp-password-42",
        ]
    )


def test_console_mode_shows_library_records_from_warning_and_ours_from_the_level(
    configure: Configure, tmp_path: Path
) -> None:
    log_file = tmp_path / "logs" / "atombot.log"
    _, out = configure(console_mode=True, log_file=log_file)
    logging.getLogger("httpx").info("library info")
    logging.getLogger("httpx").warning("library warning")
    logging.getLogger("bot.app").info("our info")
    assert out.getvalue().count("\n") == 2
    assert "library warning" in out.getvalue()
    assert "our info" in out.getvalue()
    assert "library info" in log_file.read_text(encoding="utf-8")


def test_an_uncaught_exception_is_printed_redacted(tmp_path: Path) -> None:
    script = (
        "from bot.logs import configure_logging\n"
        f"configure_logging('INFO', secrets=[{TOKEN!r}])\n"
        f"raise SystemError('The token `{TOKEN}` was rejected by the server.')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "SystemError: The token `[redacted]` was rejected" in done.stderr
    assert TOKEN not in done.stderr + done.stdout


# -- the real `atombot run` process, both platforms, against the fakes ---------------------

E2E_TELEGRAM_TOKEN = "7000001:AAE2eTelegramTokenNeverLogged_h12xyz"
E2E_SLACK_BOT = "xoxb-700001-800002-E2eSlackBotTokenNeverLogged"
E2E_SLACK_APP = "xapp-1-A0ATOMBOT-700003-E2eSlackAppTokenNeverLogged"
E2E_SIGNING = "e2e-signing-secret-never-logged-0a1b2c"
E2E_WEBHOOK = "e2e-webhook-secret-never-logged_3d4e5f"
SLACK_TEXT = "draft an email to Dana about the Zanzibar acquisition"
TELEGRAM_TEXT = "draft an email to Omar about the Kilimanjaro contract"
GROUP_TEXT = "the Serengeti budget is approved"


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    ("level", "transport"),
    [("INFO", "socket mode + polling"), ("DEBUG", "HTTP + webhook")],
)
async def test_a_running_bot_logs_no_token_or_secret_and_no_message_text_at_info(
    level: str,
    transport: str,
    database_url: str,
    tmp_path: Path,
    parser: object,
) -> None:
    """``atombot run`` with Slack and Telegram enabled, driven through both, then stopped."""
    import asyncio

    from tests.fakes.slack_api import FakeSlack
    from tests.fakes.telegram_api import FakeTelegram, RateLimits, free_port

    data_dir = tmp_path / "data"
    parser.save(data_dir / "intents")  # type: ignore[attr-defined]  # no retraining
    webhook = transport == "HTTP + webhook"
    async with (
        FakeSlack(
            bot_token=E2E_SLACK_BOT, app_token=E2E_SLACK_APP, signing_secret=E2E_SIGNING
        ) as slack,
        FakeTelegram(token=E2E_TELEGRAM_TOKEN, rate_limits=RateLimits.unlimited()) as telegram,
    ):
        slack_port, webhook_port = free_port(), free_port()
        env = bot_env(
            database_url,
            data_dir,
            SLACK_BOT_TOKEN=E2E_SLACK_BOT,
            SLACK_SIGNING_SECRET=E2E_SIGNING,
            SLACK_API_URL=slack.api_url,
            TELEGRAM_BOT_TOKEN=E2E_TELEGRAM_TOKEN,
            TELEGRAM_API_URL=telegram.base_url,
            ATOMBOT_OPENAI_API_KEY="sk-e2e-openai-key-never-logged-123456",
        )
        if webhook:
            env |= {
                "TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{webhook_port}/tg",
                "TELEGRAM_WEBHOOK_SECRET": E2E_WEBHOOK,
                "TELEGRAM_WEBHOOK_LISTEN": "127.0.0.1",
                "TELEGRAM_WEBHOOK_PORT": str(webhook_port),
            }
        else:
            env["SLACK_APP_TOKEN"] = E2E_SLACK_APP
        args = ["--log-level", level, "run", "--no-worker"]
        if webhook:
            args += ["--slack-port", str(slack_port)]
        bot = await RunningBot.start(args, env)
        try:
            # Telegram: a private request and a group message to keep.
            if webhook:
                await until(lambda: telegram.webhook.url, "setWebhook")
                await until(lambda: slack.calls_to("auth.test"), "auth.test")
                await asyncio.sleep(1.0)  # the Slack HTTP server listens right after auth.test
                assert (
                    await telegram.post_to_webhook(
                        telegram.message_update(TELEGRAM_TEXT), secret=E2E_WEBHOOK
                    )
                    == 200
                )
                assert (
                    await telegram.post_to_webhook(
                        telegram.message_update(GROUP_TEXT, chat_id=-100777), secret=E2E_WEBHOOK
                    )
                    == 200
                )
                assert (
                    await telegram.post_to_webhook(
                        telegram.message_update(TELEGRAM_TEXT), secret="wrong"
                    )
                    == 403
                )
                answer = await slack.post_to_app(
                    f"http://127.0.0.1:{slack_port}/slack/events",
                    slack.signed_slash_command(SLACK_TEXT),
                    within_s=30,
                )
                assert answer.status == 200
            else:
                await until(lambda: telegram.calls_to("getUpdates"), "polling")
                await telegram.private_message(TELEGRAM_TEXT)
                await telegram.group_message(GROUP_TEXT)
                await slack.wait_for_socket_connections(within_s=240)
                await slack.push_event(slack.app_mention(SLACK_TEXT))
            await until(lambda: telegram.bot_messages(1001), "the Telegram receipt")
            # The progress message opens as a chat stream where Slack allows one.
            await until(
                lambda: (
                    slack.calls_to("chat.postMessage", ok=True)
                    or slack.calls_to("chat.startStream", ok=True)
                ),
                "the Slack receipt",
            )
        finally:
            stdout, stderr = await bot.stop()
    output = stdout + stderr
    assert "HTTP Request: POST" in output, output[-3000:]  # httpx did log its request lines
    assert f"/bot{REDACTED}/" in output
    for secret in (
        E2E_TELEGRAM_TOKEN,
        E2E_TELEGRAM_TOKEN.split(":", 1)[1],
        E2E_SLACK_BOT,
        E2E_SLACK_APP,
        E2E_SIGNING,
        E2E_WEBHOOK,
        "sk-e2e-openai-key-never-logged-123456",
    ):
        assert secret not in output, f"{secret} in the {level} output"
    if level == "INFO":
        for word in ("Zanzibar", "Kilimanjaro", "Serengeti"):
            assert word not in output, f"message text {word!r} in the INFO output"
