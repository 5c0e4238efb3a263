"""The dependencies other features authorize with, on a test-only router."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from congocart.config import Settings
from congocart.core.db import Database
from congocart.identity.dependencies import AdminUser, CurrentUser, OptionalUser, StaffUser
from congocart.main import create_app
from tests.conftest import MakeUser
from tests.identity.conftest import assert_problem

probe = APIRouter()


@probe.get("/probe/optional")
async def optional(user: OptionalUser) -> dict[str, object]:
    return {"user": str(user.id) if user else None}


@probe.get("/probe/current")
async def current(user: CurrentUser) -> dict[str, object]:
    return {"user": str(user.id), "roles": sorted(user.roles), "email": user.email}


@probe.get("/probe/staff")
async def staff(user: StaffUser) -> dict[str, object]:
    return {"user": str(user.id)}


@probe.get("/probe/admin")
async def admin(user: AdminUser) -> dict[str, object]:
    return {"user": str(user.id)}


@pytest.fixture
async def probe_client(settings: Settings, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(settings, database=db)
    app.include_router(probe)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_optional_user_is_none_without_an_authorization_header(
    probe_client: httpx.AsyncClient,
) -> None:
    response = await probe_client.get("/probe/optional")
    assert response.status_code == 200
    assert response.json() == {"user": None}


async def test_optional_user_is_the_caller_with_a_valid_token(
    probe_client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    response = await probe_client.get("/probe/optional", headers=user.headers)
    assert response.json() == {"user": str(user.id)}


@pytest.mark.parametrize("authorization", ["Bearer nonsense", "Basic YTpi"])
async def test_optional_user_still_rejects_a_bad_token(
    probe_client: httpx.AsyncClient, authorization: str
) -> None:
    response = await probe_client.get("/probe/optional", headers={"Authorization": authorization})
    assert_problem(response, 401, "invalid_token")


async def test_current_user_carries_id_email_and_roles_from_the_database(
    probe_client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user(roles=("customer", "staff"))
    response = await probe_client.get("/probe/current", headers=user.headers)
    assert response.json() == {
        "user": str(user.id),
        "roles": ["customer", "staff"],
        "email": user.email,
    }


@pytest.mark.parametrize(
    ("roles", "staff_status", "admin_status"),
    [
        (("customer",), 403, 403),
        (("staff",), 200, 403),
        (("customer", "staff"), 200, 403),
        (("admin",), 200, 200),
    ],
)
async def test_staff_and_admin_routes_admit_only_their_roles(
    probe_client: httpx.AsyncClient,
    make_user: MakeUser,
    roles: tuple[str, ...],
    staff_status: int,
    admin_status: int,
) -> None:
    user = await make_user(roles=roles)
    for path, expected in (("/probe/staff", staff_status), ("/probe/admin", admin_status)):
        response = await probe_client.get(path, headers=user.headers)
        if expected == 403:
            assert_problem(response, 403, "forbidden")
        else:
            assert response.status_code == 200


@pytest.mark.parametrize("path", ["/probe/current", "/probe/staff", "/probe/admin"])
async def test_protected_routes_without_a_token_are_401_not_authenticated(
    probe_client: httpx.AsyncClient, path: str
) -> None:
    response = await probe_client.get(path)
    assert_problem(response, 401, "not_authenticated")
    assert response.headers["www-authenticate"] == "Bearer"
