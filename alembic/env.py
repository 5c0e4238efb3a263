"""Alembic runs our hand-written SQL migrations (through psycopg, synchronously)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from congocart.core.migrations import sqlalchemy_url, target_dsn

if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run against a database")

engine = create_engine(sqlalchemy_url(target_dsn(context.config)), poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
