"""Webhook administration through HTTP."""

from __future__ import annotations

import uuid

import httpx
import pytest

from congocart.core.db import Connection
from congocart.webhooks import service
from tests.conftest import MakeUser, TestUser


@pytest.fixture
async def admin(make_user: MakeUser) -> TestUser:
    return await make_user(roles=("admin",))


async def test_an_admin_subscribes_a_url_and_sees_the_secret_once(
    client: httpx.AsyncClient, conn: Connection, admin: TestUser
) -> None:
    response = await client.post(
        "/api/v1/admin/webhooks",
        json={"url": "https://example.com/hooks", "events": ["order.paid", "order.refunded"]},
        headers=admin.headers,
    )
    assert response.status_code == 201
    body = response.json()
    assert body["url"] == "https://example.com/hooks"
    assert body["events"] == ["order.paid", "order.refunded"]
    assert body["secret"].startswith("whsec_")
    assert len(body["secret"]) > 40
    stored = await conn.fetchrow(
        "SELECT secret, events FROM webhooks WHERE id = $1", uuid.UUID(body["id"])
    )
    assert stored["secret"] == body["secret"]
    deliveries = await client.get(
        f"/api/v1/admin/webhooks/{body['id']}/deliveries", headers=admin.headers
    )
    assert deliveries.status_code == 200
    assert deliveries.json() == {"items": [], "next_cursor": None}
    assert body["secret"] not in deliveries.text


@pytest.mark.parametrize(
    "body",
    [
        {"url": "https://example.com/h", "events": ["order.exploded"]},
        {"url": "https://example.com/h", "events": []},
        {"url": "https://example.com/h"},
        {"url": "ftp://example.com/h", "events": ["order.paid"]},
        {"url": "not a url", "events": ["order.paid"]},
        {"url": "https://u:p@example.com/h", "events": ["order.paid"]},
        {"url": "https://example.com/h", "events": ["order.paid"], "secret": "mine"},
        {"url": "https://example.com/h", "events": "order.paid"},
        {"url": 42, "events": ["order.paid"]},
    ],
)
async def test_a_webhook_with_unknown_events_a_bad_url_or_extra_fields_is_422(
    client: httpx.AsyncClient, admin: TestUser, body: dict[str, object]
) -> None:
    response = await client.post("/api/v1/admin/webhooks", json=body, headers=admin.headers)
    assert response.status_code == 422
    assert response.json()["errors"]


@pytest.mark.parametrize("roles", [("customer",), ("staff",)])
async def test_only_admins_manage_webhooks(
    client: httpx.AsyncClient, make_user: MakeUser, roles: tuple[str, ...]
) -> None:
    user = await make_user(roles=roles)
    body = {"url": "https://example.com/h", "events": ["order.paid"]}
    created = await client.post("/api/v1/admin/webhooks", json=body, headers=user.headers)
    assert created.status_code == 403
    listed = await client.get(
        f"/api/v1/admin/webhooks/{uuid.uuid4()}/deliveries", headers=user.headers
    )
    assert listed.status_code == 403
    assert (await client.post("/api/v1/admin/webhooks", json=body)).status_code == 401


@pytest.mark.parametrize("webhook_id", [str(uuid.uuid4()), "nope"])
async def test_deliveries_of_an_unknown_webhook_are_not_found(
    client: httpx.AsyncClient, admin: TestUser, webhook_id: str
) -> None:
    response = await client.get(
        f"/api/v1/admin/webhooks/{webhook_id}/deliveries", headers=admin.headers
    )
    assert response.status_code == 404
    assert response.json()["code"] == "webhook_not_found"


async def test_deliveries_are_listed_newest_first_in_pages(
    client: httpx.AsyncClient, conn: Connection, admin: TestUser
) -> None:
    created = await service.create_webhook(
        conn, url="https://example.com/h", events=["order.paid", "order.shipped"]
    )
    published = [
        await service.publish(conn, event=event, data={"n": n})
        for n, event in enumerate(["order.paid", "order.shipped", "order.cancelled"])
    ]
    url = f"/api/v1/admin/webhooks/{created.webhook.id}/deliveries"
    first = await client.get(url, params={"limit": "1"}, headers=admin.headers)
    assert first.status_code == 200
    page = first.json()
    assert len(page["items"]) == 1
    second = await client.get(
        url, params={"limit": "1", "cursor": page["next_cursor"]}, headers=admin.headers
    )
    items = page["items"] + second.json()["items"]
    assert second.json()["next_cursor"] is None
    # order.cancelled was not subscribed: no delivery.
    assert [(i["event_id"], i["event"]) for i in items] == [
        (str(published[1]), "order.shipped"),
        (str(published[0]), "order.paid"),
    ]
    assert items[0].keys() >= {"event_id", "event", "status_code", "attempt", "next_retry_at"}
    assert {(i["status"], i["attempt"], i["status_code"]) for i in items} == {("pending", 0, None)}
    bad = await client.get(url, params={"cursor": "%%%"}, headers=admin.headers)
    assert bad.status_code == 400


# Well-formed JSON of the wrong shape, found by tests/fuzz: an id that is a number or
# false, a time past the calendar's ends once its offset applies. These were 500s.
HOSTILE_CURSORS = [
    "WyIyMDI2LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwgNV0",  # ["2026-01-01T00:00:00+00:00", 5]
    "WyIwMDAxMTAwMTAwMFoiLCBmYWxzZV0",  # ["00011001000Z", false]
    # ["0001-01-01T00:00:00+01:00", "00000000-0000-0000-0000-000000000000"]
    "WyIwMDAxLTAxLTAxVDAwOjAwOjAwKzAxOjAwIiwgIjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMCJd",
]


@pytest.mark.parametrize("cursor", HOSTILE_CURSORS)
async def test_a_deliveries_cursor_of_the_wrong_shape_is_400(
    client: httpx.AsyncClient, admin: TestUser, cursor: str
) -> None:
    hook = await client.post(
        "/api/v1/admin/webhooks",
        json={"url": "https://example.com/hooks", "events": ["order.paid"]},
        headers=admin.headers,
    )
    response = await client.get(
        f"/api/v1/admin/webhooks/{hook.json()['id']}/deliveries",
        params={"cursor": cursor},
        headers=admin.headers,
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_cursor"
