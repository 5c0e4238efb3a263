"""Coupon administration through HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from congocart.core.db import Connection
from congocart.promotions import service
from tests.conftest import MakeUser
from tests.promotions.conftest import unique_code

URL = "/api/v1/admin/coupons"


def usd(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "USD"}


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert (response.json()["status"], response.json()["code"]) == (status, code)


async def test_an_admin_creates_a_coupon(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    admin = await make_user(roles=("admin",))
    code = unique_code("spring").lower()
    body = {
        "code": code,
        "amount_off": usd("5.00"),
        "min_subtotal": usd("25.00"),
        "max_redemptions": 100,
        "per_customer_limit": 1,
        "starts_at": "2026-03-01T00:00:00Z",
        "ends_at": "2026-04-01T00:00:00+02:00",
    }
    response = await client.post(URL, json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    coupon = response.json()
    assert coupon["code"] == code.upper()
    assert (coupon["percent_off"], coupon["amount_off"], coupon["min_subtotal"]) == (
        None,
        usd("5.00"),
        usd("25.00"),
    )
    assert (coupon["max_redemptions"], coupon["per_customer_limit"], coupon["redemptions"]) == (
        100,
        1,
        0,
    )
    assert coupon["ends_at"].startswith("2026-03-31T22:00:00")


async def test_a_percentage_coupon_keeps_its_decimals(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    admin = await make_user(roles=("admin",))
    response = await client.post(
        URL, json={"code": unique_code(), "percent_off": "12.5"}, headers=admin.headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["percent_off"] == "12.50"


async def test_a_taken_code_is_409(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    admin = await make_user(roles=("admin",))
    code = unique_code()
    first = await client.post(URL, json={"code": code, "percent_off": 10}, headers=admin.headers)
    assert first.status_code == 201
    again = await client.post(
        URL, json={"code": code.lower(), "percent_off": 20}, headers=admin.headers
    )
    assert_problem(again, 409, "coupon_code_taken")


@pytest.mark.parametrize(
    "body",
    [
        {"percent_off": 10, "amount_off": {"amount": "5.00", "currency": "USD"}},
        {},
        {"percent_off": 0},
        {"percent_off": 100.5},
        {"percent_off": "10.123"},
        {"amount_off": {"amount": "-5.00", "currency": "USD"}},
        {"amount_off": {"amount": "5.00", "currency": "EUR"}},
        {"amount_off": {"amount": 5.0, "currency": "USD"}},
        {"percent_off": 10, "max_redemptions": 0},
        {"percent_off": 10, "starts_at": "2026-05-01T00:00:00Z", "ends_at": "2026-04-01T00:00:00Z"},
        {"percent_off": 10, "starts_at": "2026-05-01T00:00:00"},
        {"percent_off": 10, "redemptions": 5},
        {"percent_off": 10, "code": "bad code!"},
    ],
)
async def test_an_invalid_coupon_is_422(
    client: httpx.AsyncClient, make_user: MakeUser, body: dict[str, Any]
) -> None:
    admin = await make_user(roles=("admin",))
    response = await client.post(URL, json={"code": unique_code(), **body}, headers=admin.headers)
    assert_problem(response, 422, "validation_failed")
    assert response.json()["errors"]


async def test_only_admins_manage_coupons(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    customer = await make_user()
    staff = await make_user(roles=("staff",))
    body = {"code": unique_code(), "percent_off": 10}
    assert_problem(await client.post(URL, json=body), 401, "not_authenticated")
    assert_problem(await client.get(URL), 401, "not_authenticated")
    for user in (customer, staff):
        assert_problem(await client.post(URL, json=body, headers=user.headers), 403, "forbidden")
        assert_problem(await client.get(URL, headers=user.headers), 403, "forbidden")


async def test_the_coupon_list_pages_newest_first_with_redemptions(
    client: httpx.AsyncClient, conn: Connection, make_user: MakeUser
) -> None:
    await conn.execute("DELETE FROM coupons")
    admin = await make_user(roles=("admin",))
    codes = [unique_code() for _ in range(3)]
    for code in codes:
        response = await client.post(
            URL, json={"code": code, "percent_off": 10}, headers=admin.headers
        )
        assert response.status_code == 201
    await service.reserve_redemption(conn, code=codes[0])

    first = (await client.get(URL, params={"limit": 2}, headers=admin.headers)).json()
    assert [c["code"] for c in first["items"]] == [codes[2], codes[1]]
    assert first["next_cursor"]
    second = (
        await client.get(
            URL, params={"limit": 2, "cursor": first["next_cursor"]}, headers=admin.headers
        )
    ).json()
    assert [(c["code"], c["redemptions"]) for c in second["items"]] == [(codes[0], 1)]
    assert second["next_cursor"] is None
    assert_problem(
        await client.get(URL, params={"cursor": "garbage"}, headers=admin.headers),
        400,
        "invalid_cursor",
    )


@pytest.mark.parametrize(
    ("starts_at", "ends_at"),
    [
        ("0001-01-01T00:00:00Z", None),  # stored as -infinity, read back without a zone
        (None, "9999-12-31T23:59:59.999999Z"),  # stored as infinity
        ("0001-01-01T00:00:00+01:00", None),  # year 0 in UTC
        (None, "9999-12-31T23:59:59-01:00"),  # year 10000 in UTC
    ],
)
async def test_a_coupon_window_at_the_ends_of_the_calendar_is_422_not_a_500(
    client: httpx.AsyncClient, make_user: MakeUser, starts_at: str | None, ends_at: str | None
) -> None:
    # Found by tests/fuzz: these were 500s (a naive datetime read back, or a bind error).
    admin = await make_user(roles=("admin",))
    body = {"code": unique_code(), "percent_off": "10", "starts_at": starts_at, "ends_at": ends_at}
    response = await client.post(URL, json=body, headers=admin.headers)
    assert_problem(response, 422, "validation_failed")


# Well-formed JSON of the wrong shape, found by tests/fuzz: an id that is a number or
# false, a time past the calendar's ends once its offset applies. These were 500s.
HOSTILE_CURSORS = [
    "WyIyMDI2LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwgNV0",  # ["2026-01-01T00:00:00+00:00", 5]
    "WyIwMDAxMTAwMTAwMFoiLCBmYWxzZV0",  # ["00011001000Z", false]
    # ["0001-01-01T00:00:00+01:00", "00000000-0000-0000-0000-000000000000"]
    "WyIwMDAxLTAxLTAxVDAwOjAwOjAwKzAxOjAwIiwgIjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMCJd",
]


@pytest.mark.parametrize("cursor", HOSTILE_CURSORS)
async def test_a_coupon_list_cursor_of_the_wrong_shape_is_400(
    client: httpx.AsyncClient, make_user: MakeUser, cursor: str
) -> None:
    admin = await make_user(roles=("admin",))
    response = await client.get(URL, params={"cursor": cursor}, headers=admin.headers)
    assert_problem(response, 400, "invalid_cursor")
