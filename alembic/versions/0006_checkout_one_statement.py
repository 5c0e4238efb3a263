"""Checkout confirms in one statement: the order number is taken at reservation,
and a statement can abort itself when its own outcome is inconsistent.

- `checkout_attempts.order_number`: the number the attempt's order will carry,
  drawn from `order_numbers` when the attempt is inserted. The 201 body (and
  the idempotency answer stored with the order) can then be rendered before
  the confirming statement runs. An attempt that never becomes an order leaves
  a gap in the numbering, as a rolled-back sequence draw always could.
- `congocart_abort_unless(ok, reason)`: raises (SQLSTATE P0001, HINT
  'congocart_abort', MESSAGE reason) unless `ok` is true, so that a statement
  of data-modifying CTEs, run without a transaction, undoes every one of them
  when a condition it checks at the end does not hold. `core.db.aborted`
  reads the reason back.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    ALTER TABLE checkout_attempts
        ADD COLUMN order_number bigint NOT NULL DEFAULT nextval('order_numbers');

    CREATE FUNCTION congocart_abort_unless(ok boolean, reason text) RETURNS boolean
    LANGUAGE plpgsql AS $$
    BEGIN
        IF ok IS NOT TRUE THEN
            RAISE EXCEPTION USING MESSAGE = reason, HINT = 'congocart_abort';
        END IF;
        RETURN true;
    END
    $$;
    """)


def downgrade() -> None:
    op.execute("""
    DROP FUNCTION congocart_abort_unless(boolean, text);
    ALTER TABLE checkout_attempts DROP COLUMN order_number;
    """)
