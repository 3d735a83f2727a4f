"""Runtime configuration: plain environment variables plus the QUNYUN_CONFIG TOML file.

The TOML file is read by `load_config` and written only by `QunyunConfig.to_toml` /
`write_config`, both built from the models below so a written file loads back unchanged.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.platforms import OutboundCredentials, missing_credentials
from services.platforms.wecom.crypto import aes_key

Platform = Literal["generic", "slack", "telegram", "feishu", "onebot", "wecom"]
# The keys that make a source an outbound route; `api_base` and the rates only tune one.
OUTBOUND_KEYS = ("bot_token", "user_token", "app_id", "app_secret", "api_url", "access_token")
Scope = Literal["read", "write"]


class Source(BaseModel):
    """A webhook source: one platform integration with its verification secret.

    The outbound keys let delivery act in the source's groups; a source with none of them
    is valid (delivery answers `no_route`), one with some but not all its platform needs is
    refused at start-up naming the source and the missing keys.
    """

    # Errors name the source and the key, never echo the entry (it holds secrets).
    model_config = ConfigDict(hide_input_in_errors=True)

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    platform: Platform
    secret: str = Field(min_length=1, repr=False)
    encrypt_key: str | None = Field(default=None, repr=False)
    bot_token: str | None = Field(default=None, repr=False)
    user_token: str | None = Field(default=None, repr=False)
    app_id: str | None = None
    app_secret: str | None = Field(default=None, repr=False)
    api_url: str | None = None
    access_token: str | None = Field(default=None, repr=False)
    api_base: str | None = None
    sender: str | None = None
    rate_per_second: float | None = Field(default=None, gt=0)
    rate_per_group_per_minute: float | None = Field(default=None, gt=0)

    @property
    def outbound(self) -> OutboundCredentials:
        """The outbound credentials delivery calls the platform with."""
        return OutboundCredentials(
            bot_token=self.bot_token,
            user_token=self.user_token,
            app_id=self.app_id,
            app_secret=self.app_secret,
            api_url=self.api_url,
            access_token=self.access_token,
            api_base=self.api_base,
            sender=self.sender,
        )

    @property
    def has_outbound(self) -> bool:
        """Whether any outbound credential is configured."""
        # A WeCom source's app_id is also the corp id its callbacks are checked against.
        keys = ("app_secret",) if self.platform == "wecom" else OUTBOUND_KEYS
        return any(getattr(self, key) for key in keys)

    @model_validator(mode="after")
    def _wecom_callback_keys(self) -> Source:
        if self.platform == "wecom":
            if not self.app_id:
                raise ValueError(
                    f"source {self.id!r} (wecom) needs app_id: the corp id its callbacks carry"
                )
            try:
                aes_key(self.encrypt_key or "")
            except ValueError as exc:
                raise ValueError(
                    f"source {self.id!r} (wecom) needs encrypt_key, the callback's "
                    f"EncodingAESKey: {exc}"
                ) from None
        return self

    @model_validator(mode="after")
    def _complete_outbound(self) -> Source:
        if self.has_outbound:
            missing = missing_credentials(self.platform, self.outbound)
            if missing:
                raise ValueError(
                    f"source {self.id!r} ({self.platform}) has outbound credentials but lacks "
                    f"{', '.join(missing)}"
                )
        return self


class TokenEntry(BaseModel):
    """An API token known by the sha256 of its value, never the value itself."""

    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    groups: list[str] = Field(default_factory=lambda: ["*"])
    scopes: list[Scope] = Field(default_factory=lambda: ["read"])  # type: ignore[arg-type]


class QunyunConfig(BaseModel):
    """The contents of the QUNYUN_CONFIG TOML file."""

    model_config = ConfigDict(hide_input_in_errors=True)

    sources: list[Source] = Field(default_factory=list)
    tokens: list[TokenEntry] = Field(default_factory=list)

    def source(self, source_id: str) -> Source | None:
        """Return the source with this id, or None."""
        return next((s for s in self.sources if s.id == source_id), None)

    def secrets(self) -> list[str]:
        """Return every secret value in the config (for log redaction)."""
        values = [s.secret for s in self.sources]
        values += [s.encrypt_key for s in self.sources if s.encrypt_key]
        values += [secret for s in self.sources for secret in s.outbound.secrets()]
        return values

    def to_toml(self) -> str:
        """Return this config as QUNYUN_CONFIG TOML (empty tables and unset keys left out)."""
        data = self.model_dump(mode="json", exclude_none=True)
        return tomli_w.dumps({key: value for key, value in data.items() if value})


def write_config(path: str | Path, config: QunyunConfig, *, comment: str = "") -> Path:
    """Write a config file readable by its owner only; `comment` becomes a leading # line."""
    path = Path(path)
    header = "".join(f"# {line}\n" for line in comment.splitlines())
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(header + config.to_toml())
    return path


def load_config(path: str | Path | None) -> QunyunConfig:
    """Read and validate the TOML config file; no path means an empty config."""
    if not path:
        return QunyunConfig()
    if Path(path).is_dir():
        # Docker creates a directory for a bind mount whose host file does not exist.
        raise IsADirectoryError(
            f"QUNYUN_CONFIG {path} is a directory, not a TOML file: point it at a config file "
            "(with docker compose, set QUNYUN_CONFIG_FILE; see deploy/config.example.toml)"
        )
    with open(path, "rb") as fh:
        return QunyunConfig.model_validate(tomllib.load(fh))


class Settings(BaseSettings):
    """Every setting of every service; unknown variables are ignored."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_cluster: bool = False  # REDIS_URL names one node of a Redis Cluster
    database_url: str = "sqlite:///./var/qunyun.db"
    qunyun_timezone: str = "UTC"
    qunyun_config: str | None = None
    qunyun_cors_origins: str = ""

    topic_events: str = "community.events.v1"
    topic_moderation_actions: str = "moderation.actions.v1"
    topic_campaign_notifications: str = "campaigns.notifications.v1"
    topic_campaign_rewards: str = "campaigns.rewards.v1"
    topic_deadletter: str = "deadletter.v1"
    topic_delivery_receipts: str = "delivery.receipts.v1"

    consumer_group_prefix: str = ""

    kafka_partitions: int = Field(default=6, ge=1, le=1024)
    # Replicas of each topic `qunyun topics` / `make run` creates: 1 suits one broker (the
    # embedded Tansu, a dev Kafka); a cluster wants 3 (at most its broker count).
    kafka_replication_factor: int = Field(default=1, ge=1, le=32)
    kafka_session_timeout_ms: int = Field(default=6000, ge=1000)
    kafka_produce_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    kafka_max_poll_records: int = Field(default=500, ge=1, le=10000)
    consumer_max_retries: int = Field(default=3, ge=0, le=100)
    dedup_ttl_seconds: int = Field(default=86400, ge=60)
    run_migrations: bool = True
    metrics_history_days: int = Field(default=400, ge=31, le=5000)
    log_level: str = "INFO"
    delivery_max_attempts: int = Field(default=5, ge=1, le=100)
    # How long a claimed delivery may stay in flight before another process takes it as a
    # crash's unknown outcome: above the 10 s platform call timeout.
    delivery_lease_seconds: float = Field(default=30.0, ge=12.0, le=3600.0)
    # The console (services/console): the base URLs the operator's browser calls each REST
    # API at (empty: the console page's own host with the service's default port), and the
    # language it opens in.
    console_ingest_url: str = ""
    console_metrics_url: str = ""
    console_moderation_url: str = ""
    console_campaigns_url: str = ""
    console_delivery_url: str = ""
    console_locale: Literal["zh-CN", "en"] = "zh-CN"

    @field_validator("qunyun_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA timezone {value!r}") from exc
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.qunyun_timezone)

    @property
    def cors_origins(self) -> list[str]:
        return [o.strip() for o in self.qunyun_cors_origins.split(",") if o.strip()]

    @property
    def bootstrap_servers(self) -> list[str]:
        return [s.strip() for s in self.kafka_bootstrap_servers.split(",") if s.strip()]

    @property
    def topics(self) -> list[str]:
        return [
            self.topic_events,
            self.topic_moderation_actions,
            self.topic_campaign_notifications,
            self.topic_campaign_rewards,
            self.topic_deadletter,
            self.topic_delivery_receipts,
        ]

    def load_config(self) -> QunyunConfig:
        """Load the QUNYUN_CONFIG file these settings point at."""
        return load_config(self.qunyun_config)


@lru_cache
def get_settings() -> Settings:
    """Build the settings from the environment once per process."""
    return Settings()
