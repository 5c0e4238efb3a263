"""Identity's request and response bodies."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, Field, StringConstraints

from congocart.core.schemas import RequestModel, ResponseModel
from congocart.identity.domain import (
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    User,
    normalise_email,
    sort_roles,
)

# Passwords are taken exactly as typed: no whitespace stripping.
NewPassword = Annotated[
    str,
    StringConstraints(
        strip_whitespace=False, min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH
    ),
]
# Any password may be tried; the bound only caps the hashing work per request.
GivenPassword = Annotated[str, StringConstraints(strip_whitespace=False, max_length=1024)]
Email = Annotated[str, StringConstraints(max_length=320), AfterValidator(normalise_email)]
RoleName = Literal["customer", "staff", "admin"]


class UserCreate(RequestModel):
    email: Email = Field(examples=["ann@example.com"])
    password: NewPassword = Field(examples=["correct horse battery staple"])
    full_name: (
        Annotated[
            str,
            # Printable text only: control characters (NUL above all) have no place in a name.
            StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$"),
        ]
        | None
    ) = None


class LoginRequest(RequestModel):
    email: Annotated[str, StringConstraints(min_length=1, max_length=320)] = Field(
        examples=["ann@example.com"]
    )
    password: GivenPassword


class RefreshRequest(RequestModel):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=2048)]


class LogoutRequest(RequestModel):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=2048)]


class PasswordChange(RequestModel):
    current_password: GivenPassword
    new_password: NewPassword


class RolesUpdate(RequestModel):
    roles: list[RoleName] = Field(min_length=1, max_length=3, examples=[["customer", "staff"]])


class UserRead(ResponseModel):
    id: UUID
    email: str
    full_name: str | None
    roles: list[str] = Field(examples=[["customer"]])

    @classmethod
    def of(cls, user: User) -> UserRead:
        return cls(
            id=user.id, email=user.email, full_name=user.full_name, roles=sort_roles(user.roles)
        )


class TokenRead(ResponseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_in: int = Field(description="Seconds until the access token expires.")


class JWKRead(ResponseModel):
    kty: str
    crv: str
    x: str
    kid: str
    use: str
    alg: str


class JWKSRead(ResponseModel):
    keys: list[JWKRead]
