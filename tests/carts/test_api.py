"""Cart routes through HTTP: every route, its failures, and who may reach a cart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx
import pytest

from congocart.carts import service
from congocart.carts.domain import CartOwner
from congocart.catalog import service as catalog
from congocart.core.db import Connection
from congocart.core.money import Money
from congocart.promotions import service as promotions
from tests.carts.conftest import logged_statements, make_product, make_skus
from tests.conftest import MakeUser, TestUser
from tests.promotions.conftest import insert_order, make_coupon

API = "/api/v1"
CART_FIELDS = {
    "id",
    "currency",
    "items",
    "coupon",
    "subtotal",
    "discount",
    "shipping",
    "tax",
    "total",
    "version",
    "updated_at",
}


def usd(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "USD"}


def money(amount: str) -> Money:
    return Money.of(amount, "USD")


def cart_id_of(cart: dict[str, Any]) -> UUID:
    return UUID(cart["id"])


def token_headers(cart: dict[str, Any]) -> dict[str, str]:
    return {"X-Cart-Token": cart["cart_token"]}


async def create_guest_cart(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.post(f"{API}/carts", json={})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def create_user_cart(client: httpx.AsyncClient, user: TestUser) -> dict[str, Any]:
    response = await client.post(f"{API}/carts", json={}, headers=user.headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def add(
    client: httpx.AsyncClient,
    cart_id: str,
    headers: dict[str, str],
    sku: str,
    quantity: int = 1,
) -> httpx.Response:
    return await client.post(
        f"{API}/carts/{cart_id}/items", json={"sku": sku, "quantity": quantity}, headers=headers
    )


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["status"], body["code"]) == (status, code)
    assert body["request_id"] == response.headers["x-request-id"]


# ---------------------------------------------------------------- create


async def test_a_guest_cart_is_created_empty_with_its_token_shown_once(
    client: httpx.AsyncClient,
) -> None:
    cart = await create_guest_cart(client)
    assert CART_FIELDS | {"cart_token"} <= cart.keys()
    assert cart["items"] == []
    assert (cart["currency"], cart["version"], cart["coupon"]) == ("USD", 1, None)
    assert cart["total"] == usd("0.00")
    assert isinstance(cart["cart_token"], str)
    assert len(cart["cart_token"]) >= 43

    shown = await client.get(f"{API}/carts/{cart['id']}", headers=token_headers(cart))
    assert shown.status_code == 200
    assert shown.json().keys() >= CART_FIELDS
    assert "cart_token" not in shown.json()
    assert shown.headers["etag"] == '"1"'


async def test_a_signed_in_users_cart_is_theirs_and_has_no_token(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    cart = await create_user_cart(client, user)
    assert cart["cart_token"] is None
    shown = await client.get(f"{API}/carts/{cart['id']}", headers=user.headers)
    assert shown.status_code == 200


async def test_a_cart_may_be_created_without_a_body_or_in_the_shop_currency(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post(f"{API}/carts")).status_code == 201
    response = await client.post(f"{API}/carts", json={"currency": "USD"})
    assert response.status_code == 201


async def test_a_cart_in_another_currency_or_with_unknown_fields_is_refused(
    client: httpx.AsyncClient,
) -> None:
    assert_problem(
        await client.post(f"{API}/carts", json={"currency": "EUR"}), 422, "currency_not_supported"
    )
    assert_problem(
        await client.post(f"{API}/carts", json={"currency": "dollars"}), 422, "validation_failed"
    )
    assert_problem(
        await client.post(f"{API}/carts", json={"user_id": "someone"}), 422, "validation_failed"
    )


# ---------------------------------------------------------------- who may reach a cart


async def test_a_guest_cart_answers_only_its_token(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    cart = await create_guest_cart(client)
    other = await create_guest_cart(client)
    user = await make_user()
    url = f"{API}/carts/{cart['id']}"
    assert (await client.get(url, headers=token_headers(cart))).status_code == 200
    for headers in (
        {},
        {"X-Cart-Token": "wrong"},
        token_headers(other),
        user.headers,
    ):
        assert_problem(await client.get(url, headers=headers), 404, "cart_not_found")


async def test_a_user_cart_answers_only_its_users_token(
    client: httpx.AsyncClient, conn: Connection, make_user: MakeUser
) -> None:
    owner, intruder = await make_user(), await make_user()
    cart = await create_user_cart(client, owner)
    guest = await create_guest_cart(client)
    url = f"{API}/carts/{cart['id']}"
    [sku] = await make_skus(conn, count=1)
    for headers in ({}, intruder.headers, token_headers(guest)):
        assert_problem(await client.get(url, headers=headers), 404, "cart_not_found")
        assert_problem(await add(client, cart["id"], headers, sku), 404, "cart_not_found")


async def test_a_missing_or_malformed_cart_id_is_not_found(client: httpx.AsyncClient) -> None:
    cart = await create_guest_cart(client)
    for cart_id in ("00000000-0000-4000-8000-000000000000", "not-a-uuid", "%27%20OR%201=1"):
        response = await client.get(f"{API}/carts/{cart_id}", headers=token_headers(cart))
        assert_problem(response, 404, "cart_not_found")


async def test_a_bad_bearer_token_is_401_not_a_guest(client: httpx.AsyncClient) -> None:
    cart = await create_guest_cart(client)
    response = await client.get(
        f"{API}/carts/{cart['id']}",
        headers={**token_headers(cart), "Authorization": "Bearer not-a-jwt"},
    )
    assert_problem(response, 401, "invalid_token")


# ---------------------------------------------------------------- lines


async def test_adding_items_answers_201_with_the_priced_cart(
    client: httpx.AsyncClient, conn: Connection
) -> None:
    product = await make_product(conn, prices=("12.50", "3.99"), name="Mug")
    a, b = (v.sku for v in product.variants)
    cart = await create_guest_cart(client)
    headers = token_headers(cart)
    assert (await add(client, cart["id"], headers, a, 2)).status_code == 201
    response = await add(client, cart["id"], headers, b, 1)
    assert response.status_code == 201
    body = response.json()
    assert [
        (i["sku"], i["name"], i["unit_price"], i["quantity"], i["line_total"])
        for i in body["items"]
    ] == [
        (a, "Mug", usd("12.50"), 2, usd("25.00")),
        (b, "Mug", usd("3.99"), 1, usd("3.99")),
    ]
    assert (body["subtotal"], body["discount"], body["shipping"], body["tax"], body["total"]) == (
        usd("28.99"),
        usd("0.00"),
        usd("0.00"),
        usd("0.00"),
        usd("28.99"),
    )
    assert (body["version"], response.headers["etag"]) == (3, '"3"')


async def test_adding_a_sku_twice_increases_the_line(
    client: httpx.AsyncClient, conn: Connection
) -> None:
    [sku] = await make_skus(conn, count=1)
    cart = await create_guest_cart(client)
    await add(client, cart["id"], token_headers(cart), sku, 2)
    body = (await add(client, cart["id"], token_headers(cart), sku, 3)).json()
    assert [(i["sku"], i["quantity"]) for i in body["items"]] == [(sku, 5)]


async def test_a_cart_shows_the_price_the_catalog_has_now(
    client: httpx.AsyncClient, conn: Connection
) -> None:
    [sku] = await make_skus(conn, count=1, price="10.00")
    cart = await create_guest_cart(client)
    await add(client, cart["id"], token_headers(cart), sku, 3)
    await catalog.update_variant(conn, sku=sku, currency="USD", price=money("8.00"))
    body = (await client.get(f"{API}/carts/{cart['id']}", headers=token_headers(cart))).json()
    assert (body["items"][0]["unit_price"], body["total"]) == (usd("8.00"), usd("24.00"))


async def test_adding_unknown_archived_or_out_of_range_items_fails_with_its_code(
    client: httpx.AsyncClient, conn: Connection
) -> None:
    archived = await make_product(conn)
    await catalog.archive_product(conn, product_id=archived.id)
    [sku] = await make_skus(conn, count=1)
    cart = await create_guest_cart(client)
    headers = token_headers(cart)
    assert_problem(await add(client, cart["id"], headers, "NOPE-404"), 404, "sku_not_found")
    assert_problem(
        await add(client, cart["id"], headers, archived.variants[0].sku), 409, "sku_unavailable"
    )
    for quantity in (0, 100, -1):
        assert_problem(
            await add(client, cart["id"], headers, sku, quantity), 422, "validation_failed"
        )
    response = await client.post(
        f"{API}/carts/{cart['id']}/items",
        json={"sku": sku, "quantity": 1, "price": usd("0.01")},
        headers=headers,
    )
    assert_problem(response, 422, "validation_failed")
    await add(client, cart["id"], headers, sku, 60)
    assert_problem(await add(client, cart["id"], headers, sku, 40), 422, "invalid_quantity")


async def test_the_hundred_and_first_line_is_refused(
    client: httpx.AsyncClient, conn: Connection
) -> None:
    skus = await make_skus(conn, count=101)
    cart = await create_guest_cart(client)
    owner = CartOwner(cart_token=cart["cart_token"])
    for sku in skus[:100]:
        await service.add_item(conn, cart_id=cart_id_of(cart), owner=owner, sku=sku, quantity=1)
    assert_problem(
        await add(client, cart["id"], token_headers(cart), skus[100]), 422, "too_many_lines"
    )


async def test_a_line_is_updated_removed_by_zero_and_deleted(
    client: httpx.AsyncClient, conn: Connection
) -> None:
    a, b, c = await make_skus(conn, count=3)
    cart = await create_guest_cart(client)
    headers = token_headers(cart)
    await add(client, cart["id"], headers, a)
    await add(client, cart["id"], headers, b)
    body = (await add(client, cart["id"], headers, c)).json()
    line_a, line_b, line_c = (item["id"] for item in body["items"])
    items_url = f"{API}/carts/{cart['id']}/items"

    response = await client.patch(f"{items_url}/{line_a}", json={"quantity": 7}, headers=headers)
    assert response.status_code == 200
    assert [(i["sku"], i["quantity"]) for i in response.json()["items"]] == [
        (a, 7),
        (b, 1),
        (c, 1),
    ]
    response = await client.patch(f"{items_url}/{line_b}", json={"quantity": 0}, headers=headers)
    assert [i["sku"] for i in response.json()["items"]] == [a, c]
    response = await client.delete(f"{items_url}/{line_c}", headers=headers)
    assert response.status_code == 200
    assert [i["sku"] for i in response.json()["items"]] == [a]
    assert response.json()["version"] == 7

    assert_problem(
        await client.delete(f"{items_url}/{line_c}", headers=headers), 404, "cart_item_not_found"
    )
    assert_problem(
        await client.patch(f"{items_url}/{line_b}", json={"quantity": 1}, headers=headers),
        404,
        "cart_item_not_found",
    )
    assert_problem(
        await client.patch(f"{items_url}/not-an-id", json={"quantity": 1}, headers=headers),
        404,
        "cart_item_not_found",
    )
    assert_problem(
        await client.patch(f"{items_url}/{line_a}", json={"quantity": 100}, headers=headers),
        422,
        "validation_failed",
    )
    assert_problem(
        await client.delete(f"{items_url}/{line_a}", headers={"X-Cart-Token": "x"}),
        404,
        "cart_not_found",
    )


# ---------------------------------------------------------------- version, closed carts


async def test_if_match_makes_a_change_conditional_on_the_version(
    client: httpx.AsyncClient, conn: Connection
) -> None:
    [sku] = await make_skus(conn, count=1)
    cart = await create_guest_cart(client)
    url = f"{API}/carts/{cart['id']}/items"
    body = {"sku": sku, "quantity": 1}
    headers = token_headers(cart)
    response = await client.post(url, json=body, headers={**headers, "If-Match": '"1"'})
    assert response.status_code == 201
    assert response.headers["etag"] == '"2"'
    stale = await client.post(url, json=body, headers={**headers, "If-Match": "1"})
    assert_problem(stale, 412, "version_mismatch")
    assert (
        await client.post(url, json=body, headers={**headers, "If-Match": "2"})
    ).status_code == 201
    assert (
        await client.post(url, json=body, headers={**headers, "If-Match": "*"})
    ).status_code == 201
    malformed = await client.post(url, json=body, headers={**headers, "If-Match": "abc"})
    assert_problem(malformed, 400, "if_match_invalid")
    shown = await client.get(f"{API}/carts/{cart['id']}", headers=headers)
    assert shown.json()["items"][0]["quantity"] == 3


async def test_a_checked_out_cart_refuses_every_change_with_cart_closed(
    client: httpx.AsyncClient, conn: Connection
) -> None:
    [sku] = await make_skus(conn, count=1)
    coupon = await make_coupon(conn, percent_off=Decimal(5))
    cart = await create_guest_cart(client)
    headers = token_headers(cart)
    item_id = (await add(client, cart["id"], headers, sku)).json()["items"][0]["id"]
    await service.mark_checked_out(conn, cart_id=cart_id_of(cart))

    base = f"{API}/carts/{cart['id']}"
    attempts = [
        client.post(f"{base}/items", json={"sku": sku, "quantity": 1}, headers=headers),
        client.patch(f"{base}/items/{item_id}", json={"quantity": 2}, headers=headers),
        client.delete(f"{base}/items/{item_id}", headers=headers),
        client.put(f"{base}/coupon", json={"code": coupon.coupon.code}, headers=headers),
        client.delete(f"{base}/coupon", headers=headers),
    ]
    for attempt in attempts:
        assert_problem(await attempt, 409, "cart_closed")
    shown = (await client.get(base, headers=headers)).json()
    assert (shown["status"], len(shown["items"])) == ("checked_out", 1)


# ---------------------------------------------------------------- shipping and tax


async def test_country_adds_shipping_and_its_tax_and_a_method_can_be_chosen(
    client: httpx.AsyncClient, conn: Connection
) -> None:
    [sku] = await make_skus(conn, count=1, price="10.00")
    cart = await create_guest_cart(client)
    headers = token_headers(cart)
    await add(client, cart["id"], headers, sku, 2)
    url = f"{API}/carts/{cart['id']}"

    us = (await client.get(url, params={"country": "us"}, headers=headers)).json()
    # 20.00 + 5.00 standard shipping, 7.25 % of 25.00 = 1.8125 → 1.81.
    assert (us["shipping"], us["tax"], us["total"], us["country"]) == (
        usd("5.00"),
        usd("1.81"),
        usd("26.81"),
        "US",
    )
    assert (us["shipping_method"], us["tax_rate"]) == ("standard", "0.0725")
    de = (
        await client.get(
            url, params={"country": "DE", "shipping_method": "express"}, headers=headers
        )
    ).json()
    # 20.00 + 15.00 express, 19 % of 35.00 = 6.65.
    assert (de["shipping"], de["tax"], de["total"]) == (usd("15.00"), usd("6.65"), usd("41.65"))
    elsewhere = (await client.get(url, params={"country": "JP"}, headers=headers)).json()
    assert (elsewhere["tax"], elsewhere["total"]) == (usd("0.00"), usd("25.00"))

    assert_problem(
        await client.get(url, params={"country": "USA"}, headers=headers), 422, "invalid_country"
    )
    assert_problem(
        await client.get(
            url, params={"country": "DE", "shipping_method": "overnight"}, headers=headers
        ),
        422,
        "shipping_method_invalid",
    )


async def test_shipping_methods_are_listed_for_a_country(client: httpx.AsyncClient) -> None:
    everywhere = (await client.get(f"{API}/shipping-methods")).json()
    assert everywhere["next_cursor"] is None
    assert [m["code"] for m in everywhere["items"]] == ["standard", "express", "overnight"]
    assert everywhere["items"][0] == {
        "code": "standard",
        "name": "Standard",
        "price": usd("5.00"),
        "estimated_days": "5-7",
        "free_from": usd("50.00"),
    }
    germany = (await client.get(f"{API}/shipping-methods", params={"country": "de"})).json()
    assert [m["code"] for m in germany["items"]] == ["standard", "express"]
    assert_problem(
        await client.get(f"{API}/shipping-methods", params={"country": "D1"}),
        422,
        "invalid_country",
    )


# ---------------------------------------------------------------- coupons


async def apply(
    client: httpx.AsyncClient, cart: dict[str, Any], code: str, headers: dict[str, str]
) -> httpx.Response:
    return await client.put(
        f"{API}/carts/{cart['id']}/coupon", json={"code": code}, headers=headers
    )


async def test_a_coupon_is_applied_shown_and_removed(
    client: httpx.AsyncClient, conn: Connection
) -> None:
    [sku] = await make_skus(conn, count=1, price="10.00")
    record = await make_coupon(conn, amount_off=money("3.00"))
    cart = await create_guest_cart(client)
    headers = token_headers(cart)
    await add(client, cart["id"], headers, sku, 2)

    response = await apply(client, cart, record.coupon.code.lower(), headers)
    assert response.status_code == 200
    body = response.json()
    assert (body["coupon"], body["discount"], body["total"]) == (
        record.coupon.code,
        usd("3.00"),
        usd("17.00"),
    )
    shown = (await client.get(f"{API}/carts/{cart['id']}", headers=headers)).json()
    assert shown["discount"] == usd("3.00")

    response = await client.delete(f"{API}/carts/{cart['id']}/coupon", headers=headers)
    assert response.status_code == 200
    assert (response.json()["coupon"], response.json()["total"]) == (None, usd("20.00"))


async def test_every_coupon_that_does_not_apply_is_coupon_invalid(
    client: httpx.AsyncClient, conn: Connection, make_user: MakeUser
) -> None:
    now = datetime.now(UTC)
    [sku] = await make_skus(conn, count=1, price="10.00")
    user = await make_user()
    expired = await make_coupon(conn, percent_off=Decimal(10), ends_at=now - timedelta(days=1))
    future = await make_coupon(conn, percent_off=Decimal(10), starts_at=now + timedelta(days=1))
    used_up = await make_coupon(conn, percent_off=Decimal(10), max_redemptions=1)
    await promotions.reserve_redemption(conn, code=used_up.coupon.code)
    minimum = await make_coupon(conn, amount_off=money("5.00"), min_subtotal=money("100.00"))
    once_each = await make_coupon(conn, percent_off=Decimal(10), per_customer_limit=1)
    order_id = await insert_order(conn, user_id=user.id, email=user.email)
    await promotions.record_redemption(
        conn, code=once_each.coupon.code, order_id=order_id, user_id=user.id, email=user.email
    )

    cart = await create_user_cart(client, user)
    await add(client, cart["id"], user.headers, sku, 2)
    for code in (
        "NO-SUCH-COUPON",
        expired.coupon.code,
        future.coupon.code,
        used_up.coupon.code,
        minimum.coupon.code,
        once_each.coupon.code,
    ):
        assert_problem(await apply(client, cart, code, user.headers), 422, "coupon_invalid")
    shown = (await client.get(f"{API}/carts/{cart['id']}", headers=user.headers)).json()
    assert (shown["coupon"], shown["version"]) == (None, 2)

    # Another customer may still use the per-customer coupon.
    guest = await create_guest_cart(client)
    await add(client, guest["id"], token_headers(guest), sku, 1)
    response = await apply(client, guest, once_each.coupon.code, token_headers(guest))
    assert response.status_code == 200


# ---------------------------------------------------------------- merge


async def test_a_signed_in_user_merges_a_guest_cart_into_theirs(
    client: httpx.AsyncClient, conn: Connection, make_user: MakeUser
) -> None:
    a, b = await make_skus(conn, count=2)
    user = await make_user()
    mine = await create_user_cart(client, user)
    await add(client, mine["id"], user.headers, a, 80)
    guest = await create_guest_cart(client)
    await add(client, guest["id"], token_headers(guest), a, 30)
    await add(client, guest["id"], token_headers(guest), b, 2)

    response = await client.post(
        f"{API}/carts/{mine['id']}/merge",
        json={"cart_token": guest["cart_token"]},
        headers=user.headers,
    )
    assert response.status_code == 200, response.text
    merged = response.json()
    assert merged["id"] == mine["id"]
    assert [(i["sku"], i["quantity"]) for i in merged["items"]] == [(a, 99), (b, 2)]

    guest_url = f"{API}/carts/{guest['id']}"
    assert (await client.get(guest_url, headers=token_headers(guest))).json()["status"] == "merged"
    assert_problem(await add(client, guest["id"], token_headers(guest), a), 409, "cart_closed")
    again = await client.post(
        f"{API}/carts/{mine['id']}/merge",
        json={"cart_token": guest["cart_token"]},
        headers=user.headers,
    )
    assert_problem(again, 409, "cart_closed")


async def test_merge_needs_a_user_their_own_cart_and_a_real_guest_token(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user, other = await make_user(), await make_user()
    mine = await create_user_cart(client, user)
    theirs = await create_user_cart(client, other)
    guest = await create_guest_cart(client)
    body = {"cart_token": guest["cart_token"]}

    anonymous = await client.post(f"{API}/carts/{mine['id']}/merge", json=body)
    assert_problem(anonymous, 401, "not_authenticated")
    into_theirs = await client.post(
        f"{API}/carts/{theirs['id']}/merge", json=body, headers=user.headers
    )
    assert_problem(into_theirs, 404, "cart_not_found")
    wrong_token = await client.post(
        f"{API}/carts/{mine['id']}/merge", json={"cart_token": "nope"}, headers=user.headers
    )
    assert_problem(wrong_token, 404, "cart_not_found")
    missing_token = await client.post(
        f"{API}/carts/{mine['id']}/merge", json={}, headers=user.headers
    )
    assert_problem(missing_token, 422, "validation_failed")
    # A guest cart cannot be the target of a merge either.
    into_guest = await client.post(
        f"{API}/carts/{guest['id']}/merge", json=body, headers=user.headers
    )
    assert_problem(into_guest, 404, "cart_not_found")


# ---------------------------------------------------------------- statements


async def test_get_cart_runs_the_same_few_statements_whatever_its_size(
    client: httpx.AsyncClient, conn: Connection
) -> None:
    skus = await make_skus(conn, count=30)
    counts = []
    for lines in (1, 30):
        cart = await create_guest_cart(client)
        owner = CartOwner(cart_token=cart["cart_token"])
        for sku in skus[:lines]:
            await service.add_item(conn, cart_id=cart_id_of(cart), owner=owner, sku=sku, quantity=1)
        async with logged_statements(conn) as statements:
            response = await client.get(
                f"{API}/carts/{cart['id']}", params={"country": "US"}, headers=token_headers(cart)
            )
        assert len(response.json()["items"]) == lines
        counts.append(len(statements))
    assert counts == [2, 2]


async def test_creating_a_cart_is_one_statement_and_adding_an_item_two_without_a_transaction(
    client: httpx.AsyncClient, conn: Connection
) -> None:
    [sku] = await make_skus(conn, count=1)
    async with logged_statements(conn) as creating:
        cart = await create_guest_cart(client)
    async with logged_statements(conn) as adding:
        assert (await add(client, cart["id"], token_headers(cart), sku)).status_code == 201
    # Not even a savepoint: the read, then the write conditional on the version read.
    assert (len(creating), len(adding)) == (1, 2)
    assert not [s for s in adding if "SAVEPOINT" in s or s.startswith(("BEGIN", "COMMIT"))]


@pytest.mark.parametrize("path", ["items", "coupon", "merge"])
async def test_changes_without_a_body_are_refused_as_validation_errors(
    client: httpx.AsyncClient, path: str
) -> None:
    cart = await create_guest_cart(client)
    method = client.put if path == "coupon" else client.post
    response = await method(f"{API}/carts/{cart['id']}/{path}", headers=token_headers(cart))
    if path == "merge":
        assert_problem(response, 401, "not_authenticated")
    else:
        assert_problem(response, 422, "validation_failed")
