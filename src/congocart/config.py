"""Settings, read from the environment once at start-up and validated there.

Everything is prefixed `CONGOCART_` except the conventional `DATABASE_URL`,
`DATABASE_READ_URL` and `REDIS_URL`. With nothing set the service runs
self-contained: embedded PostgreSQL, in-process cache and limits, generated
keys, all under `CONGOCART_HOME` (default `.congocart/`).
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_TAX_RATES = {
    "US": "0.0725",
    "CA": "0.13",
    "GB": "0.20",
    "DE": "0.19",
    "FR": "0.20",
    "*": "0",
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONGOCART_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    home: Path = Path(".congocart")

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "CONGOCART_DATABASE_URL")
    )
    database_read_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_READ_URL", "CONGOCART_DATABASE_READ_URL"),
    )
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "CONGOCART_REDIS_URL")
    )
    db_pool_min: int = Field(default=2, ge=1)
    db_pool_max: int = Field(default=20, ge=1)

    # Tokens. Keys are PEM-encoded Ed25519 private keys; the first signs, all verify.
    jwt_private_key: str | None = None
    jwt_private_key_file: Path | None = None
    jwt_issuer: str = "congocart"
    jwt_audience: str = "congocart-api"
    # Argon2id cost; tests lower the memory to stay fast, production keeps the default.
    password_hash_memory_kib: int = Field(default=65536, ge=8)
    password_hash_time_cost: int = Field(default=3, ge=1)
    access_token_ttl_seconds: int = Field(default=600, ge=60, le=900)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=3600)

    # The shop's currency: every price, cart and order is in it.
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    # Open guest carts untouched this long become `expired` (an hourly sweep).
    guest_cart_ttl_days: int = Field(default=30, ge=1)

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    log_json: bool | None = None
    log_level: str = "INFO"

    rate_limit_enabled: bool = True
    rate_limit_per_minute_ip: int = Field(default=600, ge=1)
    rate_limit_per_minute_user: int = Field(default=1200, ge=1)
    rate_limit_login_failures: int = Field(default=10, ge=1)
    rate_limit_login_window_seconds: int = Field(default=900, ge=1)
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    tax_rates: Annotated[dict[str, Decimal], NoDecode] = Field(
        default_factory=lambda: {k: Decimal(v) for k, v in DEFAULT_TAX_RATES.items()}
    )

    # Outbound webhooks to loopback/private addresses: refused in production unless
    # set to false here; allowed elsewhere (tests deliver to 127.0.0.1) unless true.
    webhook_block_private_targets: bool | None = None

    seed_demo: bool | None = None
    run_worker_in_process: bool | None = None
    # Without REDIS_URL, cache in this process; `serve --workers N` (N > 1) turns
    # it off, since processes cannot see each other's invalidations.
    in_process_cache: bool = True

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("tax_rates", mode="before")
    @classmethod
    def _parse_tax_rates(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError("CONGOCART_TAX_RATES must be a JSON object") from exc
        if not isinstance(value, dict):
            raise ValueError("tax rates must be an object of country code to rate")
        rates: dict[str, Decimal] = {}
        for country, rate in value.items():
            try:
                parsed = Decimal(str(rate))
            except InvalidOperation as exc:
                raise ValueError(f"tax rate for {country!r} is not a decimal") from exc
            if not Decimal(0) <= parsed < Decimal(1):
                raise ValueError(f"tax rate for {country!r} must be in [0, 1)")
            rates[str(country).upper()] = parsed
        rates.setdefault("*", Decimal(0))
        return rates

    @property
    def blocks_private_webhook_targets(self) -> bool:
        if self.webhook_block_private_targets is not None:
            return self.webhook_block_private_targets
        return self.env == "production"

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None


@lru_cache
def get_settings() -> Settings:
    return Settings()
