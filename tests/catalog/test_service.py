from __future__ import annotations

import random
import re
import uuid
from decimal import Decimal

import asyncpg
import orjson
import pytest

from congocart.catalog import service
from congocart.catalog.domain import (
    SLUG_PATTERN,
    NewProduct,
    NewVariant,
    ProductChanges,
    ProductSort,
)
from congocart.catalog.errors import (
    InsufficientStock,
    InvalidPriceRange,
    OutOfStock,
    ProductNotFound,
    SkuNotFound,
    SkuTaken,
    SlugTaken,
    StockNotReserved,
    WrongCurrency,
)
from congocart.catalog.schemas import ProductRead
from congocart.core.db import Connection
from congocart.core.money import Money
from congocart.core.pagination import InvalidCursor
from congocart.core.rendering import json_bytes
from tests.catalog.conftest import MakeProduct, logged_statements, unique


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


async def stock_of(conn: Connection, sku: str) -> tuple[int, int]:
    row = await conn.fetchrow("SELECT on_hand, reserved FROM variants WHERE sku = $1", sku)
    assert row is not None
    return row["on_hand"], row["reserved"]


async def ledger_of(conn: Connection, sku: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT delta, reason, actor_id, on_hand_after FROM inventory_adjustments"
        " WHERE sku = $1 ORDER BY id",
        sku,
    )


# ---------------------------------------------------------------- admin writes


async def test_create_product_stores_variants_in_order_with_stock_and_initial_ledger_rows(
    conn: Connection,
) -> None:
    actor = uuid.uuid4()
    product = await service.create_product(
        conn,
        product=NewProduct(
            name="Linen Shirt",
            slug=unique("linen-shirt"),
            description="Breezy.",
            category=unique("apparel"),
            variants=[
                NewVariant(sku=unique("LS-M"), name="Medium", price=usd("49.00"), stock=7),
                NewVariant(sku=unique("LS-L"), price=usd("45.50"), stock=0),
            ],
        ),
        currency="USD",
        actor_id=actor,
    )
    assert [(v.name, v.price, v.available) for v in product.variants] == [
        ("Medium", usd("49.00"), 7),
        ("Default", usd("45.50"), 0),
    ]
    assert product.min_price_minor == 4550
    assert product.created_at == product.updated_at
    medium, large = (v.sku for v in product.variants)
    assert [tuple(r) for r in await ledger_of(conn, medium)] == [(7, "initial stock", actor, 7)]
    assert await ledger_of(conn, large) == []


async def test_a_new_category_slug_creates_the_category_named_after_it(
    conn: Connection, make_product: MakeProduct
) -> None:
    category = unique("garden-tools")
    await make_product(category=category)
    categories = await service.list_categories(conn)
    assert (category, category.replace("-", " ").title()) in [(c.slug, c.name) for c in categories]


async def test_a_slug_the_caller_chose_that_is_taken_is_refused(
    conn: Connection, make_product: MakeProduct
) -> None:
    existing = await make_product()
    with pytest.raises(SlugTaken):
        await service.create_product(
            conn,
            product=NewProduct(
                name="Other",
                slug=existing.slug,
                variants=[NewVariant(sku=unique("S"), price=usd("1.00"), stock=1)],
            ),
            currency="USD",
            actor_id=None,
        )


async def test_a_derived_slug_that_is_taken_gets_a_short_suffix(conn: Connection) -> None:
    name = unique("Tea Pot")

    async def create() -> str:
        product = await service.create_product(
            conn,
            product=NewProduct(
                name=name, variants=[NewVariant(sku=unique("T"), price=usd("5.00"), stock=1)]
            ),
            currency="USD",
            actor_id=None,
        )
        return product.slug

    first, second = await create(), await create()
    assert first == name.lower().replace(" ", "-")
    assert second.startswith(f"{first}-")
    assert second != first


async def test_a_suffixed_slug_stays_a_valid_slug_when_the_name_is_long(
    conn: Connection,
) -> None:
    # The derived slug is 100 characters with a hyphen at index 92: making room for a
    # 7-character suffix cuts right after it.
    name = "a" * 92 + " " + uuid.uuid4().hex[:7]
    slugs = []
    for _ in range(2):
        product = await service.create_product(
            conn,
            product=NewProduct(
                name=name, variants=[NewVariant(sku=unique("L"), price=usd("5.00"), stock=1)]
            ),
            currency="USD",
            actor_id=None,
        )
        slugs.append(product.slug)
    assert len(slugs[0]) == 100
    assert slugs[1].startswith("a" * 92 + "-")
    assert re.fullmatch(SLUG_PATTERN, slugs[1])
    assert len(slugs[1]) <= 100


async def test_a_taken_sku_is_refused_and_named(
    conn: Connection, make_product: MakeProduct
) -> None:
    existing = await make_product()
    taken = existing.variants[0].sku
    with pytest.raises(SkuTaken) as raised:
        await service.create_product(
            conn,
            product=NewProduct(
                name="Copy",
                variants=[
                    NewVariant(sku=unique("FREE"), price=usd("1.00"), stock=1),
                    NewVariant(sku=taken, price=usd("1.00"), stock=1),
                ],
            ),
            currency="USD",
            actor_id=None,
        )
    assert raised.value.skus == [taken]
    assert raised.value.code == "sku_taken"


async def test_a_price_outside_the_shop_currency_is_refused(conn: Connection) -> None:
    with pytest.raises(WrongCurrency) as raised:
        await service.create_product(
            conn,
            product=NewProduct(
                name="Euro Mug",
                variants=[NewVariant(sku=unique("E"), price=Money.of("3.00", "EUR"), stock=1)],
            ),
            currency="USD",
            actor_id=None,
        )
    assert raised.value.status_code == 422
    assert raised.value.errors == [
        {
            "field": "variants.0.price.currency",
            "message": "prices must be in USD, the shop currency",
        }
    ]


async def test_update_product_changes_only_the_fields_given(
    conn: Connection, make_product: MakeProduct
) -> None:
    category = unique("kitchen")
    product = await make_product(name="Old", category=category, description="Keep me")
    updated = await service.update_product(
        conn, product_id=product.id, changes=ProductChanges(fields=frozenset({"name"}), name="New")
    )
    assert (updated.name, updated.description, updated.category) == ("New", "Keep me", category)
    assert updated.updated_at > product.updated_at

    cleared = await service.update_product(
        conn,
        product_id=product.id,
        changes=ProductChanges(fields=frozenset({"category", "description"}), description=""),
    )
    assert (cleared.category, cleared.description, cleared.name) == (None, "", "New")


async def test_update_product_to_a_taken_slug_is_refused(
    conn: Connection, make_product: MakeProduct
) -> None:
    first, second = await make_product(), await make_product()
    with pytest.raises(SlugTaken):
        async with conn.transaction():  # the failed UPDATE aborts only this savepoint
            await service.update_product(
                conn,
                product_id=second.id,
                changes=ProductChanges(fields=frozenset({"slug"}), slug=first.slug),
            )


async def test_updating_an_unknown_product_is_not_found(conn: Connection) -> None:
    with pytest.raises(ProductNotFound):
        await service.update_product(
            conn, product_id=uuid.uuid4(), changes=ProductChanges(fields=frozenset())
        )


async def test_add_variant_appends_it_and_can_lower_the_from_price(
    conn: Connection, make_product: MakeProduct
) -> None:
    product = await make_product(prices=("20.00",))
    sku = unique("NEW")
    updated = await service.add_variant(
        conn,
        product_id=product.id,
        variant=NewVariant(sku=sku, name="Small", price=usd("15.00"), stock=3),
        currency="USD",
        actor_id=None,
    )
    assert [v.sku for v in updated.variants] == [product.variants[0].sku, sku]
    assert updated.min_price_minor == 1500
    assert updated.updated_at > product.updated_at


async def test_repricing_a_variant_moves_the_from_price_both_ways(
    conn: Connection, make_product: MakeProduct
) -> None:
    product = await make_product(prices=("20.00", "30.00"))
    cheap, dear = (v.sku for v in product.variants)
    raised = await service.update_variant(conn, sku=cheap, currency="USD", price=usd("40.00"))
    assert raised.min_price_minor == 3000
    renamed = await service.update_variant(conn, sku=dear, currency="USD", name="Big")
    assert [(v.name, v.price) for v in renamed.variants] == [
        ("Default", usd("40.00")),
        ("Big", usd("30.00")),
    ]


async def test_updating_an_unknown_variant_is_not_found(conn: Connection) -> None:
    with pytest.raises(SkuNotFound):
        await service.update_variant(conn, sku="NOPE-404", currency="USD", name="x")


async def test_an_archived_product_is_hidden_but_its_variants_still_resolve_as_unsellable(
    conn: Connection, make_product: MakeProduct
) -> None:
    category = unique("archive")
    product = await make_product(category=category)
    await service.archive_product(conn, product_id=product.id)

    with pytest.raises(ProductNotFound):
        await service.get_product(conn, id_or_slug=str(product.id))
    with pytest.raises(ProductNotFound):
        await service.get_product(conn, id_or_slug=product.slug)
    page = await service.list_products(conn, currency="USD", category=category)
    assert page.items == []
    sku = product.variants[0].sku
    snapshot = (await service.get_variants(conn, skus=[sku]))[sku]
    assert snapshot.sellable is False
    assert snapshot.product_name == product.name
    with pytest.raises(ProductNotFound):
        await service.archive_product(conn, product_id=product.id)


async def test_adjust_stock_changes_on_hand_and_writes_the_ledger(
    conn: Connection, make_product: MakeProduct
) -> None:
    sku = (await make_product(stock=5)).variants[0].sku
    actor = uuid.uuid4()
    level = await service.adjust_stock(conn, sku=sku, delta=10, reason="delivery", actor_id=actor)
    assert (level.on_hand, level.reserved, level.available) == (15, 0, 15)
    level = await service.adjust_stock(conn, sku=sku, delta=-4, reason="broken", actor_id=actor)
    assert level.on_hand == 11
    assert [tuple(r) for r in (await ledger_of(conn, sku))[1:]] == [
        (10, "delivery", actor, 15),
        (-4, "broken", actor, 11),
    ]


async def test_adjust_stock_cannot_take_on_hand_below_what_is_reserved(
    conn: Connection, make_product: MakeProduct
) -> None:
    sku = (await make_product(stock=5)).variants[0].sku
    await service.reserve_stock(conn, lines={sku: 3})
    with pytest.raises(InsufficientStock):
        await service.adjust_stock(conn, sku=sku, delta=-3, reason="count", actor_id=None)
    level = await service.adjust_stock(conn, sku=sku, delta=-2, reason="count", actor_id=None)
    assert (level.on_hand, level.reserved, level.available) == (3, 3, 0)
    assert len(await ledger_of(conn, sku)) == 2  # initial stock and the accepted adjustment


async def test_adjusting_an_unknown_sku_is_not_found(conn: Connection) -> None:
    with pytest.raises(SkuNotFound):
        await service.adjust_stock(conn, sku="NOPE-404", delta=1, reason="x", actor_id=None)


# ---------------------------------------------------------------- stock for checkout


async def test_get_variants_returns_current_snapshots_in_one_query(
    conn: Connection, make_product: MakeProduct
) -> None:
    product = await make_product(name="Mug", prices=("8.00", "9.50"), stock=4)
    skus = [v.sku for v in product.variants]
    await service.reserve_stock(conn, lines={skus[1]: 1})
    async with logged_statements(conn) as statements:
        snapshots = await service.get_variants(conn, skus=[*skus, "UNKNOWN-SKU"])
    assert len(statements) == 1
    assert set(snapshots) == set(skus)
    second = snapshots[skus[1]]
    assert (second.product_id, second.product_name, second.variant_name) == (
        product.id,
        "Mug",
        "Default",
    )
    assert (second.price, second.available, second.sellable) == (usd("9.50"), 3, True)


async def test_reserve_stock_takes_available_units(
    conn: Connection, make_product: MakeProduct
) -> None:
    sku = (await make_product(stock=5)).variants[0].sku
    await service.reserve_stock(conn, lines={sku: 2})
    await service.reserve_stock(conn, lines={sku: 3})
    assert await stock_of(conn, sku) == (5, 5)
    with pytest.raises(OutOfStock) as raised:
        await service.reserve_stock(conn, lines={sku: 1})
    assert raised.value.code == "out_of_stock"
    assert sku in raised.value.detail


async def test_reserve_stock_is_all_or_nothing_and_names_every_short_sku(
    conn: Connection, make_product: MakeProduct
) -> None:
    plenty, short, gone = (
        (await make_product(stock=10)).variants[0].sku,
        (await make_product(stock=1)).variants[0].sku,
        "NO-SUCH-SKU",
    )
    with pytest.raises(OutOfStock) as raised:
        await service.reserve_stock(conn, lines={plenty: 2, short: 2, gone: 1})
    assert raised.value.skus == sorted([short, gone])
    assert await stock_of(conn, plenty) == (10, 0)
    assert await stock_of(conn, short) == (1, 0)


async def test_an_archived_product_cannot_be_reserved(
    conn: Connection, make_product: MakeProduct
) -> None:
    product = await make_product(stock=10)
    await service.archive_product(conn, product_id=product.id)
    with pytest.raises(OutOfStock):
        await service.reserve_stock(conn, lines={product.variants[0].sku: 1})


async def test_stock_operations_run_the_same_statements_for_one_line_or_thirty(
    conn: Connection, make_product: MakeProduct
) -> None:
    product = await make_product(prices=["1.00"] * 30, stock=5)
    skus = [v.sku for v in product.variants]
    counts = []
    for lines in ({skus[0]: 1}, dict.fromkeys(skus[1:], 1)):
        async with logged_statements(conn) as statements:
            await service.reserve_stock(conn, lines=lines)
            await service.release_stock(conn, lines=lines)
            await service.reserve_stock(conn, lines=lines)
            await service.commit_stock(conn, lines=lines)
            await service.restock(conn, lines=lines, reason="return", actor_id=None)
        counts.append(len(statements))
    assert counts[0] == counts[1] == 5


async def test_release_stock_gives_reserved_units_back_but_never_more(
    conn: Connection, make_product: MakeProduct
) -> None:
    sku = (await make_product(stock=5)).variants[0].sku
    await service.reserve_stock(conn, lines={sku: 3})
    await service.release_stock(conn, lines={sku: 2})
    assert await stock_of(conn, sku) == (5, 1)
    with pytest.raises(StockNotReserved):
        await service.release_stock(conn, lines={sku: 2})
    assert await stock_of(conn, sku) == (5, 1)


async def test_commit_stock_sells_reserved_units_and_records_the_sale(
    conn: Connection, make_product: MakeProduct
) -> None:
    sku = (await make_product(stock=5)).variants[0].sku
    await service.reserve_stock(conn, lines={sku: 3})
    await service.commit_stock(conn, lines={sku: 3})
    assert await stock_of(conn, sku) == (2, 0)
    assert tuple((await ledger_of(conn, sku))[-1]) == (-3, "sale", None, 2)
    with pytest.raises(StockNotReserved):
        await service.commit_stock(conn, lines={sku: 1})


async def test_restock_puts_units_back_on_hand_with_a_ledger_row(
    conn: Connection, make_product: MakeProduct
) -> None:
    sku = (await make_product(stock=5)).variants[0].sku
    actor = uuid.uuid4()
    await service.restock(conn, lines={sku: 4}, reason="order CC-000001 cancelled", actor_id=actor)
    assert await stock_of(conn, sku) == (9, 0)
    assert tuple((await ledger_of(conn, sku))[-1]) == (4, "order CC-000001 cancelled", actor, 9)
    with pytest.raises(SkuNotFound):
        await service.restock(conn, lines={"NOPE-404": 1}, reason="x", actor_id=None)


# ---------------------------------------------------------------- storefront reads


async def test_get_product_finds_a_product_by_id_or_by_slug(
    conn: Connection, make_product: MakeProduct
) -> None:
    product = await make_product(prices=("9.99", "12.00"))
    # The storefront's document renders exactly what the admin's model renders.
    rendered = ProductRead.of(product).model_dump(mode="json")
    by_id = await service.get_product(conn, id_or_slug=str(product.id))
    assert orjson.loads(json_bytes(by_id)) == rendered
    by_slug = await service.get_product(conn, id_or_slug=product.slug)
    assert orjson.loads(json_bytes(by_slug)) == rendered
    with pytest.raises(ProductNotFound):
        await service.get_product(conn, id_or_slug=str(uuid.uuid4()))


async def test_list_products_sorts_by_newest_price_and_name(
    conn: Connection, make_product: MakeProduct
) -> None:
    category = unique("sorting")
    b = await make_product(name="banana", prices=("3.00",), category=category)
    a = await make_product(name="Apple", prices=("5.00", "1.00"), category=category)
    c = await make_product(name="cherry", prices=("2.00",), category=category)

    async def order(sort: ProductSort) -> list[str]:
        page = await service.list_products(conn, currency="USD", category=category, sort=sort)
        return [p["name"] for p in page.items]

    assert await order(ProductSort.NEWEST) == [c.name, a.name, b.name]
    assert await order(ProductSort.PRICE_ASC) == ["Apple", "cherry", "banana"]
    assert await order(ProductSort.PRICE_DESC) == ["banana", "cherry", "Apple"]
    assert await order(ProductSort.NAME) == ["Apple", "banana", "cherry"]


async def test_list_products_filters_on_the_from_price_inclusively(
    conn: Connection, make_product: MakeProduct
) -> None:
    category = unique("prices")
    for price in ("1.00", "5.00", "9.99", "10.00"):
        await make_product(name=f"at {price}", prices=(price,), category=category)
    page = await service.list_products(
        conn,
        currency="USD",
        category=category,
        min_price=Decimal("5"),
        max_price=Decimal("9.99"),
        sort=ProductSort.PRICE_ASC,
    )
    assert [p["name"] for p in page.items] == ["at 5.00", "at 9.99"]


async def test_a_price_range_that_is_inverted_or_too_precise_is_refused(conn: Connection) -> None:
    with pytest.raises(InvalidPriceRange):
        await service.list_products(
            conn, currency="USD", min_price=Decimal(10), max_price=Decimal(5)
        )
    with pytest.raises(InvalidPriceRange):
        await service.list_products(conn, currency="USD", min_price=Decimal("1.005"))
    with pytest.raises(InvalidPriceRange):
        await service.list_products(conn, currency="JPY", min_price=Decimal("1.5"))


@pytest.mark.parametrize(
    ("q", "found"),
    [
        ("shir", {"Linen Shirt"}),  # a prefix
        ("shirts", {"Linen Shirt"}),  # a plural finds the singular
        ("LINEN", {"Linen Shirt"}),
        ("mug coffee", {"Stoneware Mug"}),  # every word, in name or description
        ("mug tea", set()),
        ("running", {"Trail Shoe"}),  # stemmed: "run" in the description
        ("'&|!:*()", {"Linen Shirt", "Stoneware Mug", "Trail Shoe"}),  # no words: no filter
    ],
)
async def test_search_matches_words_and_prefixes_of_name_and_description(
    conn: Connection, make_product: MakeProduct, q: str, found: set[str]
) -> None:
    category = unique("search")
    await make_product(name="Linen Shirt", description="Breathable.", category=category)
    await make_product(name="Stoneware Mug", description="For your coffee.", category=category)
    await make_product(name="Trail Shoe", description="Built to run.", category=category)
    page = await service.list_products(conn, currency="USD", category=category, q=q)
    assert {p["name"] for p in page.items} == found


# PostgreSQL's parser reads these differently inside a name than as words on
# their own: a signed integer ("-8339893911"), a float in exponent notation
# followed by a word ("6862e764" "d0"), a hyphenated compound, a version.
AWKWARD_NAMES = (
    "Product-8339893911",
    "Product-6862e764d0",
    "X-100",
    "Kettle v1.5",
    "3e8d2c13ed",
    "USB-C/HDMI adapter",
    "Café-Crème 2-Pack",
    "caps_lock+shift@home",
)


@pytest.mark.parametrize("name", AWKWARD_NAMES)
async def test_a_product_is_found_by_its_own_name_and_by_each_of_its_words(
    conn: Connection, make_product: MakeProduct, name: str
) -> None:
    category = unique("words")
    await make_product(name=name, category=category)
    await make_product(name="Something else", category=category)
    for q in (name, name.lower(), *re.findall(r"[^\W_]+", name), name[: len(name) * 2 // 3]):
        page = await service.list_products(conn, currency="USD", category=category, q=q)
        assert [p["name"] for p in page.items] == [name], q


async def test_names_made_of_random_hex_are_found_by_their_names(
    conn: Connection, make_product: MakeProduct
) -> None:
    # The acceptance tests name products "Product-<10 hex digits>"; about one
    # such name in sixteen used to be unfindable.
    draw = random.Random(4)
    category = unique("hex")
    names = [f"Product-{draw.getrandbits(40):010x}" for _ in range(64)]
    for name in names:
        await make_product(name=name, category=category)
    for name in names:
        page = await service.list_products(conn, currency="USD", category=category, q=name)
        assert [p["name"] for p in page.items] == [name]


@pytest.mark.parametrize("sort", list(ProductSort))
async def test_following_cursors_visits_every_product_once(
    conn: Connection, make_product: MakeProduct, sort: ProductSort
) -> None:
    category = unique("walk")
    made = set()
    for i in range(7):
        # Equal prices and names make the id tie-break do its work.
        product = await make_product(name="Same", prices=(f"{i % 2 + 1}.00",), category=category)
        made.add(product.id)
    seen: list[uuid.UUID] = []
    cursor = None
    for _ in range(10):
        page = await service.list_products(
            conn, currency="USD", category=category, sort=sort, limit=3, cursor=cursor
        )
        seen += [uuid.UUID(p["id"]) for p in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len(made)
    assert set(seen) == made


async def test_a_cursor_from_another_sort_or_tampered_with_is_refused(
    conn: Connection, make_product: MakeProduct
) -> None:
    category = unique("cursor")
    for _ in range(2):
        await make_product(category=category)
    page = await service.list_products(conn, currency="USD", category=category, limit=1)
    assert page.next_cursor is not None
    with pytest.raises(InvalidCursor):
        await service.list_products(
            conn, currency="USD", sort=ProductSort.PRICE_ASC, cursor=page.next_cursor
        )
    for bad in ("!!!", "WyJuZXdlc3QiLCJ4IiwieSJd", page.next_cursor[:-2]):
        with pytest.raises(InvalidCursor):
            await service.list_products(conn, currency="USD", cursor=bad)


# ---------------------------------------------------------------- demo catalog


async def test_seeding_twice_creates_nothing_new(conn: Connection) -> None:
    first = await service.seed_demo_catalog(conn, products=24, currency="USD")
    counts = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM products) AS products,"
        " (SELECT count(*) FROM variants) AS variants,"
        " (SELECT count(*) FROM inventory_adjustments) AS ledger,"
        " (SELECT count(DISTINCT category_slug) FROM products) AS categories"
    )
    assert first.products == 24
    assert 24 <= first.variants <= 72
    second = await service.seed_demo_catalog(conn, products=24, currency="USD")
    assert (second.products, second.variants) == (0, 0)
    assert counts == await conn.fetchrow(
        "SELECT (SELECT count(*) FROM products) AS products,"
        " (SELECT count(*) FROM variants) AS variants,"
        " (SELECT count(*) FROM inventory_adjustments) AS ledger,"
        " (SELECT count(DISTINCT category_slug) FROM products) AS categories"
    )
    assert counts["categories"] == 5

    more = await service.seed_demo_catalog(conn, products=30, currency="USD")
    assert more.products == 6


async def test_seeding_with_a_fixed_number_of_variants(conn: Connection) -> None:
    result = await service.seed_demo_catalog(conn, products=12, currency="USD", variants=3)
    assert (result.products, result.variants) == (12, 36)
    per_product = await conn.fetch("SELECT count(*) AS n FROM variants GROUP BY product_id")
    assert {row["n"] for row in per_product} == {3}


async def test_seeded_products_are_browsable_with_their_from_price(conn: Connection) -> None:
    await service.seed_demo_catalog(conn, products=10, currency="USD")
    page = await service.list_products(conn, currency="USD", category="books", limit=100)
    assert len(page.items) == 2
    for product in page.items:
        from_price = await conn.fetchval(
            "SELECT min_price_minor FROM products WHERE id = $1", uuid.UUID(product["id"])
        )
        assert from_price == min(usd(v["price"]["amount"]).to_minor() for v in product["variants"])
        assert all(v["available"] > 0 for v in product["variants"])
