"""One settings object for the whole system; nothing else reads the environment."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The twelve processes as shipped; `ecomflow init` copies them into a project directory.
PACKAGED_DEFINITIONS = Path(str(files("ecomflow").joinpath("flows.yaml")))
# Which events go to which channel, as shipped.
PACKAGED_NOTIFICATIONS = Path(str(files("ecomflow").joinpath("notifications.yaml")))
ROBOT_TYPES = ("dingtalk", "wecom", "feishu")
# Fields of a channel that are secrets: they may come from ECOMFLOW_CHANNEL_SECRETS instead of the channel's entry.
CHANNEL_SECRET_FIELDS = ("webhook", "secret", "password")


def default_definitions_path() -> Path:
    """Return ./flows.yaml when the working directory has one, else the packaged default."""
    local = Path("flows.yaml")
    return local if local.is_file() else PACKAGED_DEFINITIONS


def default_notifications_path() -> Path:
    """Return ./notifications.yaml when the working directory has one, else the packaged default."""
    local = Path("notifications.yaml")
    return local if local.is_file() else PACKAGED_NOTIFICATIONS


class ChannelConfig(BaseModel):
    """Where notifications go: a group's DingTalk, WeCom or Feishu robot, or an SMTP server (STARTTLS)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    type: Literal["dingtalk", "wecom", "feishu", "email"]
    # A robot's webhook URL as its settings page shows it: it holds the robot's credential (token or key).
    webhook: SecretStr | None = None
    # The signing secret of a DingTalk (加签, SEC...) or Feishu (签名校验) robot.
    secret: SecretStr | None = None
    host: str | None = None
    port: int = 587
    username: str | None = None
    password: SecretStr | None = None
    sender: str | None = None
    # Addresses that get every email of this channel (a team mailbox), besides the people an event names.
    to: list[str] = []
    # A CA bundle to verify the SMTP server's certificate with, when it is not signed by a public CA.
    ca_file: Path | None = None

    @model_validator(mode="after")
    def _check_fields_of_type(self) -> Self:
        if self.type in ROBOT_TYPES and self.webhook is None:
            raise ValueError(f"channel {self.name}: a {self.type} robot needs its webhook URL")
        if self.type == "email" and not (self.host and self.sender):
            raise ValueError(f"channel {self.name}: email needs host and sender")
        return self


def read_channels_file(path: Path) -> list[dict[str, Any]]:
    """Return the channel entries of a YAML (or JSON) file: a list, or a mapping of name to entry."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if isinstance(raw, dict):
        raw = [{"name": name, **(entry or {})} for name, entry in raw.items()]
    if not isinstance(raw, list) or not all(isinstance(entry, dict) for entry in raw):
        raise ValueError(f"{path}: expected a list of channels or a mapping of channel name to its settings")
    return raw


class WebhookEndpoint(BaseModel):
    """A receiver of notifications: its URL, the HMAC secret and the events it wants ("*" = all)."""

    name: str
    url: str
    secret: SecretStr
    events: list[str] = ["*"]


class Settings(BaseSettings):
    """Configuration read from ECOMFLOW_* environment variables."""

    model_config = SettingsConfigDict(env_prefix="ECOMFLOW_", extra="ignore")

    data_dir: Path = Path(".ecomflow")
    database_url: str | None = None
    definitions_path: Path = Field(default_factory=default_definitions_path)
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    prefect_port: int = 4200
    # An external Prefect server; when unset `ecomflow up` starts one on SQLite.
    prefect_api_url: str | None = Field(
        default=None, validation_alias=AliasChoices("ECOMFLOW_PREFECT_API_URL", "PREFECT_API_URL")
    )
    prefect_ui_url: str | None = None
    worker_concurrency: int = 8
    worker_poll_seconds: float = 1.0
    dispatcher_poll_seconds: float = 0.5
    sweeper_poll_seconds: float = 5.0
    outbox_lease_seconds: float = 30.0
    # A worker renews its flow-run leases every third of this; a run unrenewed this long is recovered.
    run_lease_seconds: float = 30.0
    # A run taken this many times without reaching a wait or an end is marked Crashed.
    max_run_takes: int = 3
    # A flow run that raises is retried this often, this far apart, before it is failed (bench/chaos.py).
    flow_retries: int = 6
    flow_retry_delay_seconds: float = 5.0
    # Suspends must never time out on their own: business waits are ours to manage.
    suspend_timeout_seconds: int = 10 * 365 * 24 * 3600
    max_request_bytes: int = 1_000_000
    # Uploads (POST /attachments) stream past max_request_bytes up to this; a form field may allow less.
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    # Images with more pixels are refused before decoding (a "decompression bomb" declares huge dimensions).
    max_image_pixels: int = Field(default=60_000_000, gt=0)
    # Images decoded at once per process (each holds megabytes): more would only queue for the CPU anyway.
    image_decode_concurrency: int = Field(default=2, gt=0)
    # Where attachments live: unset = a content-addressed directory in the data dir; s3://bucket/prefix = S3.
    storage_url: str | None = None
    # For an S3-compatible store; unset values come from the standard AWS_* variables and files, as boto3 reads them.
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    # An upload that no completed task references is deleted after this long.
    upload_retention_hours: float = Field(default=24, gt=0)
    # How often the sweeper looks for such uploads (each look reads every upload older than the retention).
    upload_sweep_seconds: float = Field(default=600, gt=0)
    # Signs the web pages' session cookies; set the same value on every API replica (else a per-machine key file).
    web_secret: SecretStr | None = None
    # Web sessions end after this long without a page request, and after the lifetime whatever happens.
    web_session_idle_minutes: int = Field(default=60, gt=0)
    web_session_lifetime_hours: int = Field(default=12, gt=0)
    # A session's last-seen time is written at most this often: one small write a minute, not one per page.
    web_session_touch_seconds: int = Field(default=60, ge=0)
    # Sign-in: this many failures within the window lock the name typed (or the client address) for lock_minutes.
    sign_in_window_minutes: int = Field(default=15, gt=0)
    sign_in_lock_minutes: int = Field(default=15, gt=0)
    sign_in_max_failures_per_name: int = Field(default=5, gt=0)
    sign_in_max_failures_per_address: int = Field(default=20, gt=0)
    # JSON list of {name, url, secret, events}, e.g. ECOMFLOW_WEBHOOKS='[{"name": "im", ...}]'.
    webhooks: list[WebhookEndpoint] = []
    # The pushed feed (POST /inbound/{source}/events): one HMAC secret per source, e.g.
    # ECOMFLOW_INBOUND_SECRETS='{"erp": "..."}'; a source without a secret is refused.
    inbound_secrets: dict[str, SecretStr] = {}
    # A pushed request signed further than this from the server's clock is refused (replays).
    inbound_window_seconds: int = Field(default=300, gt=0)
    webhook_timeout_seconds: float = 5.0
    webhook_max_attempts: int = 12
    # Notification channels: ECOMFLOW_CHANNELS (JSON list) and/or a file of them, ECOMFLOW_CHANNELS_FILE (YAML).
    channels: list[ChannelConfig] = []
    channels_file: Path | None = None
    # Secrets per channel kept apart from the file, e.g. {"team-dingtalk": {"webhook": "...", "secret": "SEC..."}}.
    channel_secrets: dict[str, dict[str, SecretStr]] = {}
    channel_max_attempts: int = Field(default=12, gt=0)
    channel_timeout_seconds: float = 5.0
    # Routing of events to channels (see notifications.yaml).
    notifications_path: Path = Field(default_factory=default_notifications_path)
    # The address people open the web pages at: messages link to tasks there, Prefect runs to their instance page.
    public_url: str | None = None
    # Breach forecast: recent throughput is measured over this many days.
    forecast_window_days: int = 7
    # How often the sweeper recomputes every open task's expected finish and at-risk flag.
    forecast_refresh_seconds: float = 60.0

    @model_validator(mode="before")
    @classmethod
    def _merge_channel_sources(cls, values: Any) -> Any:
        """Add the channels file's entries and the separately kept secrets to the channels."""
        if not isinstance(values, dict):
            return values
        entries = [dict(entry) if isinstance(entry, dict) else entry for entry in values.get("channels") or []]
        path = values.get("channels_file")
        if path:
            entries += read_channels_file(Path(path))
        names = [entry.get("name") for entry in entries if isinstance(entry, dict)]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"channels: {', '.join(duplicates)} configured more than once")
        secrets = values.get("channel_secrets") or {}
        if isinstance(secrets, str):
            return values  # left to field validation, which names the error
        unknown = sorted(set(secrets) - set(names))
        if unknown:
            raise ValueError(f"channel_secrets: no channel named {', '.join(unknown)}")
        for entry in entries:
            kept = secrets.get(entry.get("name"), {}) if isinstance(entry, dict) else {}
            extra = sorted(set(kept) - set(CHANNEL_SECRET_FIELDS))
            if extra:
                raise ValueError(
                    f"channel_secrets.{entry['name']}: only {', '.join(CHANNEL_SECRET_FIELDS)}, not {extra}"
                )
            entry.update(kept)
        values["channels"] = entries
        return values

    def channel(self, name: str) -> ChannelConfig | None:
        """Return the configured channel of that name, if it is still configured."""
        return next((channel for channel in self.channels if channel.name == name), None)

    @property
    def resolved_public_url(self) -> str:
        """Return the base URL of the web pages for links in messages, defaulting to the API's own address."""
        return (self.public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    @property
    def resolved_database_url(self) -> str:
        """Return the database URL, defaulting to a SQLite file in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'ecomflow.db').resolve()}"

    @property
    def resolved_prefect_api_url(self) -> str:
        """Return the Prefect API URL, defaulting to the embedded server's."""
        return self.prefect_api_url or f"http://127.0.0.1:{self.prefect_port}/api"

    @property
    def resolved_prefect_ui_url(self) -> str:
        """Return the base URL of the Prefect UI."""
        if self.prefect_ui_url:
            return self.prefect_ui_url.rstrip("/")
        return self.resolved_prefect_api_url.removesuffix("/api")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once."""
    return Settings()
