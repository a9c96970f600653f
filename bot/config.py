"""All configuration, read once from the environment in the composition root."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"


class Settings(BaseSettings):
    """atombot settings; every field maps to one environment variable (see README)."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    data_dir: Path = Field(default=Path("atombot-data"), validation_alias="ATOMBOT_DATA_DIR")

    model: str = Field(default=DEFAULT_MODEL, validation_alias="ATOMBOT_MODEL")
    generator: str = Field(default="hf", validation_alias="ATOMBOT_GENERATOR")
    openai_base_url: str | None = Field(default=None, validation_alias="ATOMBOT_OPENAI_BASE_URL")
    openai_api_key: str | None = Field(default=None, validation_alias="ATOMBOT_OPENAI_API_KEY")
    device: str | None = Field(default=None, validation_alias="ATOMBOT_DEVICE")
    max_batch: int = Field(default=16, ge=1, validation_alias="ATOMBOT_MAX_BATCH")
    #: A LoRA adapter directory (``atombot tune``'s output) for the transformers backend.
    adapter: str | None = Field(default=None, validation_alias="ATOMBOT_ADAPTER")
    # PII redaction before generation (models/generation/redact.py): "external" redacts for
    # the openai backend unless its URL is localhost/loopback, "always" for every backend.
    redact: Literal["external", "always", "off"] = Field(
        default="external", validation_alias="ATOMBOT_REDACT"
    )
    #: Operator patterns: a YAML/JSON file of ``LABEL: regex``, or that mapping as inline JSON.
    redact_patterns: str | None = Field(default=None, validation_alias="ATOMBOT_REDACT_PATTERNS")
    #: Regions whose national phone formats are redacted (``+...`` numbers always are).
    redact_regions: str = Field(default="US,CN", validation_alias="ATOMBOT_REDACT_REGIONS")

    intents: Path | None = Field(default=None, validation_alias="ATOMBOT_INTENTS")
    encoder: str | None = Field(default=None, validation_alias="ATOMBOT_ENCODER")

    slack_bot_token: str | None = Field(default=None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: str | None = Field(default=None, validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: str | None = Field(default=None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", validation_alias="SLACK_API_URL")
    slack_command: str = Field(default="/atom", validation_alias="SLACK_COMMAND")
    slack_private_results: bool = Field(default=False, validation_alias="SLACK_PRIVATE_RESULTS")
    # Many workspaces (HTTP mode): with the app's client id and secret, workspaces install
    # atombot through Slack's OAuth flow (GET SLACK_INSTALL_PATH, then SLACK_REDIRECT_URI_PATH)
    # and each one's bot token is kept in atombot's database; SLACK_BOT_TOKEN is then unused.
    slack_client_id: str | None = Field(default=None, validation_alias="SLACK_CLIENT_ID")
    slack_client_secret: str | None = Field(default=None, validation_alias="SLACK_CLIENT_SECRET")
    #: Bot scopes asked at install, comma separated (empty: those of the app manifest).
    slack_scopes: str = Field(default="", validation_alias="SLACK_SCOPES")
    slack_install_path: str = Field(default="/slack/install", validation_alias="SLACK_INSTALL_PATH")
    slack_redirect_uri_path: str = Field(
        default="/slack/oauth_redirect", validation_alias="SLACK_REDIRECT_URI_PATH"
    )
    #: The full redirect URL registered with the app (None: the one Slack has on file).
    slack_redirect_uri: str | None = Field(default=None, validation_alias="SLACK_REDIRECT_URI")
    #: On uninstall (or revoked tokens), delete everything held for that workspace too.
    uninstall_purge: bool = Field(default=False, validation_alias="ATOMBOT_UNINSTALL_PURGE")

    telegram_bot_token: str | None = Field(default=None, validation_alias="TELEGRAM_BOT_TOKEN")
    telegram_api_url: str = Field(
        default="https://api.telegram.org/bot", validation_alias="TELEGRAM_API_URL"
    )
    telegram_webhook_url: str | None = Field(default=None, validation_alias="TELEGRAM_WEBHOOK_URL")
    telegram_webhook_secret: str | None = Field(
        default=None, validation_alias="TELEGRAM_WEBHOOK_SECRET"
    )
    telegram_webhook_listen: str = Field(
        default="0.0.0.0", validation_alias="TELEGRAM_WEBHOOK_LISTEN"
    )
    telegram_webhook_port: int = Field(default=8443, validation_alias="TELEGRAM_WEBHOOK_PORT")
    telegram_allowed_chats: str | None = Field(
        default=None, validation_alias="TELEGRAM_ALLOWED_CHATS"
    )

    timezone: str = Field(default="UTC", validation_alias="ATOMBOT_TIMEZONE")
    max_input_chars: int = Field(default=20_000, ge=100, validation_alias="ATOMBOT_MAX_INPUT_CHARS")
    poll_seconds: float = Field(default=1.0, gt=0, validation_alias="ATOMBOT_POLL_SECONDS")
    lease_seconds: float = Field(default=60.0, gt=0, validation_alias="ATOMBOT_LEASE_SECONDS")
    max_attempts: int = Field(default=3, ge=1, validation_alias="ATOMBOT_MAX_ATTEMPTS")
    # Live results: stream the text as it is generated where the platform can (Slack chat
    # streams, Telegram drafts in private chats, the console); the worker stores the text so
    # far at most every STREAM_INTERVAL seconds *and* STREAM_TOKENS tokens (later of both).
    stream: bool = Field(default=True, validation_alias="ATOMBOT_STREAM")
    stream_interval: float = Field(default=0.5, ge=0, validation_alias="ATOMBOT_STREAM_INTERVAL")
    stream_tokens: int = Field(default=64, ge=1, validation_alias="ATOMBOT_STREAM_TOKENS")
    memory_days: int = Field(default=7, ge=0, validation_alias="ATOMBOT_MEMORY_DAYS")
    # Days requests, tasks, results, votes, corrections and chat memory are kept; a daily job
    # deletes what is older (and audits it). 0: kept until forgotten (chat memory still
    # follows ATOMBOT_MEMORY_DAYS): deleting data is the operator's decision, not a default.
    retention_days: int = Field(default=0, ge=0, validation_alias="ATOMBOT_RETENTION_DAYS")
    # Learning from corrections: retrain after this many new active corrections (0: only on
    # the cron), on this cron (5 fields, ATOMBOT_TIMEZONE; empty: never), and how often every
    # process looks for a promoted classifier version and new or dropped corrections.
    retrain_after: int = Field(default=50, ge=0, validation_alias="ATOMBOT_RETRAIN_AFTER")
    retrain_cron: str = Field(default="0 3 * * *", validation_alias="ATOMBOT_RETRAIN_CRON")
    reload_seconds: float = Field(default=5.0, gt=0, validation_alias="ATOMBOT_RELOAD_SECONDS")
    # Implicit feedback: a task the classifier planned that nobody corrected (no "wrong kind"
    # 👎, no re-plan) for this many hours is an accepted reading, a training example of its
    # tenant too (the newest ATOMBOT_ACCEPTED_MAX per tenant); off: corrections alone.
    learn_accepted: bool = Field(default=True, validation_alias="ATOMBOT_LEARN_ACCEPTED")
    accept_after_hours: float = Field(
        default=24.0, ge=0, validation_alias="ATOMBOT_ACCEPT_AFTER_HOURS"
    )
    accepted_max: int = Field(default=20_000, ge=0, validation_alias="ATOMBOT_ACCEPTED_MAX")
    # A "wrong kind of task" pick is a correction: a training example at once ("immediate"),
    # or stored pending until an operator approves it ("review").
    corrections_mode: Literal["immediate", "review"] = Field(
        default="immediate", validation_alias="ATOMBOT_CORRECTIONS"
    )
    #: The operations port (/metrics, /healthz, /readyz) of `run` and `worker`; 0 turns it off.
    ops_port: int = Field(default=9090, ge=0, le=65535, validation_alias="ATOMBOT_OPS_PORT")
    ops_host: str = Field(default="0.0.0.0", validation_alias="ATOMBOT_OPS_HOST")
    log_level: str = Field(
        default="INFO", validation_alias=AliasChoices("ATOMBOT_LOG_LEVEL", "LOG_LEVEL")
    )
    #: ``text`` (default) or ``json``: one JSON object per stderr line (see bot/logs.py).
    log_format: Literal["text", "json"] = Field(
        default="text", validation_alias="ATOMBOT_LOG_FORMAT"
    )
    # Outgoing email for the email.send and calendar.invite actions (off until HOST and FROM
    # are set). STARTTLS upgrades a plain connection; port 465 means TLS from the start.
    smtp_host: str | None = Field(default=None, validation_alias="ATOMBOT_SMTP_HOST")
    smtp_port: int = Field(default=587, ge=1, le=65535, validation_alias="ATOMBOT_SMTP_PORT")
    smtp_user: str | None = Field(default=None, validation_alias="ATOMBOT_SMTP_USER")
    smtp_password: str | None = Field(default=None, validation_alias="ATOMBOT_SMTP_PASSWORD")
    smtp_starttls: bool = Field(default=True, validation_alias="ATOMBOT_SMTP_STARTTLS")
    smtp_from: str | None = Field(default=None, validation_alias="ATOMBOT_SMTP_FROM")
    #: The operator's address book (YAML or CSV: name, email, aliases, chat user ids).
    address_book: Path | None = Field(default=None, validation_alias="ATOMBOT_ADDRESS_BOOK")
    #: Who may approve anyone's action besides its requester: platform user ids, comma
    #: separated (``U123`` on any platform, ``slack:U123`` on one).
    approvers: str = Field(default="", validation_alias="ATOMBOT_APPROVERS")
    #: Hours an action waits for approval before it expires.
    approval_hours: float = Field(default=24.0, gt=0, validation_alias="ATOMBOT_APPROVAL_HOURS")

    @field_validator("retrain_cron")
    @classmethod
    def _five_cron_fields(cls, value: str) -> str:
        if value.strip() and len(value.split()) != 5:
            raise ValueError("five fields are needed: minute hour day month weekday")
        return value.strip()

    @property
    def slack_oauth(self) -> bool:
        """Whether Slack runs for many workspaces (OAuth installs: client id and secret set)."""
        return bool(self.slack_client_id and self.slack_client_secret)

    @property
    def slack_enabled(self) -> bool:
        """Whether the Slack adapter runs (a bot token, or OAuth installs)."""
        return bool(self.slack_bot_token) or self.slack_oauth

    def resolved_database_url(self) -> str:
        """``DATABASE_URL``, or the embedded SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'atombot.db').as_posix()}"
