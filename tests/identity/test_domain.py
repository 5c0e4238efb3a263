"""Identity's pure rules: no database, no framework."""

from __future__ import annotations

import uuid

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given
from hypothesis import strategies as st

from congocart.identity.domain import (
    InvalidEmail,
    InvalidPassword,
    Principal,
    UnknownRole,
    check_password_policy,
    normalise_email,
    parse_roles,
    removes_own_admin,
    sort_roles,
)


def _principal(*roles: str) -> Principal:
    return Principal(id=uuid.uuid4(), email="a@example.com", roles=frozenset(roles))


def test_admins_and_staff_are_staff_customers_are_not() -> None:
    assert _principal("admin").is_staff
    assert _principal("admin").is_admin
    assert _principal("customer", "staff").is_staff
    assert not _principal("customer", "staff").is_admin
    assert not _principal("customer").is_staff


def test_principal_is_immutable() -> None:
    principal = _principal("customer")
    with pytest.raises(AttributeError):
        principal.roles = frozenset({"admin"})  # type: ignore[misc]


def test_emails_are_normalised_to_one_case() -> None:
    assert normalise_email("  Ann.Smith@Example.COM ") == "ann.smith@example.com"


@pytest.mark.parametrize(
    "email", ["", "ann", "ann@", "@example.com", "ann@@example.com", "a b@c.d"]
)
def test_malformed_emails_are_rejected(email: str) -> None:
    with pytest.raises(InvalidEmail):
        normalise_email(email)


def _validated(email: str) -> str | None:
    """What email-validator alone makes of an address (None: rejected)."""
    try:
        normalised = validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None
    return normalised if len(normalised) <= 254 else None


def _outcome(email: str) -> str | None:
    try:
        return normalise_email(email)
    except InvalidEmail:
        return None


_run = st.text(alphabet="abcXYZ019", min_size=1, max_size=8)


@st.composite
def _plain_looking(draw: st.DrawFn) -> str:
    """Addresses shaped like the fast path's, some of them past its rules."""
    runs = draw(st.lists(_run, min_size=1, max_size=12))
    local = runs[0] + "".join(draw(st.sampled_from("._+-")) + run for run in runs[1:])
    labels = draw(st.lists(st.lists(_run, min_size=1, max_size=3).map("-".join), min_size=1))
    top = ["com", "Org", "io", "museum", "test", "local", "onion", "arpa", "c0m", "99"]
    return f"{local}@{'.'.join(labels[:3])}.{draw(st.sampled_from(top))}"


@given(_plain_looking())
@example("Ann.Smith@Example.COM")
@example("a@b.test")
@example("a@mail.localhost")
@example("x" * 64 + "@example.com")
@example("x" * 65 + "@example.com")
@example("a@" + "b" * 64 + ".com")
@example("a@" + "b" * 62 + ".com")
def test_a_plain_address_normalises_exactly_as_email_validator_says(email: str) -> None:
    # The fast path (`_PLAIN_EMAIL`) must never accept what the validator
    # rejects, nor store an address in another form.
    assert _outcome(email) == _validated(email)


@given(st.text(alphabet="aZ0.-_+@ \u212a\u00e9xn", max_size=40))
@example("ann@xn--bcher-kva.example")
@example("ann@b\u00fccher.example")
@example("\u212a@example.com")
@example("ann@localhost")
@example("ann@foo.local")
@example("ann@1.2")
@example("a@b-.com")
@example("a@-b.com")
@example("a@b--c.com")
@example("a..b@c.com")
@example(".a@b.com")
@example("a.@b.com")
def test_any_address_normalises_as_email_validator_says(email: str) -> None:
    assert _outcome(email) == _validated(email)


@given(st.text(min_size=8, max_size=128))
def test_any_password_of_8_to_128_characters_is_accepted(password: str) -> None:
    assert check_password_policy(password) == password


@pytest.mark.parametrize("length", [0, 7, 129, 1000])
def test_passwords_outside_8_to_128_characters_are_rejected(length: int) -> None:
    with pytest.raises(InvalidPassword):
        check_password_policy("x" * length)


def test_roles_must_be_known_and_not_empty() -> None:
    assert parse_roles(["staff", "staff", "customer"]) == {"staff", "customer"}
    with pytest.raises(UnknownRole):
        parse_roles(["superuser"])
    with pytest.raises(UnknownRole):
        parse_roles([])


def test_roles_are_listed_in_a_fixed_order() -> None:
    assert sort_roles({"admin", "customer", "staff"}) == ["customer", "staff", "admin"]


def test_an_admin_may_not_remove_their_own_admin_role() -> None:
    admin = _principal("admin")
    assert removes_own_admin(admin, target=admin.id, new_roles=frozenset({"staff"}))
    assert not removes_own_admin(admin, target=admin.id, new_roles=frozenset({"admin"}))
    assert not removes_own_admin(admin, target=uuid.uuid4(), new_roles=frozenset({"customer"}))
