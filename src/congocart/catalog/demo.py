"""The demo catalog: a deterministic list of products, the same on every run.

Being deterministic is what makes seeding idempotent: the n-th demo product
always has the same slug and SKUs, so a second run finds them taken.
"""

from __future__ import annotations

from dataclasses import dataclass

from congocart.catalog.domain import slugify

CATEGORIES: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    # slug, name, nouns, variant names
    (
        "apparel",
        "Apparel",
        ("T-Shirt", "Hoodie", "Sweater", "Denim Jacket", "Cap", "Socks"),
        ("Small", "Medium", "Large"),
    ),
    (
        "home-kitchen",
        "Home & Kitchen",
        ("Mug", "Teapot", "Cutting Board", "Chef Knife", "Candle", "Throw Blanket"),
        ("Natural", "Charcoal", "Sage"),
    ),
    (
        "electronics",
        "Electronics",
        ("Headphones", "Bluetooth Speaker", "Charger", "Keyboard", "Mouse", "USB-C Cable"),
        ("Black", "White", "Blue"),
    ),
    (
        "outdoors",
        "Outdoors",
        ("Backpack", "Water Bottle", "Tent", "Headlamp", "Camp Chair", "Rain Jacket"),
        ("Olive", "Orange", "Navy"),
    ),
    (
        "books",
        "Books",
        ("Cookbook", "Field Guide", "Notebook", "Novel", "Atlas", "Sketchbook"),
        ("Paperback", "Hardcover", "Gift Edition"),
    ),
)
ADJECTIVES = (
    "Classic",
    "Everyday",
    "Premium",
    "Organic",
    "Vintage",
    "Compact",
    "Deluxe",
    "Recycled",
    "Handmade",
    "Lightweight",
    "Heritage",
    "Urban",
)
_NOUNS_PER_CATEGORY = 6
_DISTINCT_NAMES = len(CATEGORIES) * _NOUNS_PER_CATEGORY * len(ADJECTIVES)


@dataclass(frozen=True, slots=True)
class DemoVariant:
    sku: str
    name: str
    price_minor: int
    stock: int


@dataclass(frozen=True, slots=True)
class DemoProduct:
    slug: str
    name: str
    description: str
    category: str
    variants: tuple[DemoVariant, ...]


MAX_VARIANTS = 3


def demo_product(n: int, *, variants: int | None = None) -> DemoProduct:
    """The n-th demo product (n from 0), prices ending in .99: `variants`
    variants (1 to 3), or when None, 1 to 3 by turns."""
    category, category_title, nouns, variant_names = CATEGORIES[n % len(CATEGORIES)]
    noun = nouns[(n // len(CATEGORIES)) % _NOUNS_PER_CATEGORY]
    adjective = ADJECTIVES[(n // (len(CATEGORIES) * _NOUNS_PER_CATEGORY)) % len(ADJECTIVES)]
    series = n // _DISTINCT_NAMES
    name = f"{adjective} {noun}" + (f" Series {series + 1}" if series else "")
    base_minor = (5 + (n * 7919) % 95) * 100 + 99
    if variants is not None and not 1 <= variants <= MAX_VARIANTS:
        raise ValueError(f"a demo product has 1 to {MAX_VARIANTS} variants")
    skus = tuple(
        DemoVariant(
            sku=f"DEMO-{n + 1:06d}-{j + 1}",
            name=variant_names[j],
            price_minor=base_minor + j * 300,
            stock=50 + (n * 31 + j * 17) % 150,
        )
        for j in range(variants if variants is not None else 1 + n % MAX_VARIANTS)
    )
    return DemoProduct(
        slug=slugify(name),
        name=name,
        description=(
            f"A {adjective.lower()} {noun.lower()} from our {category_title} range, "
            f"part of the CongoCart demo catalog."
        ),
        category=category,
        variants=skus,
    )
