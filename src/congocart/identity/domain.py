"""Users, roles and the rules about them. Pure: no framework, no database."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128
EMAIL_MAX_LENGTH = 254


class Role(StrEnum):
    CUSTOMER = "customer"
    STAFF = "staff"
    ADMIN = "admin"


ROLE_ORDER: tuple[str, ...] = tuple(Role)
DEFAULT_ROLES: frozenset[str] = frozenset({Role.CUSTOMER})


class InvalidEmail(ValueError):
    pass


class InvalidPassword(ValueError):
    pass


class UnknownRole(ValueError):
    pass


@dataclass(frozen=True)
class Principal:
    """Who is calling: the verified subject of an access token, checked against the database."""

    id: UUID
    email: str
    roles: frozenset[str]
    # The refresh-token family the access token was issued from, when there is one.
    session_id: UUID | None = field(default=None, compare=False)

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles

    @property
    def is_staff(self) -> bool:
        """Staff work (orders, stock) is open to staff and to admins."""
        return Role.STAFF in self.roles or self.is_admin


@dataclass(frozen=True)
class User:
    id: UUID
    email: str
    full_name: str | None
    roles: frozenset[str]
    auth_version: int
    created_at: datetime
    updated_at: datetime

    @property
    def sorted_roles(self) -> list[str]:
        return sort_roles(self.roles)

    def as_principal(self, *, session_id: UUID | None = None) -> Principal:
        return Principal(id=self.id, email=self.email, roles=self.roles, session_id=session_id)


@dataclass(frozen=True)
class Credentials:
    """What a login checks: the stored hash (never leaves the service layer)."""

    user: User
    password_hash: str


# The everyday address, which email-validator accepts and normalises to itself
# lower-cased: before the @, ASCII letters and digits in runs joined by one
# `.`, `_`, `+` or `-`; after it, two or more DNS labels (letters, digits,
# single inner hyphens) ending in a top-level domain of letters, the domain
# not special-use (`.test`, `.local`...). Anything else takes the full
# validation. Linear: no two parts of the pattern can match the same text.
_PLAIN_EMAIL = re.compile(
    r"[a-z0-9]+(?:[._+-][a-z0-9]+)*"
    r"@((?:[a-z0-9](?:[a-z0-9]|-(?!-)){0,61}(?<!-)\.)+[a-z]{2,63})"
)


def _special_use(domain: str) -> bool:
    return any(domain == d or domain.endswith("." + d) for d in SPECIAL_USE_DOMAIN_NAMES)


def normalise_email(email: str) -> str:
    """The stored form: syntax-checked, Unicode-normalised and lower-cased.

    Addresses are unique case-insensitively, so `Ann@Example.com` and
    `ann@example.com` are the same account. A plain address (`_PLAIN_EMAIL`)
    is only lower-cased: the same result as email-validator's (a property
    test checks it), without its Unicode and IDNA work.
    """
    email = email.strip()
    if email.isascii() and len(email) <= EMAIL_MAX_LENGTH:
        lowered = email.lower()
        plain = _PLAIN_EMAIL.fullmatch(lowered)
        if plain is not None and not _special_use(plain.group(1)):
            return lowered
    try:
        result = validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc)) from exc
    normalised = result.normalized.lower()
    if len(normalised) > EMAIL_MAX_LENGTH:
        raise InvalidEmail(f"an email address may be at most {EMAIL_MAX_LENGTH} characters")
    return normalised


def check_password_policy(password: str) -> str:
    """Length is the rule (NIST SP 800-63B): 8 to 128 characters, anything allowed."""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise InvalidPassword(f"the password must be at least {PASSWORD_MIN_LENGTH} characters")
    if len(password) > PASSWORD_MAX_LENGTH:
        raise InvalidPassword(f"the password must be at most {PASSWORD_MAX_LENGTH} characters")
    return password


def parse_roles(roles: Iterable[str]) -> frozenset[str]:
    parsed = frozenset(roles)
    unknown = parsed - set(ROLE_ORDER)
    if unknown:
        raise UnknownRole(f"unknown role(s): {', '.join(sorted(unknown))}")
    if not parsed:
        raise UnknownRole("a user has at least one role")
    return parsed


def sort_roles(roles: Iterable[str]) -> list[str]:
    return sorted(roles, key=lambda r: ROLE_ORDER.index(r) if r in ROLE_ORDER else len(ROLE_ORDER))


def removes_own_admin(actor: Principal, *, target: UUID, new_roles: frozenset[str]) -> bool:
    """An admin may not take away their own admin role (and lock everyone out)."""
    return actor.id == target and actor.is_admin and Role.ADMIN not in new_roles
