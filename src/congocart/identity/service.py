"""Identity use cases: accounts, logins, token rotation, roles."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from congocart.core.db import Connection
from congocart.core.errors import InvalidToken, ValidationFailed
from congocart.core.ratelimit import RateLimiter, RateLimiterUnavailable
from congocart.core.security import (
    Passwords,
    TokenKeys,
    decode_access_token,
    issue_access_token,
    new_refresh_token,
    refresh_token_hash,
)
from congocart.identity import repository
from congocart.identity.domain import (
    DEFAULT_ROLES,
    InvalidEmail,
    InvalidPassword,
    Principal,
    Role,
    UnknownRole,
    User,
    check_password_policy,
    normalise_email,
    parse_roles,
    removes_own_admin,
)
from congocart.identity.errors import (
    EmailTaken,
    InvalidCredentials,
    OwnAdminRoleRequired,
    RefreshTokenReused,
    UserNotFound,
)


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


async def register_user(
    tx: Connection,
    *,
    email: str,
    password: str,
    full_name: str | None = None,
    passwords: Passwords,
    roles: frozenset[str] = DEFAULT_ROLES,
) -> User:
    """A new account; 409 `email_taken` when the address (in any case) is in use."""
    user = await repository.insert_user(
        tx,
        email=_valid_email(email),
        password_hash=await passwords.hash(_valid_password(password, field="password")),
        full_name=full_name,
        roles=parse_roles(roles),
    )
    if user is None:
        raise EmailTaken()
    return user


@dataclass(frozen=True)
class LoginLimit:
    """At most `max_failures` failed logins per account (email) per window."""

    limiter: RateLimiter
    max_failures: int
    window_seconds: int


async def log_in(
    tx: Connection,
    *,
    email: str,
    password: str,
    passwords: Passwords,
    keys: TokenKeys,
    limit: LoginLimit | None = None,
) -> TokenPair:
    """A new session for the right email and password, else 401 `invalid_credentials`.

    An unknown email costs one hash verification too (against a dummy hash), so
    the response time does not reveal which emails have accounts. With `limit`,
    an account that has had too many failed logins answers 429 `rate_limited`
    until its window ends, even to the right password.
    """
    lookup_email = _lookup_email(email)
    limit_key = _login_limit_key(lookup_email or email.strip().lower())
    if limit is not None:
        await _count_login_attempt(limit, limit_key)
    credentials = (
        await repository.get_credentials_by_email(tx, lookup_email) if lookup_email else None
    )
    password_hash = credentials.password_hash if credentials else None
    if not await passwords.verify(password_hash, password) or credentials is None:
        raise InvalidCredentials()
    if limit is not None:
        await limit.limiter.reset(limit_key)
    user = credentials.user
    if passwords.needs_rehash(credentials.password_hash):
        # The cost settings changed since this hash was made: upgrade it in place.
        await repository.set_password(
            tx, user.id, await passwords.hash(password), end_access_tokens=False
        )
    family_id = await repository.create_family(tx, user.id)
    return await _issue_pair(tx, user=user, family_id=family_id, keys=keys)


async def refresh_session(tx: Connection, *, refresh_token: str, keys: TokenKeys) -> TokenPair:
    """Rotate: spend the presented token and return a new pair of the same family.

    A spent token presented again means it leaked (or the client replayed it):
    the whole family is revoked and 401 `refresh_token_reused` is answered; the
    revocation is committed although the request fails.
    """
    token_hash = refresh_token_hash(refresh_token)
    spent = await repository.spend_refresh_token(tx, token_hash)
    if spent is None:
        state = await repository.get_refresh_token(tx, token_hash)
        if state is None:
            raise InvalidToken()
        if state.used_at is not None:
            # Spent is spent, whether or not the family was already revoked.
            await repository.revoke_family(tx, state.family_id, reason="reused")
            raise RefreshTokenReused()
        if state.family_revoked_at is not None:
            raise InvalidToken("The session has ended; log in again.")
        raise InvalidToken("The refresh token has expired; log in again.")
    user = await repository.get_user(tx, spent.user_id)
    if user is None:
        raise InvalidToken()
    return await _issue_pair(tx, user=user, family_id=spent.family_id, keys=keys)


async def log_out(tx: Connection, *, principal: Principal, refresh_token: str) -> None:
    """End the session of `refresh_token` and every access token of the user.

    Idempotent: a token already revoked, or unknown, changes nothing more.
    A token of another user is left alone.
    """
    state = await repository.get_refresh_token(tx, refresh_token_hash(refresh_token))
    if state is not None and state.user_id == principal.id:
        await repository.revoke_family(tx, state.family_id, reason="logout")
    await repository.bump_auth_version(tx, principal.id)


async def authenticate(conn: Connection, *, token: str, keys: TokenKeys) -> Principal:
    """The caller behind an access token, checked against the user's current auth version."""
    claims = decode_access_token(token, keys=keys)
    user = await repository.get_user(conn, claims.subject)
    if user is None or user.auth_version != claims.auth_version:
        raise InvalidToken()
    return user.as_principal(session_id=claims.session_id)


async def get_user(conn: Connection, *, user_id: UUID) -> User:
    user = await repository.get_user(conn, user_id)
    if user is None:
        raise UserNotFound()
    return user


async def change_password(
    tx: Connection,
    *,
    principal: Principal,
    current_password: str,
    new_password: str,
    passwords: Passwords,
) -> None:
    """Set a new password after checking the current one.

    Every access token of the user stops working, and every session except the
    one the caller's token came from is revoked.
    """
    credentials = await repository.get_credentials_for_update(tx, principal.id)
    if credentials is None:
        raise InvalidToken()
    if not await passwords.verify(credentials.password_hash, current_password):
        raise InvalidCredentials("The current password is incorrect.")
    new_hash = await passwords.hash(_valid_password(new_password, field="new_password"))
    await repository.set_password(tx, principal.id, new_hash, end_access_tokens=True)
    await repository.revoke_families_of_user(
        tx, principal.id, reason="password_changed", keep=principal.session_id
    )


async def set_user_roles(
    tx: Connection, *, actor: Principal, user_id: UUID, roles: frozenset[str]
) -> User:
    """Replace a user's roles. Their access tokens stop working at once; their
    sessions stay, and the next refreshed access token carries the new roles."""
    try:
        new_roles = parse_roles(roles)
    except UnknownRole as exc:
        raise ValidationFailed(errors=[{"field": "roles", "message": str(exc)}]) from exc
    if removes_own_admin(actor, target=user_id, new_roles=new_roles):
        raise OwnAdminRoleRequired()
    user = await repository.set_roles(tx, user_id, new_roles)
    if user is None:
        raise UserNotFound()
    return user


async def create_admin(tx: Connection, *, email: str, password: str, passwords: Passwords) -> User:
    """An admin who can log in with `password`: a new account, or an existing one
    promoted, with its password set (its old tokens stop working)."""
    normalised = _valid_email(email)
    password_hash = await passwords.hash(_valid_password(password, field="password"))
    user = await repository.insert_user(
        tx,
        email=normalised,
        password_hash=password_hash,
        full_name=None,
        roles=frozenset({Role.CUSTOMER, Role.ADMIN}),
    )
    if user is not None:
        return user
    existing = await repository.get_credentials_by_email(tx, normalised)
    assert existing is not None
    return await repository.promote_to_admin(tx, existing.user.id, password_hash)


async def admin_exists(conn: Connection) -> bool:
    return await repository.admin_exists(conn)


async def issue_access_token_for(tx: Connection, *, user_id: UUID, keys: TokenKeys) -> str:
    """An access token for a user without a session (tests and tools)."""
    user = await get_user(tx, user_id=user_id)
    return issue_access_token(
        keys, subject=user.id, roles=user.roles, auth_version=user.auth_version
    ).token


async def _issue_pair(tx: Connection, *, user: User, family_id: UUID, keys: TokenKeys) -> TokenPair:
    refresh_token = new_refresh_token()
    await repository.insert_refresh_token(
        tx,
        token_hash=refresh_token_hash(refresh_token),
        family_id=family_id,
        expires_at=datetime.now(UTC) + timedelta(seconds=keys.refresh_ttl_seconds),
    )
    access = issue_access_token(
        keys,
        subject=user.id,
        roles=user.roles,
        auth_version=user.auth_version,
        session_id=family_id,
    )
    return TokenPair(
        access_token=access.token, refresh_token=refresh_token, expires_in=access.expires_in
    )


async def _count_login_attempt(limit: LoginLimit, key: str) -> None:
    # Every attempt is counted before the password is checked and a success
    # clears the count, so what remains counted are failures. Counting first
    # means concurrent guesses cannot slip past the limit together.
    try:
        decision = await limit.limiter.hit(
            key, limit=limit.max_failures, window_seconds=limit.window_seconds
        )
    except RateLimiterUnavailable as exc:
        # Fail closed: without the counter, password guessing would be unlimited.
        raise RateLimiterUnavailable(
            "Logins are briefly unavailable; try again shortly.", headers={"Retry-After": "5"}
        ) from exc
    decision.raise_if_denied()


def _login_limit_key(lookup_email: str) -> str:
    # Keyed by the attempted address, known or not (so the limit reveals nothing),
    # and hashed so the shared counter store holds no email addresses.
    return "login:" + hashlib.sha256(lookup_email.encode()).hexdigest()


def _lookup_email(email: str) -> str | None:
    """The address to look up, or None when it is not a valid address (no account
    can have it; the login still costs a hash verification)."""
    try:
        return normalise_email(email)
    except InvalidEmail:
        return None


def _valid_email(email: str) -> str:
    try:
        return normalise_email(email)
    except InvalidEmail as exc:
        raise ValidationFailed(errors=[{"field": "email", "message": str(exc)}]) from exc


def _valid_password(password: str, *, field: str) -> str:
    try:
        return check_password_policy(password)
    except InvalidPassword as exc:
        raise ValidationFailed(errors=[{"field": field, "message": str(exc)}]) from exc
