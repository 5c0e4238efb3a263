from __future__ import annotations

import re
from decimal import Decimal

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from congocart.catalog.demo import demo_product
from congocart.catalog.domain import (
    AVAILABLE_HOLE,
    SKU_PATTERN,
    SLUG_PATTERN,
    NewProduct,
    NewVariant,
    PageTemplate,
    StockLevel,
    is_uuid,
    search_prefix_query,
    slugify,
    stock_lines,
)
from congocart.core.money import Money


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Linen Shirt", "linen-shirt"),
        ("  Café Crème 2-Pack! ", "cafe-creme-2-pack"),
        ("T--Shirt__(XL)", "t-shirt-xl"),
        ("日本", ""),
    ],
)
def test_slugify_keeps_ascii_letters_and_digits_joined_by_single_hyphens(
    name: str, slug: str
) -> None:
    assert slugify(name) == slug


@given(st.text(max_size=300))
def test_slugify_always_yields_a_valid_slug_or_nothing(name: str) -> None:
    slug = slugify(name)
    assert slug == "" or re.fullmatch(SLUG_PATTERN, slug)
    assert len(slug) <= 100


def test_a_product_without_a_slug_derives_one_from_its_name() -> None:
    variant = NewVariant(sku="A-1", price=Money.of("1.00", "USD"), stock=1)
    assert NewProduct(name="Linen Shirt", variants=[variant]).base_slug() == "linen-shirt"
    assert NewProduct(name="日本", variants=[variant]).base_slug() == "product"
    assert NewProduct(name="X", slug="mine", variants=[variant]).base_slug() == "mine"


def test_a_product_whose_name_looks_like_a_uuid_does_not_get_a_uuid_slug() -> None:
    variant = NewVariant(sku="A-1", price=Money.of("1.00", "USD"), stock=1)
    product = NewProduct(name="123e4567-e89b-12d3-a456-426614174000", variants=[variant])
    assert not is_uuid(product.base_slug())


def test_min_price_is_the_cheapest_variant() -> None:
    product = NewProduct(
        name="Mug",
        variants=[
            NewVariant(sku="M-1", price=Money.of("12.50", "USD"), stock=1),
            NewVariant(sku="M-2", price=Money.of("9.99", "USD"), stock=1),
        ],
    )
    assert product.min_price() == Money(Decimal("9.99"), "USD")


@given(st.text(max_size=300))
def test_search_query_carries_only_letters_digits_and_our_own_operators(q: str) -> None:
    query = search_prefix_query(q)
    if query is None:
        return
    for term in query.split(" & "):
        word, _, suffix = term.partition(":")
        assert suffix == "*"
        assert word
        assert all(ch.isalnum() for ch in word)


def test_search_query_makes_every_word_a_prefix() -> None:
    assert search_prefix_query("Red  SHI") == "red:* & shi:*"
    assert search_prefix_query("t-shirt") == "t:* & shirt:*"
    assert search_prefix_query("'&|!():*") is None


def test_stock_lines_come_in_ascending_sku_order() -> None:
    assert stock_lines({"C": 1, "A": 3, "B": 2}) == (["A", "B", "C"], [3, 2, 1])


@pytest.mark.parametrize("quantity", [0, -1, True, 1.5])
def test_stock_lines_refuse_quantities_that_are_not_positive_integers(quantity: object) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        stock_lines({"A": quantity})  # type: ignore[dict-item]


def test_available_is_on_hand_minus_reserved() -> None:
    assert StockLevel(sku="A", on_hand=10, reserved=3).available == 7


def test_demo_products_are_deterministic_distinct_and_valid() -> None:
    products = [demo_product(n) for n in range(1000)]
    assert products == [demo_product(n) for n in range(1000)]
    assert len({p.slug for p in products}) == 1000
    skus = [v.sku for p in products for v in p.variants]
    assert len(set(skus)) == len(skus)
    assert all(re.fullmatch(SKU_PATTERN, sku) for sku in skus)
    assert all(re.fullmatch(SLUG_PATTERN, p.slug) for p in products)
    assert {len(p.variants) for p in products} == {1, 2, 3}
    assert all(v.stock > 0 and v.price_minor > 0 for p in products for v in p.variants)


def test_demo_products_can_have_a_fixed_number_of_variants() -> None:
    for count in (1, 2, 3):
        products = [demo_product(n, variants=count) for n in range(30)]
        assert {len(p.variants) for p in products} == {count}
        # The same products, only their variant lists differ in length.
        assert [p.slug for p in products] == [demo_product(n).slug for n in range(30)]
    for bad in (0, 4):
        with pytest.raises(ValueError, match="1 to 3 variants"):
            demo_product(0, variants=bad)


@given(names=st.lists(st.text(), min_size=1, max_size=5), counts=st.data())
def test_a_page_template_puts_each_stock_count_in_its_own_variant(
    names: list[str], counts: st.DataObject
) -> None:
    hole = orjson.Fragment(AVAILABLE_HOLE)
    page = {"items": [{"name": name, "available": hole} for name in names]}
    template = PageTemplate.of(
        orjson.dumps(page), revision=7, skus=[f"SKU-{i}" for i in range(len(names))]
    )
    available = counts.draw(
        st.lists(st.integers(0, 10**9), min_size=len(names), max_size=len(names))
    )
    # Whatever the text (control characters included), only the holes take counts.
    assert orjson.loads(template.fill(available)) == {
        "items": [{"name": n, "available": a} for n, a in zip(names, available, strict=True)]
    }
    with pytest.raises(ValueError, match="stock counts"):
        template.fill([*available, 1])
    with pytest.raises(ValueError, match="holes"):
        PageTemplate.of(orjson.dumps(page), revision=7, skus=["one too many", *names])
