"""api-contract.md, "Catalog": the storefront and catalog administration."""

from __future__ import annotations

import uuid

import httpx

from tests.acceptance.conftest import (
    API,
    Roles,
    assert_page,
    assert_problem,
    available,
    check_out,
    create_product,
    new_cart,
    unique,
    usd,
)

PRODUCT_FIELDS = {
    "id",
    "slug",
    "name",
    "description",
    "category",
    "variants",
    "created_at",
    "updated_at",
}
VARIANT_FIELDS = {"sku", "name", "price", "available"}


def assert_product(body: dict[str, object]) -> None:
    assert body.keys() >= PRODUCT_FIELDS, body
    uuid.UUID(str(body["id"]))
    assert isinstance(body["variants"], list)
    for variant in body["variants"]:
        assert variant.keys() >= VARIANT_FIELDS, variant
        assert set(variant["price"]) == {"amount", "currency"}
        assert isinstance(variant["available"], int)


async def test_an_admin_creates_a_product_201_and_a_new_category_slug_creates_the_category(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    category = unique("cat").lower()
    response = await client.post(
        f"{API}/admin/products",
        json={
            "name": "Linen Shirt",
            "slug": unique("linen-shirt").lower(),
            "description": "Cool in summer.",
            "category": category,
            "variants": [
                {"sku": unique("LS-M").upper(), "name": "M", "price": usd("49.50"), "stock": 7},
                {"sku": unique("LS-L").upper(), "price": usd("52.00"), "stock": 0},
            ],
        },
        headers=roles.admin.headers,
    )

    assert response.status_code == 201, response.text
    product = response.json()
    assert_product(product)
    assert product["category"] == category
    assert product["description"] == "Cool in summer."
    assert [(v["price"], v["available"]) for v in product["variants"]] == [
        (usd("49.50"), 7),
        (usd("52.00"), 0),
    ]
    categories = assert_page((await client.get(f"{API}/categories")).json())
    assert {"slug", "name"} <= categories[0].keys()
    assert category in [c["slug"] for c in categories]


async def test_a_product_is_read_by_id_and_by_slug(client: httpx.AsyncClient, roles: Roles) -> None:
    product = await create_product(client, roles.admin)

    by_id = await client.get(f"{API}/products/{product['id']}")
    by_slug = await client.get(f"{API}/products/{product['slug']}")
    missing = await client.get(f"{API}/products/{uuid.uuid4()}")

    assert by_id.status_code == by_slug.status_code == 200
    assert_product(by_id.json())
    assert by_id.json()["id"] == by_slug.json()["id"] == product["id"]
    assert_problem(missing, 404)


async def test_products_are_listed_and_filtered_by_q_category_and_price(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    category = unique("filters").lower()
    word = unique("zebra").replace("-", "")
    cheap = await create_product(
        client, roles.admin, prices=("5.00",), category=category, name=f"{word} cheap"
    )
    dear = await create_product(
        client, roles.admin, prices=("50.00",), category=category, name="Dear thing"
    )

    async def ids(**params: str) -> list[str]:
        response = await client.get(f"{API}/products", params={"category": category, **params})
        assert response.status_code == 200, response.text
        return [p["id"] for p in assert_page(response.json())]

    assert sorted(await ids()) == sorted([cheap["id"], dear["id"]])
    assert await ids(q=word) == [cheap["id"]]
    assert await ids(min_price="10.00") == [dear["id"]]
    assert await ids(max_price="10.00") == [cheap["id"]]
    assert await ids(sort="price_asc") == [cheap["id"], dear["id"]]
    assert await ids(sort="price_desc") == [dear["id"], cheap["id"]]
    assert_problem(await client.get(f"{API}/products", params={"sort": "bogus"}), 422)


async def test_an_admin_updates_product_fields_200(client: httpx.AsyncClient, roles: Roles) -> None:
    product = await create_product(client, roles.admin)

    response = await client.patch(
        f"{API}/admin/products/{product['id']}",
        json={"name": "Renamed", "description": "New words"},
        headers=roles.admin.headers,
    )

    assert response.status_code == 200, response.text
    assert_product(response.json())
    assert response.json()["name"] == "Renamed"
    assert (await client.get(f"{API}/products/{product['id']}")).json()["name"] == "Renamed"


async def test_an_admin_adds_a_variant_201_with_the_product(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    product = await create_product(client, roles.admin)
    sku = unique("NEW").upper()

    response = await client.post(
        f"{API}/admin/products/{product['id']}/variants",
        json={"sku": sku, "name": "XL", "price": usd("12.00"), "stock": 3},
        headers=roles.admin.headers,
    )

    assert response.status_code == 201, response.text
    assert_product(response.json())
    added = [v for v in response.json()["variants"] if v["sku"] == sku]
    assert added == [{"sku": sku, "name": "XL", "price": usd("12.00"), "available": 3}]


async def test_an_admin_updates_a_variant_200_and_reads_never_serve_the_old_price(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    product = await create_product(client, roles.admin, prices=("10.00",))
    sku = product["variants"][0]["sku"]
    # Read first, so any cache holds the old price.
    assert (await client.get(f"{API}/products/{product['id']}")).status_code == 200
    assert (await client.get(f"{API}/products", params={"q": product["name"]})).status_code == 200

    response = await client.patch(
        f"{API}/admin/variants/{sku}",
        json={"name": "Renamed variant", "price": usd("11.25")},
        headers=roles.admin.headers,
    )

    assert response.status_code == 200, response.text
    assert_product(response.json())
    assert response.json()["variants"][0]["price"] == usd("11.25")
    again = (await client.get(f"{API}/products/{product['id']}")).json()
    assert again["variants"][0]["price"] == usd("11.25")
    assert again["variants"][0]["name"] == "Renamed variant"
    by_slug = (await client.get(f"{API}/products/{product['slug']}")).json()
    assert by_slug["variants"][0]["price"] == usd("11.25")
    listed = (await client.get(f"{API}/products", params={"q": product["name"]})).json()
    assert [p["variants"][0]["price"] for p in listed["items"]] == [usd("11.25")]


async def test_archiving_is_204_the_product_is_no_longer_sold_but_stays_on_past_orders(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    product = await create_product(client, roles.admin, prices=("8.00",))
    sku = product["variants"][0]["sku"]
    cart = await new_cart(client, user=roles.customer, lines={sku: 1})
    order = (await check_out(client, cart)).json()

    response = await client.delete(
        f"{API}/admin/products/{product['id']}", headers=roles.admin.headers
    )

    assert response.status_code == 204
    assert_problem(await client.get(f"{API}/products/{product['id']}"), 404)
    listed = await client.get(f"{API}/products", params={"q": product["name"]})
    assert product["id"] not in [p["id"] for p in listed.json()["items"]]
    past = (await client.get(f"{API}/orders/{order['id']}", headers=roles.customer.headers)).json()
    assert [(i["sku"], i["name"]) for i in past["items"]] == [(sku, order["items"][0]["name"])]
    other_cart = await new_cart(client)
    assert_problem(
        await client.post(
            f"{other_cart.path}/items",
            json={"sku": sku, "quantity": 1},
            headers=other_cart.headers,
        ),
        409,
        "sku_unavailable",
    )


async def test_stock_adjustments_by_staff_and_admin_answer_the_stock_level(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    product = await create_product(client, roles.admin, stock=5)
    sku = product["variants"][0]["sku"]

    by_staff = await client.post(
        f"{API}/admin/inventory/{sku}/adjustments",
        json={"delta": 3, "reason": "delivery"},
        headers=roles.staff.headers,
    )
    by_admin = await client.post(
        f"{API}/admin/inventory/{sku}/adjustments",
        json={"delta": -2, "reason": "damaged"},
        headers=roles.admin.headers,
    )
    by_customer = await client.post(
        f"{API}/admin/inventory/{sku}/adjustments",
        json={"delta": 1, "reason": "mine"},
        headers=roles.customer.headers,
    )

    assert by_staff.status_code == 200, by_staff.text
    assert by_staff.json() == {"sku": sku, "on_hand": 8, "reserved": 0, "available": 8}
    assert by_admin.status_code == 200
    assert by_admin.json() == {"sku": sku, "on_hand": 6, "reserved": 0, "available": 6}
    assert_problem(by_customer, 403)
    assert await available(client, sku, product["id"]) == 6


async def test_an_adjustment_below_what_is_reserved_is_409_insufficient_stock(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    product = await create_product(client, roles.admin, stock=2)
    sku = product["variants"][0]["sku"]

    response = await client.post(
        f"{API}/admin/inventory/{sku}/adjustments",
        json={"delta": -3, "reason": "counted wrong"},
        headers=roles.staff.headers,
    )

    assert_problem(response, 409, "insufficient_stock")
    assert await available(client, sku, product["id"]) == 2


async def test_an_unknown_sku_is_404_sku_not_found_for_adjustments_and_variant_updates(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    adjust = await client.post(
        f"{API}/admin/inventory/NO-SUCH-SKU-9/adjustments",
        json={"delta": 1, "reason": "x"},
        headers=roles.staff.headers,
    )
    update = await client.patch(
        f"{API}/admin/variants/NO-SUCH-SKU-9", json={"name": "x"}, headers=roles.admin.headers
    )

    assert_problem(adjust, 404, "sku_not_found")
    assert_problem(update, 404, "sku_not_found")


async def test_a_taken_sku_or_slug_is_409(client: httpx.AsyncClient, roles: Roles) -> None:
    product = await create_product(client, roles.admin)
    sku = product["variants"][0]["sku"]

    same_sku = await client.post(
        f"{API}/admin/products",
        json={"name": "Again", "variants": [{"sku": sku, "price": usd("1.00"), "stock": 1}]},
        headers=roles.admin.headers,
    )
    same_slug = await client.post(
        f"{API}/admin/products",
        json={
            "name": "Again",
            "slug": product["slug"],
            "variants": [{"sku": unique("X").upper(), "price": usd("1.00"), "stock": 1}],
        },
        headers=roles.admin.headers,
    )
    variant_sku = await client.post(
        f"{API}/admin/products/{product['id']}/variants",
        json={"sku": sku, "price": usd("1.00"), "stock": 1},
        headers=roles.admin.headers,
    )
    patched_slug = await client.patch(
        f"{API}/admin/products/{(await create_product(client, roles.admin))['id']}",
        json={"slug": product["slug"]},
        headers=roles.admin.headers,
    )

    assert_problem(same_sku, 409, "sku_taken")
    assert_problem(same_slug, 409, "slug_taken")
    assert_problem(variant_sku, 409, "sku_taken")
    assert_problem(patched_slug, 409, "slug_taken")


async def test_catalog_administration_is_admin_only(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    product = await create_product(client, roles.admin)
    sku = product["variants"][0]["sku"]
    body = {
        "name": "N",
        "variants": [{"sku": unique("Z").upper(), "price": usd("1.00"), "stock": 1}],
    }
    calls = [
        ("POST", f"{API}/admin/products", body),
        ("PATCH", f"{API}/admin/products/{product['id']}", {"name": "N"}),
        (
            "POST",
            f"{API}/admin/products/{product['id']}/variants",
            {"sku": "Z-1", "price": usd("1.00"), "stock": 1},
        ),
        ("PATCH", f"{API}/admin/variants/{sku}", {"name": "N"}),
        ("DELETE", f"{API}/admin/products/{product['id']}", None),
    ]
    for method, path, json_body in calls:
        for user, status in ((None, 401), (roles.customer, 403), (roles.staff, 403)):
            headers = {} if user is None else user.headers
            response = await client.request(method, path, json=json_body, headers=headers)
            assert_problem(response, status)


async def test_available_is_on_hand_minus_reserved_and_drops_when_sold(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    product = await create_product(client, roles.admin, stock=5)
    sku = product["variants"][0]["sku"]
    cart = await new_cart(client, lines={sku: 2})

    assert (await check_out(client, cart)).status_code == 201

    assert await available(client, sku, product["id"]) == 3
