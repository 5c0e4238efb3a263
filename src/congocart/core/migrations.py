"""Apply and revert the Alembic migrations in `alembic/` programmatically."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config

_ROOT = Path(__file__).resolve().parents[3]


def alembic_config(dsn: str) -> Config:
    config = Config(str(_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(_ROOT / "alembic"))
    config.attributes["dsn"] = dsn
    return config


def target_dsn(config: Config) -> str:
    dsn = config.attributes.get("dsn") or os.environ.get("DATABASE_URL")
    if not dsn:
        raise SystemExit(
            "DATABASE_URL is not set; use `congocart migrate` for the embedded database"
        )
    return str(dsn)


def sqlalchemy_url(dsn: str) -> str:
    scheme, _, rest = dsn.partition("://")
    if scheme not in ("postgres", "postgresql", "postgresql+psycopg"):
        raise SystemExit(f"unsupported database URL scheme {scheme!r}")
    return f"postgresql+psycopg://{rest}"


def upgrade(dsn: str, revision: str = "heads") -> None:
    command.upgrade(alembic_config(dsn), revision)


def downgrade(dsn: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(dsn), revision)
