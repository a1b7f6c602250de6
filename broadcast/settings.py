"""Settings: ``BROADCAST_*`` environment variables over ``config/broadcast.toml`` over defaults.

There is no module-level instance: ``Settings()`` is built by the CLI and handed to ``create_app``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_FILE_ENV = "BROADCAST_CONFIG"
DEFAULT_CONFIG_FILE = Path("config/broadcast.toml")


def config_file() -> Path:
    return Path(os.environ.get(CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BROADCAST_", extra="ignore")

    database_url: str = "sqlite:///data/broadcast.db"
    public_url: str = "http://127.0.0.1:8000"
    areas_file: Path = Path("config/areas.toml")
    message_templates_file: Path = Path("config/templates.toml")  # the console's template library
    municipality: str = "Gemeente Mook en Middelaar"
    timezone: str = "Europe/Amsterdam"

    # Channels: which adapters may load (empty = every registered one) and their own sections.
    channels_enabled: Annotated[list[str], NoDecode] = Field(default_factory=list)
    channels: dict[str, dict[str, Any]] = Field(default_factory=dict)

    # Delivery policy. A delivery that keeps failing for a passing reason is tried until its
    # time to live (counted from when it was queued) is over, then it is dead.
    delivery_ttl_seconds: float = Field(4 * 3600.0, ge=0)
    # The lane's circuit breaker: this many channel-wide refusals in a row open it; then one
    # probe every breaker_probe_seconds (or the provider's Retry-After) until one succeeds.
    breaker_failures: int = Field(5, ge=1)
    breaker_probe_seconds: float = Field(2.0, gt=0)
    max_attempts: int = 8  # a chain of moved chats (Telegram) is followed this many times
    retry_base_seconds: float = 2.0
    retry_max_seconds: float = 900.0
    lease_seconds: float = 60.0
    safety_poll_seconds: float = 5.0
    # PostgreSQL: a paced channel (a rate or a per-target interval) is sent by one process at a
    # time, the holder of its lane lock. The others try to take it, and the owner checks that
    # its lock's connection is alive, this often.
    lane_owner_retry_seconds: float = Field(2.0, gt=0)

    # Scheduling.
    overdue_check_seconds: int = 60
    # The officers on duty are reminded this long before a promised update is due (0: never).
    promise_reminder_minutes: float = Field(10.0, ge=0)
    # Safety net for provider status callbacks filed before their send was recorded (0: off).
    receipt_sweep_seconds: int = 60

    # Media on updates (photos, short videos): where they are stored and what is accepted.
    media_dir: Path = Path("data/media")
    media_max_image_bytes: int = 10 * 1024 * 1024
    media_max_video_bytes: int = 50 * 1024 * 1024
    media_max_items: int = 4  # per update
    media_max_image_side: int = 2048  # longer side after re-encoding, in pixels
    media_max_image_pixels: int = 50_000_000  # larger images are refused before decoding
    # Decoded at once, at most (memory: up to 4 bytes each; docs/media.md). JPEG is decoded at a
    # reduced scale, below (2 × media_max_image_side)²; larger PNG and WebP are refused.
    media_max_decoded_pixels: int = 4096 * 4096

    # Request bodies: larger ones get 413 before they are read (docs/limits.md). Media uploads
    # take the media limits above plus multipart overhead.
    max_request_bytes: int = Field(512 * 1024, ge=1024)  # JSON API and forms
    max_webhook_bytes: int = Field(256 * 1024, ge=1024)  # provider callbacks, /webhooks/...

    # Feeds: sources from the settings file ([[feeds]] tables, see docs/feeds.md), and how
    # every source is fetched and watched.
    feeds: list[dict[str, Any]] = Field(default_factory=list)
    feed_timeout_seconds: float = 10.0  # connect, and between two chunks of a body
    feed_total_seconds: float = 30.0  # a whole download
    feed_max_bytes: int = 5_000_000
    feed_max_redirects: int = 5
    # The newest entries kept per poll; the rest of a huge document is left out (and said so).
    feed_max_entries: int = Field(500, ge=1)
    feed_parse_workers: int = Field(1, ge=0)  # processes that parse feeds; 0: in the poll thread
    feed_allow_private_addresses: bool = False  # true only for feeds on an intranet or loopback
    feed_concurrency: int = 4  # polls at the same time (the scheduler's feed thread pool)
    feed_jitter_seconds: float = 30.0  # at most this, and at most a fifth of the interval
    feed_min_interval_seconds: int = 60
    feed_alert_after: int = 3  # consecutive failures before officers are alerted
    feed_fresh_hours: float = 12.0  # older readings and alerts can re-arm a rule, never fire it
    feed_chart_days: float = 3.0  # the public incident page's water-level chart
    feed_user_agent: str = "broadcast-feeds/0.1 (crisis communication; municipality)"
    cap_sender: str | None = None  # CAP <sender>; default: the host of public_url

    # What one SMS segment costs, in euros (e.g. 0.075): the compose preview shows the cost of a
    # publication (segments × recipients); unset, no cost is shown.
    sms_price_per_segment: Decimal | None = Field(None, ge=0, max_digits=8, decimal_places=5)

    # Questions asked on the public site (no reply address: answered on the timeline), per hour.
    site_questions_per_client: int = Field(5, ge=1)  # from one client address
    site_questions_per_hour: int = Field(300, ge=1)  # from everyone together

    # Console logins: failures counted over 15 minutes before each new try waits longer.
    login_failures_per_account: int = Field(5, ge=1)  # one account from one client address
    login_failures_per_client: int = Field(20, ge=1)  # one client address, all accounts
    login_device_days: int = Field(90, ge=1)  # a browser that signed in is trusted this long

    # Addresses (IPs or CIDRs) of the reverse proxies whose X-Forwarded-For/-Proto are believed;
    # empty: none, the connecting address is the client's.
    forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Key of the hashes of client addresses and of signed cookies; unset: a random key made
    # once and kept in the database, which every process of the installation shares.
    secret_key: SecretStr | None = None

    # Web sign-up by SMS (double opt-in), limited against SMS pumping.
    signup_countries: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["31"])
    signup_codes_per_number: int = Field(3, ge=1)  # codes per phone number per hour
    signup_codes_per_client: int = Field(10, ge=1)  # codes per client IP address per hour
    signup_codes_per_hour: int = Field(200, ge=1)  # codes in total per hour
    signup_push_per_client: int = Field(20, ge=1)  # web push sign-ups per client IP per hour
    signup_push_per_hour: int = Field(2000, ge=1)  # web push sign-ups in total per hour
    signup_secret: SecretStr | None = None  # (older installations) else the installation key

    log_level: str = "INFO"
    log_json: bool | None = None  # None: readable lines on a terminal, JSON lines otherwise

    # A static copy of the public site (docs/deployment.md), rewritten after every change by
    # each web process; empty: none. ``broadcast publish-static DIR`` writes one on demand.
    static_dir: str = ""

    @field_validator("channels_enabled", "forwarded_allow_ips", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("signup_countries", mode="before")
    @classmethod
    def _calling_codes(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple):
            return [str(code).strip().lstrip("+") for code in value if str(code).strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file())
        return init_settings, env_settings, toml, file_secret_settings

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def channel_values(
        self, name: str, prefix: str, fields: list[str], exact: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """One adapter's settings: TOML section ``[channels.NAME]``, then ``BROADCAST_PREFIX_*``
        (or the variable ``exact`` names for a field, where the contract names one)."""
        values = dict(self.channels.get(name, {}))
        for field in fields:
            variable = (exact or {}).get(field) or f"BROADCAST_{prefix}_{field}".upper()
            env = os.environ.get(variable)
            if env is not None:
                values[field] = env
        return values


def read_toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        return tomllib.load(handle)
