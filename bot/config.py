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

    intents: Path | None = Field(default=None, validation_alias="ATOMBOT_INTENTS")
    encoder: str | None = Field(default=None, validation_alias="ATOMBOT_ENCODER")

    slack_bot_token: str | None = Field(default=None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: str | None = Field(default=None, validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: str | None = Field(default=None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", validation_alias="SLACK_API_URL")
    slack_command: str = Field(default="/atom", validation_alias="SLACK_COMMAND")
    slack_private_results: bool = Field(default=False, validation_alias="SLACK_PRIVATE_RESULTS")

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
    memory_days: int = Field(default=7, ge=0, validation_alias="ATOMBOT_MEMORY_DAYS")
    # Learning from corrections: retrain after this many new active corrections (0: only on
    # the cron), on this cron (5 fields, ATOMBOT_TIMEZONE; empty: never), and how often every
    # process looks for a promoted classifier version and new or dropped corrections.
    retrain_after: int = Field(default=50, ge=0, validation_alias="ATOMBOT_RETRAIN_AFTER")
    retrain_cron: str = Field(default="0 3 * * *", validation_alias="ATOMBOT_RETRAIN_CRON")
    reload_seconds: float = Field(default=5.0, gt=0, validation_alias="ATOMBOT_RELOAD_SECONDS")
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

    @field_validator("retrain_cron")
    @classmethod
    def _five_cron_fields(cls, value: str) -> str:
        if value.strip() and len(value.split()) != 5:
            raise ValueError("five fields are needed: minute hour day month weekday")
        return value.strip()

    def resolved_database_url(self) -> str:
        """``DATABASE_URL``, or the embedded SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'atombot.db').as_posix()}"
