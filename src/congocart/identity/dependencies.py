"""Who is calling: FastAPI dependencies every feature's router uses.

    async def handler(user: CurrentUser) -> ...     # 401 without a valid token
    async def handler(user: OptionalUser) -> ...    # None without an Authorization header
    async def handler(staff: StaffUser) -> ...      # staff or admin, else 403
    async def handler(admin: AdminUser) -> ...      # admin, else 403

Every check is made on the server: the token's signature and claims, then the
user's current auth version in the database (logout, a password change or a
role change end existing access tokens at once). The lookup runs on the
request's own pooled connection.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from congocart.core.db import Conn, Connection
from congocart.core.errors import Forbidden, InvalidToken, NotAuthenticated
from congocart.core.security import Passwords, TokenKeys
from congocart.identity import service
from congocart.identity.domain import Principal

# Declares the bearer scheme in the OpenAPI schema (the docs' "Authorize" button
# logs in through /auth/token); the header is parsed below.
_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
BearerToken = Annotated[str | None, Depends(_bearer)]


# `async def` although they never await: FastAPI runs a plain `def` dependency
# in a worker thread, a hop that costs more than the work.
async def get_token_keys(request: Request) -> TokenKeys:
    keys: TokenKeys = request.app.state.token_keys
    return keys


async def get_passwords(request: Request) -> Passwords:
    passwords: Passwords = request.app.state.passwords
    return passwords


Keys = Annotated[TokenKeys, Depends(get_token_keys)]
PasswordHashing = Annotated[Passwords, Depends(get_passwords)]


async def caller(request: Request, conn: Connection, token: str | None) -> Principal | None:
    """The signed-in user of the request, or None without an Authorization header.

    `optional_user` as a plain call, for a dependency that declares `conn` and
    `token: BearerToken` itself (a dependency fewer per request: FastAPI
    spends more resolving one than this takes).
    """
    if token is None:
        if "authorization" in request.headers:
            # Present but not `Bearer <token>`: a bad credential, not an absent one.
            raise InvalidToken("The Authorization header must be `Bearer <access token>`.")
        return None
    keys: TokenKeys = request.app.state.token_keys
    return await service.authenticate(conn, token=token, keys=keys)


async def optional_user(request: Request, conn: Conn, token: BearerToken) -> Principal | None:
    return await caller(request, conn, token)


async def current_user(user: Annotated[Principal | None, Depends(optional_user)]) -> Principal:
    if user is None:
        raise NotAuthenticated()
    return user


async def staff_user(user: Annotated[Principal, Depends(current_user)]) -> Principal:
    if not user.is_staff:
        raise Forbidden()
    return user


async def admin_user(user: Annotated[Principal, Depends(current_user)]) -> Principal:
    if not user.is_admin:
        raise Forbidden()
    return user


CurrentUser = Annotated[Principal, Depends(current_user)]
OptionalUser = Annotated[Principal | None, Depends(optional_user)]
StaffUser = Annotated[Principal, Depends(staff_user)]
AdminUser = Annotated[Principal, Depends(admin_user)]
