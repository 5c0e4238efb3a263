"""Identity's SQL: users, refresh-token families and tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from congocart.core.db import Connection
from congocart.identity.domain import Credentials, User


def _user(row: asyncpg.Record) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        full_name=row["full_name"],
        roles=frozenset(row["roles"]),
        auth_version=row["auth_version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def insert_user(
    conn: Connection,
    *,
    email: str,
    password_hash: str,
    full_name: str | None,
    roles: frozenset[str],
) -> User | None:
    """The new user, or None when the email is taken (no error: the transaction stays usable)."""
    row = await conn.fetchrow(
        """
        INSERT INTO users (email, password_hash, full_name, roles)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT ((lower(email))) DO NOTHING
        RETURNING id, email, full_name, roles, auth_version, created_at, updated_at
        """,
        email,
        password_hash,
        full_name,
        sorted(roles),
    )
    return _user(row) if row else None


async def get_user(conn: Connection, user_id: UUID) -> User | None:
    row = await conn.fetchrow(
        """
        SELECT id, email, full_name, roles, auth_version, created_at, updated_at
        FROM users WHERE id = $1
        """,
        user_id,
    )
    return _user(row) if row else None


async def admin_exists(conn: Connection) -> bool:
    found: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM users WHERE 'admin' = ANY(roles))"
    )
    return found


async def get_credentials_by_email(conn: Connection, email: str) -> Credentials | None:
    row = await conn.fetchrow(
        """
        SELECT id, email, full_name, roles, auth_version, created_at, updated_at, password_hash
        FROM users WHERE lower(email) = lower($1)
        """,
        email,
    )
    return Credentials(user=_user(row), password_hash=row["password_hash"]) if row else None


async def get_credentials_for_update(conn: Connection, user_id: UUID) -> Credentials | None:
    row = await conn.fetchrow(
        """
        SELECT id, email, full_name, roles, auth_version, created_at, updated_at, password_hash
        FROM users WHERE id = $1
        FOR UPDATE
        """,
        user_id,
    )
    return Credentials(user=_user(row), password_hash=row["password_hash"]) if row else None


async def set_roles(conn: Connection, user_id: UUID, roles: frozenset[str]) -> User | None:
    """New roles; the auth version moves on so access tokens with the old roles die."""
    row = await conn.fetchrow(
        """
        UPDATE users
        SET roles = $2, auth_version = auth_version + 1, updated_at = now()
        WHERE id = $1
        RETURNING id, email, full_name, roles, auth_version, created_at, updated_at
        """,
        user_id,
        sorted(roles),
    )
    return _user(row) if row else None


async def set_password(
    conn: Connection, user_id: UUID, password_hash: str, *, end_access_tokens: bool
) -> None:
    await conn.execute(
        """
        UPDATE users
        SET password_hash = $2,
            auth_version = auth_version + CASE WHEN $3 THEN 1 ELSE 0 END,
            updated_at = now()
        WHERE id = $1
        """,
        user_id,
        password_hash,
        end_access_tokens,
    )


async def promote_to_admin(conn: Connection, user_id: UUID, password_hash: str) -> User:
    row = await conn.fetchrow(
        """
        UPDATE users
        SET roles = CASE WHEN 'admin' = ANY (roles) THEN roles
                         ELSE array_append(roles, 'admin') END,
            password_hash = $2,
            auth_version = auth_version + 1,
            updated_at = now()
        WHERE id = $1
        RETURNING id, email, full_name, roles, auth_version, created_at, updated_at
        """,
        user_id,
        password_hash,
    )
    assert row is not None
    return _user(row)


async def bump_auth_version(conn: Connection, user_id: UUID) -> None:
    await conn.execute(
        "UPDATE users SET auth_version = auth_version + 1, updated_at = now() WHERE id = $1",
        user_id,
    )


# --- refresh tokens ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RefreshTokenState:
    family_id: UUID
    user_id: UUID
    used_at: datetime | None
    expires_at: datetime
    family_revoked_at: datetime | None


async def create_family(conn: Connection, user_id: UUID) -> UUID:
    family_id: UUID = await conn.fetchval(
        "INSERT INTO refresh_token_families (user_id) VALUES ($1) RETURNING id", user_id
    )
    return family_id


async def insert_refresh_token(
    conn: Connection, *, token_hash: bytes, family_id: UUID, expires_at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO refresh_tokens (token_hash, family_id, expires_at) VALUES ($1, $2, $3)",
        token_hash,
        family_id,
        expires_at,
    )


async def spend_refresh_token(conn: Connection, token_hash: bytes) -> RefreshTokenState | None:
    """Mark a live token used, in one conditional update; None when it was not live.

    Two concurrent refreshes of one token both reach this UPDATE; the second
    waits for the first's row lock, then re-checks `used_at IS NULL` and
    finds it spent, so exactly one wins.
    """
    row = await conn.fetchrow(
        """
        UPDATE refresh_tokens AS t
        SET used_at = now()
        FROM refresh_token_families AS f
        WHERE t.token_hash = $1
          AND t.used_at IS NULL
          AND t.expires_at > now()
          AND f.id = t.family_id
          AND f.revoked_at IS NULL
        RETURNING t.family_id, f.user_id, t.used_at, t.expires_at, f.revoked_at
        """,
        token_hash,
    )
    return _token_state(row) if row else None


async def get_refresh_token(conn: Connection, token_hash: bytes) -> RefreshTokenState | None:
    row = await conn.fetchrow(
        """
        SELECT t.family_id, f.user_id, t.used_at, t.expires_at, f.revoked_at
        FROM refresh_tokens AS t
        JOIN refresh_token_families AS f ON f.id = t.family_id
        WHERE t.token_hash = $1
        """,
        token_hash,
    )
    return _token_state(row) if row else None


def _token_state(row: asyncpg.Record) -> RefreshTokenState:
    return RefreshTokenState(
        family_id=row["family_id"],
        user_id=row["user_id"],
        used_at=row["used_at"],
        expires_at=row["expires_at"],
        family_revoked_at=row["revoked_at"],
    )


async def revoke_family(conn: Connection, family_id: UUID, *, reason: str) -> None:
    await conn.execute(
        """
        UPDATE refresh_token_families
        SET revoked_at = now(), revoked_reason = $2
        WHERE id = $1 AND revoked_at IS NULL
        """,
        family_id,
        reason,
    )


async def revoke_families_of_user(
    conn: Connection, user_id: UUID, *, reason: str, keep: UUID | None = None
) -> None:
    await conn.execute(
        """
        UPDATE refresh_token_families
        SET revoked_at = now(), revoked_reason = $2
        WHERE user_id = $1 AND revoked_at IS NULL AND id IS DISTINCT FROM $3
        """,
        user_id,
        reason,
        keep,
    )
