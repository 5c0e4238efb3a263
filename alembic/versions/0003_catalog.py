"""Catalog: categories, products, variants (price and stock) and the inventory ledger.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-24
"""

from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE categories (
        slug       text PRIMARY KEY CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
        name       text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE products (
        id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        slug            text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
        name            text NOT NULL CHECK (name <> ''),
        description     text NOT NULL DEFAULT '',
        category_slug   text REFERENCES categories (slug),
        -- The lowest price among the product's live variants ("from" price):
        -- denormalised so that price filters and price sorts are one index
        -- range scan; written in the same transaction as every variant write.
        min_price_minor bigint NOT NULL CHECK (min_price_minor >= 0),
        -- 'english' stems ("shirts" finds "shirt"); 'simple' keeps the words
        -- as written, so prefix queries ("shir:*") match unstemmed words.
        search          tsvector GENERATED ALWAYS AS (
                            setweight(to_tsvector('english', name), 'A')
                            || setweight(to_tsvector('simple', name), 'A')
                            || setweight(to_tsvector('english', description), 'B')
                            || setweight(to_tsvector('simple', description), 'B')
                        ) STORED,
        archived_at     timestamptz,
        created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at      timestamptz NOT NULL DEFAULT clock_timestamp()
    );
    -- One index per public sort order, over live products only.
    CREATE INDEX products_newest ON products (created_at DESC, id DESC)
        WHERE archived_at IS NULL;
    CREATE INDEX products_price ON products (min_price_minor, id)
        WHERE archived_at IS NULL;
    CREATE INDEX products_name ON products (lower(name), id)
        WHERE archived_at IS NULL;
    CREATE INDEX products_category_newest ON products (category_slug, created_at DESC, id DESC)
        WHERE archived_at IS NULL;
    CREATE INDEX products_search ON products USING gin (search);

    CREATE TABLE variants (
        sku         text PRIMARY KEY CHECK (sku ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
        product_id  uuid NOT NULL REFERENCES products (id),
        name        text NOT NULL CHECK (name <> ''),
        price_minor bigint NOT NULL CHECK (price_minor >= 0),
        currency    char(3) NOT NULL,
        on_hand     integer NOT NULL DEFAULT 0,
        reserved    integer NOT NULL DEFAULT 0,
        CHECK (reserved >= 0 AND on_hand >= reserved),
        archived_at timestamptz,
        position    integer NOT NULL DEFAULT 0,
        created_at  timestamptz NOT NULL DEFAULT now(),
        updated_at  timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX variants_product ON variants (product_id, position, sku);

    -- Every change to on-hand stock, with who made it and the level it left.
    CREATE TABLE inventory_adjustments (
        id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        sku           text NOT NULL REFERENCES variants (sku),
        delta         integer NOT NULL CHECK (delta <> 0),
        reason        text NOT NULL,
        -- A user id from identity; no foreign key across features.
        actor_id      uuid,
        on_hand_after integer NOT NULL,
        created_at    timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX inventory_adjustments_sku ON inventory_adjustments (sku, id);
    """)


def downgrade() -> None:
    op.execute("""
    DROP TABLE inventory_adjustments;
    DROP TABLE variants;
    DROP TABLE products;
    DROP TABLE categories;
    """)
