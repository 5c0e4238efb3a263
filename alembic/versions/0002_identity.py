"""Identity: users, and refresh-token families with their (hashed) tokens.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE users (
        id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        -- Stored normalised (lower-cased by the service); unique whatever the case.
        email         text NOT NULL CHECK (length(email) <= 254),
        password_hash text NOT NULL,
        full_name     text,
        roles         text[] NOT NULL DEFAULT '{customer}'
                      CHECK (cardinality(roles) > 0
                             AND roles <@ ARRAY['customer', 'staff', 'admin']::text[]),
        -- Bumped on logout, password change and role change; access tokens carry
        -- the version they were issued under and die when it moves on.
        auth_version  integer NOT NULL DEFAULT 1,
        created_at    timestamptz NOT NULL DEFAULT now(),
        updated_at    timestamptz NOT NULL DEFAULT now()
    );
    CREATE UNIQUE INDEX users_email_key ON users (lower(email));

    -- One family per login; every refresh rotates to a new token of the same
    -- family. Presenting a spent token revokes the whole family.
    CREATE TABLE refresh_token_families (
        id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        created_at     timestamptz NOT NULL DEFAULT now(),
        revoked_at     timestamptz,
        revoked_reason text
    );
    CREATE INDEX refresh_token_families_user ON refresh_token_families (user_id)
        WHERE revoked_at IS NULL;

    CREATE TABLE refresh_tokens (
        token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),  -- SHA-256
        family_id  uuid NOT NULL REFERENCES refresh_token_families (id) ON DELETE CASCADE,
        issued_at  timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        used_at    timestamptz
    );
    CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
    """)


def downgrade() -> None:
    op.execute("""
    DROP TABLE refresh_tokens;
    DROP TABLE refresh_token_families;
    DROP TABLE users;
    """)
