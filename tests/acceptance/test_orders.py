"""api-contract.md, "Orders": reading, the transition table, cancellation, refunds."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from congocart.config import Settings
from congocart.core.db import Database
from tests.acceptance.conftest import (
    API,
    Roles,
    admin_headers,
    assert_page,
    assert_problem,
    available,
    check_out,
    committed_product,
    create_coupon,
    create_product,
    guest_cart_with,
    new_cart,
    place_order,
    usd,
)
from tests.checkout.conftest import gather_responses, stock_of
from tests.conftest import MakeUser, TestUser


def admin_path(order: dict[str, Any], action: str) -> str:
    return f"{API}/admin/orders/{order['id']}/{action}"


async def move(
    client: httpx.AsyncClient, order: dict[str, Any], action: str, who: TestUser
) -> httpx.Response:
    if action == "cancel":
        return await client.post(f"{API}/orders/{order['id']}/cancel", headers=who.headers)
    if action == "refund":
        return await client.post(
            admin_path(order, "refunds"), json={"reason": "goodwill"}, headers=who.headers
        )
    return await client.post(admin_path(order, action), headers=who.headers)


async def order_in(client: httpx.AsyncClient, roles: Roles, status: str) -> dict[str, Any]:
    """A customer's order brought to `status` through the back office."""
    order, _ = await place_order(client, roles.admin, user=roles.customer)
    path = {
        "paid": [],
        "fulfilling": ["fulfill"],
        "shipped": ["ship"],
        "delivered": ["ship", "deliver"],
        "cancelled": ["cancel"],
        "refunded": ["refund"],
    }[status]
    for action in path:
        response = await move(client, order, action, roles.staff)
        assert response.status_code in (200, 201), response.text
    current = (
        await client.get(f"{API}/orders/{order['id']}", headers=roles.customer.headers)
    ).json()
    assert current["status"] == status
    return current


async def test_a_user_lists_their_own_orders_newest_first_in_pages(
    client: httpx.AsyncClient, roles: Roles, make_user: MakeUser
) -> None:
    buyer = await make_user()
    placed = [(await place_order(client, roles.admin, user=buyer))[0]["id"] for _ in range(3)]
    await place_order(client, roles.admin, user=roles.customer)

    first = await client.get(f"{API}/orders", params={"limit": 2}, headers=buyer.headers)
    second = await client.get(
        f"{API}/orders",
        params={"limit": 2, "cursor": first.json()["next_cursor"]},
        headers=buyer.headers,
    )

    assert first.status_code == second.status_code == 200
    ids = [o["id"] for o in assert_page(first.json()) + assert_page(second.json())]
    assert ids == list(reversed(placed))
    assert second.json()["next_cursor"] is None
    assert_problem(await client.get(f"{API}/orders"), 401, "not_authenticated")


async def test_an_order_is_seen_by_its_owner_staff_and_admins_and_is_404_to_others(
    client: httpx.AsyncClient, roles: Roles, make_user: MakeUser
) -> None:
    order, _ = await place_order(client, roles.admin, user=roles.customer)
    stranger = await make_user()

    for who in (roles.customer, roles.staff, roles.admin):
        response = await client.get(f"{API}/orders/{order['id']}", headers=who.headers)
        assert response.status_code == 200
        assert response.json() == order
    assert_problem(await client.get(f"{API}/orders/{order['id']}", headers=stranger.headers), 404)
    assert_problem(
        await client.get(f"{API}/orders/{order['id']}/events", headers=stranger.headers), 404
    )
    assert_problem(
        await client.post(f"{API}/orders/{order['id']}/cancel", headers=stranger.headers), 404
    )


async def test_order_events_are_the_audit_history(client: httpx.AsyncClient, roles: Roles) -> None:
    order = await order_in(client, roles, "shipped")

    for who in (roles.customer, roles.staff, roles.admin):
        response = await client.get(f"{API}/orders/{order['id']}/events", headers=who.headers)
        assert response.status_code == 200
        events = assert_page(response.json())
        assert response.json()["next_cursor"] is None
        assert [e["to_status"] for e in events] == ["paid", "shipped"]
        assert {"created_at"} <= events[0].keys()


async def test_order_lines_keep_their_checkout_price_and_name(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    order, product = await place_order(client, roles.admin, user=roles.customer, price="10.00")
    sku = product["variants"][0]["sku"]

    await client.patch(
        f"{API}/admin/variants/{sku}",
        json={"price": usd("99.00"), "name": "Renamed"},
        headers=roles.admin.headers,
    )
    await client.patch(
        f"{API}/admin/products/{product['id']}",
        json={"name": "New name"},
        headers=roles.admin.headers,
    )

    again = (await client.get(f"{API}/orders/{order['id']}", headers=roles.customer.headers)).json()
    assert again["items"] == order["items"]
    assert again["items"][0]["unit_price"] == usd("10.00")


async def test_the_owner_cancels_a_paid_order_200_stock_back_once_and_payment_reversed(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    coupon = await create_coupon(client, roles.admin, percent_off="10", max_redemptions=1)
    product = await create_product(client, roles.admin, stock=5)
    sku = product["variants"][0]["sku"]
    cart = await new_cart(client, user=roles.customer, lines={sku: 2}, coupon=coupon["code"])
    order = (await check_out(client, cart)).json()
    assert await available(client, sku, product["id"]) == 3

    cancelled = await client.post(
        f"{API}/orders/{order['id']}/cancel", headers=roles.customer.headers
    )
    again = await client.post(f"{API}/orders/{order['id']}/cancel", headers=roles.customer.headers)

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["payment"]["status"] in ("voided", "refunded")
    assert_problem(again, 409, "invalid_transition")
    assert await available(client, sku, product["id"]) == 5
    # A cancelled checkout does not use up the coupon.
    other = await new_cart(client, lines={sku: 1}, coupon=coupon["code"])
    assert (await check_out(client, other)).status_code == 201


async def test_staff_cancel_a_fulfilling_order_and_stock_comes_back(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    order, product = await place_order(client, roles.admin, user=roles.customer, quantity=3)
    sku = product["variants"][0]["sku"]
    await move(client, order, "fulfill", roles.staff)

    response = await move(client, order, "cancel", roles.staff)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert await available(client, sku, product["id"]) == 10


async def test_an_owner_cancelling_after_shipping_gets_409_invalid_transition(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    order = await order_in(client, roles, "shipped")

    assert_problem(await move(client, order, "cancel", roles.customer), 409, "invalid_transition")


# Every (status, action) pair: the contract's table, anything else is 409.
ALLOWED = {
    ("paid", "fulfill"): "fulfilling",
    ("paid", "ship"): "shipped",
    ("fulfilling", "ship"): "shipped",
    ("shipped", "deliver"): "delivered",
    ("paid", "cancel"): "cancelled",
    ("fulfilling", "cancel"): "cancelled",
    ("paid", "refund"): "refunded",
    ("fulfilling", "refund"): "refunded",
    ("shipped", "refund"): "refunded",
    ("delivered", "refund"): "refunded",
}
STATUSES = ["paid", "fulfilling", "shipped", "delivered", "cancelled", "refunded"]
ACTIONS = ["fulfill", "ship", "deliver", "cancel", "refund"]


@pytest.mark.parametrize("status", STATUSES)
async def test_the_transition_table_as_staff(
    client: httpx.AsyncClient, roles: Roles, status: str
) -> None:
    for action in ACTIONS:
        order = await order_in(client, roles, status)
        response = await move(client, order, action, roles.staff)
        expected = ALLOWED.get((status, action))
        if expected is None:
            assert_problem(response, 409, "invalid_transition")
            continue
        assert response.status_code == (201 if action == "refund" else 200), response.text
        now = (await client.get(f"{API}/orders/{order['id']}", headers=roles.staff.headers)).json()
        assert now["status"] == expected, (status, action)


async def test_back_office_transitions_are_staff_or_admin_only(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    order, _ = await place_order(client, roles.admin, user=roles.customer)

    for action in ("fulfill", "ship", "deliver", "refund"):
        assert_problem(await move(client, order, action, roles.customer), 403)
    assert (await move(client, order, "fulfill", roles.admin)).status_code == 200


async def test_shipping_records_carrier_and_tracking(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    order, _ = await place_order(client, roles.admin, user=roles.customer)

    response = await client.post(
        admin_path(order, "ship"),
        json={"carrier": "UPS", "tracking_number": "1Z999"},
        headers=roles.staff.headers,
    )

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "shipped"


async def test_partial_refunds_keep_the_status_and_reaching_the_total_makes_it_refunded(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    order, _ = await place_order(client, roles.admin, user=roles.customer)
    total = order["total"]["amount"]  # 2 x 10.00 + 5.00 shipping + US tax 1.81 = 26.81

    partial = await client.post(
        admin_path(order, "refunds"),
        json={"amount": usd("6.81"), "reason": "scratched"},
        headers=roles.staff.headers,
    )
    still = (await client.get(f"{API}/orders/{order['id']}", headers=roles.staff.headers)).json()
    too_much = await client.post(
        admin_path(order, "refunds"),
        json={"amount": usd("20.01"), "reason": "too much"},
        headers=roles.staff.headers,
    )
    rest = await client.post(
        admin_path(order, "refunds"),
        json={"amount": usd("20.00"), "reason": "returned"},
        headers=roles.admin.headers,
    )
    done = (await client.get(f"{API}/orders/{order['id']}", headers=roles.staff.headers)).json()
    after = await client.post(
        admin_path(order, "refunds"), json={"reason": "again"}, headers=roles.staff.headers
    )

    assert total == "26.81"
    assert partial.status_code == 201, partial.text
    assert partial.json()["amount"] == usd("6.81")
    assert still["status"] == "paid"
    assert too_much.status_code == 422
    assert rest.status_code == 201
    assert done["status"] == "refunded"
    assert_problem(after, 409, "invalid_transition")


async def test_a_cancelled_order_cannot_be_refunded(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    order = await order_in(client, roles, "cancelled")

    response = await client.post(
        admin_path(order, "refunds"),
        json={"amount": usd("1.00"), "reason": "x"},
        headers=roles.staff.headers,
    )

    assert_problem(response, 409, "invalid_transition")


async def test_the_back_office_lists_every_order_filtered_by_status_and_customer(
    client: httpx.AsyncClient, roles: Roles, make_user: MakeUser
) -> None:
    buyer = await make_user()
    # Without an email in the checkout body, the order's is the account's.
    paid, _ = await place_order(client, roles.admin, user=buyer, email=None)
    shipped, _ = await place_order(client, roles.admin, user=buyer, email=None)
    await move(client, shipped, "ship", roles.staff)

    by_customer = await client.get(
        f"{API}/admin/orders", params={"customer": str(buyer.id)}, headers=roles.staff.headers
    )
    by_email = await client.get(
        f"{API}/admin/orders", params={"customer": buyer.email}, headers=roles.admin.headers
    )
    by_status = await client.get(
        f"{API}/admin/orders",
        params={"customer": str(buyer.id), "status": "shipped"},
        headers=roles.staff.headers,
    )

    assert [o["id"] for o in assert_page(by_customer.json())] == [shipped["id"], paid["id"]]
    assert [o["id"] for o in assert_page(by_email.json())] == [shipped["id"], paid["id"]]
    assert [o["id"] for o in assert_page(by_status.json())] == [shipped["id"]]
    assert_problem(await client.get(f"{API}/admin/orders", headers=roles.customer.headers), 403)


async def test_concurrent_cancels_restore_stock_exactly_once(
    committed_client: httpx.AsyncClient, committed_db: Database, settings: Settings
) -> None:
    admin = await admin_headers(committed_db, settings)
    sku = await committed_product(committed_client, admin, stock=5)
    cart = await guest_cart_with(committed_client, sku)
    order = (await check_out(committed_client, cart)).json()

    responses = await gather_responses(
        *(
            lambda: committed_client.post(f"{API}/orders/{order['id']}/cancel", headers=admin)
            for _ in range(5)
        )
    )

    assert sorted(r.status_code for r in responses) == [200] + [409] * 4
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "invalid_transition")
    async with committed_db.acquire() as conn:
        assert await stock_of(conn, sku) == (5, 0)
