"""Catalog revision: a counter every change to what the storefront shows moves.

The storefront's page cache (catalog.service) keeps rendered pages tagged
with the revision they were read at, and checks the revision in the same
statement that reads the live stock. Triggers move it, in the writing
transaction, for any change to products and for the variant columns a page
shows (not for stock: `available` is always read live), so no write path can
forget to, and a reader whose snapshot sees a write also sees its revision.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE catalog_revision (
        only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
        revision bigint NOT NULL
    );
    INSERT INTO catalog_revision (revision) VALUES (1);

    CREATE FUNCTION bump_catalog_revision() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        -- Concurrent catalog writes queue on this row until they commit: they are
        -- administrative and rare, and the order of revisions is then commit order.
        UPDATE catalog_revision SET revision = revision + 1;
        RETURN NULL;
    END
    $$;

    CREATE TRIGGER products_bump_catalog_revision
        AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON products
        FOR EACH STATEMENT EXECUTE FUNCTION bump_catalog_revision();
    CREATE TRIGGER variants_bump_catalog_revision
        AFTER INSERT OR DELETE OR TRUNCATE ON variants
        FOR EACH STATEMENT EXECUTE FUNCTION bump_catalog_revision();
    -- Every column of a variant except stock (on_hand, reserved) and updated_at,
    -- which checkouts write all the time and no page shows.
    CREATE TRIGGER variants_bump_catalog_revision_on_update
        AFTER UPDATE OF sku, product_id, name, price_minor, currency, archived_at, position
        ON variants
        FOR EACH STATEMENT EXECUTE FUNCTION bump_catalog_revision();
    """)


def downgrade() -> None:
    op.execute("""
    DROP TRIGGER variants_bump_catalog_revision_on_update ON variants;
    DROP TRIGGER variants_bump_catalog_revision ON variants;
    DROP TRIGGER products_bump_catalog_revision ON products;
    DROP FUNCTION bump_catalog_revision();
    DROP TABLE catalog_revision;
    """)
