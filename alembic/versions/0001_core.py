"""Core: the outbox (background jobs) and idempotency keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE jobs (
        id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        kind         text NOT NULL,
        payload      jsonb NOT NULL DEFAULT '{}',
        status       text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'running', 'done', 'dead')),
        run_at       timestamptz NOT NULL DEFAULT now(),
        attempts     integer NOT NULL DEFAULT 0,
        max_attempts integer NOT NULL DEFAULT 10 CHECK (max_attempts > 0),
        locked_until timestamptz,
        locked_by    text,
        last_error   text,
        -- Periodic jobs use a key per schedule slot so each slot runs once.
        dedupe_key   text UNIQUE,
        created_at   timestamptz NOT NULL DEFAULT now(),
        updated_at   timestamptz NOT NULL DEFAULT now(),
        finished_at  timestamptz
    );
    CREATE INDEX jobs_due ON jobs (run_at) WHERE status IN ('pending', 'running');
    CREATE INDEX jobs_dead ON jobs (updated_at) WHERE status = 'dead';

    CREATE TABLE idempotency_keys (
        scope           text NOT NULL,
        key             text NOT NULL,
        request_hash    bytea NOT NULL,
        status          text NOT NULL CHECK (status IN ('in_flight', 'done')),
        response_status integer,
        response_body   jsonb,
        locked_until    timestamptz,
        created_at      timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (scope, key)
    );
    CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
    """)


def downgrade() -> None:
    op.execute("DROP TABLE idempotency_keys; DROP TABLE jobs;")
