"""A checkout attempt records its customer, so that live attempts holding a
coupon count toward the coupon's per-customer limit.

Two checkouts of one customer (same user, or same email) with a coupon usable
once per customer could both pass the limit: each counted only confirmed
redemptions. Now the coupon path takes the customer's advisory locks, counts
their redemptions plus their other `reserved` attempts with the coupon, and
only then holds the coupon (checkout.service._hold_coupon). A hold ends with
its attempt: confirmed (the redemption row is written in the same
transaction) or released.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    ALTER TABLE checkout_attempts
        ADD COLUMN user_id uuid,
        -- Lower-cased, as coupon_redemptions.email.
        ADD COLUMN email text CHECK (email = lower(email));
    CREATE INDEX checkout_attempts_coupon_holds ON checkout_attempts (coupon_code)
        WHERE status = 'reserved' AND coupon_code IS NOT NULL;
    """)


def downgrade() -> None:
    op.execute("""
    DROP INDEX checkout_attempts_coupon_holds;
    ALTER TABLE checkout_attempts DROP COLUMN email, DROP COLUMN user_id;
    """)
