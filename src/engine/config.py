"""One settings object for the whole system; nothing else reads the environment."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from pathlib import Path

from pydantic import AliasChoices, BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# The twelve processes as shipped; `ecomflow init` copies them into a project directory.
PACKAGED_DEFINITIONS = Path(str(files("ecomflow").joinpath("flows.yaml")))


def default_definitions_path() -> Path:
    """Return ./flows.yaml when the working directory has one, else the packaged default."""
    local = Path("flows.yaml")
    return local if local.is_file() else PACKAGED_DEFINITIONS


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
    # Where people reach the web pages; Prefect runs link here (their instance page).
    public_url: str = "http://127.0.0.1:8000"
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
    webhook_timeout_seconds: float = 5.0
    webhook_max_attempts: int = 12
    # Breach forecast: recent throughput is measured over this many days.
    forecast_window_days: int = 7
    # How often the sweeper recomputes every open task's expected finish and at-risk flag.
    forecast_refresh_seconds: float = 60.0

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
