"""api-contract.md, "Conventions": body rules, money, lists, request ids, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from congocart.config import Settings
from congocart.core.db import Database
from congocart.core.security import issue_access_token, load_token_keys
from congocart.main import create_app
from tests.acceptance.conftest import (
    API,
    Roles,
    assert_page,
    assert_problem,
    checkout_body,
    create_coupon,
    create_product,
    new_cart,
    place_order,
    usd,
)
from tests.conftest import MakeUser

# ---------------------------------------------------------------- bodies


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        (
            "POST",
            "/auth/register",
            {"email": "mass@example.com", "password": "long enough pass", "role": "admin"},
        ),
        (
            "POST",
            "/auth/register",
            {"email": "mass@example.com", "password": "long enough pass", "roles": ["admin"]},
        ),
        ("POST", "/carts", {"currency": "USD", "owner": "someone"}),
        ("POST", "/carts", {"total": {"amount": "0.00", "currency": "USD"}}),
    ],
)
async def test_unknown_body_fields_are_rejected_with_422(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any]
) -> None:
    response = await client.request(method, f"{API}{path}", json=body)

    problem = assert_problem(response, 422, "validation_failed")
    assert problem["errors"]
    assert all({"field", "message"} <= e.keys() for e in problem["errors"])


async def test_a_client_cannot_set_server_owned_fields_on_admin_and_cart_bodies(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    product = await create_product(client, roles.admin)
    sku = product["variants"][0]["sku"]
    cart = await new_cart(client, lines={sku: 1})
    order, _ = await place_order(client, roles.admin, user=roles.customer)
    attempts = [
        client.post(
            f"{API}/admin/orders/{order['id']}/ship",
            json={"carrier": "UPS", "status": "delivered"},
            headers=roles.staff.headers,
        ),
        client.post(
            f"{API}/orders/{order['id']}/cancel",
            json={"reason": "changed my mind", "owner": str(roles.admin.id)},
            headers=roles.customer.headers,
        ),
        client.patch(
            f"{API}/admin/products/{product['id']}",
            json={"name": "x", "price": usd("0.01")},
            headers=roles.admin.headers,
        ),
        client.post(
            f"{cart.path}/items",
            json={"sku": sku, "quantity": 1, "unit_price": usd("0.01")},
            headers=cart.headers,
        ),
        client.post(
            f"{cart.path}/checkout",
            json={
                "shipping_address": {
                    "name": "A",
                    "line1": "B",
                    "city": "C",
                    "postal_code": "1",
                    "country": "US",
                },
                "payment": {"token": "tok_visa"},
                "email": "a@example.com",
                "total": usd("0.01"),
            },
            headers=cart.with_key("k-mass"),
        ),
        client.post(
            f"{API}/admin/coupons",
            json={"code": "MASS1", "percent_off": "10", "redemptions": 0},
            headers=roles.admin.headers,
        ),
    ]
    for attempt in attempts:
        assert_problem(await attempt, 422, "validation_failed")


@pytest.mark.parametrize(
    "price",
    [19.99, "19.99", {"amount": 19.99, "currency": "USD"}, {"amount": "19.99"}, 1999],
)
async def test_money_in_requests_must_be_an_amount_string_with_a_currency(
    client: httpx.AsyncClient, roles: Roles, price: object
) -> None:
    response = await client.post(
        f"{API}/admin/products",
        json={"name": "Float", "variants": [{"sku": "FLOAT-1", "price": price, "stock": 1}]},
        headers=roles.admin.headers,
    )

    assert_problem(response, 422, "validation_failed")


async def test_coupon_and_refund_money_must_be_amount_strings_too(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    order, _ = await place_order(client, roles.admin, user=roles.customer)

    float_off = await client.post(
        f"{API}/admin/coupons",
        json={"code": "FLOATOFF", "amount_off": 5.0},
        headers=roles.admin.headers,
    )
    float_min = await client.post(
        f"{API}/admin/coupons",
        json={
            "code": "FLOATMIN",
            "percent_off": "5",
            "min_subtotal": {"amount": 10, "currency": "USD"},
        },
        headers=roles.admin.headers,
    )
    float_refund = await client.post(
        f"{API}/admin/orders/{order['id']}/refunds",
        json={"amount": 1.5, "reason": "x"},
        headers=roles.staff.headers,
    )
    string_off = await client.post(
        f"{API}/admin/coupons",
        json={"code": "STRINGOFF", "amount_off": usd("5.00"), "min_subtotal": usd("10.00")},
        headers=roles.admin.headers,
    )

    for response in (float_off, float_min, float_refund):
        assert_problem(response, 422, "validation_failed")
    assert string_off.status_code == 201, string_off.text
    assert string_off.json()["amount_off"] == usd("5.00")
    assert string_off.json()["min_subtotal"] == usd("10.00")


async def test_money_in_responses_is_an_amount_string_with_a_currency(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    product = await create_product(client, roles.admin, prices=("19.99",))
    cart = await new_cart(client, lines={product["variants"][0]["sku"]: 1})
    cart_body = (await client.get(cart.path, headers=cart.headers)).json()

    assert product["variants"][0]["price"] == usd("19.99")
    for field in ("subtotal", "discount", "shipping", "tax", "total"):
        assert cart_body[field]["currency"] == "USD"
        assert isinstance(cart_body[field]["amount"], str)
    assert cart_body["items"][0]["unit_price"] == usd("19.99")
    assert cart_body["items"][0]["line_total"] == usd("19.99")


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{API}/auth/login",
        content=b'{"email": "a@example.com", "password": ',
        headers={"Content-Type": "application/json"},
    )

    assert_problem(response, 400)


async def test_a_malformed_header_is_400(client: httpx.AsyncClient, roles: Roles) -> None:
    sku = (await create_product(client, roles.admin))["variants"][0]["sku"]
    cart = await new_cart(client, lines={sku: 1})

    oversized_token = await client.get(cart.path, headers={"X-Cart-Token": "t" * 600})
    bad_if_match = await client.delete(
        f"{cart.path}/coupon", headers={**cart.headers, "If-Match": "v" * 100}
    )
    bad_key = await client.post(
        f"{cart.path}/checkout",
        json=checkout_body(),
        headers={**cart.headers, "Idempotency-Key": "k" * 300},
    )

    for response in (oversized_token, bad_if_match, bad_key):
        assert_problem(response, 400)


async def test_a_body_that_is_not_json_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{API}/auth/register",
        content=b"email=a@example.com&password=long+enough+pass",
        headers={"Content-Type": "text/plain"},
    )

    assert_problem(response, 415)


async def test_a_body_too_large_is_413(client: httpx.AsyncClient) -> None:
    big = b'{"email": "' + b"a" * (2 * 1024 * 1024) + b'"}'

    response = await client.post(
        f"{API}/auth/login", content=big, headers={"Content-Type": "application/json"}
    )

    assert_problem(response, 413)


async def test_a_streamed_body_too_large_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"x" * 65536

    response = await client.post(
        f"{API}/auth/login", content=chunks(), headers={"Content-Type": "application/json"}
    )

    assert_problem(response, 413)


# ---------------------------------------------------------------- lists


async def _list_endpoints(
    client: httpx.AsyncClient, roles: Roles
) -> list[tuple[str, dict[str, str]]]:
    """Every list endpoint of the contract, with headers that may read it."""
    order, _ = await place_order(client, roles.admin, user=roles.customer)
    hook = await client.post(
        f"{API}/admin/webhooks",
        json={"url": "https://hooks.example.com/congocart", "events": ["order.paid"]},
        headers=roles.admin.headers,
    )
    assert hook.status_code == 201, hook.text
    return [
        ("/products", {}),
        ("/categories", {}),
        ("/shipping-methods", {}),
        ("/admin/coupons", roles.admin.headers),
        ("/orders", roles.customer.headers),
        (f"/orders/{order['id']}/events", roles.customer.headers),
        ("/admin/orders", roles.staff.headers),
        (f"/admin/webhooks/{hook.json()['id']}/deliveries", roles.admin.headers),
    ]


async def test_every_list_endpoint_answers_items_and_next_cursor(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    await create_product(client, roles.admin, category="acceptance-lists")
    for path, headers in await _list_endpoints(client, roles):
        response = await client.get(f"{API}{path}", headers=headers)
        assert response.status_code == 200, (path, response.text)
        assert_page(response.json())


@pytest.mark.parametrize("path", ["/categories", "/shipping-methods"])
async def test_short_bounded_lists_have_a_null_next_cursor(
    client: httpx.AsyncClient, roles: Roles, path: str
) -> None:
    await create_product(client, roles.admin, category="acceptance-short")

    body = (await client.get(f"{API}{path}")).json()

    assert assert_page(body)
    assert body["next_cursor"] is None


async def test_order_events_are_a_list_with_a_null_next_cursor(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    order, _ = await place_order(client, roles.admin, user=roles.customer)

    body = (
        await client.get(f"{API}/orders/{order['id']}/events", headers=roles.customer.headers)
    ).json()

    assert assert_page(body)
    assert body["next_cursor"] is None


async def test_limit_outside_1_to_100_is_422_on_every_list_endpoint(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    for path, headers in await _list_endpoints(client, roles):
        for limit in ("0", "101", "-1", "ten"):
            response = await client.get(f"{API}{path}", params={"limit": limit}, headers=headers)
            assert_problem(response, 422, "validation_failed")
        for limit in ("1", "100"):
            response = await client.get(f"{API}{path}", params={"limit": limit}, headers=headers)
            assert response.status_code == 200, (path, limit, response.text)


async def test_pages_follow_next_cursor_without_repeats_or_gaps(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    category = "acceptance-paging"
    made = [(await create_product(client, roles.admin, category=category))["id"] for _ in range(5)]

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"category": category, "limit": "2"}
        if cursor is not None:
            params["cursor"] = cursor
        body = (await client.get(f"{API}/products", params=params)).json()
        items = assert_page(body)
        assert len(items) <= 2
        seen.extend(p["id"] for p in items)
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break

    assert sorted(seen) == sorted(made)
    assert pages == 3


async def test_default_page_size_is_20(client: httpx.AsyncClient, roles: Roles) -> None:
    for _ in range(21):
        await create_product(client, roles.admin, category="acceptance-default-limit")

    body = (
        await client.get(f"{API}/products", params={"category": "acceptance-default-limit"})
    ).json()

    assert len(body["items"]) == 20
    assert body["next_cursor"] is not None


# ---------------------------------------------------------------- request ids and problems


async def test_every_response_carries_x_request_id(client: httpx.AsyncClient, roles: Roles) -> None:
    responses = [
        await client.get("/healthz"),
        await client.get(f"{API}/products"),
        await client.get(f"{API}/nowhere"),
        await client.get(f"{API}/me"),
        await client.post(f"{API}/carts", json={}),
        await client.get("/openapi.json"),
        await client.get("/.well-known/jwks.json"),
    ]
    for response in responses:
        assert response.headers.get("x-request-id"), response.request.url


async def test_x_request_id_is_echoed_and_equals_the_problem_request_id(
    client: httpx.AsyncClient,
) -> None:
    ok = await client.get(f"{API}/products", headers={"X-Request-ID": "acc-req-1"})
    error = await client.get(f"{API}/me", headers={"X-Request-ID": "acc-req-2"})

    assert ok.headers["x-request-id"] == "acc-req-1"
    assert error.headers["x-request-id"] == "acc-req-2"
    assert assert_problem(error, 401)["request_id"] == "acc-req-2"


async def test_framework_errors_are_problems_whose_status_is_the_http_status(
    client: httpx.AsyncClient,
) -> None:
    not_found = await client.get(f"{API}/no/such/route")
    wrong_method = await client.delete(f"{API}/products")
    invalid = await client.post(f"{API}/auth/login", json={"email": 5})

    assert_problem(not_found, 404)
    assert_problem(wrong_method, 405)
    assert "GET" in wrong_method.headers["allow"]
    assert_problem(invalid, 422, "validation_failed")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/products", "GET"),
        ("GET", "/auth/login", "POST"),
        ("POST", "/me", "GET"),
        ("GET", "/carts/00000000-0000-0000-0000-000000000000/checkout", "POST"),
        ("PUT", "/orders", "GET"),
    ],
)
async def test_a_method_not_allowed_is_405_with_allow(
    client: httpx.AsyncClient, method: str, path: str, allowed: str
) -> None:
    response = await client.request(method, f"{API}{path}")

    assert_problem(response, 405)
    assert allowed in [m.strip() for m in response.headers["allow"].split(",")]


async def test_a_missing_token_is_401_not_authenticated_with_a_bearer_challenge(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"{API}/me")

    assert_problem(response, 401, "not_authenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "authorization",
    ["Bearer not-a-jwt", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "Basic YTpi", "Bearer"],
)
async def test_a_bad_token_is_401_invalid_token_with_the_error_in_the_challenge(
    client: httpx.AsyncClient, authorization: str
) -> None:
    response = await client.get(f"{API}/me", headers={"Authorization": authorization})

    assert_problem(response, 401, "invalid_token")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_an_expired_token_is_401_token_expired(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    user = await make_user()
    keys = load_token_keys(settings)
    expired = issue_access_token(
        keys,
        subject=user.id,
        roles=user.roles,
        auth_version=1,
        now=datetime.now(UTC) - timedelta(hours=2),
    ).token

    response = await client.get(f"{API}/me", headers={"Authorization": f"Bearer {expired}"})

    assert_problem(response, 401, "token_expired")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_a_role_that_does_not_allow_it_is_403(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    assert_problem(await client.get(f"{API}/admin/coupons", headers=roles.customer.headers), 403)
    assert_problem(await client.get(f"{API}/admin/orders", headers=roles.customer.headers), 403)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/auth/register", {"email": "x" * 5000, "password": "p" * 5000}),
        ("POST", "/auth/login", {"email": "\u0000", "password": "\u0000"}),
        ("POST", "/carts", {"currency": "\u0000\u0000\u0000"}),
        ("POST", "/carts", [1, 2, 3]),
        ("POST", "/carts", "just a string"),
        ("GET", "/products?limit=99999999999999999999", None),
        ("GET", "/products?min_price=1e309", None),
        ("GET", "/products?cursor=%FF%FE", None),
        ("GET", "/products?cursor=bm90LWpzb24", None),
        ("GET", "/products?q=%27%3B%20DROP%20TABLE%20products%3B--", None),
        ("GET", "/products/' OR 1=1 --", None),
        ("GET", "/carts/not-a-uuid", None),
        ("GET", "/orders/not-a-uuid", None),
        ("GET", "/shipping-methods?country=%00%00", None),
    ],
)
async def test_hostile_input_never_produces_a_5xx_nor_leaks_internals(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    body: object,
    make_user: MakeUser,
) -> None:
    user = await make_user()
    response = await client.request(
        method, f"{API}{path}", json=body, headers=user.headers if "orders" in path else {}
    )

    assert response.status_code < 500, response.text
    for leak in ("Traceback", "asyncpg", "SELECT ", "psycopg", 'File "'):
        assert leak not in response.text
    if response.status_code >= 400:
        assert_problem(response, response.status_code)


async def test_times_are_rfc3339_utc(client: httpx.AsyncClient, roles: Roles) -> None:
    product = await create_product(client, roles.admin)
    coupon = await create_coupon(client, roles.admin, percent_off="5")

    for value in (product["created_at"], product["updated_at"], coupon["created_at"]):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        assert parsed.utcoffset() == timedelta(0), value


# ---------------------------------------------------------------- rate limits


@pytest.fixture
async def limited_client(settings: Settings, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    limited = settings.model_copy(
        update={
            "rate_limit_enabled": True,
            "rate_limit_per_minute_ip": 3,
            "rate_limit_per_minute_user": 5,
        }
    )
    app = create_app(limited, database=db)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def test_over_the_limit_is_429_rate_limited_with_retry_after_and_ratelimit_headers(
    limited_client: httpx.AsyncClient,
) -> None:
    allowed = [await limited_client.get(f"{API}/categories") for _ in range(3)]
    denied = await limited_client.get(f"{API}/categories")

    for response in allowed:
        assert response.status_code == 200
        assert response.headers["ratelimit-limit"] == "3"
    assert_problem(denied, 429, "rate_limited")
    assert int(denied.headers["retry-after"]) >= 1
    assert denied.headers["ratelimit-limit"] == "3"
    assert denied.headers["ratelimit-remaining"] == "0"
    assert int(denied.headers["ratelimit-reset"]) >= 0


async def test_too_many_failed_logins_for_one_account_are_429_rate_limited(
    settings: Settings, db: Database, make_user: MakeUser
) -> None:
    user = await make_user()
    limited = settings.model_copy(
        update={"rate_limit_enabled": True, "rate_limit_login_failures": 2}
    )
    app = create_app(limited, database=db)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        wrong = {"email": user.email, "password": "wrong password!"}
        first = [await c.post(f"{API}/auth/login", json=wrong) for _ in range(2)]
        right = await c.post(
            f"{API}/auth/login", json={"email": user.email, "password": user.password}
        )

    for response in first:
        assert_problem(response, 401, "invalid_credentials")
    assert_problem(right, 429, "rate_limited")
    assert int(right.headers["retry-after"]) >= 1
    assert right.headers["ratelimit-limit"] == "2"
    assert right.headers["ratelimit-remaining"] == "0"
    assert int(right.headers["ratelimit-reset"]) >= 0


async def test_a_forwarded_for_header_from_an_unconfigured_proxy_does_not_escape_the_limit(
    limited_client: httpx.AsyncClient,
) -> None:
    responses = [
        await limited_client.get(f"{API}/categories", headers={"X-Forwarded-For": f"203.0.113.{i}"})
        for i in range(4)
    ]

    assert [r.status_code for r in responses] == [200, 200, 200, 429]


async def test_authenticated_calls_are_limited_per_user_not_per_address(
    limited_client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    other = await make_user()
    anonymous = [await limited_client.get(f"{API}/categories") for _ in range(4)]

    mine = [await limited_client.get(f"{API}/me", headers=user.headers) for _ in range(6)]
    theirs = await limited_client.get(f"{API}/me", headers=other.headers)

    assert [r.status_code for r in anonymous] == [200, 200, 200, 429]
    assert [r.status_code for r in mine] == [200] * 5 + [429]
    assert mine[0].headers["ratelimit-limit"] == "5"
    assert theirs.status_code == 200
