"""Order routes through HTTP: the customer's view, the back office, the transition table."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from congocart.adapters.sandbox_gateway import SandboxGateway
from congocart.core import jobs
from congocart.core.db import Connection, Database
from congocart.core.money import Money
from congocart.orders import tasks
from congocart.orders.domain import TRANSITIONS, OrderAction, OrderStatus
from congocart.orders.schemas import order_to_response
from congocart.payments import service as payments
from congocart.payments.domain import PaymentUnavailable, Reversal
from tests.conftest import MakeUser, TestUser
from tests.orders.conftest import PlaceOrder

S = OrderStatus
A = OrderAction


async def available(conn: Connection, sku: str) -> int:
    value: int = await conn.fetchval("SELECT on_hand - reserved FROM variants WHERE sku = $1", sku)
    return value


@pytest.fixture
async def customer(make_user: MakeUser) -> TestUser:
    return await make_user()


@pytest.fixture
async def staff(make_user: MakeUser) -> TestUser:
    return await make_user(roles=("staff",))


@pytest.fixture
async def admin(make_user: MakeUser) -> TestUser:
    return await make_user(roles=("admin",))


# ---------------------------------------------------------------- reading


async def test_a_customer_lists_their_own_orders_newest_first_in_pages(
    client: httpx.AsyncClient, place_order: PlaceOrder, customer: TestUser, make_user: MakeUser
) -> None:
    other = await make_user()
    mine = [await place_order(user_id=customer.id, email=customer.email) for _ in range(3)]
    await place_order(user_id=other.id, email=other.email)

    seen: list[str] = []
    cursor = None
    for _ in range(3):
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        response = await client.get("/api/v1/orders", params=params, headers=customer.headers)
        assert response.status_code == 200
        body = response.json()
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [str(o.id) for o in reversed(mine)]


async def test_the_order_list_needs_a_token_and_a_sound_cursor(
    client: httpx.AsyncClient, customer: TestUser
) -> None:
    assert (await client.get("/api/v1/orders")).status_code == 401
    response = await client.get(
        "/api/v1/orders", params={"cursor": "not-a-cursor"}, headers=customer.headers
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_cursor"
    response = await client.get("/api/v1/orders", params={"limit": "0"}, headers=customer.headers)
    assert response.status_code == 422


async def test_the_owner_staff_and_admin_see_an_order_with_the_contract_fields(
    client: httpx.AsyncClient,
    place_order: PlaceOrder,
    customer: TestUser,
    staff: TestUser,
    admin: TestUser,
) -> None:
    order = await place_order(user_id=customer.id, email=customer.email)
    for user in (customer, staff, admin):
        response = await client.get(f"/api/v1/orders/{order.id}", headers=user.headers)
        assert response.status_code == 200
        body = response.json()
        assert body == order_to_response(order) | {
            "created_at": body["created_at"],
            "updated_at": body["updated_at"],
        }
    assert body["number"] == order.number
    assert body["status"] == "paid"
    assert body["payment"] == {"status": "captured", "last4": "4242"}
    assert body["total"]["currency"] == "USD"
    assert body["shipping_address"]["country"] == "GB"


async def test_another_customers_order_is_not_found(
    client: httpx.AsyncClient, place_order: PlaceOrder, customer: TestUser, make_user: MakeUser
) -> None:
    order = await place_order(user_id=customer.id)
    stranger = await make_user()
    for path in (f"/api/v1/orders/{order.id}", f"/api/v1/orders/{order.id}/events"):
        response = await client.get(path, headers=stranger.headers)
        assert response.status_code == 404
        assert response.json()["code"] == "order_not_found"
    response = await client.post(f"/api/v1/orders/{order.id}/cancel", headers=stranger.headers)
    assert response.status_code == 404
    assert (await client.get(f"/api/v1/orders/{order.id}")).status_code == 401


@pytest.mark.parametrize("order_id", [str(uuid.uuid4()), "not-a-uuid", "1%20OR%201=1"])
async def test_an_unknown_or_malformed_order_id_is_not_found(
    client: httpx.AsyncClient, admin: TestUser, order_id: str
) -> None:
    for method, path in (
        ("GET", f"/api/v1/orders/{order_id}"),
        ("GET", f"/api/v1/orders/{order_id}/events"),
        ("POST", f"/api/v1/orders/{order_id}/cancel"),
        ("POST", f"/api/v1/admin/orders/{order_id}/fulfill"),
        ("POST", f"/api/v1/admin/orders/{order_id}/ship"),
        ("POST", f"/api/v1/admin/orders/{order_id}/deliver"),
    ):
        response = await client.request(method, path, headers=admin.headers)
        assert response.status_code == 404, (method, path)
    response = await client.post(
        f"/api/v1/admin/orders/{order_id}/refunds", json={"reason": "x"}, headers=admin.headers
    )
    assert response.status_code == 404


async def test_the_events_history_records_who_when_from_to_and_why(
    client: httpx.AsyncClient, place_order: PlaceOrder, customer: TestUser, staff: TestUser
) -> None:
    order = await place_order(user_id=customer.id)
    base = f"/api/v1/admin/orders/{order.id}"
    assert (await client.post(f"{base}/fulfill", headers=staff.headers)).status_code == 200
    ship = await client.post(
        f"{base}/ship",
        json={"carrier": "DHL", "tracking_number": "JD0001"},
        headers=staff.headers,
    )
    assert ship.status_code == 200
    assert ship.json()["carrier"] == "DHL"
    assert ship.json()["tracking_number"] == "JD0001"

    response = await client.get(f"/api/v1/orders/{order.id}/events", headers=customer.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["next_cursor"] is None
    steps = [
        (e["actor_role"], e["actor_id"], e["action"], e["from_status"], e["to_status"])
        for e in body["items"]
    ]
    assert steps == [
        ("owner", str(customer.id), "checkout", None, "paid"),
        ("staff", str(staff.id), "fulfill", "paid", "fulfilling"),
        ("staff", str(staff.id), "ship", "fulfilling", "shipped"),
    ]
    assert body["items"][0]["reason"] == "paid at checkout"
    assert all(e["created_at"].endswith("Z") for e in body["items"])


# ---------------------------------------------------------------- cancelling


async def test_the_owner_cancels_a_paid_order_stock_comes_back_and_payment_is_voided(
    client: httpx.AsyncClient, conn: Connection, place_order: PlaceOrder, customer: TestUser
) -> None:
    order = await place_order(user_id=customer.id, prices=("10.00", "4.00"), quantity=3, stock=5)
    skus = [item.sku for item in order.items]
    assert [await available(conn, sku) for sku in skus] == [2, 2]

    response = await client.post(
        f"/api/v1/orders/{order.id}/cancel",
        json={"reason": "changed my mind"},
        headers=customer.headers,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "cancelled"
    assert body["payment"]["status"] == "voided"
    assert [await available(conn, sku) for sku in skus] == [5, 5]
    reversals = await conn.fetch("SELECT kind, amount_minor FROM sandbox_refunds")
    assert [tuple(r) for r in reversals] == [("void", order.total.to_minor())]
    refund = await conn.fetchrow("SELECT status, amount_minor FROM refunds")
    assert tuple(refund) == ("succeeded", order.total.to_minor())
    events = (
        await client.get(f"/api/v1/orders/{order.id}/events", headers=customer.headers)
    ).json()
    last = events["items"][-1]
    assert (last["actor_role"], last["from_status"], last["to_status"], last["reason"]) == (
        "owner",
        "paid",
        "cancelled",
        "changed my mind",
    )


async def test_cancelling_twice_restores_stock_once_and_answers_409(
    client: httpx.AsyncClient, conn: Connection, place_order: PlaceOrder, customer: TestUser
) -> None:
    order = await place_order(user_id=customer.id, quantity=2, stock=4)
    sku = order.items[0].sku
    first = await client.post(f"/api/v1/orders/{order.id}/cancel", headers=customer.headers)
    second = await client.post(f"/api/v1/orders/{order.id}/cancel", headers=customer.headers)
    assert first.status_code == 200
    assert second.status_code == 409
    assert second.json()["code"] == "invalid_transition"
    assert await available(conn, sku) == 4
    assert await conn.fetchval("SELECT count(*) FROM sandbox_refunds") == 1


async def test_an_owner_cannot_cancel_after_shipping_but_staff_see_the_same_409(
    client: httpx.AsyncClient, place_order: PlaceOrder, customer: TestUser, staff: TestUser
) -> None:
    order = await place_order(user_id=customer.id)
    await client.post(f"/api/v1/admin/orders/{order.id}/ship", headers=staff.headers)
    for user in (customer, staff):
        response = await client.post(f"/api/v1/orders/{order.id}/cancel", headers=user.headers)
        assert response.status_code == 409
        assert response.json()["code"] == "invalid_transition"


async def test_the_owner_may_cancel_while_the_order_is_being_fulfilled(
    client: httpx.AsyncClient, place_order: PlaceOrder, customer: TestUser, staff: TestUser
) -> None:
    order = await place_order(user_id=customer.id)
    await client.post(f"/api/v1/admin/orders/{order.id}/fulfill", headers=staff.headers)
    response = await client.post(f"/api/v1/orders/{order.id}/cancel", headers=customer.headers)
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


async def test_staff_cancel_a_customers_order_and_the_event_names_staff(
    client: httpx.AsyncClient, place_order: PlaceOrder, customer: TestUser, staff: TestUser
) -> None:
    order = await place_order(user_id=customer.id)
    response = await client.post(f"/api/v1/orders/{order.id}/cancel", headers=staff.headers)
    assert response.status_code == 200
    events = (await client.get(f"/api/v1/orders/{order.id}/events", headers=staff.headers)).json()
    assert events["items"][-1]["actor_role"] == "staff"
    assert events["items"][-1]["actor_id"] == str(staff.id)


async def test_cancelling_releases_the_coupon_redemption(
    client: httpx.AsyncClient, conn: Connection, place_order: PlaceOrder, customer: TestUser
) -> None:
    await conn.execute(
        """
        INSERT INTO coupons (code, amount_off_minor, currency, max_redemptions, redemptions)
        VALUES ('ONCE', 100, 'USD', 1, 1)
        """
    )
    order = await place_order(user_id=customer.id, discount="1.00", coupon_code="ONCE")
    response = await client.post(f"/api/v1/orders/{order.id}/cancel", headers=customer.headers)
    assert response.status_code == 200
    assert await conn.fetchval("SELECT redemptions FROM coupons WHERE code = 'ONCE'") == 0


async def test_cancel_rejects_unknown_body_fields(
    client: httpx.AsyncClient, place_order: PlaceOrder, customer: TestUser
) -> None:
    order = await place_order(user_id=customer.id)
    response = await client.post(
        f"/api/v1/orders/{order.id}/cancel", json={"status": "refunded"}, headers=customer.headers
    )
    assert response.status_code == 422


# ---------------------------------------------------------------- back office


async def test_staff_list_every_order_filtered_by_status_and_customer(
    client: httpx.AsyncClient,
    place_order: PlaceOrder,
    customer: TestUser,
    staff: TestUser,
    make_user: MakeUser,
) -> None:
    other = await make_user()
    a = await place_order(user_id=customer.id, email=customer.email)
    b = await place_order(user_id=customer.id, email=customer.email)
    c = await place_order(user_id=other.id, email=other.email)
    await client.post(f"/api/v1/admin/orders/{b.id}/ship", headers=staff.headers)

    async def ids(**params: str) -> list[str]:
        response = await client.get("/api/v1/admin/orders", params=params, headers=staff.headers)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert (await ids(customer=str(customer.id))) == [str(b.id), str(a.id)]
    assert (await ids(customer=customer.email.upper())) == [str(b.id), str(a.id)]
    assert (await ids(customer=str(customer.id), status="shipped")) == [str(b.id)]
    assert str(c.id) in await ids(status="paid")
    assert str(b.id) not in await ids(status="paid")
    first = await client.get("/api/v1/admin/orders", params={"limit": "1"}, headers=staff.headers)
    assert len(first.json()["items"]) == 1
    assert first.json()["next_cursor"] is not None
    bad = await client.get("/api/v1/admin/orders", params={"status": "lost"}, headers=staff.headers)
    assert bad.status_code == 422


ADMIN_ROUTES = [
    ("GET", "/api/v1/admin/orders", None),
    ("POST", "/api/v1/admin/orders/{id}/fulfill", None),
    ("POST", "/api/v1/admin/orders/{id}/ship", {}),
    ("POST", "/api/v1/admin/orders/{id}/deliver", None),
    ("POST", "/api/v1/admin/orders/{id}/refunds", {"reason": "because"}),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
async def test_a_customer_gets_403_on_every_admin_order_route_even_for_their_own_order(
    client: httpx.AsyncClient,
    place_order: PlaceOrder,
    customer: TestUser,
    method: str,
    path: str,
    body: object,
) -> None:
    order = await place_order(user_id=customer.id)
    url = path.format(id=order.id)
    response = await client.request(method, url, json=body, headers=customer.headers)
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    anonymous = await client.request(method, url, json=body)
    assert anonymous.status_code == 401


async def test_ship_rejects_unknown_fields_and_over_long_values(
    client: httpx.AsyncClient, place_order: PlaceOrder, staff: TestUser
) -> None:
    order = await place_order(user_id=None)
    url = f"/api/v1/admin/orders/{order.id}/ship"
    assert (await client.post(url, json={"status": "x"}, headers=staff.headers)).status_code == 422
    too_long = {"carrier": "x" * 101}
    assert (await client.post(url, json=too_long, headers=staff.headers)).status_code == 422


# ---------------------------------------------------------------- the transition table


Drive = Callable[[str], Awaitable[None]]


async def drive_to(
    client: httpx.AsyncClient, order_id: str, status: OrderStatus, staff: TestUser
) -> None:
    """Move a fresh paid order to `status` through the API."""
    base = f"/api/v1/admin/orders/{order_id}"
    steps = {
        S.PAID: [],
        S.FULFILLING: [f"{base}/fulfill"],
        S.SHIPPED: [f"{base}/ship"],
        S.DELIVERED: [f"{base}/ship", f"{base}/deliver"],
        S.CANCELLED: [f"/api/v1/orders/{order_id}/cancel"],
        S.REFUNDED: [f"{base}/refunds"],
    }[status]
    for url in steps:
        body = {"reason": "setup"} if url.endswith("/refunds") else None
        response = await client.post(url, json=body, headers=staff.headers)
        assert response.status_code in (200, 201), response.text


def action_url(order_id: str, action: OrderAction) -> str:
    if action is A.CANCEL:
        return f"/api/v1/orders/{order_id}/cancel"
    if action is A.REFUND:
        return f"/api/v1/admin/orders/{order_id}/refunds"
    return f"/api/v1/admin/orders/{order_id}/{action.value}"


@pytest.mark.parametrize("action", list(OrderAction))
@pytest.mark.parametrize("status", list(OrderStatus))
async def test_every_status_and_action_follows_the_transition_table(
    client: httpx.AsyncClient,
    place_order: PlaceOrder,
    staff: TestUser,
    status: OrderStatus,
    action: OrderAction,
) -> None:
    order = await place_order(user_id=None)
    await drive_to(client, str(order.id), status, staff)
    body = {"reason": "table"} if action is A.REFUND else None
    response = await client.post(
        action_url(str(order.id), action), json=body, headers=staff.headers
    )
    expected = TRANSITIONS.get((status, action))
    if expected is None:
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "invalid_transition"
        after = await client.get(f"/api/v1/orders/{order.id}", headers=staff.headers)
        assert after.json()["status"] == status.value
    else:
        assert response.status_code == (201 if action is A.REFUND else 200), response.text
        after = await client.get(f"/api/v1/orders/{order.id}", headers=staff.headers)
        assert after.json()["status"] == expected.value


# ---------------------------------------------------------------- refunds


async def test_partial_refunds_keep_the_status_until_they_reach_the_total(
    client: httpx.AsyncClient, conn: Connection, place_order: PlaceOrder, staff: TestUser
) -> None:
    order = await place_order(user_id=None, prices=("10.00",), quantity=1, shipping="0.00")
    assert str(order.total.amount) == "12.00"
    url = f"/api/v1/admin/orders/{order.id}/refunds"
    first = await client.post(
        url,
        json={"amount": {"amount": "5.00", "currency": "USD"}, "reason": "scratched"},
        headers=staff.headers,
    )
    assert first.status_code == 201
    refund = first.json()
    assert refund["amount"] == {"amount": "5.00", "currency": "USD"}
    assert refund["status"] == "succeeded"
    assert refund["reason"] == "scratched"
    assert refund["order_id"] == str(order.id)
    shown = (await client.get(f"/api/v1/orders/{order.id}", headers=staff.headers)).json()
    assert shown["status"] == "paid"
    assert shown["payment"]["status"] == "partially_refunded"
    assert shown["refunded"] == {"amount": "5.00", "currency": "USD"}

    over = await client.post(
        url,
        json={"amount": {"amount": "7.01", "currency": "USD"}, "reason": "too much"},
        headers=staff.headers,
    )
    assert over.status_code == 422
    assert over.json()["code"] == "invalid_refund_amount"

    rest = await client.post(url, json={"reason": "the rest"}, headers=staff.headers)
    assert rest.status_code == 201
    assert rest.json()["amount"] == {"amount": "7.00", "currency": "USD"}
    shown = (await client.get(f"/api/v1/orders/{order.id}", headers=staff.headers)).json()
    assert shown["status"] == "refunded"
    assert shown["payment"]["status"] == "refunded"
    assert await conn.fetchval("SELECT sum(amount_minor) FROM sandbox_refunds") == 1200

    again = await client.post(url, json={"reason": "once more"}, headers=staff.headers)
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_transition"
    events = (await client.get(f"/api/v1/orders/{order.id}/events", headers=staff.headers)).json()
    refunds = [
        (e["from_status"], e["to_status"]) for e in events["items"] if e["action"] == "refund"
    ]
    assert refunds == [("paid", "paid"), ("paid", "refunded")]


@pytest.mark.parametrize(
    "amount",
    [
        {"amount": "0.00", "currency": "USD"},
        {"amount": "-1.00", "currency": "USD"},
        {"amount": "1.001", "currency": "USD"},
        {"amount": "1.00", "currency": "EUR"},
        {"amount": 1.0, "currency": "USD"},
    ],
)
async def test_a_refund_amount_that_is_not_positive_exact_money_in_the_order_currency_is_422(
    client: httpx.AsyncClient, place_order: PlaceOrder, staff: TestUser, amount: object
) -> None:
    order = await place_order(user_id=None)
    response = await client.post(
        f"/api/v1/admin/orders/{order.id}/refunds",
        json={"amount": amount, "reason": "x"},
        headers=staff.headers,
    )
    assert response.status_code == 422


async def test_a_refund_needs_a_reason(
    client: httpx.AsyncClient, place_order: PlaceOrder, staff: TestUser
) -> None:
    order = await place_order(user_id=None)
    response = await client.post(
        f"/api/v1/admin/orders/{order.id}/refunds", json={}, headers=staff.headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"].endswith("reason")


async def test_a_cancelled_order_cannot_be_refunded(
    client: httpx.AsyncClient, place_order: PlaceOrder, staff: TestUser
) -> None:
    order = await place_order(user_id=None)
    await client.post(f"/api/v1/orders/{order.id}/cancel", headers=staff.headers)
    response = await client.post(
        f"/api/v1/admin/orders/{order.id}/refunds", json={"reason": "x"}, headers=staff.headers
    )
    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"


# ---------------------------------------------------------------- money back, later


class UnreachableGateway:
    """The outside world being down: every reversal fails before reaching the provider."""

    name = "sandbox"

    async def void(self, *, payment_ref: str, idempotency_key: str) -> Reversal:
        raise PaymentUnavailable("provider down")

    async def refund(self, *, payment_ref: str, amount: Money, idempotency_key: str) -> Reversal:
        raise PaymentUnavailable("provider down")


async def test_a_void_the_gateway_cannot_take_now_is_completed_by_the_outbox_job(
    app: FastAPI,
    client: httpx.AsyncClient,
    conn: Connection,
    db: Database,
    place_order: PlaceOrder,
    customer: TestUser,
) -> None:
    order = await place_order(user_id=customer.id)
    app.state.payments = UnreachableGateway()
    response = await client.post(f"/api/v1/orders/{order.id}/cancel", headers=customer.headers)
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["payment"]["status"] == "captured"  # not yet given back
    assert await conn.fetchval("SELECT status FROM refunds") == "pending"
    job = await conn.fetchrow(
        "SELECT id, kind, payload FROM jobs WHERE kind = 'orders.reverse_payment'"
    )
    assert job is not None

    payments.install_gateway(SandboxGateway(db))
    try:
        job_record = jobs.Job(
            id=job["id"],
            kind=job["kind"],
            payload=job["payload"],
            attempt=1,
            max_attempts=10,
            run_at=datetime.now(UTC),
            created_at=datetime.now(UTC),
        )
        await tasks.reverse_payment(conn, job_record)
        await tasks.reverse_payment(conn, job_record)  # at least once: a rerun is harmless
    finally:
        payments.install_gateway(None)
    assert await conn.fetchval("SELECT status FROM refunds") == "succeeded"
    assert [tuple(r) for r in await conn.fetch("SELECT kind FROM sandbox_refunds")] == [("void",)]
    shown = await client.get(f"/api/v1/orders/{order.id}", headers=customer.headers)
    assert shown.json()["payment"]["status"] == "voided"


async def test_a_refund_the_gateway_cannot_take_now_is_answered_pending(
    app: FastAPI, client: httpx.AsyncClient, place_order: PlaceOrder, staff: TestUser
) -> None:
    order = await place_order(user_id=None)
    app.state.payments = UnreachableGateway()
    response = await client.post(
        f"/api/v1/admin/orders/{order.id}/refunds", json={"reason": "x"}, headers=staff.headers
    )
    assert response.status_code == 201
    assert response.json()["status"] == "pending"


# ---------------------------------------------------------------- webhook events


async def test_each_state_change_publishes_its_webhook_event(
    client: httpx.AsyncClient, conn: Connection, place_order: PlaceOrder, staff: TestUser
) -> None:
    await conn.execute(
        "INSERT INTO webhooks (url, events, secret) VALUES ('http://127.0.0.1:9/h', $1, 's')",
        ["order.paid", "order.cancelled", "order.shipped", "order.delivered", "order.refunded"],
    )
    shipped = await place_order(user_id=None)
    cancelled = await place_order(user_id=None)
    base = f"/api/v1/admin/orders/{shipped.id}"
    await client.post(f"{base}/fulfill", headers=staff.headers)
    await client.post(f"{base}/ship", headers=staff.headers)
    await client.post(f"{base}/deliver", headers=staff.headers)
    await client.post(f"{base}/refunds", json={"reason": "broken"}, headers=staff.headers)
    await client.post(f"/api/v1/orders/{cancelled.id}/cancel", headers=staff.headers)

    async def published(order_id: object) -> list[tuple[str, str]]:
        rows = await conn.fetch(
            """
            SELECT event, payload->'data'->>'status' AS status FROM webhook_deliveries
            WHERE payload->'data'->>'id' = $1 ORDER BY created_at, payload->>'created_at'
            """,
            str(order_id),
        )
        return [(r["event"], r["status"]) for r in rows]

    assert await published(shipped.id) == [
        ("order.paid", "paid"),
        ("order.shipped", "shipped"),
        ("order.delivered", "delivered"),
        ("order.refunded", "refunded"),
    ]
    assert await published(cancelled.id) == [
        ("order.paid", "paid"),
        ("order.cancelled", "cancelled"),
    ]
    ids = await conn.fetch("SELECT payload->>'id' AS id FROM webhook_deliveries")
    assert len({r["id"] for r in ids}) == len(ids) == 6


# Well-formed JSON of the wrong shape, found by tests/fuzz: an id that is a number or
# false, a time past the calendar's ends once its offset applies. These were 500s.
HOSTILE_CURSORS = [
    "WyIyMDI2LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwgNV0",  # ["2026-01-01T00:00:00+00:00", 5]
    "WyIwMDAxMTAwMTAwMFoiLCBmYWxzZV0",  # ["00011001000Z", false]
    # ["0001-01-01T00:00:00+01:00", "00000000-0000-0000-0000-000000000000"]
    "WyIwMDAxLTAxLTAxVDAwOjAwOjAwKzAxOjAwIiwgIjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMCJd",
]


@pytest.mark.parametrize("cursor", HOSTILE_CURSORS)
@pytest.mark.parametrize("path", ["/api/v1/orders", "/api/v1/admin/orders"])
async def test_a_cursor_of_the_wrong_shape_is_400_invalid_cursor(
    client: httpx.AsyncClient, make_user: MakeUser, path: str, cursor: str
) -> None:
    admin = await make_user(roles=("admin",))
    response = await client.get(path, params={"cursor": cursor}, headers=admin.headers)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_cursor"
