"""Identity routes: accounts, sessions, roles, and the public signing keys."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from congocart.config import Settings
from congocart.core.db import Conn, Tx
from congocart.core.errors import problem_responses
from congocart.core.ratelimit import Limiter
from congocart.identity import service
from congocart.identity.dependencies import AdminUser, CurrentUser, Keys, PasswordHashing
from congocart.identity.schemas import (
    JWKSRead,
    LoginRequest,
    LogoutRequest,
    PasswordChange,
    RefreshRequest,
    RolesUpdate,
    TokenRead,
    UserCreate,
    UserRead,
)

router = APIRouter(tags=["identity"])
well_known = APIRouter(tags=["operations"])

_NO_STORE = {"Cache-Control": "no-store"}


def login_limit(request: Request, limiter: Limiter) -> service.LoginLimit | None:
    settings: Settings = request.app.state.settings
    if not settings.rate_limit_enabled:
        return None
    return service.LoginLimit(
        limiter=limiter,
        max_failures=settings.rate_limit_login_failures,
        window_seconds=settings.rate_limit_login_window_seconds,
    )


LoginLimit = Annotated[service.LoginLimit | None, Depends(login_limit)]


def _tokens(pair: service.TokenPair, response: Response) -> TokenRead:
    # Tokens are credentials: no cache may keep them (RFC 6749, section 5.1).
    response.headers.update(_NO_STORE)
    return TokenRead(
        access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
    )


@router.post(
    "/auth/register", status_code=status.HTTP_201_CREATED, responses=problem_responses(409)
)
async def register(body: UserCreate, tx: Tx, passwords: PasswordHashing) -> UserRead:
    """Create a customer account. 409 `email_taken` when the email (in any case) is in use."""
    user = await service.register_user(
        tx, email=body.email, password=body.password, full_name=body.full_name, passwords=passwords
    )
    return UserRead.of(user)


@router.post("/auth/login", responses=problem_responses(401))
async def login(
    body: LoginRequest,
    tx: Tx,
    passwords: PasswordHashing,
    keys: Keys,
    limit: LoginLimit,
    response: Response,
) -> TokenRead:
    """Exchange email and password for an access token and a refresh token.

    401 `invalid_credentials` whether the email is unknown or the password wrong.
    After too many failed logins for one account (default 10 in 15 minutes),
    429 `rate_limited` with `Retry-After` until the window ends.
    """
    pair = await service.log_in(
        tx, email=body.email, password=body.password, passwords=passwords, keys=keys, limit=limit
    )
    return _tokens(pair, response)


@router.post("/auth/token", responses=problem_responses(401))
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    tx: Tx,
    passwords: PasswordHashing,
    keys: Keys,
    limit: LoginLimit,
    response: Response,
) -> TokenRead:
    """The OAuth2 password flow (form fields `username`, `password`): login for the docs.
    Shares login's per-account limit."""
    pair = await service.log_in(
        tx, email=form.username, password=form.password, passwords=passwords, keys=keys, limit=limit
    )
    return _tokens(pair, response)


@router.post("/auth/refresh", responses=problem_responses(401))
async def refresh(body: RefreshRequest, tx: Tx, keys: Keys, response: Response) -> TokenRead:
    """Rotate a refresh token: the presented one is spent and a new pair is returned.

    A spent token presented again → 401 `refresh_token_reused`, and its whole
    session (token family) is revoked.
    """
    pair = await service.refresh_session(tx, refresh_token=body.refresh_token, keys=keys)
    return _tokens(pair, response)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(body: LogoutRequest, user: CurrentUser, tx: Tx) -> None:
    """End the session of `refresh_token` (it can no longer refresh), and every access
    token of the caller."""
    await service.log_out(tx, principal=user, refresh_token=body.refresh_token)


@router.get("/me")
async def me(user: CurrentUser, conn: Conn) -> UserRead:
    """The caller's account."""
    return UserRead.of(await service.get_user(conn, user_id=user.id))


@router.post("/me/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(
    body: PasswordChange, user: CurrentUser, tx: Tx, passwords: PasswordHashing
) -> None:
    """Change the caller's password. 401 `invalid_credentials` when `current_password` is
    wrong. Existing access tokens stop working and every other session is revoked; the
    caller's own session refreshes as usual."""
    await service.change_password(
        tx,
        principal=user,
        current_password=body.current_password,
        new_password=body.new_password,
        passwords=passwords,
    )


@router.put("/admin/users/{id}/roles", responses=problem_responses(403, 409))
async def set_roles(
    user_id: Annotated[UUID, Path(alias="id", description="The user's id.")],
    body: RolesUpdate,
    admin: AdminUser,
    tx: Tx,
) -> UserRead:
    """Replace a user's roles (admin only). The user's access tokens stop working at once;
    their sessions stay valid and the next refreshed token carries the new roles."""
    user = await service.set_user_roles(
        tx, actor=admin, user_id=user_id, roles=frozenset(body.roles)
    )
    return UserRead.of(user)


@well_known.get("/.well-known/jwks.json")
async def jwks(keys: Keys, response: Response) -> JWKSRead:
    """The public keys that verify access tokens (Ed25519, JWK Set)."""
    response.headers["Cache-Control"] = "public, max-age=300"
    return JWKSRead.model_validate(keys.jwks())
