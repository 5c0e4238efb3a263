"""api-contract.md, "Carts" and "Promotions, shipping, tax" (the cart's side)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx

from tests.acceptance.conftest import (
    API,
    Roles,
    assert_page,
    assert_problem,
    check_out,
    create_coupon,
    create_product,
    new_cart,
    new_sku,
    place_order,
    usd,
)
from tests.conftest import MakeUser

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
ITEM_FIELDS = {"id", "sku", "name", "unit_price", "quantity", "line_total"}


def assert_cart(body: dict[str, object]) -> None:
    assert body.keys() >= CART_FIELDS, body
    assert isinstance(body["items"], list)
    for item in body["items"]:
        assert item.keys() >= ITEM_FIELDS, item


async def test_anyone_creates_a_cart_201_and_a_guest_cart_shows_its_token(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    guest = await client.post(f"{API}/carts", json={"currency": "USD"})
    no_body = await client.post(f"{API}/carts")
    mine = await client.post(f"{API}/carts", json={}, headers=roles.customer.headers)

    assert guest.status_code == no_body.status_code == mine.status_code == 201
    for response in (guest, no_body, mine):
        assert_cart(response.json())
        assert response.json()["currency"] == "USD"
        assert response.json()["items"] == []
    assert isinstance(guest.json()["cart_token"], str)
    assert guest.json()["cart_token"]
    assert not mine.json().get("cart_token")
    # Shown once: reading the cart again does not reveal it.
    again = await client.get(
        f"{API}/carts/{guest.json()['id']}", headers={"X-Cart-Token": guest.json()["cart_token"]}
    )
    assert again.status_code == 200
    assert not again.json().get("cart_token")


async def test_a_user_may_hold_several_open_carts(client: httpx.AsyncClient, roles: Roles) -> None:
    first = await new_cart(client, user=roles.customer)
    second = await new_cart(client, user=roles.customer)

    assert first.id != second.id
    for cart in (first, second):
        assert (await client.get(cart.path, headers=roles.customer.headers)).status_code == 200


async def test_only_the_owner_reaches_a_cart_everyone_else_gets_404(
    client: httpx.AsyncClient, roles: Roles, make_user: MakeUser
) -> None:
    sku = await new_sku(client, roles.admin)
    guest = await new_cart(client, lines={sku: 1})
    users = await new_cart(client, user=roles.customer, lines={sku: 1})
    stranger = await make_user()
    other_guest = await new_cart(client)

    assert (await client.get(guest.path, headers=guest.headers)).status_code == 200
    assert (await client.get(users.path, headers=users.headers)).status_code == 200
    denied = [
        await client.get(guest.path),
        await client.get(guest.path, headers={"X-Cart-Token": "not-the-token"}),
        await client.get(guest.path, headers=other_guest.headers),
        await client.get(guest.path, headers=stranger.headers),
        await client.get(users.path),
        await client.get(users.path, headers=stranger.headers),
        await client.get(users.path, headers=other_guest.headers),
        await client.get(f"{API}/carts/{uuid.uuid4()}", headers=stranger.headers),
        await client.post(
            f"{users.path}/items", json={"sku": sku, "quantity": 1}, headers=stranger.headers
        ),
        await client.put(f"{users.path}/coupon", json={"code": "X"}, headers=stranger.headers),
        await client.post(
            f"{users.path}/checkout",
            json={
                "shipping_address": {
                    "name": "A",
                    "line1": "B",
                    "city": "C",
                    "postal_code": "1",
                    "country": "US",
                },
                "payment": {"token": "tok_visa"},
            },
            headers={**stranger.headers, "Idempotency-Key": "stranger-key"},
        ),
    ]
    for response in denied:
        assert_problem(response, 404)


async def test_adding_items_is_201_and_an_existing_sku_increases_its_quantity(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    product = await create_product(client, roles.admin, prices=("3.50",))
    sku = product["variants"][0]["sku"]
    cart = await new_cart(client)

    first = await client.post(
        f"{cart.path}/items", json={"sku": sku, "quantity": 2}, headers=cart.headers
    )
    second = await client.post(
        f"{cart.path}/items", json={"sku": sku, "quantity": 3}, headers=cart.headers
    )

    assert first.status_code == second.status_code == 201
    body = second.json()
    assert_cart(body)
    assert len(body["items"]) == 1
    item = body["items"][0]
    assert item["sku"] == sku
    assert item["quantity"] == 5
    assert item["unit_price"] == usd("3.50")
    assert item["line_total"] == usd("17.50")
    assert body["subtotal"] == usd("17.50")
    assert body["version"] > first.json()["version"]


async def test_an_unknown_sku_is_404_sku_not_found_and_an_archived_one_409_sku_unavailable(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    product = await create_product(client, roles.admin)
    sku = product["variants"][0]["sku"]
    await client.delete(f"{API}/admin/products/{product['id']}", headers=roles.admin.headers)
    cart = await new_cart(client)

    unknown = await client.post(
        f"{cart.path}/items", json={"sku": "NO-SUCH-SKU-1", "quantity": 1}, headers=cart.headers
    )
    archived = await client.post(
        f"{cart.path}/items", json={"sku": sku, "quantity": 1}, headers=cart.headers
    )

    assert_problem(unknown, 404, "sku_not_found")
    assert_problem(archived, 409, "sku_unavailable")


async def test_quantity_is_an_integer_from_1_to_99(client: httpx.AsyncClient, roles: Roles) -> None:
    sku = await new_sku(client, roles.admin)
    cart = await new_cart(client)

    for quantity in (0, 100, -1, 1.5, "2"):
        response = await client.post(
            f"{cart.path}/items", json={"sku": sku, "quantity": quantity}, headers=cart.headers
        )
        assert_problem(response, 422)
    for quantity in (1, 98):
        response = await client.post(
            f"{cart.path}/items", json={"sku": sku, "quantity": quantity}, headers=cart.headers
        )
        assert response.status_code == 201
    over = await client.post(
        f"{cart.path}/items", json={"sku": sku, "quantity": 1}, headers=cart.headers
    )
    assert_problem(over, 422)
    body = (await client.get(cart.path, headers=cart.headers)).json()
    assert body["items"][0]["quantity"] == 99


async def test_a_cart_holds_at_most_100_lines(client: httpx.AsyncClient, roles: Roles) -> None:
    product = await create_product(client, roles.admin, prices=("1.00",) * 100)
    extra = await new_sku(client, roles.admin)
    cart = await new_cart(client)
    for variant in product["variants"]:
        added = await client.post(
            f"{cart.path}/items", json={"sku": variant["sku"], "quantity": 1}, headers=cart.headers
        )
        assert added.status_code == 201

    response = await client.post(
        f"{cart.path}/items", json={"sku": extra, "quantity": 1}, headers=cart.headers
    )

    assert_problem(response, 422)
    assert len((await client.get(cart.path, headers=cart.headers)).json()["items"]) == 100


async def test_patching_a_line_sets_its_quantity_and_zero_removes_it(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    a, b = await new_sku(client, roles.admin), await new_sku(client, roles.admin)
    cart = await new_cart(client, lines={a: 1, b: 1})
    items = (await client.get(cart.path, headers=cart.headers)).json()["items"]
    line_a = next(i for i in items if i["sku"] == a)
    line_b = next(i for i in items if i["sku"] == b)

    changed = await client.patch(
        f"{cart.path}/items/{line_a['id']}", json={"quantity": 4}, headers=cart.headers
    )
    removed = await client.patch(
        f"{cart.path}/items/{line_b['id']}", json={"quantity": 0}, headers=cart.headers
    )

    assert changed.status_code == 200, changed.text
    assert [(i["sku"], i["quantity"]) for i in changed.json()["items"]] == [(a, 4), (b, 1)]
    assert removed.status_code == 200
    assert_cart(removed.json())
    assert [(i["sku"], i["quantity"]) for i in removed.json()["items"]] == [(a, 4)]


async def test_deleting_a_line_is_200_with_the_cart(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    sku = await new_sku(client, roles.admin)
    cart = await new_cart(client, lines={sku: 2})
    item = (await client.get(cart.path, headers=cart.headers)).json()["items"][0]

    response = await client.delete(f"{cart.path}/items/{item['id']}", headers=cart.headers)

    assert response.status_code == 200, response.text
    assert_cart(response.json())
    assert response.json()["items"] == []
    assert response.json()["subtotal"] == usd("0.00")


async def test_prices_in_a_cart_are_always_the_current_catalog_prices(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    sku = await new_sku(client, roles.admin, price="10.00")
    cart = await new_cart(client, lines={sku: 2})
    assert (await client.get(cart.path, headers=cart.headers)).json()["subtotal"] == usd("20.00")

    await client.patch(
        f"{API}/admin/variants/{sku}", json={"price": usd("7.00")}, headers=roles.admin.headers
    )

    body = (await client.get(cart.path, headers=cart.headers)).json()
    assert body["items"][0]["unit_price"] == usd("7.00")
    assert body["items"][0]["line_total"] == usd("14.00")
    assert body["subtotal"] == usd("14.00")


async def test_applying_a_coupon_is_200_and_removing_it_is_200(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    coupon = await create_coupon(client, roles.admin, percent_off="10")
    sku = await new_sku(client, roles.admin, price="20.00")
    cart = await new_cart(client, lines={sku: 1})

    applied = await client.put(
        f"{cart.path}/coupon", json={"code": coupon["code"]}, headers=cart.headers
    )
    removed = await client.delete(f"{cart.path}/coupon", headers=cart.headers)

    assert applied.status_code == 200, applied.text
    assert_cart(applied.json())
    assert applied.json()["coupon"]
    assert applied.json()["discount"] == usd("2.00")
    assert removed.status_code == 200
    assert removed.json()["coupon"] is None
    assert removed.json()["discount"] == usd("0.00")


async def test_unknown_expired_used_up_or_below_minimum_coupons_are_422_coupon_invalid(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    now = datetime.now(UTC)
    expired = await create_coupon(
        client,
        roles.admin,
        percent_off="10",
        starts_at=(now - timedelta(days=2)).isoformat(),
        ends_at=(now - timedelta(days=1)).isoformat(),
    )
    not_started = await create_coupon(
        client, roles.admin, percent_off="10", starts_at=(now + timedelta(days=1)).isoformat()
    )
    minimum = await create_coupon(
        client, roles.admin, amount_off=usd("5.00"), min_subtotal=usd("100.00")
    )
    single = await create_coupon(client, roles.admin, percent_off="10", max_redemptions=1)
    sku = await new_sku(client, roles.admin, price="20.00")
    spender = await new_cart(client, lines={sku: 1}, coupon=single["code"])
    assert (await check_out(client, spender)).status_code == 201
    cart = await new_cart(client, lines={sku: 1})

    for code in (
        "NO-SUCH-COUPON",
        expired["code"],
        not_started["code"],
        minimum["code"],
        single["code"],
    ):
        response = await client.put(
            f"{cart.path}/coupon", json={"code": code}, headers=cart.headers
        )
        assert_problem(response, 422, "coupon_invalid")
    assert (await client.get(cart.path, headers=cart.headers)).json()["coupon"] is None


async def test_merging_a_guest_cart_into_a_users_cart_is_200_with_the_merged_cart(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    a, b = await new_sku(client, roles.admin), await new_sku(client, roles.admin)
    mine = await new_cart(client, user=roles.customer, lines={a: 1})
    created = await client.post(f"{API}/carts", json={})
    token = created.json()["cart_token"]
    guest_path = f"{API}/carts/{created.json()['id']}"
    for sku in (a, b):
        await client.post(
            f"{guest_path}/items", json={"sku": sku, "quantity": 2}, headers={"X-Cart-Token": token}
        )

    response = await client.post(
        f"{mine.path}/merge", json={"cart_token": token}, headers=roles.customer.headers
    )
    anonymous = await client.post(f"{mine.path}/merge", json={"cart_token": token})

    assert response.status_code == 200, response.text
    assert_cart(response.json())
    assert response.json()["id"] == mine.id
    assert sorted((i["sku"], i["quantity"]) for i in response.json()["items"]) == sorted(
        [(a, 3), (b, 2)]
    )
    assert_problem(anonymous, 401, "not_authenticated")


async def test_any_change_to_a_checked_out_cart_is_409_cart_closed(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    sku = await new_sku(client, roles.admin)
    coupon = await create_coupon(client, roles.admin, percent_off="5")
    cart = await new_cart(client, lines={sku: 1})
    item = (await client.get(cart.path, headers=cart.headers)).json()["items"][0]
    assert (await check_out(client, cart)).status_code == 201

    changes = [
        await client.post(
            f"{cart.path}/items", json={"sku": sku, "quantity": 1}, headers=cart.headers
        ),
        await client.patch(
            f"{cart.path}/items/{item['id']}", json={"quantity": 2}, headers=cart.headers
        ),
        await client.delete(f"{cart.path}/items/{item['id']}", headers=cart.headers),
        await client.put(
            f"{cart.path}/coupon", json={"code": coupon["code"]}, headers=cart.headers
        ),
        await client.delete(f"{cart.path}/coupon", headers=cart.headers),
    ]
    for response in changes:
        assert_problem(response, 409, "cart_closed")


async def test_shipping_methods_are_a_list_with_code_name_price_and_estimated_days(
    client: httpx.AsyncClient,
) -> None:
    everywhere = await client.get(f"{API}/shipping-methods")
    to_gb = await client.get(f"{API}/shipping-methods", params={"country": "GB"})

    assert everywhere.status_code == to_gb.status_code == 200
    methods = assert_page(everywhere.json())
    assert everywhere.json()["next_cursor"] is None
    assert methods
    for method in methods:
        assert {"code", "name", "price", "estimated_days"} <= method.keys()
        assert set(method["price"]) == {"amount", "currency"}
    assert {m["code"] for m in assert_page(to_gb.json())} <= {m["code"] for m in methods}


async def test_the_cart_shows_tax_once_a_country_is_known(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    # 5.00 + standard shipping 5.00 = 10.00 taxable; US 7.25 % = 0.725 → 0.72 (half-even).
    sku = await new_sku(client, roles.admin, price="5.00")
    cart = await new_cart(client, lines={sku: 1})

    unknown = (await client.get(cart.path, headers=cart.headers)).json()
    us = (await client.get(cart.path, params={"country": "US"}, headers=cart.headers)).json()

    assert unknown["tax"] == usd("0.00")
    assert us["subtotal"] == usd("5.00")
    assert us["shipping"] == usd("5.00")
    assert us["tax"] == usd("0.72")
    assert us["total"] == usd("10.72")


async def test_tax_comes_from_the_default_rate_table(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    # 45.00 + express shipping 15.00 = 60.00 taxable.
    sku = await new_sku(client, roles.admin, price="45.00")
    cart = await new_cart(client, lines={sku: 1})
    expected = {
        "US": "4.35",  # 7.25 %
        "CA": "7.80",  # 13 %
        "GB": "12.00",  # 20 %
        "DE": "11.40",  # 19 %
        "FR": "12.00",  # 20 %
        "JP": "0.00",  # "*": 0
    }

    for country, tax in expected.items():
        response = await client.get(
            cart.path,
            params={"country": country, "shipping_method": "express"},
            headers=cart.headers,
        )
        body = response.json()
        assert body["shipping"] == usd("15.00"), body
        assert body["tax"] == usd(tax), (country, body)


async def test_totals_follow_the_formula_with_half_even_rounding(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    # subtotal 5 x 0.50 = 2.50; 5 % off = 0.125 → 0.12 (half-even, not 0.13);
    # standard shipping 5.00; taxable 2.50 - 0.12 + 5.00 = 7.38;
    # DE 19 % = 1.4022 → 1.40; total 2.50 - 0.12 + 5.00 + 1.40 = 8.78.
    coupon = await create_coupon(client, roles.admin, percent_off="5")
    sku = await new_sku(client, roles.admin, price="0.50")
    cart = await new_cart(client, lines={sku: 5}, coupon=coupon["code"])

    body = (await client.get(cart.path, params={"country": "DE"}, headers=cart.headers)).json()

    assert body["subtotal"] == usd("2.50")
    assert body["discount"] == usd("0.12")
    assert body["shipping"] == usd("5.00")
    assert body["tax"] == usd("1.40")
    assert body["total"] == usd("8.78")


async def test_a_discount_is_never_larger_than_the_subtotal(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    coupon = await create_coupon(client, roles.admin, amount_off=usd("50.00"))
    sku = await new_sku(client, roles.admin, price="4.00")
    cart = await new_cart(client, lines={sku: 1}, coupon=coupon["code"])

    body = (await client.get(cart.path, params={"country": "GB"}, headers=cart.headers)).json()

    # discount capped at 4.00; taxable 0.00 + 5.00 shipping; GB 20 % = 1.00.
    assert body["discount"] == usd("4.00")
    assert body["tax"] == usd("1.00")
    assert body["total"] == usd("6.00")


async def test_an_order_carries_the_totals_its_cart_showed(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    order, _ = await place_order(client, roles.admin, price="5.00", quantity=1)

    # US: 5.00 + 5.00 shipping, tax 0.725 → 0.72 (half-even).
    assert order["subtotal"] == usd("5.00")
    assert order["discount"] == usd("0.00")
    assert order["shipping"] == usd("5.00")
    assert order["tax"] == usd("0.72")
    assert order["total"] == usd("10.72")
